//! Audit records: one per evaluated event, rendered as one JSON line with
//! nothing but `core::fmt`.

use crate::abi::{VmEventReason, VmEventRequest};
use crate::policy::{Action, EventKind, LogLevel};
use core::fmt;

/// Event-specific fields of an audit record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditDetail {
    None,
    Ctrlreg { index: u32, old: u64, new: u64 },
    Msr { msr: u64, old: u64, new: u64 },
    Cpuid { leaf: u32, subleaf: u32 },
    Breakpoint { gfn: u64, insn_length: u32 },
    GuestRequest { rax: u64 },
    Debug { pending_dbg: u64, type_: u8 },
    Desc { descriptor: u8, is_write: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub vcpu: u32,
    /// Raw `VM_EVENT_REASON_*`.
    pub reason: u32,
    pub kind: Option<EventKind>,
    pub rip: u64,
    pub detail: AuditDetail,
    pub action: &'static str,
    /// CPUID values forced by a spoof rule.
    pub spoof: [Option<u32>; 4],
    /// Line of the deciding rule, 0 for the default.
    pub rule_line: u32,
    pub level: LogLevel,
}

impl AuditRecord {
    pub fn new(
        req: &VmEventRequest,
        kind: Option<EventKind>,
        action: &Action,
        level: LogLevel,
        rule_line: u32,
    ) -> Self {
        let detail = match VmEventReason::from_raw(req.reason) {
            Some(VmEventReason::WriteCtrlreg) => {
                let w = req.write_ctrlreg();
                AuditDetail::Ctrlreg {
                    index: w.index,
                    old: w.old_value,
                    new: w.new_value,
                }
            }
            Some(VmEventReason::MovToMsr) => {
                let w = req.mov_to_msr();
                AuditDetail::Msr {
                    msr: w.msr,
                    old: w.old_value,
                    new: w.new_value,
                }
            }
            Some(VmEventReason::Cpuid) => {
                let c = req.cpuid();
                AuditDetail::Cpuid {
                    leaf: c.leaf,
                    subleaf: c.subleaf,
                }
            }
            Some(VmEventReason::SoftwareBreakpoint) => {
                let d = req.debug();
                AuditDetail::Breakpoint {
                    gfn: d.gfn,
                    insn_length: d.insn_length,
                }
            }
            Some(VmEventReason::GuestRequest) => AuditDetail::GuestRequest {
                rax: req.regs_x86().rax,
            },
            Some(VmEventReason::DebugException) => {
                let d = req.debug();
                AuditDetail::Debug {
                    pending_dbg: d.pending_dbg,
                    type_: d.type_,
                }
            }
            Some(VmEventReason::DescriptorAccess) => {
                let d = req.desc_access();
                AuditDetail::Desc {
                    descriptor: d.descriptor,
                    is_write: d.is_write != 0,
                }
            }
            _ => AuditDetail::None,
        };
        let spoof = match action {
            Action::Spoof(v) => *v,
            _ => [None; 4],
        };
        Self {
            vcpu: req.vcpu_id,
            reason: req.reason,
            kind,
            rip: req.regs_x86().rip,
            detail,
            action: action.name(),
            spoof,
            rule_line,
            level,
        }
    }

    /// `Display`able JSON object (no trailing newline).
    pub fn json(&self) -> AuditJson<'_> {
        AuditJson(self)
    }

    /// Render into `buf`; returns the JSON text, or `None` if `buf` is too
    /// small (512 bytes always suffice).
    pub fn write_json<'b>(&self, buf: &'b mut [u8]) -> Option<&'b str> {
        let mut w = SliceWriter { buf, len: 0 };
        fmt::write(&mut w, format_args!("{}", self.json())).ok()?;
        let len = w.len;
        core::str::from_utf8(&w.buf[..len]).ok()
    }
}

/// Upper bound on one rendered record.
pub const AUDIT_JSON_MAX: usize = 512;

struct SliceWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

pub struct AuditJson<'a>(&'a AuditRecord);

/// 64-bit values are hex strings: JSON numbers lose precision past 2^53.
struct Hex(u64);
impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{:#x}\"", self.0)
    }
}

impl fmt::Display for AuditJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        // Every string we emit is one of our static names, so no escaping
        // is needed; nothing from the peer is printed as a string.
        let event = match VmEventReason::from_raw(r.reason) {
            Some(x) => x.name(),
            None => "invalid",
        };
        write!(f, "{{\"vcpu\":{},\"event\":\"{}\"", r.vcpu, event)?;
        if let Some(k) = r.kind {
            write!(f, ",\"kind\":\"{}\"", k.name())?;
        } else {
            write!(f, ",\"reason\":{}", r.reason)?;
        }
        write!(f, ",\"rip\":{}", Hex(r.rip))?;
        match r.detail {
            AuditDetail::None => {}
            AuditDetail::Ctrlreg { index, old, new } => write!(
                f,
                ",\"index\":{},\"old\":{},\"new\":{}",
                index,
                Hex(old),
                Hex(new)
            )?,
            AuditDetail::Msr { msr, old, new } => write!(
                f,
                ",\"msr\":{},\"old\":{},\"new\":{}",
                Hex(msr),
                Hex(old),
                Hex(new)
            )?,
            AuditDetail::Cpuid { leaf, subleaf } => write!(
                f,
                ",\"leaf\":{},\"subleaf\":{}",
                Hex(leaf as u64),
                Hex(subleaf as u64)
            )?,
            AuditDetail::Breakpoint { gfn, insn_length } => {
                write!(f, ",\"gfn\":{},\"insn_length\":{}", Hex(gfn), insn_length)?
            }
            AuditDetail::GuestRequest { rax } => write!(f, ",\"rax\":{}", Hex(rax))?,
            AuditDetail::Debug { pending_dbg, type_ } => write!(
                f,
                ",\"pending_dbg\":{},\"type\":{}",
                Hex(pending_dbg),
                type_
            )?,
            AuditDetail::Desc {
                descriptor,
                is_write,
            } => write!(f, ",\"descriptor\":{},\"write\":{}", descriptor, is_write)?,
        }
        write!(f, ",\"action\":\"{}\"", r.action)?;
        for (name, v) in ["eax", "ebx", "ecx", "edx"].iter().zip(r.spoof) {
            if let Some(v) = v {
                write!(f, ",\"{}\":{}", name, Hex(v as u64))?;
            }
        }
        write!(
            f,
            ",\"rule\":{},\"level\":\"{}\"}}",
            r.rule_line,
            r.level.name()
        )
    }
}
