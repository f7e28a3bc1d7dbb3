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

/// The privilege the vCPU ran at when the event happened (`cs` RPL, which
/// is the CPL in long mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    User,
    Kernel,
}

impl Mode {
    pub fn of(req: &VmEventRequest) -> Self {
        if req.regs_x86().cs_sel & 3 == 3 {
            Self::User
        } else {
            Self::Kernel
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Kernel => "kernel",
        }
    }
}

/// The guest task behind an event, read from the guest's memory: every
/// byte is the guest's word, so `comm` is escaped when printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub tgid: u32,
    /// `task_struct.comm`: up to 16 bytes, NUL-terminated if shorter.
    pub comm: [u8; 16],
}

impl Process {
    /// `comm` up to its first NUL.
    pub fn comm(&self) -> &[u8] {
        let n = self.comm.iter().position(|&b| b == 0).unwrap_or(16);
        &self.comm[..n]
    }
}

/// Who ran when the event happened, as far as the stub could tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribution {
    /// No OS profile: the stub does not look.
    None,
    Process(Process),
    /// Looking failed (unmapped memory, a hostile page table...): why.
    Failed(&'static str),
}

/// Guest memory a rule's `peek=` asked for, and what the stub found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeekRecord {
    None,
    /// Asked for; the stub has not read it (it says so if it cannot).
    Wanted {
        gva: u64,
        len: u8,
    },
    Bytes {
        gva: u64,
        len: u8,
        bytes: [u8; 64],
    },
    Failed {
        gva: u64,
        why: &'static str,
    },
}

/// What every record of one stub shares: the monitored domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditSource {
    pub domid: u16,
    /// `xen_domain_handle_t`.
    pub uuid: [u8; 16],
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
    pub mode: Mode,
    /// Per-stub sequence number, set by the stub when it prints.
    pub seq: Option<u64>,
    /// Wall-clock nanoseconds since the Unix epoch, set by the stub.
    pub time_ns: Option<u64>,
    pub process: Attribution,
    pub peek: PeekRecord,
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
            mode: Mode::of(req),
            seq: None,
            time_ns: None,
            process: Attribution::None,
            peek: PeekRecord::None,
        }
    }

    /// `Display`able JSON object (no trailing newline).
    pub fn json(&self) -> AuditJson<'_> {
        AuditJson(self, None)
    }

    /// The same, naming the monitored domain.
    pub fn json_from<'a>(&'a self, src: &'a AuditSource) -> AuditJson<'a> {
        AuditJson(self, Some(src))
    }

    /// Render into `buf`; returns the JSON text, or `None` if `buf` is too
    /// small ([`AUDIT_JSON_MAX`] bytes always suffice).
    pub fn write_json<'b>(&self, buf: &'b mut [u8]) -> Option<&'b str> {
        write_into(buf, self.json())
    }

    /// [`Self::write_json`] naming the monitored domain.
    pub fn write_json_from<'b>(&self, src: &AuditSource, buf: &'b mut [u8]) -> Option<&'b str> {
        write_into(buf, self.json_from(src))
    }
}

fn write_into<'b>(buf: &'b mut [u8], j: AuditJson<'_>) -> Option<&'b str> {
    let mut w = SliceWriter { buf, len: 0 };
    fmt::write(&mut w, format_args!("{j}")).ok()?;
    let len = w.len;
    core::str::from_utf8(&w.buf[..len]).ok()
}

/// Upper bound on one rendered record.
pub const AUDIT_JSON_MAX: usize = 1024;

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

pub struct AuditJson<'a>(&'a AuditRecord, Option<&'a AuditSource>);

/// Bytes from the guest as a JSON string: printable ASCII as is (but the
/// quote and the backslash, escaped), everything else `\u00XX`, so no guest
/// byte can end the string, break the line or smuggle a control character
/// into a log pipeline.
struct GuestStr<'a>(&'a [u8]);
impl fmt::Display for GuestStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &b in self.0 {
            match b {
                b'"' => f.write_str("\\\"")?,
                b'\\' => f.write_str("\\\\")?,
                0x20..=0x7e => fmt::Write::write_char(f, b as char)?,
                _ => write!(f, "\\u{b:04x}")?,
            }
        }
        f.write_str("\"")
    }
}

/// RFC 3339 UTC with nanoseconds, from nanoseconds since the epoch.
struct Rfc3339(u64);
impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let (y, m, d) = civil_from_days(secs / 86_400);
        let s = secs % 86_400;
        write!(
            f,
            "\"{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z\"",
            s / 3600,
            s / 60 % 60,
            s % 60,
            self.0 % 1_000_000_000
        )
    }
}

/// (year, month, day) of the `days`-th day after 1970-01-01, proleptic
/// Gregorian. Counts whole 400-year eras (146097 days each) from
/// 0000-03-01, so that the leap day is the last day of each year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March year
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

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
            ",\"rule\":{},\"level\":\"{}\",\"mode\":\"{}\"",
            r.rule_line,
            r.level.name(),
            r.mode.name()
        )?;
        match r.process {
            Attribution::None => {}
            Attribution::Process(p) => write!(
                f,
                ",\"process\":{{\"pid\":{},\"tgid\":{},\"comm\":{}}}",
                p.pid,
                p.tgid,
                GuestStr(p.comm())
            )?,
            Attribution::Failed(why) => write!(f, ",\"process\":{{\"error\":\"{why}\"}}")?,
        }
        match r.peek {
            PeekRecord::None => {}
            PeekRecord::Wanted { gva, .. } => write!(
                f,
                ",\"peek\":{{\"gva\":{},\"error\":\"not read\"}}",
                Hex(gva)
            )?,
            PeekRecord::Bytes { gva, len, bytes } => {
                write!(f, ",\"peek\":{{\"gva\":{},\"bytes\":\"", Hex(gva))?;
                for b in &bytes[..usize::from(len).min(64)] {
                    write!(f, "{b:02x}")?;
                }
                f.write_str("\"}")?;
            }
            PeekRecord::Failed { gva, why } => {
                write!(f, ",\"peek\":{{\"gva\":{},\"error\":\"{why}\"}}", Hex(gva))?
            }
        }
        if let Some(seq) = r.seq {
            write!(f, ",\"seq\":{seq}")?;
        }
        if let Some(t) = r.time_ns {
            write!(f, ",\"time\":{}", Rfc3339(t))?;
        }
        if let Some(s) = self.1 {
            let u = s.uuid;
            write!(
                f,
                ",\"domid\":{},\"uuid\":\"{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}\"",
                s.domid,
                u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
                u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]
            )?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::fmt::Write as _;

    #[test]
    fn days_map_to_their_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
    }

    #[test]
    fn times_render_as_rfc3339_utc() {
        let t = 20_788 * 86_400 * 1_000_000_000 + (20 * 3600 + 51 * 60 + 7) * 1_000_000_000 + 42;
        assert_eq!(
            alloc_free(|f| write!(f, "{}", Rfc3339(t))),
            "\"2026-12-01T20:51:07.000000042Z\""
        );
    }

    #[test]
    fn guest_bytes_cannot_break_the_string_or_the_line() {
        assert_eq!(
            alloc_free(|f| write!(f, "{}", GuestStr(b"a\"b\\c\n\x00\xff"))),
            "\"a\\\"b\\\\c\\u000a\\u0000\\u00ff\""
        );
    }

    /// Renders into a fixed buffer (the crate is no_std).
    fn alloc_free(w: impl Fn(&mut SliceWriter<'_>) -> fmt::Result) -> &'static str {
        let buf: &'static mut [u8] = std::boxed::Box::leak(std::vec![0u8; 256].into_boxed_slice());
        let mut s = SliceWriter { buf, len: 0 };
        w(&mut s).unwrap();
        let len = s.len;
        core::str::from_utf8(&s.buf[..len]).unwrap()
    }
}
