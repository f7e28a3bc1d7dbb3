//! The `xenstore` client against dom0's real xenstored, through the test
//! kernel `tests/xskernel`: it publishes `data/vmi/hello` (read back here
//! with `xenstore-read`), passes its self-checks (ENOENT, a value bigger
//! than the ring, directory, rm, watch/unwatch, a call from vCPU 1, path
//! checks), and answers `xl shutdown` through the PV control protocol:
//! xl's request is acknowledged (xl returns without timing out) and the
//! domain powers off with reason 0. xenstored stopped (SIGSTOP) for 4 s
//! costs the guest timed-out calls, not a hang, and it recovers. One boot
//! of Xen.

use std::sync::OnceLock;

use nested::{Guest, Run, Scenario};

const CHECKS: [&str; 11] = [
    "hello",
    "enoent",
    "big",
    "quota",
    "directory",
    "rm",
    "badpath",
    "watch",
    "vcpu1",
    "latency",
    "timeout",
];

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let kernel = nested::kernel("xskernel");
        Scenario::new("xenstore")
            .guest(Guest::pvh("xs", &kernel).vcpus(2).memory_mb(32))
            .start("xs")
            .wait_for("xs", "xskernel: ready", 120)
            .step(
                "read hello",
                "xenstore-read /local/domain/$(xl domid xs)/data/vmi/hello",
            )
            .step(
                "control nodes",
                "d=/local/domain/$(xl domid xs)
                 echo feature-poweroff=$(xenstore-read $d/control/feature-poweroff)
                 echo events=$(xenstore-read $d/data/vmi/events)
                 echo shutdown=\"$(xenstore-read $d/control/shutdown)\"",
            )
            // A stalled xenstored costs the guest a timeout, not a hang,
            // and the connection works again once it resumes.
            .step(
                "stop xenstored",
                "p=$(cat /run/xenstored.pid); kill -STOP $p; sleep 4; kill -CONT $p; echo resumed $p",
            )
            .wait_for("xs", "xskernel: heartbeat timeout", 30)
            .wait_for("xs", "xskernel: heartbeat recovered", 30)
            // Synchronous: xl writes "poweroff" and waits (up to 60 s) for
            // the guest to clear the node; a guest without PV control
            // makes it fail.
            .step(
                "xl shutdown",
                "t0=$(now); xl shutdown xs; echo rc=$? t=$t0..$(now)",
            )
            .wait_shutdown("xs", 60)
            .run()
    })
}

#[test]
fn xenstore_client_against_xenstored() {
    let run = run();
    eprintln!("{}", run.summary());
    run.assert_ok();
    let c = run.console("xs");
    assert!(
        !c.is_empty(),
        "empty console; logs: {}",
        run.log_dir.display()
    );
    run.expect_in("xs", c, "xskernel: domid ");
    let domid_line = c
        .lines()
        .find(|l| l.starts_with("xskernel: domid "))
        .unwrap();
    // "xskernel: domid N path /local/domain/N"
    let mut w = domid_line.split_whitespace().skip(2);
    let domid = w.next().unwrap();
    assert_eq!(w.next(), Some("path"));
    assert_eq!(
        w.next(),
        Some(format!("/local/domain/{domid}").as_str()),
        "{domid_line}"
    );
    for check in CHECKS {
        run.expect_in("xs", c, &format!("xskernel: check {check} ok"));
    }
    run.expect_in("xs", c, "xskernel: 0 checks failed");
    if let Some(l) = c.lines().find(|l| l.contains("read round trip")) {
        eprintln!("{l}");
    }

    let hello = run.step("read hello");
    assert_eq!(hello.output.trim(), "world", "{}", hello.output);

    let nodes = &run.step("control nodes").output;
    assert!(nodes.contains("feature-poweroff=1"), "{nodes}");
    assert!(nodes.contains("events=3"), "{nodes}");
    // The initial watch firing must not have been mistaken for a request.
    assert!(nodes.lines().any(|l| l.trim() == "shutdown="), "{nodes}");

    let xl = &run.step("xl shutdown").output;
    eprintln!("xl shutdown: {}", xl.trim());
    assert!(xl.contains("rc=0"), "{xl}");
    assert!(!xl.contains("PV control interface not available"), "{xl}");
    run.expect_in("xs", c, "xskernel: shutdown requested: poweroff");
    run.expect_in("xs", c, "xskernel: heartbeat timeout");
    run.expect_in("xs", c, "xskernel: heartbeat recovered");
    assert_eq!(run.shutdown_reason("xs"), Some(0), "{}", run.xl_log("xs"));
}
