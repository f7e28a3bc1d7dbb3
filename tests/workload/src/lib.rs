//! The target test guest's contract with the tests.
//!
//! The guest reads a [`Plan`] from its command line (xl's `extra=`), runs it
//! on every vCPU, and prints one [`Record`] line per vCPU and event kind plus
//! one summary line. The tests parse those lines back with [`parse`] (feature
//! `std`). Keeping both ends in one crate keeps them in step.
//!
//! Command line (space-separated `key=value`; all optional):
//!
//! | key | meaning | default |
//! |-----|---------|---------|
//! | `kinds` | comma list of [`Kind`] names, or `all` | `cpuid` |
//! | `count` | events per vCPU and kind (1..=100000) | `100` |
//! | `vcpus` | vCPUs that run the workload (1..=its vCPU count) | all |
//! | `leaves` | CPUID leaves cycled through (hex with `0x` or decimal) | `0,1` |
//! | `lstar` | the value written to `LSTAR` | `0xffff800000c0ffee` |
//! | `delay_ms` | wait this long (all vCPUs up) before the workload, printing `WORKLOAD-WAIT` first, so a monitor can attach to a booted guest | `0` |
//! | `go` | `xenstore`: instead of a fixed wait, wait until dom0 writes the guest's `data/go` key (once its monitor is attached: no race with however slow the monitor's start is), at most `delay_ms` (default 600000); with no go by then the guest prints `WORKLOAD-NO-GO` and powers off without running the workload | none |
//! | `peek` | `1`: before the workload, vCPU 0 asks its monitor to read memory: a CPUID of [`PEEK_LEAF`] with `rsi` at an address, one per case of [`PEEK_CASES`], among them mappings it made hostile on purpose (a non-present entry, reserved bits, a table that maps itself, a table beyond its RAM); each is announced first with a `WORKLOAD-PEEK case=NAME gva=0x... expect=bytes:HEX` or `expect=error` line | off |
//! | `then` | what the guest does after the summary: `poweroff`; `reboot` (a guest-initiated reboot, `SCHEDOP_shutdown(reboot)`: xl builds the domain again, same UUID, new domid); or `xl`: wait for dom0's request through the PV control protocol (`xl reboot`, `xl shutdown`) and do it | `poweroff` |
//!
//! Any other token is an error that names it.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

use core::fmt;

/// What the guest makes happen; each is one real trapping instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `cpuid` on the planned leaves; the values seen are reported.
    Cpuid,
    /// `mov cr4`: toggle a harmless bit, then try to clear SMEP and
    /// (through CR0) WP; read back what stuck.
    Cr,
    /// `wrmsr LSTAR` with the planned value, read back, restored.
    Msr,
    /// `int3`, counted by the guest's own #BP handler when it gets there.
    Int3,
    /// `HVMOP_guest_request_vm_event` from ring 0.
    GuestRequest,
    /// A plain write to one page (for mem_access where the host has it).
    Mem,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Cpuid,
        Kind::Cr,
        Kind::Msr,
        Kind::Int3,
        Kind::GuestRequest,
        Kind::Mem,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Cpuid => "cpuid",
            Kind::Cr => "cr",
            Kind::Msr => "msr",
            Kind::Int3 => "int3",
            Kind::GuestRequest => "guest_request",
            Kind::Mem => "mem",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of kinds, in [`Kind::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Kinds(u8);

impl Kinds {
    pub fn contains(self, k: Kind) -> bool {
        self.0 & k.bit() != 0
    }
    pub fn insert(&mut self, k: Kind) {
        self.0 |= k.bit();
    }
    pub fn iter(self) -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

pub const MAX_LEAVES: usize = 8;
pub const MAX_COUNT: u32 = 100_000;

/// The guest's workload, from its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub kinds: Kinds,
    pub count: u32,
    /// `None`: every vCPU the domain has.
    pub vcpus: Option<u32>,
    leaves: [u32; MAX_LEAVES],
    nr_leaves: usize,
    pub lstar: u64,
    pub delay_ms: u32,
    /// `go=xenstore`: the wait ends when dom0 writes `data/go`.
    pub go: bool,
    /// What the guest does after the summary.
    pub then: Then,
    /// `peek=1`: the peek cases run before the workload.
    pub peek: bool,
}

/// The CPUID leaf of a peek request (`peek=1`): not a leaf any CPU or Xen
/// answers, so a monitor's rule can single it out.
pub const PEEK_LEAF: u32 = 0x5045_454b;
/// Bytes a monitor is asked to read at each peek's address.
pub const PEEK_LEN: usize = 32;
/// The peek cases, in the order the guest runs them: readable memory
/// (`ok`: one 4 KiB-mapped page; `cross`: 32 bytes across two), then
/// mappings a monitor must fail on or survive (`not_present`, `reserved`,
/// `beyond_ram`: a table frame the domain does not have; `loop`: a table
/// that maps itself, which reads as that table's bytes).
pub const PEEK_CASES: [&str; 6] = [
    "ok",
    "cross",
    "not_present",
    "reserved",
    "beyond_ram",
    "loop",
];

/// The longest wait for `data/go`, and its default.
pub const MAX_DELAY_MS: u32 = 600_000;

/// What the guest does after its summary (`then=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Then {
    #[default]
    Poweroff,
    /// `SCHEDOP_shutdown(reboot)`.
    Reboot,
    /// Waits for `xl reboot` / `xl shutdown` (xenstore `control/shutdown`).
    Xl,
}

impl Default for Plan {
    fn default() -> Self {
        let mut kinds = Kinds::default();
        kinds.insert(Kind::Cpuid);
        Plan {
            kinds,
            count: 100,
            vcpus: None,
            leaves: [0, 1, 0, 0, 0, 0, 0, 0],
            nr_leaves: 2,
            lstar: 0xffff_8000_00c0_ffee,
            delay_ms: 0,
            go: false,
            then: Then::Poweroff,
            peek: false,
        }
    }
}

/// A command-line problem, naming the offending token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError<'a> {
    UnknownKey(&'a str),
    BadValue {
        key: &'a str,
        value: &'a str,
        why: &'static str,
    },
}

impl fmt::Display for PlanError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::UnknownKey(k) => write!(f, "unknown key '{k}'"),
            PlanError::BadValue { key, value, why } => {
                write!(f, "bad value '{value}' for '{key}': {why}")
            }
        }
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

impl Plan {
    pub fn leaves(&self) -> &[u32] {
        &self.leaves[..self.nr_leaves]
    }

    /// How long the guest waits before its workload: `delay_ms`, or with
    /// `go=xenstore` at most that (the longest wait when it is unset).
    pub fn wait_ms(&self) -> u32 {
        if self.go && self.delay_ms == 0 {
            MAX_DELAY_MS
        } else {
            self.delay_ms
        }
    }

    /// Parses a command line. Tokens without `=` that are not ours (e.g.
    /// `console=hvc0` has one, `quiet` has none) are rejected too: a typo must
    /// not silently run a different workload.
    pub fn parse(cmdline: &str) -> Result<Plan, PlanError<'_>> {
        let mut p = Plan::default();
        for tok in cmdline.split_ascii_whitespace() {
            let (key, value) = tok.split_once('=').ok_or(PlanError::UnknownKey(tok))?;
            let bad = |why| PlanError::BadValue { key, value, why };
            match key {
                "kinds" => {
                    let mut ks = Kinds::default();
                    for name in value.split(',') {
                        if name == "all" {
                            Kind::ALL.into_iter().for_each(|k| ks.insert(k));
                        } else {
                            ks.insert(Kind::from_name(name).ok_or(bad(
                                "kinds are cpuid, cr, msr, int3, guest_request, mem or all",
                            ))?);
                        }
                    }
                    p.kinds = ks;
                }
                "count" => {
                    p.count = parse_u64(value)
                        .filter(|n| (1..=u64::from(MAX_COUNT)).contains(n))
                        .ok_or(bad("expected 1..=100000"))? as u32;
                }
                "vcpus" => {
                    p.vcpus = Some(
                        parse_u64(value)
                            .filter(|n| (1..=4096).contains(n))
                            .ok_or(bad("expected a vCPU count"))? as u32,
                    );
                }
                "leaves" => {
                    p.nr_leaves = 0;
                    for l in value.split(',') {
                        if p.nr_leaves == MAX_LEAVES {
                            return Err(bad("at most 8 leaves"));
                        }
                        p.leaves[p.nr_leaves] = parse_u64(l)
                            .and_then(|v| u32::try_from(v).ok())
                            .ok_or(bad("expected 32-bit leaf numbers"))?;
                        p.nr_leaves += 1;
                    }
                }
                "delay_ms" => {
                    p.delay_ms = parse_u64(value)
                        .filter(|n| *n <= u64::from(MAX_DELAY_MS))
                        .ok_or(bad("expected 0..=600000"))? as u32;
                }
                "go" => {
                    if value != "xenstore" {
                        return Err(bad("expected xenstore"));
                    }
                    p.go = true;
                }
                "then" => {
                    p.then = match value {
                        "poweroff" => Then::Poweroff,
                        "reboot" => Then::Reboot,
                        "xl" => Then::Xl,
                        _ => return Err(bad("expected poweroff, reboot or xl")),
                    };
                }
                "peek" => {
                    p.peek = match value {
                        "1" => true,
                        "0" => false,
                        _ => return Err(bad("expected 0 or 1")),
                    };
                }
                "lstar" => {
                    p.lstar = parse_u64(value)
                        .filter(|v| is_canonical(*v))
                        .ok_or(bad("expected a canonical address"))?;
                }
                _ => return Err(PlanError::UnknownKey(key)),
            }
        }
        Ok(p)
    }
}

fn is_canonical(v: u64) -> bool {
    let top = v >> 47;
    top == 0 || top == 0x1ffff
}

/// Cycle statistics of one vCPU's trapping instructions of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cycles {
    pub min: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl Cycles {
    /// Sorts `samples` in place and takes the order statistics.
    pub fn of(samples: &mut [u64]) -> Cycles {
        if samples.is_empty() {
            return Cycles::default();
        }
        samples.sort_unstable();
        let at = |q: usize| samples[((samples.len() - 1) * q) / 100];
        Cycles {
            min: samples[0],
            p50: at(50),
            p99: at(99),
            max: samples[samples.len() - 1],
        }
    }
}

/// The prefix of the guest's lines.
pub const RECORD_TAG: &str = "WORKLOAD";
pub const SUMMARY_TAG: &str = "WORKLOAD-SUMMARY";

/// One vCPU's results for one kind. `extra` holds the kind's read-backs as
/// ` key=value` pairs, already formatted by the guest.
pub struct Record<'a> {
    pub vcpu: u32,
    pub kind: Kind,
    pub count: u32,
    pub cycles: Cycles,
    pub extra: &'a dyn fmt::Display,
}

impl fmt::Display for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.cycles;
        write!(
            f,
            "{RECORD_TAG} vcpu={} kind={} count={} min={} p50={} p99={} max={}{}",
            self.vcpu,
            self.kind.name(),
            self.count,
            c.min,
            c.p50,
            c.p99,
            c.max,
            self.extra
        )
    }
}

#[cfg(any(test, feature = "std"))]
mod parse;
#[cfg(any(test, feature = "std"))]
pub use parse::{parse, ParsedRecord, Report};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_and_full_line() {
        assert_eq!(Plan::parse("").unwrap(), Plan::default());
        let p = Plan::parse(
            "kinds=cpuid,msr count=7 vcpus=3 leaves=0x0,0x40000100,7 lstar=0xffffffff81000000",
        )
        .unwrap();
        assert_eq!(p.kinds.iter().collect::<Vec<_>>(), [Kind::Cpuid, Kind::Msr]);
        assert_eq!((p.count, p.vcpus), (7, Some(3)));
        assert_eq!(p.leaves(), [0, 0x4000_0100, 7]);
        assert_eq!(p.lstar, 0xffff_ffff_8100_0000);
        assert_eq!(Plan::parse("delay_ms=2500").unwrap().delay_ms, 2500);
        assert!(Plan::parse("delay_ms=600001").is_err());
        assert_eq!(Plan::parse("then=reboot").unwrap().then, Then::Reboot);
        assert_eq!(Plan::parse("then=xl").unwrap().then, Then::Xl);
        assert_eq!(Plan::parse("then=poweroff").unwrap().then, Then::Poweroff);
        assert_eq!(Plan::default().then, Then::Poweroff);
        assert!(Plan::parse("then=halt").is_err());
        let p = Plan::parse("go=xenstore delay_ms=9000").unwrap();
        assert!(p.go);
        assert_eq!(p.wait_ms(), 9000);
        assert_eq!(Plan::parse("go=xenstore").unwrap().wait_ms(), MAX_DELAY_MS);
        assert_eq!(Plan::parse("delay_ms=5").unwrap().wait_ms(), 5);
        assert!(!Plan::default().go);
        assert!(Plan::parse("go=timer").is_err());
        assert_eq!(Plan::parse("kinds=all").unwrap().kinds.iter().count(), 6);
    }

    #[test]
    fn errors_name_the_token() {
        assert_eq!(
            Plan::parse("count=5 quiet").unwrap_err(),
            PlanError::UnknownKey("quiet")
        );
        assert_eq!(
            Plan::parse("colour=red").unwrap_err().to_string(),
            "unknown key 'colour'"
        );
        let e = Plan::parse("count=0").unwrap_err().to_string();
        assert!(e.starts_with("bad value '0' for 'count'"), "{e}");
        assert!(Plan::parse("kinds=cpuid,bogus").is_err());
        assert!(
            Plan::parse("lstar=0x0000800000000000").is_err(),
            "non-canonical"
        );
        assert!(Plan::parse("leaves=1,2,3,4,5,6,7,8,9").is_err());
        assert!(Plan::parse("leaves=0x100000000").is_err());
    }

    #[test]
    fn cycles_summary_takes_the_median_p50_and_the_worst_p99() {
        let line = |v: u32, p50: u64, p99: u64| {
            Record {
                vcpu: v,
                kind: Kind::Cpuid,
                count: 1,
                cycles: Cycles {
                    min: 1,
                    p50,
                    p99,
                    max: p99,
                },
                extra: &"",
            }
            .to_string()
        };
        let console = [line(0, 30, 300), line(1, 10, 900), line(2, 20, 200)].join("\n");
        let rep = parse(&console);
        assert_eq!(rep.cycles_summary(Kind::Cpuid), Some((20, 900)));
        assert_eq!(rep.cycles_summary(Kind::Msr), None);
    }

    #[test]
    fn cycles_order_statistics() {
        let mut s: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(
            Cycles::of(&mut s),
            Cycles {
                min: 1,
                p50: 50,
                p99: 99,
                max: 100
            }
        );
        assert_eq!(
            Cycles::of(&mut [7]),
            Cycles {
                min: 7,
                p50: 7,
                p99: 7,
                max: 7
            }
        );
        assert_eq!(Cycles::of(&mut []), Cycles::default());
    }

    #[test]
    fn fairness_and_elapsed_come_from_the_vcpus_lines() {
        let line = |vcpu, p50, p99| {
            let cycles = Cycles {
                min: 1,
                p50,
                p99,
                max: p99,
            };
            Record {
                vcpu,
                kind: Kind::Cpuid,
                count: 10,
                cycles,
                extra: &"",
            }
            .to_string()
        };
        let console = format!(
            "{}\n{}\n{}\nWORKLOAD-SUMMARY events=30 elapsed_ns=1500 status=ok\n",
            line(0, 100, 400),
            line(1, 300, 900),
            line(2, 200, 600)
        );
        let rep = parse(&console);
        assert_eq!(rep.elapsed_ns(), Some(1500));
        // slowest p50 / fastest p50 = 300/100; worst p99 / median p50 = 900/200.
        assert_eq!(rep.fairness(Kind::Cpuid), Some((3.0, 4.5)));
        assert_eq!(rep.fairness(Kind::Msr), None);
        assert_eq!(parse("WORKLOAD-SUMMARY status=ok").elapsed_ns(), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,64}") {
            let _ = Plan::parse(&s);
        }

        #[test]
        fn record_lines_parse_back(vcpu in 0u32..64, count in 1u32..100_000,
                                   mut samples in proptest::collection::vec(0u64..1_000_000, 1..50)) {
            let c = Cycles::of(&mut samples);
            let line = Record { vcpu, kind: Kind::Msr, count, cycles: c, extra: &" stuck=3 writes=9" }.to_string();
            let console = format!("WORKLOAD-START vcpus=1\n{line}\nWORKLOAD-SUMMARY status=ok\n");
            let mut rep = parse(&console);
            prop_assert!(rep.malformed.is_empty());
            prop_assert_eq!(rep.summary.as_ref().map(|s| s["status"].as_str()), Some("ok"));
            let r = rep.records.pop().unwrap();
            prop_assert_eq!((r.vcpu, r.kind, r.count, r.cycles), (vcpu, Kind::Msr, count, c));
            prop_assert_eq!(r.get("stuck"), Some("3"));
            prop_assert_eq!(r.num("writes"), Some(9));
        }
    }
}
