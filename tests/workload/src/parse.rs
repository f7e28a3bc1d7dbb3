//! Reading the guest's lines back (host side).

use std::collections::BTreeMap;

use crate::{Cycles, Kind, RECORD_TAG, SUMMARY_TAG};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRecord {
    pub vcpu: u32,
    pub kind: Kind,
    pub count: u32,
    pub cycles: Cycles,
    pub fields: BTreeMap<String, String>,
}

impl ParsedRecord {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
    pub fn num(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(crate::parse_u64)
    }
}

/// Everything the guest reported on one console.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub records: Vec<ParsedRecord>,
    /// The summary line's fields, if the guest got that far.
    pub summary: Option<BTreeMap<String, String>>,
    /// Lines that carry our tag but do not parse: a test should fail on them.
    pub malformed: Vec<String>,
}

impl Report {
    pub fn record(&self, vcpu: u32, kind: Kind) -> Option<&ParsedRecord> {
        self.records
            .iter()
            .find(|r| r.vcpu == vcpu && r.kind == kind)
    }
    /// The median over vCPUs of each vCPU's p50 cycles for `kind`, and the
    /// worst p99: one figure per run for tables and comparisons. `None` if
    /// no vCPU reported `kind`.
    pub fn cycles_summary(&self, kind: Kind) -> Option<(u64, u64)> {
        let mut p50: Vec<u64> = self
            .records
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.cycles.p50)
            .collect();
        p50.sort_unstable();
        let p99 = self
            .records
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.cycles.p99)
            .max()?;
        Some((p50[p50.len() / 2], p99))
    }

    /// The workload's wall time (the summary's `elapsed_ns`), if given.
    pub fn elapsed_ns(&self) -> Option<u64> {
        self.summary.as_ref()?.get("elapsed_ns")?.parse().ok()
    }

    /// How evenly `kind` was served: the slowest vCPU's p50 over the
    /// fastest one's, and the worst p99 over the median p50 (both 1.0 at
    /// best). `None` if no vCPU reported `kind`.
    pub fn fairness(&self, kind: Kind) -> Option<(f64, f64)> {
        let (p50, p99) = self.cycles_summary(kind)?;
        let of_kind = || self.records.iter().filter(|r| r.kind == kind);
        let lo = of_kind().map(|r| r.cycles.p50).min()?.max(1);
        let hi = of_kind().map(|r| r.cycles.p50).max()?;
        Some((hi as f64 / lo as f64, p99 as f64 / p50.max(1) as f64))
    }

    /// Events of `kind` summed over vCPUs.
    pub fn total(&self, kind: Kind) -> u64 {
        self.records
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| u64::from(r.count))
            .sum()
    }
}

fn fields(rest: &str) -> BTreeMap<String, String> {
    rest.split_ascii_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn record(f: &BTreeMap<String, String>) -> Option<ParsedRecord> {
    let n = |k: &str| f.get(k).and_then(|v| crate::parse_u64(v));
    let mut rest = f.clone();
    for k in ["vcpu", "kind", "count", "min", "p50", "p99", "max"] {
        rest.remove(k);
    }
    Some(ParsedRecord {
        vcpu: u32::try_from(n("vcpu")?).ok()?,
        kind: Kind::from_name(f.get("kind")?)?,
        count: u32::try_from(n("count")?).ok()?,
        cycles: Cycles {
            min: n("min")?,
            p50: n("p50")?,
            p99: n("p99")?,
            max: n("max")?,
        },
        fields: rest,
    })
}

/// A tag as it starts a line's fields (so `WORKLOAD` does not match
/// `WORKLOAD-START`).
fn concat_tag(tag: &str) -> String {
    format!("{tag} ")
}

/// Parses a whole console (other lines are ignored; the console may carry
/// a prefix such as a timestamp before the tag).
pub fn parse(console: &str) -> Report {
    let mut rep = Report::default();
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        let record_tag = concat_tag(RECORD_TAG);
        if let Some(at) = line.find(&concat_tag(SUMMARY_TAG)) {
            rep.summary = Some(fields(&line[at + SUMMARY_TAG.len()..]));
        } else if let Some(at) = line.find(&record_tag) {
            let f = fields(&line[at + record_tag.len()..]);
            match record(&f) {
                Some(r) => rep.records.push(r),
                None => rep.malformed.push(line.to_string()),
            }
        }
    }
    rep
}
