//! The PVH runtime (`boot/`) through the first stubdom binary: boots with 1,
//! 3 and 4 vCPUs, every vCPU online, every event handled on the vCPU it is
//! bound to, timers within the stated bound, a poweroff (not a crash); a
//! deliberate panic and a deliberate page fault crash the domain with their
//! message; a bad command line prints one line naming the field and crashes.
//! One boot of Xen for all of it.
//!
//! Also prints the time from `xl create` to the stub's first console line.

use std::sync::OnceLock;

use nested::{Guest, Run, Scenario};

const SMP: [u32; 3] = [1, 3, 4];
/// Stated timer bound: a 10 ms one-shot fires at most this late (nested TCG).
const TIMER_BOUND_MS: u32 = 250;

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let stub = nested::kernel("stubdom");
        let mut sc = Scenario::new("runtime");
        for n in SMP {
            let name = format!("stub{n}");
            sc = sc
                .guest(
                    Guest::pvh(&name, &stub)
                        .vcpus(n)
                        .memory_mb(32)
                        .cmdline(&format!("selftest timer_bound_ms={TIMER_BOUND_MS}")),
                )
                .step(&format!("t0 {name}"), "now")
                .start(&name)
                .wait_for(&name, "boot: Xen", 60)
                .wait_shutdown(&name, 120);
        }
        let crash = |sc: Scenario, name: &str, cmdline: &str| {
            sc.guest(Guest::pvh(name, &stub).vcpus(2).cmdline(cmdline))
                .start(name)
                .wait_shutdown(name, 60)
        };
        sc = crash(sc, "panic", "crash=panic");
        sc = crash(sc, "fault", "crash=pagefault");
        sc = crash(sc, "badkey", "selftest colour=red");
        sc = crash(sc, "badvalue", "ipi_rounds=ten");
        sc.step("list", "xl list").run()
    })
}

fn console<'a>(run: &'a Run, guest: &str) -> &'a str {
    let c = run.console(guest);
    assert!(
        !c.is_empty(),
        "{guest}: empty console; logs: {}",
        run.log_dir.display()
    );
    c
}

/// Seconds of dom0 uptime in a step's output (`... at 12.34` or a bare
/// number).
fn uptime(out: &str) -> Option<f64> {
    out.split_whitespace().rev().find_map(|w| w.parse().ok())
}

#[test]
fn smp_selftest_powers_off() {
    let run = run();
    eprintln!("{}", run.summary());
    for n in SMP {
        let g = format!("stub{n}");
        let c = console(run, &g);
        run.expect_in(&g, c, &format!("boot: Xen 4.17"));
        run.expect_in(&g, c, &format!("{n}/{n} vCPUs online"));
        for id in 0..n {
            run.expect_in(&g, c, &format!("stubdom: vcpu {id} online"));
            let ipi = c
                .lines()
                .find(|l| l.starts_with(&format!("ipi: vcpu {id} ")))
                .unwrap_or_else(|| panic!("{g}: no ipi line for vcpu {id}:\n{c}"));
            assert!(ipi.ends_with(" ok"), "{g}: {ipi}");
            run.expect_in(&g, c, &format!("-> vcpu {id} ok"));
        }
        run.expect_in(&g, c, "events: wrong-vcpu deliveries 0");
        let timer = c
            .lines()
            .find(|l| l.starts_with("timer: worst lateness"))
            .unwrap_or_else(|| panic!("{g}: no timer summary:\n{c}"));
        eprintln!("{g}: {timer}");
        assert!(timer.ends_with(": ok"), "{g}: {timer}");
        run.expect_in(&g, c, "stubdom: selftest PASS");
        assert_eq!(
            run.shutdown_reason(&g),
            Some(0),
            "{g}: not a poweroff; xl said: {}; console:\n{c}",
            run.xl_log(&g)
        );
        // Time from `xl create` to the first console line.
        let t0 = uptime(&run.step(&format!("t0 {g}")).output);
        let seen = uptime(&run.step(&format!("wait {g}: boot: Xen")).output);
        if let (Some(t0), Some(seen)) = (t0, seen) {
            eprintln!(
                "{g}: xl create -> first console line: {:.2} s (dom0 uptime {t0:.2} -> {seen:.2}, 0.1 s polling)",
                seen - t0
            );
        }
    }
}

#[test]
fn deliberate_panic_crashes_with_message() {
    let run = run();
    let c = console(run, "panic");
    run.expect_in(
        "panic",
        c,
        "PANIC on vcpu 0: panicked at stubdom/src/main.rs",
    );
    run.expect_in("panic", c, "deliberate panic requested on the command line");
    assert_eq!(
        run.shutdown_reason("panic"),
        Some(3),
        "{}",
        run.xl_log("panic")
    );
}

#[test]
fn page_fault_prints_vector_rip_cr2_and_crashes() {
    let run = run();
    let c = console(run, "fault");
    let line = c
        .lines()
        .find(|l| l.starts_with("FATAL: exception 14 (#PF page fault)"))
        .unwrap_or_else(|| panic!("no #PF line:\n{c}"));
    assert!(line.contains("cr2=0xdead00000000"), "{line}");
    assert!(
        line.contains("rip=0x1") && line.contains("vcpu=0"),
        "{line}"
    );
    assert_eq!(
        run.shutdown_reason("fault"),
        Some(3),
        "{}",
        run.xl_log("fault")
    );
}

#[test]
fn bad_command_line_names_the_field_and_crashes() {
    let run = run();
    for (g, field) in [("badkey", "colour"), ("badvalue", "ipi_rounds")] {
        let c = console(run, g);
        let bad: Vec<_> = c
            .lines()
            .filter(|l| l.contains("bad command line"))
            .collect();
        assert_eq!(bad.len(), 1, "{g}: want exactly one line:\n{c}");
        assert!(
            bad[0].contains(&format!("field '{field}'")),
            "{g}: {}",
            bad[0]
        );
        assert!(!c.contains("selftest"), "{g} ran on:\n{c}");
        assert_eq!(run.shutdown_reason(g), Some(3), "{g}: {}", run.xl_log(g));
    }
}
