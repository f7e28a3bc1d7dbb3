//! Building `vm_event_response_t`s.
//!
//! Xen acts on a response only for a vCPU paused for vm_event and only if
//! the response echoes `VM_EVENT_FLAG_VCPU_PAUSED`; everything else is an
//! optional extra on top of that echo.

use crate::abi::{
    VmEventFlags, VmEventRegsX86, VmEventRequest, VmEventResponse, VM_EVENT_INTERFACE_VERSION,
    VM_EVENT_REASON_CPUID, VM_EVENT_REASON_SOFTWARE_BREAKPOINT,
};

/// x86 instructions are at most 15 bytes; anything else in `insn_length` is
/// garbage and must not move rip.
pub const MAX_INSN_LEN: u32 = 15;

/// Fills a response in place (the hot path avoids moving 400-byte values).
///
/// `for_request` writes the header only; the payload unions are written by
/// the setters that also raise the flag telling Xen to read them, so stale
/// payload bytes are never acted upon. Callers hand in a zeroed buffer anyway.
#[derive(Debug)]
pub struct ResponseBuilder<'a> {
    rsp: &'a mut VmEventResponse,
}

impl<'a> ResponseBuilder<'a> {
    /// The minimal answer: same version/reason/vCPU/altp2m view, and
    /// `VCPU_PAUSED` echoed if the request had it (so Xen unpauses).
    #[inline]
    pub fn for_request(rsp: &'a mut VmEventResponse, req: &VmEventRequest) -> Self {
        rsp.version = VM_EVENT_INTERFACE_VERSION;
        rsp.reason = req.reason;
        rsp.vcpu_id = req.vcpu_id;
        rsp.altp2m_idx = req.altp2m_idx;
        rsp.flags = req.flags & VmEventFlags::VCPU_PAUSED.bits();
        Self { rsp }
    }

    /// Answer for a slot/vCPU whose request we could not trust: unpause only.
    pub fn unpause_only(rsp: &'a mut VmEventResponse, vcpu_id: u32, reason: u32) -> Self {
        rsp.version = VM_EVENT_INTERFACE_VERSION;
        rsp.reason = reason;
        rsp.vcpu_id = vcpu_id;
        rsp.altp2m_idx = 0;
        rsp.flags = VmEventFlags::VCPU_PAUSED.bits();
        Self { rsp }
    }

    fn add(self, f: VmEventFlags) -> Self {
        self.rsp.flags |= f.bits();
        self
    }

    /// Veto the CR/MSR write that caused the event.
    pub fn deny(self) -> Self {
        self.add(VmEventFlags::DENY)
    }

    /// Load GPRs, rflags and rip from `regs` when the vCPU resumes.
    pub fn set_registers(self, regs: &VmEventRegsX86) -> Self {
        *self.rsp.regs_x86_mut() = *regs;
        self.add(VmEventFlags::SET_REGISTERS)
    }

    /// Resume after the trapping instruction: the request's registers with
    /// `rip += insn_length`, then `edit`. Returns `Err(self)` unchanged if
    /// `insn_length` is not a plausible x86 length (then nothing is skipped).
    pub fn skip_instruction(
        self,
        req: &VmEventRequest,
        insn_length: u32,
        edit: impl FnOnce(&mut VmEventRegsX86),
    ) -> Result<Self, Self> {
        if insn_length == 0 || insn_length > MAX_INSN_LEN {
            return Err(self);
        }
        let regs = self.rsp.regs_x86_mut();
        *regs = *req.regs_x86();
        regs.rip = regs.rip.wrapping_add(insn_length as u64);
        edit(regs);
        Ok(self.add(VmEventFlags::SET_REGISTERS))
    }

    /// CPUID emulation. In 4.17 Xen has already computed the leaf into
    /// rax/rbx/rcx/rdx of the request's registers and left rip on the
    /// instruction; the monitor must move rip past it (otherwise the guest
    /// re-executes CPUID forever). `None` values keep Xen's result.
    pub fn cpuid(self, req: &VmEventRequest, values: [Option<u32>; 4]) -> Self {
        let len = if req.reason == VM_EVENT_REASON_CPUID {
            req.cpuid().insn_length
        } else {
            0
        };
        let r = self.skip_instruction(req, len, |r| {
            let dst = [&mut r.rax, &mut r.rbx, &mut r.rcx, &mut r.rdx];
            for (d, v) in dst.into_iter().zip(values) {
                if let Some(v) = v {
                    *d = v as u64;
                }
            }
        });
        // Unusable length: plain echo; the vCPU retries the instruction.
        r.unwrap_or_else(|b| b)
    }

    /// Swallow an INT3: continue after it as if it were a NOP.
    pub fn skip_breakpoint(self, req: &VmEventRequest) -> Self {
        let len = if req.reason == VM_EVENT_REASON_SOFTWARE_BREAKPOINT {
            req.debug().insn_length
        } else {
            0
        };
        self.skip_instruction(req, len, |_| {})
            .unwrap_or_else(|b| b)
    }

    /// Let Xen emulate the instruction (mem_access events).
    pub fn emulate(self) -> Self {
        self.add(VmEventFlags::EMULATE)
    }

    /// Emulate but discard the writes.
    pub fn emulate_nowrite(self) -> Self {
        self.add(VmEventFlags::EMULATE | VmEventFlags::EMULATE_NOWRITE)
    }

    /// Emulate with the given bytes returned to the instruction's reads.
    pub fn emulate_read_data(self, data: &[u8]) -> Self {
        self.rsp.set_emul_read_data(data);
        self.add(VmEventFlags::EMULATE | VmEventFlags::SET_EMUL_READ_DATA)
    }

    /// Emulate the given instruction bytes instead of the ones in memory.
    pub fn emulate_insn_data(self, insn: [u8; 16]) -> Self {
        self.rsp.set_emul_insn_data(insn);
        self.add(VmEventFlags::EMULATE | VmEventFlags::SET_EMUL_INSN_DATA)
    }

    pub fn toggle_singlestep(self) -> Self {
        self.add(VmEventFlags::TOGGLE_SINGLESTEP)
    }

    /// Switch the vCPU to altp2m view `idx`.
    pub fn alternate_p2m(self, idx: u16) -> Self {
        self.rsp.altp2m_idx = idx;
        self.add(VmEventFlags::ALTERNATE_P2M)
    }
}

/// Build an owned response (convenience for tools and tests).
pub fn respond(
    req: &VmEventRequest,
    f: impl for<'b> FnOnce(ResponseBuilder<'b>) -> ResponseBuilder<'b>,
) -> VmEventResponse {
    let mut rsp = VmEventResponse::zeroed();
    f(ResponseBuilder::for_request(&mut rsp, req));
    rsp
}
