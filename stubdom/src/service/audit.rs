//! Answering a request with the policy, then auditing it.
//!
//! Audit lines go through a queue, never straight to the console: a
//! serving vCPU only copies its line in, and whoever passes by drains
//! what the console ring takes at that moment without waiting
//! ([`AuditQueue::drain`]). A slow xenconsoled (or one stopped for a
//! while) then delays the log, not the target's events; only a queue
//! full for a whole second drops lines, each drop counted and said.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;
use xenctl as xenops;

use boot::println;
use vmevent::policy::LogLevel;
use vmevent::{AuditSource, Policy, VmEventRequest, VmEventResponse};

use super::stats::{Stats, NR_REASONS};
use super::{Config, LogMode};

/// Answers one request with the policy and counts it; returns its audit
/// record, printed by the caller once the answer is out (the target vCPU
/// must not wait for the console). `sync`: it came from a slot (and is
/// counted as served); async events are counted by kind only.
pub(super) fn decide(
    cfg: &Config,
    policy: &Policy,
    stats: &Stats,
    req: &VmEventRequest,
    rsp: &mut VmEventResponse,
    sync: bool,
    attribution: vmevent::Attribution,
) -> vmevent::AuditRecord {
    let process = match &attribution {
        vmevent::Attribution::Process(p) => Some(p),
        _ => None,
    };
    let verdict = policy.evaluate_for(req, process, rsp);
    if let Some(ev) = verdict.inject {
        // Before the answer is published, so the trap is pending when the
        // vCPU resumes.
        if let Err(e) = xenops::inject_event(cfg.target, ev) {
            stats.inject_failed.fetch_add(1, Ordering::Relaxed);
            if stats.inject_failed.load(Ordering::Relaxed) == 1 {
                println!(
                    "stub: reinjecting a trap failed: {} (further failures counted)",
                    e.name()
                );
            }
        }
    }
    let reason = req.reason as usize % NR_REASONS;
    if sync {
        stats.count_served(req.vcpu_id);
    }
    if let Some(v) = stats.by_vcpu.get(req.vcpu_id as usize) {
        v.by_reason[reason].fetch_add(1, Ordering::Relaxed);
    }
    if verdict.audit.action == "deny" {
        stats.denied.fetch_add(1, Ordering::Relaxed);
        stats.denied_by_reason[reason].fetch_add(1, Ordering::Relaxed);
    }
    let mut rec = verdict.audit;
    rec.process = attribution;
    rec.time_ns = Some(boot::time::wallclock_ns());
    rec
}

/// Sequence number of the next printed record: a log pipeline can tell a
/// lost line from a quiet target.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Whether `--log` prints `rec`.
pub(super) fn shown(cfg: &Config, rec: &vmevent::AuditRecord) -> bool {
    match cfg.log {
        LogMode::All => true,
        LogMode::Violations => rec.level >= LogLevel::Warn || rec.action == "deny",
        LogMode::None => false,
    }
}

pub(super) fn audit(cfg: &Config, source: &AuditSource, rec: &vmevent::AuditRecord) {
    if shown(cfg, rec) {
        let mut rec = *rec;
        rec.seq = Some(SEQ.fetch_add(1, Ordering::Relaxed));
        let mut buf = [0u8; vmevent::audit::AUDIT_JSON_MAX];
        if let Some(line) = rec.write_json_from(source, &mut buf) {
            AUDIT.push(line.as_bytes());
        }
    }
}

/// The stub's audit lines, waiting for room in the console ring.
pub(super) static AUDIT: AuditQueue = AuditQueue::new();

/// Bytes the queue holds at most: some 2,000 records, seconds of events
/// at full speed under TCG.
const QUEUE_MAX: usize = 1 << 20;
/// How long a line waits for room in a full queue before it is dropped.
const FULL_WAIT_NS: u64 = 1_000_000_000;
/// How long the last lines wait for a console that takes nothing, when
/// the stub ends (it has nothing else to do then).
const FLUSH_WAIT_NS: u64 = 10_000_000_000;

pub(super) struct AuditQueue {
    lines: Mutex<VecDeque<Vec<u8>>>,
    bytes: AtomicUsize,
    dropped: AtomicU64,
}

impl AuditQueue {
    const fn new() -> Self {
        Self {
            lines: Mutex::new(VecDeque::new()),
            bytes: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues one line (a newline is added), draining first if the queue
    /// is full; drops it only after [`FULL_WAIT_NS`] without room.
    fn push(&self, line: &[u8]) {
        let need = line.len() + 1;
        let mut deadline = None;
        while self.bytes.load(Ordering::Acquire) + need > QUEUE_MAX {
            self.drain();
            let now = boot::time::now_ns();
            let end = *deadline.get_or_insert(now + FULL_WAIT_NS);
            if now >= end {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    println!("stub: audit queue full for 1 s: records dropped (counted)");
                }
                return;
            }
            boot::sched::yield_now();
        }
        let mut l = Vec::with_capacity(need);
        l.extend_from_slice(line);
        l.push(b'\n');
        self.bytes.fetch_add(need, Ordering::AcqRel);
        self.lines.lock().push_back(l);
    }

    /// Whether lines wait: a vCPU that would sleep long comes back soon.
    pub(super) fn waiting(&self) -> bool {
        self.bytes.load(Ordering::Acquire) > 0
    }

    /// Writes the lines the console ring takes now, oldest first; never
    /// waits (another vCPU draining is left to it).
    pub(super) fn drain(&self) {
        if !self.waiting() {
            return;
        }
        let Some(mut q) = self.lines.try_lock() else {
            return;
        };
        while let Some(l) = q.front() {
            if !boot::console::try_write_whole(l) {
                break;
            }
            self.bytes.fetch_sub(l.len(), Ordering::AcqRel);
            q.pop_front();
        }
    }

    /// At the end: every line out, whole, waiting for the console up to
    /// [`FLUSH_WAIT_NS`] without progress; then says what was dropped.
    pub(super) fn flush(&self) {
        let mut q = self.lines.lock();
        let mut since = boot::time::now_ns();
        while let Some(l) = q.front() {
            if boot::console::try_write_whole(l) {
                since = boot::time::now_ns();
            } else if boot::time::now_ns() - since < FLUSH_WAIT_NS {
                boot::sched::yield_now();
                continue;
            } else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            self.bytes.fetch_sub(l.len(), Ordering::AcqRel);
            q.pop_front();
        }
        let d = self.dropped.load(Ordering::Relaxed);
        if d > 0 {
            println!("stub: {d} audit record(s) dropped: the console took nothing for too long");
        }
    }
}
