//! The policy engine: a line-oriented rule text (vmevent/POLICY.md) parsed
//! into a fixed-capacity rule table, evaluated per request into a response,
//! an optional trap reinjection and an audit record.
//!
//! No allocation anywhere: the stub evaluates on its hot path.

mod eval;
mod monitors;
mod parse;

pub use eval::{classify, Decision, Verdict};
pub use monitors::{msr_monitorable, MonitorSet, Unenforceable, MAX_MONITORED_MSRS};
pub use parse::{ParseError, ParseErrorKind};

/// Upper bound on rules in one policy.
pub const MAX_RULES: usize = 64;
/// Upper bound on MSRs listed by one rule (`msr=a,b,c`).
pub const MAX_MSRS_PER_RULE: usize = 8;

/// Event kinds a rule can name (first word of a rule line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Cr0,
    Cr3,
    Cr4,
    Msr,
    Cpuid,
    Int3,
    GuestRequest,
    Debug,
    Desc,
    /// Single-step (Intel's monitor trap flag): hosts without it refuse
    /// the policy at attach time.
    Singlestep,
    /// Matches every event; needs no monitor of its own.
    Any,
}

impl EventKind {
    pub const ALL: [EventKind; 11] = [
        Self::Cr0,
        Self::Cr3,
        Self::Cr4,
        Self::Msr,
        Self::Cpuid,
        Self::Int3,
        Self::GuestRequest,
        Self::Debug,
        Self::Desc,
        Self::Singlestep,
        Self::Any,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Cr0 => "cr0",
            Self::Cr3 => "cr3",
            Self::Cr4 => "cr4",
            Self::Msr => "msr",
            Self::Cpuid => "cpuid",
            Self::Int3 => "int3",
            Self::GuestRequest => "guest-request",
            Self::Debug => "debug",
            Self::Desc => "desc",
            Self::Singlestep => "singlestep",
            Self::Any => "any",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "cr0" => Self::Cr0,
            "cr3" => Self::Cr3,
            "cr4" => Self::Cr4,
            "msr" => Self::Msr,
            "cpuid" => Self::Cpuid,
            "int3" | "breakpoint" => Self::Int3,
            "guest-request" => Self::GuestRequest,
            "debug" => Self::Debug,
            "desc" => Self::Desc,
            "singlestep" => Self::Singlestep,
            "any" => Self::Any,
            _ => return None,
        })
    }

    const fn is_cr(self) -> bool {
        matches!(self, Self::Cr0 | Self::Cr3 | Self::Cr4)
    }
}

/// Audit verbosity, ordered: the stub prints records at or above its
/// console threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Off,
    Debug,
    Info,
    Warn,
    Alert,
}

impl LogLevel {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Alert => "alert",
        }
    }
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "off" => Self::Off,
            "debug" => Self::Debug,
            "info" => Self::Info,
            "warn" => Self::Warn,
            "alert" => Self::Alert,
            _ => return None,
        })
    }
}

/// Most bytes one `peek=` reads.
pub const MAX_PEEK: u8 = 64;

/// `peek=REG:LEN`: when the rule decides, the stub reads `len` bytes of
/// guest memory at the guest-virtual address in `reg` (translated with the
/// event's CR3) into the audit record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peek {
    pub reg: PeekReg,
    pub len: u8,
}

/// The registers a `peek=` may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeekReg {
    Rax,
    Rbx,
    Rcx,
    Rdx,
    Rsi,
    Rdi,
    Rsp,
    Rbp,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
    Rip,
}

impl PeekReg {
    const ALL: [(&'static str, PeekReg); 17] = [
        ("rax", Self::Rax),
        ("rbx", Self::Rbx),
        ("rcx", Self::Rcx),
        ("rdx", Self::Rdx),
        ("rsi", Self::Rsi),
        ("rdi", Self::Rdi),
        ("rsp", Self::Rsp),
        ("rbp", Self::Rbp),
        ("r8", Self::R8),
        ("r9", Self::R9),
        ("r10", Self::R10),
        ("r11", Self::R11),
        ("r12", Self::R12),
        ("r13", Self::R13),
        ("r14", Self::R14),
        ("r15", Self::R15),
        ("rip", Self::Rip),
    ];

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, r)| *r)
    }

    /// The register's value in the event.
    pub fn value(self, r: &crate::abi::VmEventRegsX86) -> u64 {
        match self {
            Self::Rax => r.rax,
            Self::Rbx => r.rbx,
            Self::Rcx => r.rcx,
            Self::Rdx => r.rdx,
            Self::Rsi => r.rsi,
            Self::Rdi => r.rdi,
            Self::Rsp => r.rsp,
            Self::Rbp => r.rbp,
            Self::R8 => r.r8,
            Self::R9 => r.r9,
            Self::R10 => r.r10,
            Self::R11 => r.r11,
            Self::R12 => r.r12,
            Self::R13 => r.r13,
            Self::R14 => r.r14,
            Self::R15 => r.r15,
            Self::Rip => r.rip,
        }
    }
}

/// What a rule does with a matching event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Let the event take its native course (see POLICY.md per kind).
    Allow,
    /// Veto a CR/MSR write.
    Deny,
    /// Allow, and record at `info` unless told otherwise.
    Log,
    /// CPUID: replace some of eax/ebx/ecx/edx (None keeps Xen's value).
    Spoof([Option<u32>; 4]),
    /// INT3: resume after it without delivering #BP; debug: do not reinject.
    Swallow,
    /// INT3/debug: deliver the exception to the guest (the native course).
    Reinject,
}

impl Action {
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Log => "log",
            Self::Spoof(_) => "spoof",
            Self::Swallow => "swallow",
            Self::Reinject => "reinject",
        }
    }

    pub const fn default_level(&self) -> LogLevel {
        match self {
            Self::Allow => LogLevel::Off,
            Self::Deny => LogLevel::Warn,
            _ => LogLevel::Info,
        }
    }
}

/// Conditions of a rule; all given ones must hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Match {
    pub vcpu: Option<u32>,
    /// CR: any of these bits goes 0 -> 1.
    pub set: Option<u64>,
    /// CR: any of these bits goes 1 -> 0.
    pub clear: Option<u64>,
    /// CR/MSR: `(new_value & mask) == value`.
    pub new: Option<(u64, u64)>,
    pub msrs: [u32; MAX_MSRS_PER_RULE],
    pub nr_msrs: u8,
    pub leaf: Option<u32>,
    pub subleaf: Option<u32>,
    pub rip: Option<u64>,
    /// `VM_EVENT_DESC_*`.
    pub desc: Option<u8>,
    pub is_write: Option<bool>,
    /// `comm=NAME`: the task behind the event (needs a Linux profile; with
    /// none, or when the task cannot be read, the rule does not match).
    pub comm: Option<Comm>,
}

/// A task name a rule matches: 1 to 15 bytes (`TASK_COMM_LEN` - 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Comm {
    pub bytes: [u8; 16],
    pub len: u8,
}

impl Comm {
    pub fn new(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > 15 || !b.iter().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes[..b.len()].copy_from_slice(b);
        Some(Self {
            bytes,
            len: b.len() as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Match {
    pub fn msrs(&self) -> &[u32] {
        &self.msrs[..self.nr_msrs as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// 1-based line in the policy text (used in errors and audit records).
    pub line: u32,
    pub kind: EventKind,
    pub matches: Match,
    pub action: Action,
    pub level: LogLevel,
    pub peek: Option<Peek>,
}

impl Rule {
    const EMPTY: Rule = Rule {
        line: 0,
        kind: EventKind::Any,
        matches: Match {
            vcpu: None,
            set: None,
            clear: None,
            new: None,
            msrs: [0; MAX_MSRS_PER_RULE],
            nr_msrs: 0,
            leaf: None,
            subleaf: None,
            rip: None,
            desc: None,
            is_write: None,
            comm: None,
        },
        action: Action::Allow,
        level: LogLevel::Off,
        peek: None,
    };
}

/// A parsed policy: rules in text order, first match wins, no match means
/// `allow` at level `off`.
#[derive(Clone, Debug)]
pub struct Policy {
    rules: [Rule; MAX_RULES],
    len: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self::empty()
    }
}

impl Policy {
    /// The policy with no rules (allows everything, enables no monitor).
    pub const fn empty() -> Self {
        Self {
            rules: [Rule::EMPTY; MAX_RULES],
            len: 0,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules[..self.len]
    }

    /// Parse policy text; the error names the 1-based line.
    pub fn parse(text: &str) -> Result<Self, ParseError<'_>> {
        parse::parse(text)
    }

    pub(crate) fn push(&mut self, r: Rule) -> bool {
        if self.len == MAX_RULES {
            return false;
        }
        self.rules[self.len] = r;
        self.len += 1;
        true
    }
}
