//! `cargo xtask soak [N [CYCLES]] [--no-stub]`: boots the bed's stress scenario
//! (`nested::stress`) N times in a row and counts the boots in which the bed
//! broke (a dom0 process died of memory corruption, a guest triple-faulted,
//! Xen reported a bug) or a step failed. Nothing is retried; every boot's
//! log folder is printed. It measures; it asserts nothing. `--no-stub`
//! runs the same targets unmonitored (no stub, no vm_event). `--pause` boots
//! the smallest reproducer instead: a busy guest paused CYCLES times by `xl
//! pause` (`nested::stress::pause_scenario`). `--serve` boots the shape of
//! the one serving stall seen (issue 14) CYCLES times per boot: a 2-vCPU
//! target, 20,000 CPUIDs per vCPU, served by a 1-vCPU stub in block mode,
//! watched for 10 s without progress (`nested::stress::serve_scenario`).
//! `--serve --spin` boots the stub suite's `t4s2spin` pair instead (4
//! target vCPUs, every kind 40 times, 2 stub vCPUs in block mode with
//! `spin=200`), where the stall was seen since.

use std::time::Instant;

use anyhow::Context;
use testbed::Layout;

pub fn run(layout: &Layout, args: &[String]) -> anyhow::Result<()> {
    let stubs = !args.iter().any(|a| a == "--no-stub");
    let pause = args.iter().any(|a| a == "--pause");
    let serve = args.iter().any(|a| a == "--serve");
    let spin = args.iter().any(|a| a == "--spin");
    let shape = if spin {
        nested::stress::ServeShape::spin(40)
    } else {
        nested::stress::ServeShape::block(20_000)
    };
    let args: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let boots: u32 = match args.first() {
        Some(n) => n.parse().context("soak N: N must be a number of boots")?,
        None => 20,
    };
    let cycles: u32 = match args.get(1) {
        Some(n) => n
            .parse()
            .context("soak N CYCLES: CYCLES must be a number")?,
        None if pause => 300,
        None if serve => 10,
        None => 6,
    };
    let art = testbed::prepare(layout)?;
    println!(
        "soak: {boots} boot(s) of the stress scenario ({cycles} {} each, {}) on QEMU {} ({} patch(es)), Xen {}",
        if pause { "pause rounds" } else if serve { "served targets" } else { "cycles" },
        if pause {
            "a busy 2-vCPU guest paused by xl, no stub"
        } else if serve && spin {
            "4 target vCPUs on a 2-vCPU stub, mode=block spin=200, watched for stalls"
        } else if serve {
            "2 target vCPUs on a 1-vCPU stub, mode=block, watched for stalls"
        } else if stubs {
            "with stubs"
        } else {
            "no stub, targets unmonitored"
        },
        art.qemu.version,
        art.qemu.patches.len(),
        art.xen.version
    );
    let t0 = Instant::now();
    let mut broke = 0;
    for i in 1..=boots {
        let sc = if pause {
            nested::stress::pause_scenario(cycles, 2)
        } else if serve {
            nested::stress::serve_scenario(cycles, &shape)
        } else {
            nested::stress::scenario(cycles, stubs)
        };
        let run = sc.run_once();
        let verdict = nested::stress::verdict(&run);
        if verdict.is_err() {
            broke += 1;
        }
        println!(
            "soak: boot {i}/{boots}: {} in {:.0} s; logs: {}",
            match &verdict {
                Ok(()) => "clean".to_string(),
                Err(why) => format!("BROKE ({why})"),
            },
            run.elapsed.as_secs_f64(),
            run.log_dir.display()
        );
    }
    println!(
        "soak: {broke} of {boots} boot(s) broke, {} clean, in {:.0} s",
        boots - broke,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
