//! The bed's stress scenario: the conditions under which the bed used to
//! break (issue 11), packed into one boot — stub domains created and
//! destroyed again and again against targets with odd and more than eight
//! vCPUs, mid-workload and at the end of it, while dom0 keeps starting
//! processes. `cargo xtask soak N` boots it N times in a row and counts the
//! boots that broke: a measurement of the bed, not a test (docs/bed.md; 0 of
//! 20 boots broke once QEMU patch 0004 was in).

use crate::steps::launch_stub;
use crate::{Guest, Run, Scenario};

/// Target vCPU counts, cycled: odd, above 8, and both.
const TARGET_VCPUS: [u32; 4] = [3, 12, 5, 9];
const TARGET_LABEL: &str = "system_u:system_r:vmi_target_t";

/// `cycles` attach/detach cycles in one boot. Odd cycles destroy the stub
/// mid-workload (Xen unpauses the target and frees the channels), even ones
/// let the target finish under the stub. With `stubs == false` the targets
/// run unmonitored (the same guests and dom0 load, no stub, no vm_event):
/// the control that tells a bed defect from one of ours.
pub fn scenario(cycles: u32, stubs: bool) -> Scenario {
    let guest = crate::kernel("guest");
    let mut sc = crate::steps::stub_scenario("stress")
        // dom0 busy with short-lived processes (fork, exec, TLS set-up:
        // where dom0's processes used to die) for the whole run.
        .step(
            "dom0 load",
            "(while :; do for i in 1 2 3 4 5 6 7 8; do /bin/busybox true; done; \
              ls /proc > /dev/null; done) > /dev/null 2>&1 &
             echo $! > /tmp/load.pid",
        );
    for c in 0..cycles {
        let v = TARGET_VCPUS[c as usize % TARGET_VCPUS.len()];
        let (t, s) = (format!("t{c}"), format!("s{c}"));
        sc = sc.guest(
            Guest::pvh(&t, &guest)
                .vcpus(v)
                .seclabel(TARGET_LABEL)
                .cmdline("kinds=cpuid,msr count=1000 leaves=0x6 delay_ms=5000"),
        );
        if !stubs {
            sc = sc.start(&t).wait_shutdown(&t, 300);
            continue;
        }
        // Created paused, so the workload cannot start (or end) before the
        // stub is attached, however slow the bed: the stub's own pause and
        // unpause leave it paused, dom0 lets it go. The guest then idles
        // (its vCPUs block and wake, wherever Xen puts them) before it works.
        sc = sc
            .start_paused(&t)
            .step(
                &format!("launch {s}"),
                &launch_stub(&s, &t, 2, "--rules cpuid,allow --log none"),
            )
            .wait_for(&s, "stub: attached", 60)
            .step(&format!("unpause {t}"), &format!("xl unpause {t}"));
        if c % 2 == 1 {
            sc = sc
                .step(&format!("destroy {s}"), &format!("sleep 1; xl destroy {s}"))
                .wait_shutdown(&s, 60)
                .wait_shutdown(&t, 300);
        } else {
            sc = sc.wait_shutdown(&t, 300).wait_shutdown(&s, 60);
        }
    }
    sc.step("dom0 load stop", "kill $(cat /tmp/load.pid)")
}

/// The smallest reproducer of the last open break (docs/bed.md): a guest
/// whose vCPUs exit to Xen in a tight loop (CPUID, MSR writes), paused and
/// unpaused `rounds` times by dom0's `xl pause` — no stub, no vm_event, only
/// Xen's scheduler taking busy vCPUs off their pCPUs and putting them back.
pub fn pause_scenario(rounds: u32, vcpus: u32) -> Scenario {
    let k = crate::kernel("attack");
    // The victim stays busy until dom0 destroys it after the last round
    // (a guest that triple-faulted is gone by then, and the verdict says so).
    let seconds = 600;
    Scenario::new("stress-pause")
        .guest(
            Guest::pvh("v", &k)
                .vcpus(vcpus)
                .seclabel(TARGET_LABEL)
                .cmdline(&format!(
                    "role=victim busy=1 idle_ms=2000 seconds={seconds}"
                )),
        )
        .start("v")
        .wait_for("v", "victim: up", 60)
        .step_within(
            "pause loop",
            &format!(
                "sleep 3; i=0; while [ $i -lt {rounds} ]; do xl pause v || exit 1; \
                 xl unpause v || exit 1; i=$((i+1)); done; echo rounds=$i"
            ),
            60 + rounds,
        )
        .step("destroy v", "xl list v > /dev/null && xl destroy v")
}

/// Did the boot break, and how: a failed or missing step, dom0 processes
/// that died of memory corruption, a guest triple fault.
pub fn verdict(run: &Run) -> Result<(), String> {
    if let Some(why) = run.bed_break() {
        return Err(why);
    }
    if let Some(s) = run.first_failure() {
        return Err(format!("step '{}' failed", s.label));
    }
    if !run.completed {
        return Err("the run did not complete".into());
    }
    Ok(())
}

/// What [`serve_scenario`] repeats: a target and the stub serving it.
pub struct ServeShape {
    pub target_vcpus: u32,
    pub stub_vcpus: u32,
    /// The target's workload (its command line, without `go=`).
    pub workload: String,
    /// The launcher's arguments beyond target, kernel and vCPUs.
    pub stub_args: String,
    /// Seconds without a served event, while the target lives, that fail
    /// the boot as a stall.
    pub still_s: u32,
}

impl ServeShape {
    /// The one stall first seen in the stub suite: a 2-vCPU target doing
    /// `count` CPUIDs per vCPU, served by a 1-vCPU stub in block mode
    /// (`SCHEDOP_poll` on masked ports).
    pub fn block(count: u32) -> Self {
        ServeShape {
            target_vcpus: 2,
            stub_vcpus: 1,
            workload: format!("kinds=cpuid count={count} leaves=0x6"),
            stub_args: "--rules cpuid,allow --log none".into(),
            still_s: 10,
        }
    }

    /// The stub suite's `t4s2spin` pair, where the stall was seen three
    /// times: 4 target vCPUs doing every kind `count` times, 2 stub vCPUs
    /// (two ports each, unmasked) in block mode with `spin=200`, the
    /// suite's policy and audit lines.
    pub fn spin(count: u32) -> Self {
        ServeShape {
            target_vcpus: 4,
            stub_vcpus: 2,
            workload: crate::steps::stub_workload(count),
            stub_args: format!(
                "--rules '{}' --mode block --spin 200",
                crate::steps::STUB_RULES
            ),
            still_s: 10,
        }
    }
}

/// `shape` repeated `rounds` times in one boot. A watcher reads the stub's
/// published `served` every 0.2 s; if it stands still for `still_s` while
/// the target lives, it prints what Xen says of the vCPUs and event
/// channels (`nested::steps::watch_served`) and fails the boot there.
pub fn serve_scenario(rounds: u32, shape: &ServeShape) -> Scenario {
    let guest = crate::kernel("guest");
    let mut sc = crate::steps::stub_scenario("stress-serve");
    for r in 0..rounds {
        let (t, s) = (format!("w{r}"), format!("ws{r}"));
        sc = sc
            .guest(
                Guest::pvh(&t, &guest)
                    .vcpus(shape.target_vcpus)
                    .seclabel(TARGET_LABEL)
                    .cmdline(&format!("{} go=xenstore", shape.workload)),
            )
            .start(&t)
            .wait_for(&t, "WORKLOAD-WAIT", 60)
            .step(
                &format!("launch {s}"),
                &launch_stub(&s, &t, shape.stub_vcpus, &shape.stub_args),
            )
            .wait_for(&s, "stub: attached", 60)
            .go(&t)
            .step_within(
                &format!("watch {s}"),
                &crate::steps::watch_served(
                    &s,
                    &t,
                    &format!("! xl domid {t} > /dev/null 2>&1"),
                    shape.still_s,
                ),
                600,
            )
            .wait_shutdown(&t, 60)
            .wait_shutdown(&s, 60);
    }
    sc
}
