//! The stub on a real Debian Linux target (issue 15): Debian's kernel and
//! busybox as a 1-vCPU PVH guest, monitored from its first instruction.
//! A root process (`dd`) writes a bogus LSTAR through `/dev/cpu/0/msr`
//! (`msr.ko`); the stub denies it; the guest reads LSTAR back unchanged
//! and keeps running. A user-mode CPUID from a named program
//! (`cpuid-probe`) is logged. Each audit record names the process behind
//! the event, and the test checks it against the pids the guest printed.
//! One boot of Xen.

use std::sync::OnceLock;

use nested::steps::launch_stub;
use nested::{Guest, Run};
use testbed::kernels::{LINUX_TARGET_BAD_LSTAR, LINUX_TARGET_DONE, LINUX_TARGET_PROBE_LEAF};

const TARGET_LABEL: &str = "system_u:system_r:vmi_target_t";

/// Deny only the bogus value (the kernel's own LSTAR write at boot must
/// go through, or no system call would work); log every LSTAR write and
/// the probe's CPUID leaf.
fn rules() -> String {
    format!(
        "msr,msr=0xc0000082,new={LINUX_TARGET_BAD_LSTAR:#x},deny,log=alert;\
         msr,msr=0xc0000082,log,log=warn;\
         cpuid,leaf={LINUX_TARGET_PROBE_LEAF:#x},log,log=warn;any,allow"
    )
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let linux = nested::linux_target();
        nested::steps::stub_scenario("linux")
            .file("/scenario/vmi-profile", &nested::dom0_tool("vmi-profile"))
            .guest(
                Guest::pvh("linux", &linux.vmlinux)
                    .ramdisk(&linux.initrd)
                    .memory_mb(256)
                    .seclabel(TARGET_LABEL)
                    .cmdline("console=hvc0 quiet"),
            )
            // Paused until its stub is attached: monitored from boot.
            .start_paused("linux")
            // The profile, from the very kernel the target boots, in dom0.
            .step(
                "profile",
                "chmod +x /scenario/vmi-profile
                 /scenario/vmi-profile /scenario/linux.kernel -o /tmp/linux.profile
                 cat /tmp/linux.profile",
            )
            .step(
                "launch stub-linux",
                &launch_stub(
                    "stub-linux",
                    "linux",
                    1,
                    &format!("--rules '{}' --profile /tmp/linux.profile", rules()),
                ),
            )
            .wait_for("stub-linux", "stub: serving", 60)
            .step("unpause linux", "xl unpause linux")
            .wait_shutdown("linux", 300)
            .wait_shutdown("stub-linux", 60)
            .run()
    })
}

/// The number after `word` (`word 412` or `word=412`) in `s`.
fn number_after(s: &str, word: &str) -> Option<u64> {
    let at = s.find(word)? + word.len();
    s[at..]
        .trim_start_matches([' ', '=', ':', '"'])
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The guest's own word for who ran each program: `linux-target: NAME pid P`.
fn guest_pid(g: &str, name: &str) -> u64 {
    let prefix = format!("linux-target: {name} pid ");
    g.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("the guest printed no pid for {name}: {g}"))
}

/// The stub's audit records (one JSON object per line).
fn records(s: &str) -> Vec<&str> {
    s.lines().filter(|l| l.starts_with("{\"vcpu\":")).collect()
}

fn process_of(rec: &str) -> (u64, String) {
    let pid = number_after(rec, "\"pid\":").unwrap_or_else(|| panic!("no pid in {rec}"));
    let at = rec.find("\"comm\":\"").unwrap_or_else(|| panic!("no comm in {rec}")) + 8;
    let comm = rec[at..].split('"').next().unwrap().to_string();
    (pid, comm)
}

#[test]
fn the_bogus_lstar_write_is_denied_and_linux_keeps_running() {
    let run = run();
    run.assert_ok();
    let g = run.console("linux");
    run.expect_in("linux", g, LINUX_TARGET_DONE);
    let before = g
        .lines()
        .find_map(|l| l.strip_prefix("linux-target: up after "))
        .and_then(|l| l.split("lstar ").nth(1))
        .expect("LSTAR before");
    let after = g
        .lines()
        .find_map(|l| l.strip_prefix("linux-target: lstar after the write "))
        .expect("LSTAR after");
    eprintln!("guest LSTAR before {before}, after {after}");
    assert_eq!(before.trim(), after.trim(), "{g}");
    assert_ne!(u64::from_str_radix(after.trim(), 16).ok(), Some(LINUX_TARGET_BAD_LSTAR));
    let s = run.console("stub-linux");
    let deny = s
        .lines()
        .find(|l| l.contains("\"action\":\"deny\"") && l.contains(&format!("\"new\":\"{LINUX_TARGET_BAD_LSTAR:#x}\"")))
        .unwrap_or_else(|| panic!("no denial of the bogus LSTAR in the stub's console: {s}"));
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
    let g = run.console("linux");
    let s = run.console("stub-linux");
    let recs = records(s);
    assert!(!recs.is_empty(), "{s}");
    assert!(recs.iter().all(|r| r.contains("\"process\":{")), "{s}");
    let first = recs
        .iter()
        .position(|r| r.contains("\"pid\":"))
        .expect("no record names a task");
    let late: Vec<_> = recs[first..].iter().filter(|r| r.contains("\"error\"")).collect();
    eprintln!(
        "{} record(s): the first {first} (early boot) name no task, then all but {} do",
        recs.len(),
        late.len()
    );
    assert!(late.is_empty(), "{} record(s) without a task after the first: {:?}", late.len(), late);
    let bad = format!("\"new\":\"{LINUX_TARGET_BAD_LSTAR:#x}\"");
    let deny = recs.iter().find(|r| r.contains(&bad)).expect("the denial");
    assert_eq!(process_of(deny), (guest_pid(g, "dd"), "dd".into()), "{deny}");
    assert!(deny.contains("\"mode\":\"kernel\""), "{deny}");
    let leaf = format!("\"leaf\":\"{LINUX_TARGET_PROBE_LEAF:#x}\"");
    let probe = recs.iter().find(|r| r.contains(&leaf)).expect("the probe's CPUID");
    assert_eq!(
        process_of(probe),
        (guest_pid(g, "cpuid-probe"), "cpuid-probe".into()),
        "{probe}"
    );
    assert!(probe.contains("\"mode\":\"user\""), "{probe}");
    let boot = recs
        .iter()
        .find(|r| r.contains("\"msr\":\"0xc0000082\"") && r.contains("\"action\":\"log\""))
        .expect("the kernel's own LSTAR write");
    let (pid, comm) = process_of(boot);
    assert!(pid == 0 && comm.starts_with("swapper"), "{boot}");
    for r in [deny, probe, boot] {
        eprintln!("{r}");
    }
    run.expect_in("stub-linux", s, "memory window of 16 frames");
    let window = s.lines().find(|l| l.contains("memory window")).unwrap();
    eprintln!("{window}");
}
