//! What one monitored instruction costs, in Xen's own records.
//!
//! [`records`] reads a file `xentrace` wrote (runs of one pCPU's records,
//! each run after a CPU-change record) into one time-ordered list.
//! [`analyze`] follows which vCPU each pCPU runs (scheduler switch
//! records) and opens an *event* at each of the target's CPUID exits for
//! the chosen leaf, closing it at that vCPU's next VM entry, wherever it
//! runs. Everything Xen recorded in between, on any pCPU, is charged to
//! the event: exits and hypercalls by domain, context switches, wake-ups,
//! and three phases — exit → the consumer's first record, → the
//! consumer's first `event_channel_op` (its answer's notify), → the
//! target's entry.
//!
//! Unmonitored, an event is the exit and its entry on one pCPU: the
//! same report gives the ceiling.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use xen_abi::trace::*;
use xen_abi::{HYPERVISOR_EVENT_CHANNEL_OP, HYPERVISOR_SCHED_OP};

/// One trace record, with the TSC it carries or, if none, the last one
/// seen on its pCPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub cpu: u32,
    pub tsc: u64,
    pub event: u32,
    pub extra: Vec<u32>,
}

/// Why a file cannot be read as a trace.
#[derive(Debug, PartialEq, Eq)]
pub enum TraceError {
    /// A record runs past the end of the file (or of its pCPU's run).
    Truncated { offset: usize },
    /// Records before the first CPU-change record: not a xentrace file.
    NoCpuChange,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Truncated { offset } => {
                write!(f, "record at byte {offset} runs past the end of its data")
            }
            TraceError::NoCpuChange => write!(
                f,
                "no CPU-change record before the first record: not a file xentrace wrote"
            ),
        }
    }
}

fn word(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a whole xentrace file, merged into TSC order (stable: one
/// pCPU's records keep their order).
pub fn records(bytes: &[u8]) -> Result<Vec<Record>, TraceError> {
    let mut out = Vec::new();
    let mut last_tsc: BTreeMap<u32, u64> = BTreeMap::new();
    let mut at = 0;
    // The current run: its pCPU and where it ends.
    let mut run: Option<(u32, usize)> = None;
    while at < bytes.len() {
        let trunc = TraceError::Truncated { offset: at };
        let header = word(bytes, at).ok_or(TraceError::Truncated { offset: at })?;
        let event = header & 0x0fff_ffff;
        let n = ((header >> TRACE_EXTRA_SHIFT) & TRACE_EXTRA_MAX) as usize;
        let cycles = header & TRC_HD_CYCLE_FLAG != 0;
        let len = 4 + if cycles { 8 } else { 0 } + 4 * n;
        if at + len > bytes.len() {
            return Err(trunc);
        }
        let w = |i: usize| word(bytes, at + 4 + 4 * i).unwrap_or_default();
        if event == TRC_TRACE_CPU_CHANGE && !cycles && n == 2 {
            let end = at + len + w(1) as usize;
            if end > bytes.len() {
                return Err(trunc);
            }
            run = Some((w(0), end));
            at += len;
            continue;
        }
        let Some((cpu, end)) = run else {
            return Err(TraceError::NoCpuChange);
        };
        if at + len > end {
            return Err(trunc);
        }
        let last = last_tsc.entry(cpu).or_default();
        let skip = if cycles {
            *last = u64::from(w(0)) | (u64::from(w(1)) << 32);
            2
        } else {
            0
        };
        out.push(Record {
            cpu,
            tsc: *last,
            event,
            extra: (skip..skip + n).map(w).collect(),
        });
        at += len;
    }
    out.sort_by_key(|r| r.tsc);
    Ok(out)
}

/// Who a pCPU runs, as far as the cost of an event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    Target,
    Consumer,
    Dom0,
    Idle,
    Other,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Target => "target",
            Who::Consumer => "consumer",
            Who::Dom0 => "dom0",
            Who::Idle => "idle",
            Who::Other => "other",
        }
    }
}

/// What the report is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    pub target: u32,
    /// The monitor's domain (0 for a dom0 consumer); `None` unmonitored.
    pub consumer: Option<u32>,
    /// The CPUID leaf that makes an exit an event.
    pub leaf: u32,
}

impl Subject {
    fn who(&self, dom: u32) -> Who {
        match dom {
            d if d == self.target => Who::Target,
            d if Some(d) == self.consumer => Who::Consumer,
            0 => Who::Dom0,
            DOMID_IDLE => Who::Idle,
            _ => Who::Other,
        }
    }
}

/// What happened during one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cost {
    pub cycles: u64,
    /// VM exits by (who, SVM exit code).
    pub exits: BTreeMap<(Who, u32), u32>,
    /// Hypercalls by (who, number): HVM ones from VMMCALL records, PV
    /// (dom0) ones from their own records.
    pub hypercalls: BTreeMap<(Who, u32), u32>,
    /// Scheduler switches, and how many of them to or from idle.
    pub switches: u32,
    pub idle_switches: u32,
    pub wakes: u32,
    /// Cycles from the exit to the consumer's first record, and to its
    /// first `event_channel_op` after that.
    pub to_consumer: Option<u64>,
    pub to_notify: Option<u64>,
    /// Cycles from the exit to the consumer's first `sched_op` after its
    /// notify: when it gave its pCPU up (blocked, polled or yielded).
    pub to_wait: Option<u64>,
    /// Cycles from the exit to the first wake-up of one of the consumer's
    /// vCPUs (a blocked consumer: its notification's work).
    pub consumer_woken: Option<u64>,
    /// Cycles from the exit to the target vCPU's own wake-up (it had
    /// stopped to wait for its answer), and to the switch that runs it
    /// again after that.
    pub target_woken: Option<u64>,
    pub target_in: Option<u64>,
    /// Whether a pCPU ran the idle vCPU when the target vCPU was woken:
    /// then the wait from wake to switch-in is not a queue for a pCPU.
    pub idle_at_target_wake: Option<bool>,
    /// Whom the target vCPU's switch-in after its wake-up took the pCPU
    /// from: who it waited behind.
    pub target_in_after: Option<Who>,
}

/// An event still open: the target vCPU's exit, until its entry.
struct Open {
    start: u64,
    is_event: bool,
    cost: Cost,
}

/// The events of `subject`'s target, in the order they closed, and how
/// many records Xen says it lost.
pub struct Analysis {
    pub events: Vec<Cost>,
    pub lost: u64,
    pub records: usize,
    pub cpus: usize,
}

pub fn analyze(recs: &[Record], subject: &Subject) -> Analysis {
    let mut running: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
    let mut open: BTreeMap<u32, Open> = BTreeMap::new();
    let mut events = Vec::new();
    let mut lost = 0u64;
    for r in recs {
        let x = |i: usize| r.extra.get(i).copied().unwrap_or_default();
        if r.event == TRC_LOST_RECORDS {
            lost += u64::from(x(0));
            continue;
        }
        if r.event == TRC_SCHED_SWITCH {
            running.insert(r.cpu, (x(2), x(3)));
            for (&v, o) in open.iter_mut() {
                o.cost.switches += 1;
                if x(0) == DOMID_IDLE || x(2) == DOMID_IDLE {
                    o.cost.idle_switches += 1;
                }
                let back = (x(2), x(3)) == (subject.target, v);
                if back && o.cost.target_woken.is_some() && o.cost.target_in.is_none() {
                    o.cost.target_in = Some(r.tsc.saturating_sub(o.start));
                    o.cost.target_in_after = Some(subject.who(x(0)));
                }
            }
            continue;
        }
        if r.event == TRC_SCHED_WAKE {
            let idle = running.values().any(|&(d, _)| d == DOMID_IDLE);
            for (&v, o) in open.iter_mut() {
                o.cost.wakes += 1;
                let since = Some(r.tsc.saturating_sub(o.start));
                if (x(0), x(1)) == (subject.target, v) && o.cost.target_woken.is_none() {
                    o.cost.target_woken = since;
                    o.cost.idle_at_target_wake = Some(idle);
                }
                if subject.who(x(0)) == Who::Consumer && o.cost.consumer_woken.is_none() {
                    o.cost.consumer_woken = since;
                }
            }
            continue;
        }
        // Everything else belongs to whoever the pCPU runs; before its
        // first switch record nobody knows.
        let Some(&(dom, vcpu)) = running.get(&r.cpu) else {
            continue;
        };
        let who = subject.who(dom);
        let base = r.event & !(TRC_64_FLAG | TRC_HVM_NESTEDFLAG);
        if who == Who::Target && base == TRC_HVM_VMENTRY {
            if let Some(mut o) = open.remove(&vcpu) {
                if o.is_event {
                    o.cost.cycles = r.tsc.saturating_sub(o.start);
                    events.push(o.cost);
                }
            }
            continue;
        }
        if who == Who::Target && base == TRC_HVM_CPUID {
            if let Some(o) = open.get_mut(&vcpu) {
                o.is_event |= x(0) == subject.leaf;
            }
            continue;
        }
        let first_record = |o: &mut Open| {
            if who == Who::Consumer && o.cost.to_consumer.is_none() {
                o.cost.to_consumer = Some(r.tsc.saturating_sub(o.start));
            }
        };
        match base {
            TRC_HVM_VMEXIT => {
                let code = x(0);
                if who == Who::Target && code == SVM_EXIT_CPUID && !open.contains_key(&vcpu) {
                    open.insert(
                        vcpu,
                        Open {
                            start: r.tsc,
                            is_event: false,
                            cost: Cost::default(),
                        },
                    );
                }
                for o in open.values_mut() {
                    first_record(o);
                    *o.cost.exits.entry((who, code)).or_default() += 1;
                }
            }
            TRC_HVM_VMMCALL | TRC_PV_HYPERCALL_V2 => {
                let nr = if base == TRC_PV_HYPERCALL_V2 {
                    x(0) & 0x000f_ffff
                } else {
                    x(0)
                };
                for o in open.values_mut() {
                    first_record(o);
                    *o.cost.hypercalls.entry((who, nr)).or_default() += 1;
                    if who == Who::Consumer
                        && nr == HYPERVISOR_EVENT_CHANNEL_OP
                        && o.cost.to_consumer.is_some()
                        && o.cost.to_notify.is_none()
                    {
                        o.cost.to_notify = Some(r.tsc.saturating_sub(o.start));
                    }
                    if who == Who::Consumer
                        && nr == HYPERVISOR_SCHED_OP
                        && o.cost.to_notify.is_some()
                        && o.cost.to_wait.is_none()
                    {
                        o.cost.to_wait = Some(r.tsc.saturating_sub(o.start));
                    }
                }
            }
            _ => {
                for o in open.values_mut() {
                    first_record(o);
                }
            }
        }
    }
    Analysis {
        events,
        lost,
        records: recs.len(),
        cpus: recs
            .iter()
            .map(|r| r.cpu)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
    }
}

fn p50(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// A hypercall's name (`public/xen.h`), for those a monitor or dom0
/// makes around an event.
fn hypercall_name(nr: u32) -> String {
    let name = match nr {
        1 => "mmu_update",
        3 => "stack_switch",
        12 => "memory_op",
        13 => "multicall",
        14 => "update_va_mapping",
        15 => "set_timer_op",
        17 => "xen_version",
        20 => "grant_table_op",
        23 => "iret",
        24 => "vcpu_op",
        25 => "set_segment_base",
        26 => "mmuext_op",
        29 => "sched_op",
        32 => "event_channel_op",
        33 => "physdev_op",
        34 => "hvm_op",
        35 => "sysctl",
        36 => "domctl",
        41 => "dm_op",
        n => return format!("hypercall {n}"),
    };
    name.into()
}

fn exit_name(code: u32) -> String {
    match code {
        SVM_EXIT_INTR => "INTR".into(),
        SVM_EXIT_CPUID => "CPUID".into(),
        SVM_EXIT_HLT => "HLT".into(),
        SVM_EXIT_MSR => "MSR".into(),
        SVM_EXIT_VMMCALL => "VMMCALL".into(),
        SVM_EXIT_NPF => "NPF".into(),
        c => format!("{c:#x}"),
    }
}

/// The report: one paragraph, means per event and p50 cycles.
pub fn report(a: &Analysis, s: &Subject, label: &str) -> String {
    let mut out = String::new();
    let n = a.events.len();
    let _ = writeln!(
        out,
        "{label}: {n} CPUID leaf {:#x} event(s) of domain {} ({} records on {} pCPU(s), {} lost)",
        s.leaf, s.target, a.records, a.cpus, a.lost
    );
    if n == 0 {
        return out;
    }
    let per = |c: u64| c as f64 / n as f64;
    let cycles: Vec<u64> = a.events.iter().map(|e| e.cycles).collect();
    let mean = cycles.iter().sum::<u64>() / n as u64;
    let _ = writeln!(
        out,
        "  exit -> entry: p50 {} cycles, mean {mean}",
        p50(cycles.clone())
    );
    let phase = |f: fn(&Cost) -> Option<u64>| -> Option<u64> {
        let v: Vec<u64> = a.events.iter().filter_map(f).collect();
        (v.len() == n).then(|| p50(v))
    };
    if let (Some(c), Some(t)) = (phase(|e| e.to_consumer), phase(|e| e.to_notify)) {
        let _ = writeln!(
            out,
            "  phases (p50 cycles): exit -> consumer's first record {c}; -> its notify \
             (event_channel_op) {t}; -> target entry {}",
            p50(cycles)
        );
    }
    // The wake-ups of an answer, each over the events that had one (a
    // polling consumer is never woken; a target whose answer Xen took
    // while it waited never stopped).
    let some = |f: fn(&Cost) -> Option<u64>| -> Option<(u64, usize)> {
        let v: Vec<u64> = a.events.iter().filter_map(f).collect();
        let k = v.len();
        (k > 0).then(|| (p50(v), k))
    };
    if let Some((w, k)) = some(|e| e.to_wait) {
        let _ = writeln!(
            out,
            "  consumer's next sched_op after its notify (p50 cycles after the exit): {w}, in {k} of {n} events"
        );
    }
    if let Some((w, k)) = some(|e| e.consumer_woken) {
        let _ = writeln!(
            out,
            "  consumer woken (p50 cycles after the exit): {w}, in {k} of {n} events"
        );
    }
    if let Some((w, k)) = some(|e| e.target_woken) {
        let back = some(|e| e.target_in).map_or("never".to_string(), |(i, _)| i.to_string());
        let idle = a
            .events
            .iter()
            .filter(|e| e.idle_at_target_wake == Some(true))
            .count();
        let _ = writeln!(
            out,
            "  target vCPU stopped for its answer in {k} of {n} events: woken (p50 cycles after the exit) \
             {w}, switched in {back}; a pCPU was idle at {idle} of those wake-ups"
        );
        let mut after: BTreeMap<Who, usize> = BTreeMap::new();
        for e in &a.events {
            if let Some(w) = e.target_in_after {
                *after.entry(w).or_default() += 1;
            }
        }
        let after: Vec<String> = after
            .iter()
            .map(|(w, c)| format!("{} {c}", w.name()))
            .collect();
        let _ = writeln!(
            out,
            "  switched in after (who had the pCPU): {}",
            after.join(", ")
        );
    }
    let mut exits: BTreeMap<(Who, u32), u64> = BTreeMap::new();
    let mut calls: BTreeMap<(Who, u32), u64> = BTreeMap::new();
    for e in &a.events {
        for (k, v) in &e.exits {
            *exits.entry(*k).or_default() += u64::from(*v);
        }
        for (k, v) in &e.hypercalls {
            *calls.entry(*k).or_default() += u64::from(*v);
        }
    }
    let mut by_who = |m: &BTreeMap<(Who, u32), u64>, name: fn(u32) -> String, what: &str| {
        let mut whos: Vec<Who> = m.keys().map(|k| k.0).collect();
        whos.dedup();
        for w in whos {
            let total: u64 = m.iter().filter(|(k, _)| k.0 == w).map(|(_, v)| v).sum();
            let parts: Vec<String> = m
                .iter()
                .filter(|(k, _)| k.0 == w)
                .map(|(k, v)| format!("{} {:.2}", name(k.1), per(*v)))
                .collect();
            let _ = writeln!(
                out,
                "  {what} per event, {}: {:.2} ({})",
                w.name(),
                per(total),
                parts.join(", ")
            );
        }
    };
    by_who(&exits, exit_name, "VM exits");
    by_who(&calls, hypercall_name, "hypercalls");
    let sum = |f: fn(&Cost) -> u32| a.events.iter().map(|e| u64::from(f(e))).sum::<u64>();
    let _ = writeln!(
        out,
        "  scheduler per event: {:.2} switches ({:.2} to or from idle), {:.2} wake-ups",
        per(sum(|e| e.switches)),
        per(sum(|e| e.idle_switches)),
        per(sum(|e| e.wakes))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes records as xentrace does: one CPU-change record before
    /// each pCPU's run.
    /// (TSC if the record carries one, event, extras).
    type Rec = (Option<u64>, u32, Vec<u32>);

    fn file(runs: &[(u32, Vec<Rec>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (cpu, recs) in runs {
            let mut body = Vec::new();
            for (tsc, event, extra) in recs {
                let mut h = event | ((extra.len() as u32) << TRACE_EXTRA_SHIFT);
                if tsc.is_some() {
                    h |= TRC_HD_CYCLE_FLAG;
                }
                body.extend(h.to_le_bytes());
                if let Some(t) = tsc {
                    body.extend((*t as u32).to_le_bytes());
                    body.extend(((*t >> 32) as u32).to_le_bytes());
                }
                for w in extra {
                    body.extend(w.to_le_bytes());
                }
            }
            out.extend((TRC_TRACE_CPU_CHANGE | (2 << TRACE_EXTRA_SHIFT)).to_le_bytes());
            out.extend(cpu.to_le_bytes());
            out.extend((body.len() as u32).to_le_bytes());
            out.extend(body);
        }
        out
    }

    const T: u32 = 5;
    const S: u32 = 7;

    fn switch(tsc: u64, prev: (u32, u32), next: (u32, u32)) -> Rec {
        (
            Some(tsc),
            TRC_SCHED_SWITCH,
            vec![prev.0, prev.1, next.0, next.1],
        )
    }

    /// One monitored CPUID: the target exits on pCPU 0 and its vCPU goes
    /// idle; the stub, woken on pCPU 1, answers (a notify) and polls; the
    /// target comes back on pCPU 0. Then one CPUID of another leaf.
    fn monitored() -> Vec<u8> {
        let idle = (DOMID_IDLE, 0);
        file(&[
            (
                0,
                vec![
                    switch(10, idle, (T, 0)),
                    (Some(100), TRC_HVM_VMEXIT64, vec![SVM_EXIT_CPUID, 0, 0]),
                    (None, TRC_HVM_CPUID, vec![6, 0, 0, 0, 0, 0]),
                    switch(120, (T, 0), idle),
                    (Some(150), TRC_SCHED_WAKE, vec![T, 0]),
                    switch(160, idle, (T, 0)),
                    (Some(200), TRC_HVM_VMENTRY, vec![]),
                    (Some(300), TRC_HVM_VMEXIT64, vec![SVM_EXIT_CPUID, 0, 0]),
                    (None, TRC_HVM_CPUID, vec![1, 0, 0, 0, 0, 0]),
                    (Some(310), TRC_HVM_VMENTRY, vec![]),
                ],
            ),
            (
                1,
                vec![
                    switch(20, (DOMID_IDLE, 1), (S, 0)),
                    (Some(105), TRC_SCHED_WAKE, vec![S, 0]),
                    (Some(110), TRC_HVM_VMENTRY, vec![]),
                    (Some(130), TRC_HVM_VMEXIT64, vec![SVM_EXIT_VMMCALL, 0, 0]),
                    (None, TRC_HVM_VMMCALL, vec![32]),
                    (Some(140), TRC_HVM_VMEXIT64, vec![SVM_EXIT_VMMCALL, 0, 0]),
                    (None, TRC_HVM_VMMCALL, vec![29]),
                ],
            ),
        ])
    }

    #[test]
    fn a_monitored_cpuid_is_charged_everything_until_the_targets_entry() {
        let recs = records(&monitored()).unwrap();
        assert!(recs.windows(2).all(|w| w[0].tsc <= w[1].tsc));
        let s = Subject {
            target: T,
            consumer: Some(S),
            leaf: 6,
        };
        let a = analyze(&recs, &s);
        assert_eq!(a.events.len(), 1, "the leaf-1 CPUID is not an event");
        let e = &a.events[0];
        assert_eq!(e.cycles, 100);
        assert_eq!(e.exits[&(Who::Target, SVM_EXIT_CPUID)], 1);
        assert_eq!(e.exits[&(Who::Consumer, SVM_EXIT_VMMCALL)], 2);
        assert_eq!(e.hypercalls[&(Who::Consumer, 32)], 1);
        assert_eq!(e.hypercalls[&(Who::Consumer, 29)], 1);
        assert_eq!((e.switches, e.idle_switches, e.wakes), (2, 2, 2));
        // The stub's first record is its entry at 110; its notify at 130.
        assert_eq!((e.to_consumer, e.to_notify), (Some(10), Some(30)));
        // The stub was woken at 105; the target at 150 (pCPU 0 idle), in
        // at 160.
        assert_eq!(e.consumer_woken, Some(5));
        assert_eq!((e.target_woken, e.target_in), (Some(50), Some(60)));
        assert_eq!(e.idle_at_target_wake, Some(true));
        assert_eq!(e.target_in_after, Some(Who::Idle));
        assert_eq!(e.to_wait, Some(40));
        let text = report(&a, &s, "stub");
        assert!(
            text.contains("1 CPUID leaf 0x6 event(s) of domain 5"),
            "{text}"
        );
        assert!(
            text.contains(
                "hypercalls per event, consumer: 2.00 (sched_op 1.00, event_channel_op 1.00)"
            ),
            "{text}"
        );
        assert!(
            text.contains("-> its notify (event_channel_op) 30"),
            "{text}"
        );
        assert!(
            text.contains("consumer woken (p50 cycles after the exit): 5, in 1 of 1 events"),
            "{text}"
        );
        assert!(
            text.contains(
                "stopped for its answer in 1 of 1 events: woken (p50 cycles after the exit) 50, \
                 switched in 60; a pCPU was idle at 1 of those wake-ups"
            ),
            "{text}"
        );
        assert!(
            text.contains("switched in after (who had the pCPU): idle 1"),
            "{text}"
        );
    }

    #[test]
    fn unmonitored_an_event_is_its_exit_and_entry() {
        let recs = records(&monitored()).unwrap();
        let s = Subject {
            target: T,
            consumer: None,
            leaf: 1,
        };
        let a = analyze(&recs, &s);
        assert_eq!(a.events.len(), 1);
        assert_eq!(a.events[0].cycles, 10);
        assert_eq!(a.events[0].switches, 0);
    }

    #[test]
    fn bad_files_are_refused_with_the_offset() {
        let good = monitored();
        assert!(matches!(
            records(&good[..good.len() - 2]),
            Err(TraceError::Truncated { .. })
        ));
        let headless = (TRC_HVM_VMENTRY | TRC_HD_CYCLE_FLAG)
            .to_le_bytes()
            .repeat(3);
        assert_eq!(records(&headless), Err(TraceError::NoCpuChange));
        assert_eq!(records(&[]), Ok(vec![]));
    }

    #[test]
    fn lost_records_are_counted() {
        let f = file(&[(0, vec![(Some(1), TRC_LOST_RECORDS, vec![42, 0, 0, 0])])]);
        let a = analyze(
            &records(&f).unwrap(),
            &Subject {
                target: T,
                consumer: None,
                leaf: 6,
            },
        );
        assert_eq!(a.lost, 42);
    }
}
