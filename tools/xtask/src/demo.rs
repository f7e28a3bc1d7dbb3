//! The quick start, in the nested bed: the target test guest on 4 vCPUs
//! against the stub domain (2 vCPUs) enforcing the shipped example
//! policy; then Debian's Linux as a target whose stub names the process
//! behind each event (`dd` writing LSTAR through `/dev/cpu/0/msr`, denied;
//! a user-mode CPUID from `cpuid-probe`).

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
    let art = testbed::prepare(layout)?;
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
    let linux = testbed::kernels::linux_target(layout, &art.dom0)?;
    let sc = nested::steps::with_linux_target(sc, &linux);
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
    linux_summary(&run)?;
    println!("logs: {}", run.log_dir.display());
    Ok(())
}

/// The Linux part: what the guest says happened, what the stub said.
fn linux_summary(run: &nested::Run) -> anyhow::Result<()> {
    use nested::linux::{denial, guest_pid, lstar_before_after, probe, process_of, records};
    use nested::steps::{LINUX_STUB, LINUX_TARGET};
    let (g, s) = (run.console(LINUX_TARGET), run.console(LINUX_STUB));
    println!("\n---- Debian Linux target: the stub's console (xl console {LINUX_STUB}), its notable lines ----");
    for l in s.lines() {
        if !l.starts_with('{')
            || l.contains("\"level\":\"warn\"")
            || l.contains("\"level\":\"alert\"")
        {
            println!("{l}");
        }
    }
    println!("---- end ----");
    let named = |rec: Option<&str>| rec.and_then(process_of);
    let (deny, probe_rec) = (named(denial(s)), named(probe(s)));
    let (dd, cpuid_probe) = (guest_pid(g, "dd"), guest_pid(g, "cpuid-probe"));
    let lstar = lstar_before_after(g);
    let show = |p: &Option<(u64, String)>| {
        p.as_ref().map_or("none".to_string(), |(pid, comm)| {
            format!("pid {pid} comm {comm:?}")
        })
    };
    println!("\nprogram      guest says   stub's record names       outcome");
    println!(
        "dd           pid {:<8} {:<25} LSTAR write denied; LSTAR before/after: {}",
        dd.map_or("?".into(), |p| p.to_string()),
        show(&deny),
        lstar
            .as_ref()
            .map_or("?".into(), |(b, a)| format!("{b} / {a}"))
    );
    println!(
        "cpuid-probe  pid {:<8} {:<25} user-mode CPUID logged",
        cpuid_probe.map_or("?".into(), |p| p.to_string()),
        show(&probe_rec)
    );
    let attributed = records(s)
        .iter()
        .filter(|r| process_of(r).is_some())
        .count();
    println!(
        "{attributed} of {} audit record(s) name their task; Linux ran on after the denied write: {}",
        records(s).len(),
        g.contains(testbed::kernels::LINUX_TARGET_DONE)
    );
    let ok = deny == dd.map(|p| (p, "dd".to_string()))
        && probe_rec == cpuid_probe.map(|p| (p, "cpuid-probe".to_string()))
        && lstar.is_some_and(|(b, a)| b == a)
        && g.contains(testbed::kernels::LINUX_TARGET_DONE);
    if !ok {
        bail!(
            "the Linux part's checks failed (attribution, LSTAR or the guest's end); logs: {}",
            run.log_dir.display()
        );
    }
    Ok(())
}
