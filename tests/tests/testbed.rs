//! The test bed itself: Xen boots with FLASK enforcing, a PVH guest runs, and
//! the baseline consumer (Debian's xen-access) monitors a guest. All three
//! share one boot of Xen.

use std::sync::OnceLock;

use nested::{Guest, Run, Scenario};

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let linux = nested::linux_guest();
        let guest = |name: &str| {
            Guest::pvh(name, &linux.vmlinux)
                .ramdisk(&linux.initrd)
                .memory_mb(128)
                .cmdline("console=hvc0 quiet")
        };
        Scenario::new("testbed")
            .guest(guest("linux"))
            .guest(guest("monitored"))
            .step("flask", "flask-getenforce; xl list -Z")
            .start("linux")
            .wait_shutdown("linux", 120)
            // The baseline: xen-access attaches while the guest is paused, so
            // it sees every CPUID of the guest's boot.
            .start_paused("monitored")
            .step(
                "xen-access",
                "id=$(xl domid monitored)
                 xen-access $id cpuid > /tmp/xa.log 2>&1 &
                 echo $! > /tmp/xa.pid
                 while ! grep -q 'starting' /tmp/xa.log 2>/dev/null; do
                     kill -0 $(cat /tmp/xa.pid) || { cat /tmp/xa.log; exit 1; }
                     sleep 0.1
                 done
                 echo unpause at $(now)
                 xl unpause monitored",
            )
            .wait_shutdown("monitored", 180)
            .step(
                "xen-access-count",
                "echo shutdown at $(now)
                 kill -INT $(cat /tmp/xa.pid) 2>/dev/null
                 while kill -0 $(cat /tmp/xa.pid) 2>/dev/null; do sleep 0.1; done
                 echo events=$(grep -c 'CPUID executed' /tmp/xa.log)
                 tail -n 3 /tmp/xa.log",
            )
            // A step that overruns its timeout is reported as such, and the
            // scenario goes on.
            .step_may_fail("overrun", "echo before; sleep 30; echo after", 2)
            .step("after-overrun", "echo still here")
            .run()
    })
}

#[test]
fn xen_boots_with_flask_enforcing() {
    let run = run();
    let flask = run.step("flask");
    assert!(
        flask.ok(),
        "flask step failed; logs: {}",
        run.log_dir.display()
    );
    run.expect_in("flask-getenforce", &flask.output, "Enforcing");
    let dom0 = flask
        .output
        .lines()
        .find(|l| l.starts_with("Domain-0"))
        .unwrap_or_else(|| {
            panic!(
                "xl list -Z shows no Domain-0; logs: {}",
                run.log_dir.display()
            )
        });
    assert!(dom0.contains("dom0_t"), "dom0 is not dom0_t: {dom0}");
    run.expect_in("Xen's console", run.xen(), "Starting in enforcing mode");
}

#[test]
fn pvh_linux_guest_boots_and_powers_off() {
    let run = run();
    assert!(
        run.step("start linux").ok(),
        "start failed; logs: {}",
        run.log_dir.display()
    );
    assert!(
        run.step("shutdown linux").ok(),
        "no shutdown; logs: {}",
        run.log_dir.display()
    );
    run.expect_in(
        "linux console",
        run.console("linux"),
        testbed::kernels::LINUX_GUEST_MARKER,
    );
    assert_eq!(
        run.shutdown_reason("linux"),
        Some(0),
        "not a poweroff; logs: {}",
        run.log_dir.display()
    );
}

#[test]
fn xen_access_baseline_sees_cpuid_events() {
    let run = run();
    run.assert_ok();
    let count = run.step("xen-access-count");
    let events: u64 = count
        .output
        .lines()
        .find_map(|l| l.strip_prefix("events="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let secs = run.step("shutdown monitored").ended - run.step("xen-access").ended;
    eprintln!(
        "baseline: xen-access saw {events} CPUID events in {secs:.1} s of guest life ({:.0} events/s)",
        events as f64 / secs.max(0.01)
    );
    assert!(
        events > 0,
        "xen-access saw no CPUID event; logs: {}",
        run.log_dir.display()
    );
    run.expect_in(
        "monitored console",
        run.console("monitored"),
        testbed::kernels::LINUX_GUEST_MARKER,
    );
}

#[test]
fn an_overrunning_step_is_cut_at_its_timeout() {
    let run = run();
    let st = run.step("overrun");
    assert!(
        st.timed_out(),
        "status {:?}; logs: {}",
        st.status,
        run.log_dir.display()
    );
    assert!(st.output.contains("before") && !st.output.contains("after"));
    assert!(st.seconds() < 10.0, "took {:.1} s", st.seconds());
    assert!(run.step("after-overrun").ok());
}
