//! `cargo xtask bench`: guest-seen cycles per CPUID (rdtsc around the
//! instruction, in the target test guest) for every consumer in one boot of
//! the bed: unmonitored, Debian's xen-access (stock ring, dom0), our dom0
//! consumer on the stock ring and on the channels, and the stub domain.
//! Absolute cycles under TCG mean little; the ratios are the result.

use anyhow::bail;
use nested::{Guest, Scenario};
use testbed::Layout;
use workload::Kind;

use crate::demo::TARGET_LABEL;

const COUNT: u32 = 400;

/// The dom0 steps that start `cmd` against a paused guest, wait until it
/// serves (its log holds `ready`), and unpause.
fn dom0_consumer(guest: &str, cmd: &str, ready: &str) -> String {
    format!(
        "{cmd} > /tmp/c-{guest}.log 2>&1 &
         echo $! > /tmp/c-{guest}.pid
         while ! grep -q '{ready}' /tmp/c-{guest}.log; do
             kill -0 $(cat /tmp/c-{guest}.pid) || {{ cat /tmp/c-{guest}.log; exit 1; }}
             sleep 0.1
         done
         xl unpause {guest}"
    )
}

fn stop(guest: &str) -> String {
    format!(
        "kill -INT $(cat /tmp/c-{guest}.pid) 2>/dev/null
         while kill -0 $(cat /tmp/c-{guest}.pid) 2>/dev/null; do sleep 0.1; done"
    )
}

pub fn run(layout: &Layout) -> anyhow::Result<()> {
    testbed::prepare(layout)?;
    let guest = testbed::kernels::build_ours(layout, "guest")?;
    let stub = testbed::kernels::build_ours(layout, "stubdom")?;
    let launcher = testbed::kernels::build_host_tool(layout, "vmi-launch")?;
    let consumer = testbed::kernels::build_host_tool(layout, "vmi-consumer")?;
    let work = format!("kinds=cpuid count={COUNT} leaves=0x6");
    let g = |name: &str, vcpus: u32| Guest::pvh(name, &guest).vcpus(vcpus).cmdline(&work);
    let mut sc = Scenario::new("bench")
        .file("/scenario/vmi-consumer", &consumer)
        .file("/scenario/vmi-launch", &launcher)
        .file("/scenario/stubdom", &stub)
        .step(
            "tools",
            "chmod +x /scenario/vmi-consumer /scenario/vmi-launch",
        );
    for vcpus in [1u32, 2, 4] {
        let n = |what: &str| format!("{what}{vcpus}");
        let (plain, xa, ring, chan, stubbed) =
            (n("plain"), n("xa"), n("ring"), n("chan"), n("stub"));
        sc = sc
            .guest(g(&plain, vcpus))
            .start(&plain)
            .wait_shutdown(&plain, 120)
            .guest(g(&xa, vcpus))
            .start_paused(&xa)
            .step(&format!("xen-access {vcpus}"), &dom0_consumer(&xa, &format!("xen-access $(xl domid {xa}) cpuid"), "starting"))
            .wait_shutdown(&xa, 600)
            .step(&format!("stop xen-access {vcpus}"), &stop(&xa))
            .guest(g(&ring, vcpus))
            .start_paused(&ring)
            .step(
                &format!("ring {vcpus}"),
                &dom0_consumer(&ring, &format!("/scenario/vmi-consumer $(xl domid {ring}) --ring --cpuid"), "serving"),
            )
            .wait_shutdown(&ring, 600)
            .step(&format!("stop ring {vcpus}"), &stop(&ring))
            .guest(g(&chan, vcpus))
            .start_paused(&chan)
            .step(
                &format!("channels {vcpus}"),
                &dom0_consumer(&chan, &format!("/scenario/vmi-consumer $(xl domid {chan}) --channels --cpuid"), "serving"),
            )
            .wait_shutdown(&chan, 600)
            .step(&format!("stop channels {vcpus}"), &stop(&chan))
            .guest(
                Guest::pvh(&stubbed, &guest)
                    .vcpus(vcpus)
                    .seclabel(TARGET_LABEL)
                    .cmdline(&format!("{work} delay_ms=10000")),
            )
            .start(&stubbed)
            .wait_for(&stubbed, "WORKLOAD-WAIT", 60)
            .step(
                &format!("stub {vcpus}"),
                &format!(
                    "/scenario/vmi-launch --target {stubbed} --kernel /scenario/stubdom --name s{vcpus} \
                        --vcpus {} --rules cpuid,allow --log none --tsc-native --foreground \
                        > /tmp/xl-s{vcpus}.log 2>&1 &
                     echo $! > /tmp/xl-s{vcpus}.pid",
                    vcpus.min(2)
                ),
            )
            .wait_shutdown(&stubbed, 600)
            .wait_shutdown(&format!("s{vcpus}"), 60);
    }
    let run = sc.run();
    run.assert_ok();
    println!("\nguest-seen cycles per CPUID (rdtsc around the instruction; p50 of the per-vCPU p50s, worst p99)");
    println!("vCPUs  consumer                    p50 cycles   p99 cycles   x unmonitored");
    for vcpus in [1u32, 2, 4] {
        let base = workload::parse(run.console(&format!("plain{vcpus}")))
            .cycles_summary(Kind::Cpuid)
            .map_or(1, |c| c.0.max(1));
        for (name, label) in [
            ("plain", "unmonitored"),
            ("xa", "xen-access (dom0, ring)"),
            ("ring", "vmi-consumer (dom0, ring)"),
            ("chan", "vmi-consumer (dom0, slots)"),
            ("stub", "stub domain (slots)"),
        ] {
            let rep = workload::parse(run.console(&format!("{name}{vcpus}")));
            if rep.summary.is_none() || rep.total(Kind::Cpuid) != u64::from(COUNT * vcpus) {
                bail!(
                    "{name}{vcpus} did not finish its workload; logs: {}",
                    run.log_dir.display()
                );
            }
            let (p50, p99) = rep.cycles_summary(Kind::Cpuid).unwrap_or_default();
            println!(
                "{vcpus:>5}  {label:<26} {p50:>11} {p99:>12}   {:>12.1}",
                p50 as f64 / base as f64
            );
        }
    }
    println!("logs: {}", run.log_dir.display());
    Ok(())
}
