//! The quick start: the target test guest on 4 vCPUs against the stub
//! domain (2 vCPUs) enforcing the shipped example policy, in the nested bed.

use anyhow::bail;
use nested::{Guest, Scenario};
use testbed::Layout;
use workload::{Kind, Report};

pub const TARGET_LABEL: &str = "system_u:system_r:vmi_target_t";
const COUNT: u32 = 10;

/// Per-kind totals over the stub's `stub: vcpu=N kind=M ...` lines.
fn stub_total(console: &str, key: &str) -> u64 {
    console
        .lines()
        .filter(|l| l.starts_with("stub: vcpu="))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|t| t.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum()
}

fn p50(rep: &Report, kind: Kind) -> u64 {
    rep.cycles_summary(kind).map_or(0, |c| c.0)
}

fn sum(rep: &Report, kind: Kind, key: &str) -> u64 {
    rep.records
        .iter()
        .filter(|r| r.kind == kind)
        .filter_map(|r| r.num(key))
        .sum()
}

/// CPUID leaf 0's vendor string as the guest saw it (ebx, edx, ecx).
fn vendor(rep: &Report) -> String {
    let Some(v) = rep.record(0, Kind::Cpuid).and_then(|r| r.get("leaf.0x0")) else {
        return "?".into();
    };
    let regs: Vec<u32> = v
        .split(':')
        .filter_map(|x| u32::from_str_radix(x.trim_start_matches("0x"), 16).ok())
        .collect();
    if regs.len() != 4 {
        return "?".into();
    }
    [regs[1], regs[3], regs[2]]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .map(|b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect()
}

pub fn run(layout: &Layout) -> anyhow::Result<()> {
    testbed::prepare(layout)?;
    let guest = testbed::kernels::build_ours(layout, "guest")?;
    let stub = testbed::kernels::build_ours(layout, "stubdom")?;
    let launcher = testbed::kernels::build_host_tool(layout, "vmi-launch")?;
    let policy = layout.root.join("vmevent/examples/demo.policy");
    let sc = Scenario::new("demo")
        .file("/scenario/stubdom", &stub)
        .file("/scenario/vmi-launch", &launcher)
        .file("/scenario/demo.policy", &policy)
        .guest(
            Guest::pvh("target", &guest)
                .vcpus(4)
                .seclabel(TARGET_LABEL)
                .cmdline(&format!(
                    "kinds=cpuid,cr,msr,int3,guest_request count={COUNT} leaves=0x0,0x1 go=xenstore"
                )),
        )
        .start("target")
        .wait_for("target", "WORKLOAD-WAIT", 60)
        .step(
            "launch the stub",
            &nested::steps::launch_stub("stub", "target", 2, "--policy /scenario/demo.policy"),
        )
        .wait_for("stub", "stub: attached", 60)
        // The target's workload starts on this go, once the stub serves.
        .go("target")
        .step(
            "no dom0 process serves events",
            "! pidof vmi-consumer xen-access",
        )
        .wait_shutdown("target", 300)
        .wait_shutdown("stub", 60);
    let run = sc.run();
    let console = run.console("stub");
    println!("---- the stub's console (xl console stub) ----");
    print!("{console}");
    println!("---- end of the stub's console ----");
    run.assert_ok();
    let rep = workload::parse(run.console("target"));
    if rep.summary.is_none() {
        bail!("the target did not finish; logs: {}", run.log_dir.display());
    }
    let cr_writes = sum(&rep, Kind::Cr, "cr4_writes");
    let probes = sum(&rep, Kind::Cr, "cpuid_probes");
    let smep = rep
        .record(0, Kind::Cr)
        .and_then(|r| r.get("smep"))
        .unwrap_or("?")
        .to_string();
    let rows = [
        (
            "cpuid",
            rep.total(Kind::Cpuid) + probes,
            stub_total(console, "cpuid"),
            p50(&rep, Kind::Cpuid),
            format!("leaf 0 vendor seen by the guest: \"{}\"", vendor(&rep)),
        ),
        (
            "cr4 write",
            cr_writes,
            stub_total(console, "cr"),
            p50(&rep, Kind::Cr),
            format!(
                "SMEP clear: {smep}; allowed TSD toggles stuck {}/{}",
                sum(&rep, Kind::Cr, "stuck"),
                rep.total(Kind::Cr)
            ),
        ),
        (
            "msr write",
            rep.total(Kind::Msr),
            stub_total(console, "msr"),
            p50(&rep, Kind::Msr),
            format!(
                "LSTAR writes denied; stuck {}/{}",
                sum(&rep, Kind::Msr, "stuck"),
                rep.total(Kind::Msr)
            ),
        ),
        (
            "int3",
            rep.total(Kind::Int3),
            stub_total(console, "int3"),
            p50(&rep, Kind::Int3),
            format!(
                "swallowed: reached the guest's #BP handler {}/{}",
                sum(&rep, Kind::Int3, "delivered"),
                rep.total(Kind::Int3)
            ),
        ),
        (
            "guest request",
            rep.total(Kind::GuestRequest),
            stub_total(console, "guest_request"),
            p50(&rep, Kind::GuestRequest),
            "logged".to_string(),
        ),
    ];
    println!("\nkind           guest  stub served  guest p50 cycles  outcome");
    for (k, g, s, c, o) in &rows {
        println!("{k:<14} {g:>5}  {s:>11}  {c:>16}  {o}");
    }
    let audits = console.lines().filter(|l| l.starts_with('{')).count();
    println!(
        "\n{audits} audit line(s); the target ran on 4 vCPUs, the stub on 2; no dom0 process served events."
    );
    let msr_stuck = sum(&rep, Kind::Msr, "stuck");
    let int3_swallowed = sum(&rep, Kind::Int3, "delivered") == 0;
    let served_ok = rows.iter().all(|r| r.1 == r.2);
    if msr_stuck != 0 || !served_ok || !int3_swallowed {
        bail!(
            "the demo's checks failed (counts or denied writes); logs: {}",
            run.log_dir.display()
        );
    }
    println!("logs: {}", run.log_dir.display());
    Ok(())
}
