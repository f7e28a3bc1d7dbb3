//! `cargo xtask bench [ROUNDS]`: guest-seen cycles per CPUID (rdtsc around
//! the instruction, in the target test guest) for every consumer in one boot
//! of the bed: unmonitored, Debian's xen-access (stock ring, dom0), our dom0
//! consumer on the stock ring and on the channels, and the stub domain; the
//! whole set ROUNDS times (default 2) in the same boot, so the rounds show
//! the noise. Absolute cycles under TCG mean little; the ratios are the
//! result.
//!
//! Every row is validated before it is printed: the guest finished its
//! workload, and the consumer of the row served every CPUID of it (a
//! consumer that never ran would otherwise show as a fast one).

use anyhow::{bail, Context};
use nested::{Guest, Run, Scenario};
use testbed::Layout;
use workload::Kind;

use crate::demo::TARGET_LABEL;

const COUNT: u32 = 400;
const VCPUS: [u32; 3] = [1, 2, 4];
/// The workload's leaf: what every consumer counts separately.
const LEAF: &str = "0x6";

/// (guest name prefix, row label)
const ROWS: [(&str, &str); 5] = [
    ("plain", "unmonitored"),
    ("xa", "xen-access (dom0, ring)"),
    ("ring", "vmi-consumer (dom0, ring)"),
    ("chan", "vmi-consumer (dom0, slots)"),
    ("stub", "stub domain (slots)"),
];

/// The dom0 steps that start `cmd` against a paused guest, wait until it
/// serves (the shell condition `ready` holds; `$log` and `$pid` are set),
/// and unpause. stdout and stderr go to two files: xen-access writes both,
/// and one file would get lines cut into each other.
fn dom0_consumer(guest: &str, cmd: &str, ready: &str) -> String {
    format!(
        "log=/tmp/c-{guest}.log
         {cmd} > $log 2> $log.err &
         pid=$!; echo $pid > /tmp/c-{guest}.pid
         while ! {{ {ready}; }}; do
             kill -0 $pid || {{ cat $log; exit 1; }}
             sleep 0.1
         done
         xl unpause {guest}"
    )
}

/// Our consumer says `serving` once its monitors are on.
const SERVING: &str = "grep -q serving $log $log.err";
/// xen-access says `starting` *before* it turns its monitors on, and says
/// nothing after: it serves once it waits for events, in poll (syscall 7,
/// or ppoll, 271).
const XEN_ACCESS_WAITING: &str = "grep -q starting $log $log.err && \
    case $(cut -d' ' -f1 /proc/$pid/syscall 2>/dev/null) in 7|271) true;; *) false;; esac";

/// Stops the consumer and prints its stdout (what the row is validated
/// with), then its stderr.
fn stop(guest: &str) -> String {
    format!(
        "kill -INT $(cat /tmp/c-{guest}.pid) 2>/dev/null
         while kill -0 $(cat /tmp/c-{guest}.pid) 2>/dev/null; do sleep 0.1; done
         cat /tmp/c-{guest}.log /tmp/c-{guest}.log.err"
    )
}

fn name(row: &str, vcpus: u32, round: u32) -> String {
    format!("{row}{vcpus}r{round}")
}

/// Sum of `key=N` over the lines of `text` that start with `prefix`.
fn sum_field(text: &str, prefix: &str, key: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|t| t.strip_prefix(key)?.strip_prefix('='))
        })
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

/// How many workload CPUIDs the consumer of row `row` says it served.
fn served(run: &Run, row: &str, guest: &str) -> anyhow::Result<u64> {
    let stop = |what: &str| -> anyhow::Result<String> {
        Ok(run
            .steps
            .iter()
            .find(|s| s.label == format!("stop {what} {guest}"))
            .context("no stop step")?
            .output
            .clone())
    };
    Ok(match row {
        // xen-access prints one line per event, leaf and subleaf after
        // the instruction length.
        "xa" => stop("xen-access")?
            .lines()
            .filter(|l| {
                l.starts_with("CPUID executed") && l.contains(&format!("Insn length: 2 {LEAF} 0x"))
            })
            .count() as u64,
        "ring" => sum_field(&stop("ring")?, "consumer: vcpu=", &format!("leaf.{LEAF}")),
        "chan" => sum_field(
            &stop("channels")?,
            "consumer: vcpu=",
            &format!("leaf.{LEAF}"),
        ),
        // The stub attached to a running guest that waited for its go: all
        // its CPUIDs are the workload's.
        "stub" => sum_field(run.console(&format!("s{guest}")), "stub: vcpu=", "cpuid"),
        _ => 0,
    })
}

pub fn run(layout: &Layout, args: &[String]) -> anyhow::Result<()> {
    let rounds: u32 = match args.first() {
        None => 2,
        Some(r) => r
            .parse()
            .ok()
            .filter(|n| (1..=10).contains(n))
            .with_context(|| format!("ROUNDS: '{r}' is not a number in 1..=10"))?,
    };
    testbed::prepare(layout)?;
    let guest = testbed::kernels::build_ours(layout, "guest")?;
    let stub = testbed::kernels::build_ours(layout, "stubdom")?;
    let launcher = testbed::kernels::build_host_tool(layout, "vmi-launch")?;
    let consumer = testbed::kernels::build_host_tool(layout, "vmi-consumer")?;
    let work = format!("kinds=cpuid count={COUNT} leaves={LEAF}");
    let g = |name: &str, vcpus: u32| Guest::pvh(name, &guest).vcpus(vcpus).cmdline(&work);
    let mut sc = Scenario::new("bench")
        .file("/scenario/vmi-consumer", &consumer)
        .file("/scenario/vmi-launch", &launcher)
        .file("/scenario/stubdom", &stub)
        .step(
            "tools",
            "chmod +x /scenario/vmi-consumer /scenario/vmi-launch",
        );
    for round in 0..rounds {
        for vcpus in VCPUS {
            let n = |row: &str| name(row, vcpus, round);
            let (plain, xa, ring, chan, stubbed) =
                (n("plain"), n("xa"), n("ring"), n("chan"), n("stub"));
            sc = sc
                .guest(g(&plain, vcpus))
                .start(&plain)
                .wait_shutdown(&plain, 120)
                .guest(g(&xa, vcpus))
                .start_paused(&xa)
                .step(
                    &format!("xen-access {xa}"),
                    &dom0_consumer(
                        &xa,
                        &format!("xen-access $(xl domid {xa}) cpuid"),
                        XEN_ACCESS_WAITING,
                    ),
                )
                .wait_shutdown(&xa, 600)
                .step(&format!("stop xen-access {xa}"), &stop(&xa))
                .guest(g(&ring, vcpus))
                .start_paused(&ring)
                .step(
                    &format!("ring {ring}"),
                    &dom0_consumer(
                        &ring,
                        &format!("/scenario/vmi-consumer $(xl domid {ring}) --ring --cpuid"),
                        SERVING,
                    ),
                )
                .wait_shutdown(&ring, 600)
                .step(&format!("stop ring {ring}"), &stop(&ring))
                .guest(g(&chan, vcpus))
                .start_paused(&chan)
                .step(
                    &format!("channels {chan}"),
                    &dom0_consumer(
                        &chan,
                        &format!("/scenario/vmi-consumer $(xl domid {chan}) --channels --cpuid"),
                        SERVING,
                    ),
                )
                .wait_shutdown(&chan, 600)
                .step(&format!("stop channels {chan}"), &stop(&chan))
                // The stub attaches to a booted guest, whose workload waits
                // for its go.
                .guest(
                    Guest::pvh(&stubbed, &guest)
                        .vcpus(vcpus)
                        .seclabel(TARGET_LABEL)
                        .cmdline(&format!("{work} go=xenstore")),
                )
                .start(&stubbed)
                .wait_for(&stubbed, "WORKLOAD-WAIT", 60)
                .step(
                    &format!("stub {stubbed}"),
                    &nested::steps::launch_stub(
                        &format!("s{stubbed}"),
                        &stubbed,
                        vcpus.min(2),
                        "--rules cpuid,allow --log none",
                    ),
                )
                .wait_for(&format!("s{stubbed}"), "stub: attached", 60)
                .go(&stubbed)
                .wait_shutdown(&stubbed, 600)
                .wait_shutdown(&format!("s{stubbed}"), 60);
        }
    }
    let run = sc.run();
    run.assert_ok();
    // Every row, validated: p50 and p99 per round.
    let mut table = Vec::new();
    for vcpus in VCPUS {
        for (row, label) in ROWS {
            let mut cells = Vec::new();
            for round in 0..rounds {
                let guest = name(row, vcpus, round);
                let rep = workload::parse(run.console(&guest));
                let want = u64::from(COUNT * vcpus);
                if rep.summary.is_none() || rep.total(Kind::Cpuid) != want {
                    bail!(
                        "{guest} did not finish its workload; logs: {}",
                        run.log_dir.display()
                    );
                }
                if row != "plain" {
                    let got = served(&run, row, &guest)?;
                    if got != want {
                        bail!(
                            "{guest}: its consumer served {got} of {want} CPUIDs, the row would \
                             not measure it; logs: {}",
                            run.log_dir.display()
                        );
                    }
                }
                cells.push(rep.cycles_summary(Kind::Cpuid).unwrap_or_default());
            }
            table.push((vcpus, row, label, cells));
        }
    }
    println!(
        "\nguest-seen cycles per CPUID (rdtsc around the instruction; p50 of the per-vCPU \
         p50s, worst p99), {rounds} round(s) in one boot; every row's consumer served all \
         {COUNT} CPUIDs per vCPU"
    );
    let ratios: String = (1..=rounds).map(|r| format!("  x unmon r{r}")).collect();
    println!("vCPUs  consumer                    p50 r1     p99 r1{ratios}");
    for (vcpus, row, label, cells) in &table {
        let base = |round: usize| {
            table
                .iter()
                .find(|(v, r, _, _)| v == vcpus && *r == "plain")
                .map_or(1, |(_, _, _, c)| c[round].0.max(1))
        };
        let ratios: String = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("  {:>10.1}", c.0 as f64 / base(i) as f64))
            .collect();
        let _ = row;
        println!(
            "{vcpus:>5}  {label:<26} {:>9} {:>10}{ratios}",
            cells[0].0, cells[0].1
        );
    }
    println!("logs: {}", run.log_dir.display());
    Ok(())
}
