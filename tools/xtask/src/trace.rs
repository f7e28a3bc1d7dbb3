//! The bench's traced round: one 1-vCPU target run unmonitored, under
//! xen-access and under the stub (`mode=block`, `mode=poll`, `spin=`), each with `xentrace`
//! recording Xen's scheduler, HVM and PV records in dom0, then read by
//! `vmi-trace` there: what one monitored CPUID costs in exits,
//! hypercalls, context switches and time, beside the unmonitored one.
//! Tracing slows Xen down, so these runs are not rows of the table.

use nested::{Run, Scenario};
use std::path::Path;

use crate::bench::{add_row, COUNT, LEAF};

/// The traced configurations: (bench row, label).
const TRACED: [(&str, &str); 5] = [
    ("plain", "unmonitored"),
    ("xa", "xen-access (dom0, ring)"),
    ("stub", "stub (slots, mode=block)"),
    ("poll", "stub (slots, mode=poll)"),
    ("spin", "stub (block, spin=200)"),
];

/// HVM, scheduler and PV (dom0's hypercalls) record classes.
const MASK: &str = "0x002af000";

fn guest_name(row: &str) -> String {
    format!("trace{row}")
}

/// Starts xentrace before the row's guest is created: boot and attach
/// are in the trace too, but only the target's CPUIDs of the workload's
/// leaf are events, so they cost the file size, not the figures.
fn start_trace(sc: Scenario, row: &str) -> Scenario {
    let g = guest_name(row);
    // Tracing is extra: a failure in it leaves the table standing.
    sc.step_may_fail(
        &format!("xentrace {g}"),
        &format!(
            "{}
             rm -f /tmp/{g}.trc
             xentrace -D -e {MASK} -S 512 /tmp/{g}.trc > /tmp/{g}.xentrace.log 2>&1 &
             echo $! > /tmp/{g}.xentrace.pid
             while [ ! -s /tmp/{g}.trc ] && kill -0 $(cat /tmp/{g}.xentrace.pid); do sleep 0.1; done
             kill -0 $(cat /tmp/{g}.xentrace.pid) || {{ cat /tmp/{g}.xentrace.log; exit 1; }}",
            crate::bench::DOM0_STATE
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
        sc = sc.step_may_fail(
            &format!("vmi-trace {g}"),
            &format!(
                "kill -INT $(cat /tmp/{g}.xentrace.pid)
                 while kill -0 $(cat /tmp/{g}.xentrace.pid) 2>/dev/null; do sleep 0.1; done
                 ls -l /tmp/{g}.trc
                 /scenario/vmi-trace /tmp/{g}.trc --target $(cat /tmp/{g}.domid) {consumer} \
                    --leaf {LEAF} --label {row}
                 rc=$?; rm -f /tmp/{g}.trc; exit $rc"
            ),
            120,
        );
    }
    sc
}

/// Prints each traced configuration's report, after checking that its
/// workload ran whole and its consumer served all of it (as a bench row),
/// with Xen's counters of the stub's channels.
pub fn report(run: &Run) {
    println!(
        "\none traced round, 1 target vCPU, {COUNT} CPUIDs (xentrace in dom0 slows Xen: \
         compare these with each other, not with the table):"
    );
    for (row, label) in TRACED {
        let g = guest_name(row);
        let cell = match crate::bench::cell(run, row, &g, 1) {
            Ok(c) => c,
            Err(why) => {
                println!("== {label}: INVALID: {why}");
                continue;
            }
        };
        let (start, trace) = (
            run.step(&format!("xentrace {g}")),
            run.step(&format!("vmi-trace {g}")),
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
        println!("== {label}: guest-seen p50 {} cycles", cell.p50);
        for l in trace.output.lines().filter(|l| !l.starts_with('-')) {
            println!("{l}");
        }
        if crate::bench::stub_row(row).is_some() {
            print!("{}", run.step(&format!("xen counters {g}")).output);
        }
    }
}
