//! Answering a request with the policy, then auditing it.

use core::sync::atomic::{AtomicU64, Ordering};
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
        stats.served.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(v) = stats.by_vcpu.get(req.vcpu_id as usize) {
        v[reason].fetch_add(1, Ordering::Relaxed);
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

pub(super) fn audit(cfg: &Config, source: &AuditSource, rec: &vmevent::AuditRecord) {
    let show = match cfg.log {
        LogMode::All => true,
        LogMode::Violations => rec.level >= LogLevel::Warn || rec.action == "deny",
        LogMode::None => false,
    };
    if show {
        let mut rec = *rec;
        rec.seq = Some(SEQ.fetch_add(1, Ordering::Relaxed));
        let mut buf = [0u8; vmevent::audit::AUDIT_JSON_MAX];
        if let Some(line) = rec.write_json_from(source, &mut buf) {
            println!("{line}");
        }
    }
}
