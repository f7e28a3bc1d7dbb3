//! Per-request evaluation.

use super::{Action, EventKind, LogLevel, Match, Policy, Rule};
use crate::abi::{
    VmEventRequest, VmEventResponse, XenDmOpInjectEvent, VM_EVENT_REASON_CPUID,
    VM_EVENT_REASON_DEBUG_EXCEPTION, VM_EVENT_REASON_DESCRIPTOR_ACCESS,
    VM_EVENT_REASON_GUEST_REQUEST, VM_EVENT_REASON_MOV_TO_MSR, VM_EVENT_REASON_SINGLESTEP,
    VM_EVENT_REASON_SOFTWARE_BREAKPOINT, VM_EVENT_REASON_WRITE_CTRLREG, VM_EVENT_X86_CR0,
    VM_EVENT_X86_CR3, VM_EVENT_X86_CR4,
};
use crate::audit::{Attribution, AuditRecord, PeekRecord, Process};
use crate::response::{ResponseBuilder, MAX_INSN_LEN};

/// X86 vectors for reinjection.
const X86_EXC_DB: u8 = 1;
const X86_EXC_BP: u8 = 3;

/// What to do with one request besides the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// A trap the stub must inject (`XEN_DMOP_inject_event`) *before*
    /// publishing `rsp`, so it is pending when the vCPU resumes.
    pub inject: Option<XenDmOpInjectEvent>,
    pub audit: AuditRecord,
}

/// Owned response plus verdict ([`Policy::decide`]).
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub rsp: VmEventResponse,
    pub verdict: Verdict,
}

/// The policy event kind of a request, or `None` for events no specific
/// rule kind covers (only `any` rules see those).
#[inline]
pub fn classify(req: &VmEventRequest) -> Option<EventKind> {
    Some(match req.reason {
        VM_EVENT_REASON_WRITE_CTRLREG => match req.write_ctrlreg().index {
            VM_EVENT_X86_CR0 => EventKind::Cr0,
            VM_EVENT_X86_CR3 => EventKind::Cr3,
            VM_EVENT_X86_CR4 => EventKind::Cr4,
            _ => return None,
        },
        VM_EVENT_REASON_MOV_TO_MSR => EventKind::Msr,
        VM_EVENT_REASON_CPUID => EventKind::Cpuid,
        VM_EVENT_REASON_SOFTWARE_BREAKPOINT => EventKind::Int3,
        VM_EVENT_REASON_GUEST_REQUEST => EventKind::GuestRequest,
        VM_EVENT_REASON_DEBUG_EXCEPTION => EventKind::Debug,
        VM_EVENT_REASON_DESCRIPTOR_ACCESS => EventKind::Desc,
        VM_EVENT_REASON_SINGLESTEP => EventKind::Singlestep,
        _ => return None,
    })
}

fn matches(
    m: &Match,
    kind: Option<EventKind>,
    req: &VmEventRequest,
    process: Option<&Process>,
) -> bool {
    if let Some(c) = &m.comm {
        if !process.is_some_and(|p| p.comm() == c.as_bytes()) {
            return false;
        }
    }
    if let Some(v) = m.vcpu {
        if v != req.vcpu_id {
            return false;
        }
    }
    if let Some(rip) = m.rip {
        if rip != req.regs_x86().rip {
            return false;
        }
    }
    match kind {
        Some(EventKind::Cr0 | EventKind::Cr3 | EventKind::Cr4) => {
            let w = req.write_ctrlreg();
            let set = w.new_value & !w.old_value;
            let cleared = w.old_value & !w.new_value;
            if m.set.is_some_and(|b| set & b == 0)
                || m.clear.is_some_and(|b| cleared & b == 0)
                || m.new.is_some_and(|(v, mask)| w.new_value & mask != v)
            {
                return false;
            }
        }
        Some(EventKind::Msr) => {
            let w = req.mov_to_msr();
            if m.nr_msrs != 0 && !m.msrs().iter().any(|&x| x as u64 == w.msr) {
                return false;
            }
            if m.new.is_some_and(|(v, mask)| w.new_value & mask != v) {
                return false;
            }
        }
        Some(EventKind::Cpuid) => {
            let c = req.cpuid();
            if m.leaf.is_some_and(|l| l != c.leaf) || m.subleaf.is_some_and(|s| s != c.subleaf) {
                return false;
            }
        }
        Some(EventKind::Desc) => {
            let d = req.desc_access();
            if m.desc.is_some_and(|x| x != d.descriptor)
                || m.is_write.is_some_and(|w| w != (d.is_write != 0))
            {
                return false;
            }
        }
        _ => {}
    }
    true
}

/// The native course of a trap the monitor intercepted: reinject it.
fn reinject(req: &VmEventRequest, kind: EventKind) -> Option<XenDmOpInjectEvent> {
    let d = req.debug();
    let (vector, cr2) = match kind {
        EventKind::Int3 => (X86_EXC_BP, 0),
        EventKind::Debug => (X86_EXC_DB, d.pending_dbg),
        _ => return None,
    };
    // Xen validates too, but a garbage length must not reach a hypercall.
    if d.insn_length > MAX_INSN_LEN {
        return None;
    }
    Some(XenDmOpInjectEvent {
        vcpuid: req.vcpu_id,
        vector,
        type_: d.type_,
        insn_len: d.insn_length as u8,
        pad0: 0,
        error_code: !0,
        pad1: 0,
        cr2,
    })
}

impl Policy {
    /// First matching rule for `req`, if any.
    #[inline]
    pub fn find(&self, req: &VmEventRequest) -> Option<&Rule> {
        self.find_kind(req, classify(req), None)
    }

    #[inline]
    fn find_kind(
        &self,
        req: &VmEventRequest,
        kind: Option<EventKind>,
        process: Option<&Process>,
    ) -> Option<&Rule> {
        self.rules().iter().find(|r| {
            (r.kind == EventKind::Any || Some(r.kind) == kind)
                && matches(&r.matches, kind, req, process)
        })
    }

    /// Owned-value convenience over [`Policy::evaluate`].
    pub fn decide(&self, req: &VmEventRequest) -> Decision {
        let mut rsp = VmEventResponse::zeroed();
        let verdict = self.evaluate(req, &mut rsp);
        Decision { rsp, verdict }
    }

    /// Decide on one request: fill `rsp` (in place: the hot path), return
    /// the reinjection to perform and the audit record.
    #[inline]
    pub fn evaluate(&self, req: &VmEventRequest, rsp: &mut VmEventResponse) -> Verdict {
        self.evaluate_for(req, None, rsp)
    }

    /// [`Policy::evaluate`] knowing the task behind the event (for `comm=`
    /// rules; `None`: not known, and no such rule matches). The audit
    /// record carries it.
    #[inline]
    pub fn evaluate_for(
        &self,
        req: &VmEventRequest,
        process: Option<&Process>,
        rsp: &mut VmEventResponse,
    ) -> Verdict {
        let kind = classify(req);
        let (action, level, line, peek) = match self.find_kind(req, kind, process) {
            Some(r) => (r.action, r.level, r.line, r.peek),
            None => (Action::Allow, LogLevel::Off, 0, None),
        };
        let b = ResponseBuilder::for_request(rsp, req);
        let mut inject = None;
        match (action, kind) {
            (Action::Deny, Some(k)) if k.is_cr() || k == EventKind::Msr => b.deny(),
            (Action::Spoof(vals), Some(EventKind::Cpuid)) => b.cpuid(req, vals),
            (_, Some(EventKind::Cpuid)) => b.cpuid(req, [None; 4]),
            (Action::Swallow, Some(EventKind::Int3)) => b.skip_breakpoint(req),
            (Action::Swallow, Some(EventKind::Debug)) => b,
            (_, Some(k @ (EventKind::Int3 | EventKind::Debug))) => {
                inject = reinject(req, k);
                b
            }
            _ => b,
        };
        Verdict {
            inject,
            audit: {
                let mut a = AuditRecord::new(req, kind, &action, level, line);
                if let Some(p) = process {
                    a.process = Attribution::Process(*p);
                }
                if let Some(p) = peek {
                    a.peek = PeekRecord::Wanted {
                        gva: p.reg.value(req.regs_x86()),
                        len: p.len,
                    };
                }
                a
            },
        }
    }
}
