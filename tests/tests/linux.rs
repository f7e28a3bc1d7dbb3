//! The stub on a real Debian Linux target (issue 15): Debian's kernel and
//! busybox as a 1-vCPU PVH guest, monitored from its first instruction,
//! with a profile `vmi-profile` made in dom0 from the kernel it boots.
//! A root process (`dd`) writes a bogus LSTAR through `/dev/cpu/0/msr`
//! (`msr.ko`); the stub denies it; the guest reads LSTAR back unchanged
//! and keeps running. A user-mode CPUID from a named program
//! (`cpuid-probe`) is logged. Each audit record names the process behind
//! the event, checked against the pids the guest printed. One boot of Xen.

use std::sync::OnceLock;

use nested::linux::{
    denial, guest_pid, lstar_before_after, peek_bytes, probe, process_of, records,
};
use nested::steps::{with_linux_target, LINUX_STUB, LINUX_TARGET};
use nested::Run;
use testbed::kernels::{cpuid_probe_header, LINUX_TARGET_BAD_LSTAR, LINUX_TARGET_DONE};

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let linux = nested::linux_target();
        with_linux_target(nested::steps::stub_scenario("linux"), &linux).run()
    })
}

#[test]
fn the_bogus_lstar_write_is_denied_and_linux_keeps_running() {
    let run = run();
    run.assert_ok();
    let g = run.console(LINUX_TARGET);
    run.expect_in(LINUX_TARGET, g, LINUX_TARGET_DONE);
    let (before, after) = lstar_before_after(g).unwrap_or_else(|| panic!("no LSTAR lines: {g}"));
    eprintln!("guest LSTAR before {before}, after {after}");
    assert_eq!(before, after, "{g}");
    assert_ne!(
        u64::from_str_radix(&after, 16).ok(),
        Some(LINUX_TARGET_BAD_LSTAR)
    );
    let s = run.console(LINUX_STUB);
    let deny = denial(s).unwrap_or_else(|| panic!("no denial of the bogus LSTAR: {s}"));
    eprintln!("{deny}");
}

/// Every record names the task the guest says ran: `dd` for the denied
/// write (made by the msr driver in the kernel, on dd's behalf), the
/// probe for its user-mode CPUID (found through the saved kernel GS base:
/// Xen patch 0014), the init task (`swapper`, pid 0) for the kernel's own
/// LSTAR write at boot. Only the first events of the boot, before the
/// kernel has a per-CPU area, name none; from the first record that names
/// a task on, every one does.
#[test]
fn every_event_is_attributed_to_the_task_the_guest_says_ran() {
    let run = run();
    run.assert_ok();
    let g = run.console(LINUX_TARGET);
    let s = run.console(LINUX_STUB);
    let recs = records(s);
    assert!(recs.iter().all(|r| r.contains("\"process\":{")), "{s}");
    let first = recs
        .iter()
        .position(|r| process_of(r).is_some())
        .unwrap_or_else(|| panic!("no record names a task: {s}"));
    let late: Vec<_> = recs[first..]
        .iter()
        .filter(|r| process_of(r).is_none())
        .collect();
    eprintln!(
        "{} record(s): the first {first} (early boot) name no task, then {} of the rest do not",
        recs.len(),
        late.len()
    );
    assert!(
        late.is_empty(),
        "records without a task after the first: {late:?}"
    );
    let pid = |name| guest_pid(g, name).unwrap_or_else(|| panic!("no pid for {name}: {g}"));
    let deny = denial(s).expect("the denial");
    assert_eq!(process_of(deny), Some((pid("dd"), "dd".into())), "{deny}");
    assert!(deny.contains("\"mode\":\"kernel\""), "{deny}");
    let probe = probe(s).expect("the probe's CPUID");
    assert_eq!(
        process_of(probe),
        Some((pid("cpuid-probe"), "cpuid-probe".into())),
        "{probe}"
    );
    assert!(probe.contains("\"mode\":\"user\""), "{probe}");
    // Its rule names the task (`comm=cpuid-probe`): it matched, so the
    // stub knew the task before it decided.
    assert!(probe.contains("\"rule\":3,"), "{probe}");
    // The bytes at the address the probe announced (rsi), read through its
    // own page tables, are the ones the kernel loaded there.
    let want: String = cpuid_probe_header()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(peek_bytes(probe), Some(want.as_str()), "{probe}");
    let boot = recs
        .iter()
        .find(|r| r.contains("\"msr\":\"0xc0000082\"") && r.contains("\"action\":\"log\""))
        .expect("the kernel's own LSTAR write");
    let (p, comm) = process_of(boot).expect("a task for the boot write");
    assert!(p == 0 && comm.starts_with("swapper"), "{boot}");
    for r in [deny, probe, boot] {
        eprintln!("{r}");
    }
    run.expect_in(LINUX_STUB, s, "memory window of 16 frames");
    eprintln!(
        "{}",
        s.lines().find(|l| l.contains("memory window")).unwrap()
    );
}
