//! `cargo xtask bench [ROUNDS]`: guest-seen cycles per CPUID (rdtsc around
//! the instruction, in the target test guest) for every consumer in one boot
//! of the bed: unmonitored, Debian's xen-access (stock ring, dom0), our dom0
//! consumer on the stock ring and on the channels, and the stub domain
//! waiting in each of its modes (block, poll); at 1, 2, 4 and 8 target
//! vCPUs; the whole set ROUNDS times (default and minimum 3) in the same
//! boot, interleaved, so the rounds show the noise. Absolute cycles under
//! TCG mean little; the ratios are the result.
//!
//! Every cell is validated before it counts: the guest finished its
//! workload, and the consumer of the row served every CPUID of it (a
//! consumer that never ran would otherwise show as a fast one). A row with
//! an invalid round says INVALID and why, and gives no figures.
//!
//! Then one traced round at 1 vCPU (unmonitored, xen-access, the stub in
//! each mode):
//! `xentrace` in dom0 records Xen's own view, and `vmi-trace` prints what
//! each monitored CPUID cost in exits, hypercalls, context switches and
//! time ([`crate::trace`]).

use anyhow::Context;
use nested::{Guest, Run, Scenario};
use std::path::Path;
use testbed::Layout;
use workload::Kind;

use crate::demo::TARGET_LABEL;

pub(crate) const COUNT: u32 = 400;
const VCPUS: [u32; 4] = [1, 2, 4, 8];
/// The workload's leaf: what every consumer counts separately.
pub(crate) const LEAF: &str = "0x6";

/// (guest name prefix, row label)
const ROWS: [(&str, &str); 11] = [
    ("plain", "unmonitored"),
    ("xa", "xen-access (dom0, ring)"),
    ("ring", "vmi-consumer (dom0, ring)"),
    ("chan", "vmi-consumer (dom0, slots)"),
    ("stub", "stub (slots, mode=block)"),
    ("poll", "stub (slots, mode=poll)"),
    ("one", "stub (block, 1 stub vCPU)"),
    ("pin", "stub (poll, pCPU of its own)"),
    ("spin", "stub (block, spin=200)"),
    ("pinspin", "stub (spin=200, own pCPU)"),
    ("pinblock", "stub (block, own pCPU)"),
];
/// The `spin` rows' `--spin`, in µs: under TCG an unmonitored CPUID alone
/// takes ~30-60 µs, so a target's next event comes some 100 µs after an
/// answer.
const SPIN_US: u32 = 200;

/// How a row of the stub domain runs its stub.
pub(crate) struct StubRow {
    /// `--mode`.
    mode: &'static str,
    /// `--spin SPIN_US`.
    spin: bool,
    /// One stub vCPU whatever the target has (else up to 2).
    one_vcpu: bool,
    /// The target's vCPU on pCPU 0 and the stub's on pCPU 1 (at 1 target
    /// vCPU only).
    pinned: bool,
}

/// The stub domain's rows; `None` for the other consumers.
pub(crate) fn stub_row(row: &str) -> Option<StubRow> {
    let (mode, spin, one_vcpu, pinned) = match row {
        "stub" => ("block", false, false, false),
        "poll" => ("poll", false, false, false),
        "one" => ("block", false, true, false),
        "pin" => ("poll", false, true, true),
        "spin" => ("block", true, false, false),
        "pinspin" => ("block", true, true, true),
        "pinblock" => ("block", false, true, true),
        _ => return None,
    };
    Some(StubRow {
        mode,
        spin,
        one_vcpu,
        pinned,
    })
}

/// Whether `row` runs at `vcpus` target vCPUs: the 1-stub-vCPU row is the
/// plain stub row where the target has one vCPU; the pinned rows need the
/// target on one pCPU and the stub on the other (of 2).
fn runs(row: &str, vcpus: u32) -> bool {
    match (row, stub_row(row)) {
        ("one", _) => vcpus > 1,
        (_, Some(r)) if r.pinned => vcpus == 1,
        _ => true,
    }
}

/// What dom0 has left: a boot of the whole bench makes some 125 domains,
/// and dom0's own memory is what every consumer and tool there runs in.
/// (Shmem: dom0's root is a tmpfs that holds /tmp.)
pub(crate) const DOM0_STATE: &str = "grep -E '^(MemFree|Shmem):' /proc/meminfo | tr -s ' ' | tr '\\n' ' '; \
     echo \"processes $(ls -d /proc/[0-9]* | wc -l); files $(cut -f1 /proc/sys/fs/file-nr); domains $(xl list | tail -n +2 | wc -l)\"";

/// The fewest rounds whose median and spread mean something.
const MIN_ROUNDS: u32 = 3;

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
/// with), then its stderr. With `events` (a grep pattern), the lines
/// matching it are counted in dom0 and only `served=N` and the other
/// lines are printed: xen-access prints one line per event, ~300 KB at 8
/// vCPUs, and the bed's console (a 16550 at 115200 baud, ~9.4 KB/s
/// measured) took over half a minute per stop to drain it.
fn stop(guest: &str, events: Option<&str>) -> String {
    let log = format!("/tmp/c-{guest}.log");
    let print = match events {
        Some(p) => format!(
            "echo served=$(grep -c '{p}' {log})
             grep -v '{p}' {log} | head -n 100; cat {log}.err"
        ),
        None => format!("cat {log} {log}.err"),
    };
    format!(
        "kill -INT $(cat /tmp/c-{guest}.pid) 2>/dev/null
         while kill -0 $(cat /tmp/c-{guest}.pid) 2>/dev/null; do sleep 0.1; done
         {print}"
    )
}

/// A workload event in xen-access's output: one line per CPUID, leaf and
/// subleaf after the instruction length.
fn xen_access_event() -> String {
    format!("^CPUID executed.*Insn length: 2 {LEAF} 0x")
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
        // Counted in dom0 by its stop step.
        "xa" => stop("xen-access")?
            .lines()
            .find_map(|l| l.strip_prefix("served="))
            .and_then(|n| n.trim().parse().ok())
            .context("xen-access's stop printed no served=N")?,
        "ring" => sum_field(&stop("ring")?, "consumer: vcpu=", &format!("leaf.{LEAF}")),
        "chan" => sum_field(
            &stop("channels")?,
            "consumer: vcpu=",
            &format!("leaf.{LEAF}"),
        ),
        // The stub attached to a running guest that waited for its go: all
        // its CPUIDs are the workload's.
        r if stub_row(r).is_some() => {
            sum_field(run.console(&format!("s{guest}")), "stub: vcpu=", "cpuid")
        }
        _ => 0,
    })
}

/// `waited HITS/WAITS` of a stub row's Xen counters, if Xen printed them
/// (only stub rows have the step).
fn waited(run: &Run, guest: &str) -> Option<(u64, u64)> {
    nested::steps::waited(&run.step(&format!("xen counters {guest}")).output)
}

/// The domids the trace and Xen's counters read, saved while the
/// domains exist.
fn save_domids(sc: Scenario, guest: &str, stub: Option<&str>) -> Scenario {
    let mut shell = format!("xl domid {guest} > /tmp/{guest}.domid");
    if let Some(s) = stub {
        shell.push_str(&format!("; xl domid {s} > /tmp/{guest}.stub-domid"));
    }
    sc.step(&format!("domids {guest}"), &shell)
}

/// Adds one row's guest, run under its consumer, to the scenario.
pub(crate) fn add_row(sc: Scenario, row: &str, guest: &str, vcpus: u32, kernel: &Path) -> Scenario {
    let work = format!("kinds=cpuid count={COUNT} leaves={LEAF}");
    let g = Guest::pvh(guest, kernel).vcpus(vcpus).cmdline(&work);
    let dom0 = |sc: Scenario, what: &str, cmd: String, ready: &str, events: Option<String>| {
        let sc = sc.guest(g.clone()).start_paused(guest);
        save_domids(sc, guest, None)
            .step(
                &format!("{what} {guest}"),
                &dom0_consumer(guest, &cmd, ready),
            )
            .wait_shutdown(guest, 600)
            .step(
                &format!("stop {what} {guest}"),
                &stop(guest, events.as_deref()),
            )
    };
    match row {
        // Paused until its domid is saved: unmonitored, it is done in
        // well under a second.
        "plain" => save_domids(sc.guest(g).start_paused(guest), guest, None)
            .step(&format!("unpause {guest}"), &format!("xl unpause {guest}"))
            .wait_shutdown(guest, 120),
        "xa" => dom0(
            sc,
            "xen-access",
            format!("xen-access $(xl domid {guest}) cpuid"),
            XEN_ACCESS_WAITING,
            Some(xen_access_event()),
        ),
        "ring" => dom0(
            sc,
            "ring",
            format!("/scenario/vmi-consumer $(xl domid {guest}) --ring --cpuid"),
            SERVING,
            None,
        ),
        "chan" => dom0(
            sc,
            "channels",
            format!("/scenario/vmi-consumer $(xl domid {guest}) --channels --cpuid"),
            SERVING,
            None,
        ),
        // The stub attaches to a booted guest, whose workload waits for
        // its go.
        _ => {
            let r = stub_row(row).unwrap_or_else(|| panic!("bench row '{row}' has no consumer"));
            // Pinned: the target's vCPU on pCPU 0 and the stub's on pCPU 1
            // (dom0 unpinned), so a spinning stub never takes the target's
            // pCPU: what `--cpus` gives where a host has pCPUs to spare,
            // on a host that has not (dom0 shares both).
            let (pin_target, mut extra) = if r.pinned {
                (
                    format!("xl vcpu-pin {guest} all 0"),
                    " --cpus 1".to_string(),
                )
            } else {
                ("true".into(), String::new())
            };
            if r.spin {
                extra += &format!(" --spin {SPIN_US}");
            }
            let stub = format!("s{guest}");
            let sc = sc
                .guest(
                    Guest::pvh(guest, kernel)
                        .vcpus(vcpus)
                        .seclabel(TARGET_LABEL)
                        .cmdline(&format!("{work} go=xenstore")),
                )
                .start(guest)
                .wait_for(guest, "WORKLOAD-WAIT", 60)
                .step(&format!("place {guest}"), &pin_target)
                .step(
                    &format!("stub {guest}"),
                    &nested::steps::launch_stub(
                        &stub,
                        guest,
                        if r.one_vcpu { 1 } else { vcpus.min(2) },
                        &format!("--rules cpuid,allow --log none --mode {}{extra}", r.mode),
                    ),
                )
                .wait_for(&stub, "stub: attached", 60);
            save_domids(sc, guest, Some(&stub))
                .go(guest)
                .wait_shutdown(guest, 600)
                .wait_shutdown(&stub, 60)
                .step(
                    &format!("xen counters {guest}"),
                    &nested::steps::xen_counters(guest),
                )
        }
    }
}

/// One validated round of one row.
#[derive(Clone, Copy)]
pub(crate) struct Cell {
    pub(crate) p50: u64,
    /// Slowest vCPU's p50 over the fastest one's.
    p50_spread: f64,
    p99_over_p50: f64,
    events_per_s: f64,
    /// Stub rows: the share of answers Xen took while the vCPU waited
    /// (patch 0015), if Xen printed its counters.
    taken: Option<f64>,
}

/// The cell of `guest` (row `row`), or why it does not count.
pub(crate) fn cell(run: &Run, row: &str, guest: &str, vcpus: u32) -> Result<Cell, String> {
    let rep = workload::parse(run.console(guest));
    let want = u64::from(COUNT * vcpus);
    if rep.summary.is_none() {
        return Err(format!("{guest}: the guest did not finish its workload"));
    }
    if rep.total(Kind::Cpuid) != want {
        return Err(format!(
            "{guest}: the guest ran {} of {want} CPUIDs",
            rep.total(Kind::Cpuid)
        ));
    }
    if row != "plain" {
        let got = served(run, row, guest).map_err(|e| format!("{guest}: {e}"))?;
        if got != want {
            return Err(format!(
                "{guest}: its consumer served {got} of {want} CPUIDs"
            ));
        }
    }
    let (p50, _) = rep.cycles_summary(Kind::Cpuid).unwrap_or_default();
    let (p50_spread, p99_over_p50) = rep.fairness(Kind::Cpuid).unwrap_or((0.0, 0.0));
    let elapsed = rep
        .elapsed_ns()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{guest}: the guest gave no elapsed_ns"))?;
    Ok(Cell {
        p50,
        p50_spread,
        p99_over_p50,
        events_per_s: want as f64 * 1e9 / elapsed as f64,
        taken: stub_row(row)
            .is_some()
            .then(|| waited(run, guest))
            .flatten()
            .map(|(hits, _)| hits as f64 / want as f64),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// What `bench` was asked for.
#[derive(Debug, PartialEq)]
struct Args {
    /// The traced round alone.
    trace_only: bool,
    rounds: u32,
    /// Target vCPU counts, in order.
    vcpus: Vec<u32>,
    /// The rows (keys of `ROWS`), unmonitored always among them.
    rows: Vec<&'static str>,
}

/// `trace` | `[ROUNDS] [--vcpus N[,N]...] [--rows KEY[,KEY]...]`. The
/// traced round (1 vCPU) comes with the full set only: `--vcpus` and
/// `--rows` are for looking at a part.
fn parse_args(args: &[String]) -> anyhow::Result<Args> {
    let mut a = Args {
        trace_only: false,
        rounds: MIN_ROUNDS,
        vcpus: VCPUS.to_vec(),
        rows: ROWS.iter().map(|r| r.0).collect(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "trace" if args.len() == 1 => a.trace_only = true,
            "--vcpus" => {
                let list = it.next().context("--vcpus needs a list, e.g. 8 or 1,8")?;
                a.vcpus = list
                    .split(',')
                    .map(|n| n.parse().ok().filter(|n| (1..=64).contains(n)))
                    .collect::<Option<Vec<u32>>>()
                    .with_context(|| {
                        format!("--vcpus: '{list}' is not a list of counts in 1..=64")
                    })?;
            }
            "--rows" => {
                let list = it.next().context("--rows needs a list, e.g. xa,stub")?;
                let mut rows = vec!["plain"];
                for key in list.split(',') {
                    let row = ROWS.iter().find(|r| r.0 == key).with_context(|| {
                        let keys: Vec<&str> = ROWS.iter().map(|r| r.0).collect();
                        format!("--rows: '{key}' is not one of {}", keys.join(","))
                    })?;
                    if !rows.contains(&row.0) {
                        rows.push(row.0);
                    }
                }
                a.rows = ROWS
                    .iter()
                    .map(|r| r.0)
                    .filter(|k| rows.contains(k))
                    .collect();
            }
            r => {
                a.rounds = r
                    .parse()
                    .ok()
                    .filter(|n| (MIN_ROUNDS..=10).contains(n))
                    .with_context(|| {
                        format!("ROUNDS: '{r}' is not a number in {MIN_ROUNDS}..=10")
                    })?
            }
        }
    }
    Ok(a)
}

pub fn run(layout: &Layout, args: &[String]) -> anyhow::Result<()> {
    let Args {
        trace_only,
        rounds,
        vcpus: counts,
        rows,
    } = parse_args(args)?;
    let traced = trace_only || (counts == VCPUS && rows.len() == ROWS.len());
    testbed::prepare(layout)?;
    let guest = testbed::kernels::build_ours(layout, "guest")?;
    let stub = testbed::kernels::build_ours(layout, "stubdom")?;
    let launcher = testbed::kernels::build_host_tool(layout, "vmi-launch")?;
    let consumer = testbed::kernels::build_host_tool(layout, "vmi-consumer")?;
    let tracer = testbed::kernels::build_host_tool(layout, "vmi-trace")?;
    let mut sc = Scenario::new("bench")
        .file("/scenario/vmi-consumer", &consumer)
        .file("/scenario/vmi-launch", &launcher)
        .file("/scenario/vmi-trace", &tracer)
        .file("/scenario/stubdom", &stub)
        .step(
            "tools",
            "chmod +x /scenario/vmi-consumer /scenario/vmi-launch /scenario/vmi-trace",
        );
    // Interleaved: each round runs every configuration once, so a slow
    // phase of the host touches every row alike.
    for round in 0..rounds {
        if trace_only {
            break;
        }
        for &vcpus in &counts {
            for &row in rows.iter().filter(|&&r| runs(r, vcpus)) {
                sc = add_row(sc, row, &name(row, vcpus, round), vcpus, &guest);
            }
        }
        sc = sc.step_may_fail(&format!("dom0 after round {}", round + 1), DOM0_STATE, 60);
    }
    if traced {
        sc = crate::trace::add_traced_round(sc, &guest);
    }
    let run = sc.run();
    // The table's rows run first: a failure in the traced round (or after
    // the rows) must not throw a whole boot's table away. A row whose own
    // steps failed says INVALID; the command still fails at the end.
    let failed = run.first_failure().map(|s| s.label.clone());
    if trace_only || failed.as_deref().is_some_and(|l| !l.contains("trace")) {
        run.assert_ok();
    }
    if trace_only {
        crate::trace::report(&run);
        println!("logs: {}", run.log_dir.display());
        return Ok(());
    }
    println!(
        "\nguest-seen cycles per CPUID (rdtsc around the instruction), {rounds} interleaved \
         rounds in one boot, {COUNT} CPUIDs per target vCPU; a round counts only if its \
         consumer served every CPUID of it.\n\
         x unmon: the median over vCPUs of their p50, over the same round's unmonitored \
         one: median of the rounds [min-max]. events/s: all vCPUs' CPUIDs over the \
         workload's wall time. p50 max/min: slowest vCPU's p50 over the fastest's. \
         p99/p50: worst vCPU p99 over the median p50. (Medians over rounds.)"
    );
    let per_round: String = (1..=rounds).map(|r| format!("   r{r}")).collect();
    println!(
        "Xen took: the share of answers the waiting vCPU took from its slot itself (patch \
         0015; stub rows, from Xen's counters)."
    );
    println!(
        "vCPUs  consumer                    x unmon [min-max]      p50 cycles    events/s  \
         p50 max/min  p99/p50  Xen took  x unmon by round:{per_round}"
    );
    let mut medians = std::collections::BTreeMap::new();
    for &vcpus in &counts {
        let base: Vec<Result<Cell, String>> = (0..rounds)
            .map(|r| cell(&run, "plain", &name("plain", vcpus, r), vcpus))
            .collect();
        for &(row, label) in ROWS
            .iter()
            .filter(|r| rows.contains(&r.0) && runs(r.0, vcpus))
        {
            let cells: Vec<Result<Cell, String>> = (0..rounds)
                .map(|r| cell(&run, row, &name(row, vcpus, r), vcpus))
                .collect();
            let bad = cells.iter().chain(&base).find_map(|c| c.as_ref().err());
            if let Some(why) = bad {
                println!("{vcpus:>5}  {label:<26}  INVALID: {why}");
                continue;
            }
            let ok: Vec<Cell> = cells.iter().map(|c| *c.as_ref().unwrap()).collect();
            let ratios: Vec<f64> = ok
                .iter()
                .zip(&base)
                .map(|(c, b)| c.p50 as f64 / b.as_ref().unwrap().p50.max(1) as f64)
                .collect();
            let (lo, hi) = min_max(&ratios);
            let m = median(ratios.clone());
            medians.insert((vcpus, row), ratios.clone());
            let by_round: String = ratios.iter().map(|r| format!(" {r:>5.1}")).collect();
            let taken: Vec<f64> = ok.iter().filter_map(|c| c.taken).collect();
            let taken = if taken.is_empty() {
                "-".to_string()
            } else {
                format!("{:.0}%", 100.0 * median(taken))
            };
            println!(
                "{vcpus:>5}  {label:<26} {m:>6.1} [{lo:>5.1}-{hi:>5.1}]  {:>12}  {:>10.0}  \
                 {:>11.2}  {:>7.1}  {taken:>8}  {by_round}",
                median(ok.iter().map(|c| c.p50 as f64).collect()) as u64,
                median(ok.iter().map(|c| c.events_per_s).collect()),
                median(ok.iter().map(|c| c.p50_spread).collect()),
                median(ok.iter().map(|c| c.p99_over_p50).collect()),
            );
        }
    }
    let compared = ROWS
        .iter()
        .filter(|r| rows.contains(&"xa") && stub_row(r.0).is_some() && rows.contains(&r.0));
    for &(row, label) in compared {
        println!("\n{label} against xen-access, same round, p50 ratio (xen-access / stub):");
        for &vcpus in counts.iter().filter(|&&v| runs(row, v)) {
            match (medians.get(&(vcpus, "xa")), medians.get(&(vcpus, row))) {
                (Some(xa), Some(st)) => {
                    let r: Vec<f64> = xa.iter().zip(st).map(|(x, s)| x / s).collect();
                    let wins = r.iter().filter(|&&x| x > 1.0).count();
                    let (lo, hi) = min_max(&r);
                    println!(
                        "{vcpus:>5} vCPU(s): median {:.2} [{lo:.2}-{hi:.2}], the stub faster in \
                         {wins} of {rounds} rounds",
                        median(r.clone())
                    );
                }
                _ => println!("{vcpus:>5} vCPU(s): no comparison (a row is INVALID)"),
            }
        }
    }
    for r in 1..=rounds {
        let s = run.step(&format!("dom0 after round {r}"));
        println!(
            "dom0 after round {r}: {}",
            s.output.trim().replace('\n', " | ")
        );
    }
    println!("logs: {}", run.log_dir.display());
    match failed {
        None if traced => crate::trace::report(&run),
        None => {}
        Some(step) => {
            anyhow::bail!("the traced round failed at step '{step}' (logs above); the table stands")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stub_rows_are_the_rows_labelled_stub() {
        for (key, label) in ROWS {
            assert_eq!(stub_row(key).is_some(), label.starts_with("stub "), "{key}");
        }
        // Pinned rows need 2 pCPUs for 1 target vCPU; the 1-stub-vCPU row
        // is the plain one at 1 target vCPU.
        assert!(runs("pinspin", 1) && !runs("pinspin", 2));
        assert!(!runs("one", 1) && runs("one", 2) && runs("spin", 8));
    }

    fn parse(a: &[&str]) -> anyhow::Result<Args> {
        parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments() {
        let all = parse(&[]).unwrap();
        assert_eq!(
            (all.trace_only, all.rounds, all.vcpus),
            (false, 3, vec![1, 2, 4, 8])
        );
        assert!(parse(&["trace"]).unwrap().trace_only);
        let one = parse(&["5", "--vcpus", "8"]).unwrap();
        assert_eq!((one.rounds, one.vcpus), (5, vec![8]));
        assert_eq!(parse(&["--vcpus", "1,8"]).unwrap().vcpus, vec![1, 8]);
        assert_eq!(
            parse(&["--rows", "stub,xa,stub"]).unwrap().rows,
            vec!["plain", "xa", "stub"],
            "in table order, once, unmonitored always"
        );
        for (bad, says) in [
            (&["2"][..], "ROUNDS: '2'"),
            (&["--vcpus"][..], "--vcpus needs a list"),
            (&["--vcpus", "8,x"][..], "--vcpus: '8,x'"),
            (&["--vcpus", "0"][..], "--vcpus: '0'"),
            (&["trace", "3"][..], "ROUNDS: 'trace'"),
            (
                &["--rows", "xa,nope"][..],
                "--rows: 'nope' is not one of plain,xa,",
            ),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
