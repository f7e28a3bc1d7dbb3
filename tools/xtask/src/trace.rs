//! The bench's traced round: one 1-vCPU target run unmonitored, under
//! xen-access and under the stub (`mode=block`, `mode=poll`), each with `xentrace`
//! recording Xen's scheduler, HVM and PV records in dom0, then read by
//! `vmi-trace` there: what one monitored CPUID costs in exits,
//! hypercalls, context switches and time, beside the unmonitored one.
//! Tracing slows Xen down, so these runs are not rows of the table.

use anyhow::Context;
use nested::{Run, Scenario};
use std::path::Path;

use crate::bench::{add_row, COUNT, LEAF};

/// The traced configurations: (bench row, label).
const TRACED: [(&str, &str); 4] = [
    ("plain", "unmonitored"),
    ("xa", "xen-access (dom0, ring)"),
    ("stub", "stub (slots, mode=block)"),
    ("poll", "stub (slots, mode=poll)"),
];

/// HVM, scheduler and PV (dom0's hypercalls) record classes.
const MASK: &str = "0x002af000";

fn guest_name(row: &str) -> String {
    format!("trace{row}")
}

/// Where in the row's steps tracing starts: just before the workload
/// runs (the go, the unpause, or the start), so boot is not traced.
fn start_trace(sc: Scenario, row: &str) -> Scenario {
    let g = guest_name(row);
    // Tracing is extra: a failure in it leaves the table standing.
    sc.step_may_fail(
        &format!("xentrace {g}"),
        &format!(
            "rm -f /tmp/{g}.trc
             xentrace -D -e {MASK} -S 512 /tmp/{g}.trc > /tmp/{g}.xentrace.log 2>&1 &
             echo $! > /tmp/{g}.xentrace.pid
             while [ ! -s /tmp/{g}.trc ] && kill -0 $(cat /tmp/{g}.xentrace.pid); do sleep 0.1; done
             kill -0 $(cat /tmp/{g}.xentrace.pid) || {{ cat /tmp/{g}.xentrace.log; exit 1; }}"
        ),
        30,
    )
}

pub fn add_traced_round(mut sc: Scenario, kernel: &Path) -> Scenario {
    for (row, _) in TRACED {
        let g = guest_name(row);
        sc = start_trace(sc, row);
        sc = add_row(sc, row, &g, 1, kernel);
        let consumer = match row {
            "plain" => String::new(),
            "xa" => "--consumer 0".into(),
            _ => format!("--consumer $(cat /tmp/{g}.stub-domid)"),
        };
        // Xen's own count of answers taken while the vCPU waited (patch
        // 0015), printed when the channels close.
        let waited = if matches!(row, "stub" | "poll") {
            crate::bench::xen_counters(&g)
        } else {
            String::new()
        };
        sc = sc.step_may_fail(
            &format!("vmi-trace {g}"),
            &format!(
                "kill -INT $(cat /tmp/{g}.xentrace.pid)
                 while kill -0 $(cat /tmp/{g}.xentrace.pid) 2>/dev/null; do sleep 0.1; done
                 ls -l /tmp/{g}.trc
                 /scenario/vmi-trace /tmp/{g}.trc --target $(cat /tmp/{g}.domid) {consumer} \
                    --leaf {LEAF} --label {row}
                 {waited}"
            ),
            120,
        );
    }
    sc
}

/// The domids the trace (and the bench's Xen counters) read, saved while
/// the domains exist: called by `add_row`.
pub fn save_domids(sc: Scenario, guest: &str, stub: Option<&str>) -> Scenario {
    let mut shell = format!("xl domid {guest} > /tmp/{guest}.domid");
    if let Some(s) = stub {
        shell.push_str(&format!("; xl domid {s} > /tmp/{guest}.stub-domid"));
    }
    sc.step(&format!("domids {guest}"), &shell)
}

/// Prints each traced configuration's report, after checking that its
/// workload ran whole.
pub fn report(run: &Run) -> anyhow::Result<()> {
    println!(
        "\none traced round, 1 target vCPU, {COUNT} CPUIDs (xentrace in dom0 slows Xen: \
         compare these with each other, not with the table):"
    );
    for (row, label) in TRACED {
        let g = guest_name(row);
        let rep = workload::parse(run.console(&g));
        let step = |label: String| {
            run.steps
                .iter()
                .find(|s| s.label == label)
                .with_context(|| format!("no step '{label}'"))
        };
        let (start, trace) = (
            step(format!("xentrace {g}"))?,
            step(format!("vmi-trace {g}"))?,
        );
        if let Some(bad) = [start, trace].into_iter().find(|s| s.status != Some(0)) {
            println!(
                "== {label}: NOT TRACED: step '{}' ended with {:?}: {}",
                bad.label,
                bad.status,
                bad.output.trim()
            );
            continue;
        }
        let out = &trace.output;
        println!(
            "== {label}: guest-seen p50 {} cycles",
            rep.cycles_summary(workload::Kind::Cpuid)
                .unwrap_or_default()
                .0
        );
        for l in out.lines().filter(|l| !l.starts_with('-')) {
            println!("{l}");
        }
    }
    Ok(())
}
