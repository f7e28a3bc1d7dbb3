//! The stub reads its target's memory (issue 15): the test guest
//! (`peek=1`) announces addresses and what lies there, then asks its stub
//! to read each (a CPUID the policy answers with `peek=rsi:32`). Readable
//! memory must come back byte for byte, across a 4 KiB page boundary too;
//! mappings the guest made hostile on purpose (a non-present entry,
//! reserved bits, a table beyond its RAM) must give an error each, and a
//! table that maps itself its own bytes. The stub must keep serving: every
//! CPUID of the workload on 2 vCPUs is served exactly once. One boot.

use std::sync::OnceLock;

use nested::steps::launch_stub;
use nested::{Guest, Run};
use workload::{Kind, PEEK_CASES, PEEK_LEAF, PEEK_LEN};

const COUNT: u32 = 100;
const VCPUS: u32 = 2;

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let guest = nested::kernel("guest");
        let rules =
            format!("cpuid,leaf={PEEK_LEAF:#x},log,log=warn,peek=rsi:{PEEK_LEN};cpuid,allow");
        nested::steps::stub_scenario("memory")
            .guest(
                Guest::pvh("t", &guest)
                    .vcpus(VCPUS)
                    .seclabel("system_u:system_r:vmi_target_t")
                    .cmdline(&format!(
                        "kinds=cpuid count={COUNT} leaves=0x6 peek=1 go=xenstore"
                    )),
            )
            .start("t")
            .wait_for("t", "WORKLOAD-WAIT", 60)
            .step(
                "launch s",
                &launch_stub("s", "t", 1, &format!("--rules '{rules}' --log violations")),
            )
            .wait_for("s", "stub: attached", 60)
            .go("t")
            .wait_shutdown("t", 300)
            .wait_shutdown("s", 60)
            .run()
    })
}

/// What the stub must say about each case that is an error.
fn expected_error(case: &str) -> &'static str {
    match case {
        "not_present" => "a page table entry is not present",
        "reserved" => "a page table entry sets reserved bits",
        "beyond_ram" => "a page table frame cannot be mapped",
        other => panic!("case {other} is not an error case"),
    }
}

#[test]
fn the_stub_reads_what_the_guest_wrote_and_survives_hostile_tables() {
    let run = run();
    run.assert_ok();
    let g = run.console("t");
    let s = run.console("s");
    let announced: Vec<(String, String, String)> = g
        .lines()
        .filter_map(|l| l.strip_prefix("WORKLOAD-PEEK "))
        .map(|l| {
            let f = |k: &str| {
                l.split_whitespace()
                    .find_map(|t| t.strip_prefix(k))
                    .unwrap_or_else(|| panic!("no {k} in {l}"))
                    .to_string()
            };
            (f("case="), f("gva="), f("expect="))
        })
        .collect();
    let names: Vec<&str> = announced.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(names, PEEK_CASES, "{g}");
    let peeks: Vec<&str> = s
        .lines()
        .filter(|l| l.starts_with("{\"vcpu\":") && l.contains("\"peek\":{"))
        .collect();
    assert_eq!(peeks.len(), PEEK_CASES.len(), "{s}");
    for ((case, gva, expect), rec) in announced.iter().zip(&peeks) {
        eprintln!("{case}: {rec}");
        assert!(
            rec.contains(&format!("\"peek\":{{\"gva\":\"{gva}\"")),
            "{case}: {rec}"
        );
        match expect.strip_prefix("bytes:") {
            Some(bytes) => assert!(
                rec.contains(&format!("\"bytes\":\"{bytes}\"")),
                "{case}: the guest wrote {bytes}: {rec}"
            ),
            None => assert!(
                rec.contains(&format!("\"error\":\"{}\"", expected_error(case))),
                "{case}: {rec}"
            ),
        }
    }
    // Still serving, exactly: the workload's CPUIDs and the peeks.
    let rep = workload::parse(g);
    assert_eq!(
        rep.summary.as_ref().map(|s| s["status"].as_str()),
        Some("ok"),
        "{g}"
    );
    let served: u64 = s
        .lines()
        .filter_map(|l| l.strip_prefix("stub: vcpu="))
        .filter_map(|l| l.split_whitespace().find_map(|t| t.strip_prefix("cpuid=")))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    let guest: u64 = (0..VCPUS)
        .map(|v| u64::from(rep.record(v, Kind::Cpuid).expect("cpuid record").count))
        .sum();
    assert_eq!(served, guest + PEEK_CASES.len() as u64, "{s}");
    eprintln!(
        "{}",
        s.lines()
            .find(|l| l.contains("memory window"))
            .unwrap_or("?")
    );
}
