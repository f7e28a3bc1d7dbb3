//! The target cannot shed its monitor by rebooting (issue 12, finding 8).
//!
//! A 2-vCPU target runs a CPUID workload under a stub started by
//! `vmi-launch --follow`, then reboots: by itself (`SCHEDOP_shutdown(reboot)`),
//! and, for a second target, through `xl reboot`.
//! xl builds it again: same UUID, new domid, and a second workload (the
//! config was updated with `xl config-update` so the second boot powers
//! off). The launcher holds the new domain paused from the moment it exists
//! until a new stub is attached to it. Checked: the new domain never ran
//! unmonitored (0 ns of CPU time before the hold), and each stub served
//! exactly its boot's workload, event by event and vCPU by vCPU. The window
//! (how long the new domain was held) is printed.
//!
//! Save and restore: Debian's Linux (1 vCPU) runs `cpuid-probe` 60 times
//! under a followed stub and is saved (`xl save`, the guest suspends
//! itself: shutdown code 2) and restored (`xl restore`, a new domain with
//! the same UUID) between its 10th probe and its end. Checked the same way:
//! the restored domain held before it ran, and every probe served once,
//! the ones after the restore by the new stub. One boot of Xen.

use std::sync::OnceLock;

use nested::{Guest, Run, Scenario};
use workload::Kind;

const TARGET_LABEL: &str = "system_u:system_r:vmi_target_t";
/// CPUIDs per vCPU in the first and the second boot (different, so a stub
/// counting the wrong boot cannot pass).
const COUNTS: [u32; 2] = [300, 400];
const VCPUS: u32 = 2;

/// One followed target: its name, its stub's, and how its first boot ends
/// (`then=` of the test guest).
struct Case {
    target: &'static str,
    stub: &'static str,
    then: &'static str,
    /// Fixed in the config: the second boot's config (`xl config-update`)
    /// would otherwise get a new UUID of its own from xl.
    uuid: &'static str,
}

/// A guest-initiated reboot, and `xl reboot` (the guest answers the PV
/// control protocol).
const CASES: [Case; 2] = [
    Case {
        target: "t",
        stub: "s",
        then: "reboot",
        uuid: "5e1f0000-0000-4000-8000-000000000001",
    },
    Case {
        target: "u",
        stub: "su",
        then: "xl",
        uuid: "5e1f0000-0000-4000-8000-000000000002",
    },
];

fn follow(sc: Scenario, guest: &std::path::Path, c: &Case) -> Scenario {
    let [first, second] = COUNTS;
    let (t, s) = (c.target, c.stub);
    let sc = sc
        .guest(
            Guest::pvh(t, guest)
                .vcpus(VCPUS)
                .seclabel(TARGET_LABEL)
                .restart_on_reboot()
                .cfg(&format!("uuid = \"{}\"", c.uuid))
                .cmdline(&format!(
                    "kinds=cpuid count={first} leaves=0x6 delay_ms=2000 then={}",
                    c.then
                )),
        )
        // Paused until its stub is attached, so both boots are
        // monitored from their first instruction.
        .start_paused(t)
        .step(
            &format!("second boot's config {t}"),
            &format!(
                "sed -e 's/then={}/then=poweroff/' -e 's/count={first}/count={second}/' \
                 /scenario/{t}.cfg > /tmp/{t}-boot2.cfg
                 xl config-update {t} /tmp/{t}-boot2.cfg 2>&1 | tail -n 1",
                c.then
            ),
        )
        .step(
            &format!("follow {t}"),
            &format!(
                "chmod +x /scenario/vmi-launch
                 /scenario/vmi-launch --target {t} --kernel /scenario/stubdom --name {s} --vcpus 2 \
                    --tsc-native --rules 'cpuid,allow' --log all --follow --follow-timeout 120 \
                    --config-out /tmp/{s}.cfg > /tmp/xl-follow-{t}.log 2>&1 &
                 echo $! > /tmp/follow-{t}.pid
                 sleep 1; head -n 2 /tmp/xl-follow-{t}.log"
            ),
        )
        .wait_for(s, "stub: attached", 60)
        .step(&format!("unpause {t}"), &format!("xl unpause {t}"));
    let sc = if c.then == "xl" {
        sc.wait_for(t, "WORKLOAD-WAIT-XL", 300)
            .step(&format!("xl reboot {t}"), &format!("xl reboot {t}"))
    } else {
        sc
    };
    followed_to_the_end(sc, t)
}

/// Waits until the follower of `t` has attached a new stub to the new
/// domain, then until `t` ends and the follower with it.
fn followed_to_the_end(sc: Scenario, t: &str) -> Scenario {
    sc.step_within(
        &format!("re-attached {t}"),
        &format!(
            "while ! grep -q 'follow: stub domain .* attached' /tmp/xl-follow-{t}.log; do
                 kill -0 $(cat /tmp/follow-{t}.pid) || {{ cat /tmp/xl-follow-{t}.log; exit 1; }}
                 sleep 0.2
             done
             grep 'follow:' /tmp/xl-follow-{t}.log"
        ),
        300,
    )
    .wait_shutdown(t, 300)
    .step_within(
        &format!("follow {t} ends"),
        &format!(
            "while kill -0 $(cat /tmp/follow-{t}.pid) 2>/dev/null; do sleep 0.2; done
             tail -n 1 /tmp/xl-follow-{t}.log"
        ),
        60,
    )
}

/// The saved and restored Linux target, its stub, and its probes.
const LX: &str = "lx";
const LX_STUB: &str = "slx";
const PROBES: u64 = 60;
/// The probe the save waits for: the first stub must have served some.
const SAVE_AFTER: u64 = 10;

/// `xl save` in the middle of the probes, then `xl restore -F` in the
/// background in the place of the first `xl create -F` (which ends when
/// the domain suspends), so that `wait_shutdown` waits for the restored
/// domain. Its output goes to a log of its own (`xl_log("lx-restore")`):
/// the first one already says "Waiting for domain".
fn save_restore(sc: Scenario, linux: &nested::LinuxGuest) -> Scenario {
    use testbed::kernels::LINUX_TARGET_PROBE_LEAF;
    let (t, s) = (LX, LX_STUB);
    let sc = sc.guest(
        Guest::pvh(t, &linux.vmlinux)
            .ramdisk(&linux.initrd)
            .memory_mb(128)
            .seclabel(TARGET_LABEL)
            .cmdline(&format!("console=hvc0 quiet probes={PROBES}")),
    )
    .start_paused(t)
    .step(
        &format!("follow {t}"),
        &format!(
            "chmod +x /scenario/vmi-launch
             /scenario/vmi-launch --target {t} --kernel /scenario/stubdom --name {s} --vcpus 1 \
                --tsc-native --rules 'cpuid,leaf={LINUX_TARGET_PROBE_LEAF:#x},log;any,allow' \
                --follow --follow-timeout 300 --config-out /tmp/{s}.cfg > /tmp/xl-follow-{t}.log 2>&1 &
             echo $! > /tmp/follow-{t}.pid
             sleep 1; head -n 2 /tmp/xl-follow-{t}.log"
        ),
    )
    .wait_for(s, "stub: attached", 60)
    .step(&format!("unpause {t}"), &format!("xl unpause {t}"))
    .wait_for(t, &format!("linux-target: probe {SAVE_AFTER}"), 300)
    .step_within(
        &format!("save and restore {t}"),
        &format!(
            "t0=$(now)
             xl save {t} /tmp/{t}.save || exit 1
             echo \"saved at $(now) (began $t0): $(wc -c < /tmp/{t}.save) bytes\"
             cat /tmp/xl-{t}.log
             xl restore -F /tmp/{t}.save > /tmp/xl-{t}-restore.log 2>&1 &
             echo $! > /tmp/xl-{t}.pid
             while ! grep -q 'Waiting for domain' /tmp/xl-{t}-restore.log 2>/dev/null; do
                 kill -0 $(cat /tmp/xl-{t}.pid) || {{ cat /tmp/xl-{t}-restore.log; exit 1; }}
                 sleep 0.1
             done
             cat /tmp/xl-{t}-restore.log
             echo \"restored at $(now), domid $(xl domid {t})\"
             rm -f /tmp/{t}.save"
        ),
        600,
    );
    followed_to_the_end(sc, t)
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let guest = nested::kernel("guest");
        let linux = nested::linux_target();
        let mut sc = nested::steps::stub_scenario("lifecycle");
        for c in &CASES {
            sc = follow(sc, &guest, c);
        }
        save_restore(sc, &linux).run()
    })
}

/// The part of `console` that belongs to boot `i` (0 or 1): split after the
/// first boot's last line (`marker`).
fn part<'a>(console: &'a str, marker: &str, i: usize) -> &'a str {
    let at = console
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{console}"));
    let end = at + console[at..].find('\n').unwrap_or(console.len() - at);
    if i == 0 {
        &console[..end]
    } else {
        &console[end..]
    }
}

/// Leaf-0x6 CPUIDs a stub logged for target vCPU `v` (its JSON audit lines).
fn logged(console: &str, v: u32) -> u64 {
    let vcpu = format!("{{\"vcpu\":{v},");
    console
        .lines()
        .filter(|l| l.contains(&vcpu) && l.contains("\"leaf\":\"0x6\""))
        .count() as u64
}

#[test]
fn scenario_completes() {
    run().assert_ok();
}

/// The follower of `t` saw it shut down with `code`, held the new domain
/// before it had run at all, released it once a new stub was attached, and
/// ended with the new domain's poweroff. Prints the follower's log.
fn assert_held_and_released(run: &Run, t: &str, code: u32) {
    let follow = run.xl_log(&format!("follow-{t}"));
    println!("{follow}");
    assert!(
        follow.contains(&format!(
            "shut down with reason code {code}; waiting for its UUID"
        )),
        "{t}: {follow}"
    );
    let held = follow
        .lines()
        .find(|l| l.contains("held paused; it had run"))
        .unwrap_or_else(|| panic!("{t}: the new domain was never held:\n{follow}"));
    assert!(
        held.ends_with("it had run 0 ns unmonitored"),
        "{t}: the new domain ran before the hold: {held}"
    );
    assert!(follow.contains("released after"), "{t}: {follow}");
    assert!(
        follow.contains("shut down with reason code 0; following ends"),
        "{t}: {follow}"
    );
}

#[test]
fn the_rebooted_target_is_held_until_a_new_stub_is_attached() {
    let run = run();
    for c in &CASES {
        let t = c.target;
        println!("{t} (then={}):", c.then);
        assert_held_and_released(run, t, 1);
        // xl restarted the domain once and then let it go.
        let xl = run.xl_log(t);
        assert_eq!(run.shutdown_reason(t), Some(1), "{t}: {xl}");
        assert!(xl.contains("reason code 0"), "{t}: {xl}");
    }
}

#[test]
fn each_boot_is_served_exactly_by_its_own_stub() {
    let run = run();
    for c in &CASES {
        let (t, s) = (c.target, c.stub);
        let target = run.console(t);
        let stub = run.console(s);
        for (i, count) in COUNTS.into_iter().enumerate() {
            let rep = workload::parse(part(target, "WORKLOAD-REBOOT", i));
            assert!(
                rep.malformed.is_empty(),
                "{t} boot {i}: {:?}",
                rep.malformed
            );
            assert!(
                rep.summary.is_some(),
                "boot {i} of {t} did not finish; logs: {}",
                run.log_dir.display()
            );
            let served = part(stub, "stub: vcpu=1 ", i);
            assert!(
                served.contains("stub: attached"),
                "{s}: stub {i} never attached:\n{served}"
            );
            for v in 0..VCPUS {
                let rec = rep
                    .record(v, Kind::Cpuid)
                    .unwrap_or_else(|| panic!("{t} boot {i}: no cpuid record for vCPU {v}"));
                assert_eq!(rec.count, count, "{t} boot {i} vCPU {v}");
                assert_eq!(
                    logged(served, v),
                    u64::from(count),
                    "{t} boot {i} vCPU {v}: leaf-0x6 CPUIDs the stub served"
                );
            }
        }
    }
}

/// The probe's CPUIDs a stub logged (its JSON audit lines).
fn probes_logged(console: &str) -> u64 {
    let leaf = format!(
        "\"leaf\":\"{:#x}\"",
        testbed::kernels::LINUX_TARGET_PROBE_LEAF
    );
    console
        .lines()
        .filter(|l| l.starts_with("{\"vcpu\":") && l.contains(&leaf))
        .count() as u64
}

#[test]
fn the_restored_target_is_held_until_a_new_stub_is_attached() {
    let run = run();
    println!("{LX} (xl save, xl restore):");
    eprintln!("{}", run.step(&format!("save and restore {LX}")).output);
    assert_held_and_released(run, LX, 2);
}

/// Every probe the guest made was served once: the ones before the save
/// by the first stub, the rest by the stub attached to the restored domain.
#[test]
fn every_probe_across_the_save_is_served_once() {
    let run = run();
    let g = run.console(LX);
    run.expect_in(LX, g, testbed::kernels::LINUX_TARGET_PROBES_DONE);
    let made = g
        .lines()
        .filter(|l| l.starts_with("linux-target: probe "))
        .count() as u64;
    assert_eq!(made, PROBES, "{g}");
    let s = run.console(LX_STUB);
    // The second stub's console follows the first's in the same file.
    let second = s
        .match_indices("stub: attached")
        .nth(1)
        .map(|(at, _)| at)
        .unwrap_or_else(|| panic!("no second stub attached:\n{s}"));
    let (before, after) = (probes_logged(&s[..second]), probes_logged(&s[second..]));
    eprintln!("probes served: {before} before the save, {after} after the restore, of {PROBES}");
    assert!(before >= SAVE_AFTER, "first stub served {before}");
    assert!(after > 0, "no probe served after the restore");
    assert_eq!(before + after, PROBES, "{s}");
}
