//! The Linux kernel profile: what the stub must know about one kernel build
//! to name the process behind an event (which task is current on a vCPU,
//! its pid, tgid, name, parent, address space).
//!
//! A dom0 tool (`vmi-profile`, `tools/profile/`) extracts it from the
//! kernel's BTF; the stub parses it with [`Profile::parse`]. The format is
//! line-oriented text, versioned by its first line:
//!
//! ```text
//! vmi-profile 1
//! release 6.1.0-57-amd64
//! task_struct.size 9792
//! task_struct.pid 2416
//! ...
//! percpu.current_task 129920
//! percpu.current_task.via current_task
//! ```
//!
//! Every key of [`Key::ALL`] must be given exactly once, in any order;
//! `#` starts a comment. Keys, bounds and errors are documented in
//! `tools/profile/README.md`.
//!
//! `no_std`, no allocation: a [`Profile`] is a plain value and a
//! [`ParseError`] borrows the offending text.

#![no_std]

use core::fmt;

mod parse;

pub use parse::{ParseError, ParseErrorKind};

/// The first word of a profile.
pub const MAGIC: &str = "vmi-profile";
/// The format version this crate reads and writes.
pub const VERSION: u32 = 1;

/// Struct offsets and `task_struct.size` are below 64 KiB. `task_struct` is
/// about 10 KiB on distribution kernels (9792 bytes on Debian's 6.1) and
/// stays below 16 KiB even with lockdep and the other debug options; a
/// larger number is a corrupt profile, not a kernel.
pub const MAX_STRUCT_OFFSET: u32 = 0x1_0000;
/// Per-CPU offsets are below 1 MiB. The static per-CPU area of an x86-64
/// kernel (`.data..percpu`, linked at 0) is about 210 KiB on Debian's 6.1.
pub const MAX_PERCPU_OFFSET: u32 = 0x10_0000;
/// `task_struct.comm` is `char[TASK_COMM_LEN]`, 16 since Linux 2.6; up to
/// 64 is accepted.
pub const MAX_COMM_LEN: u32 = 64;
/// A release is at most `__NEW_UTS_LEN` (64) bytes, like `uname -r`.
pub const MAX_RELEASE_LEN: usize = 64;

/// `task_struct.flags` bit of kernel threads (`include/linux/sched.h`). It
/// is a `#define`, so BTF does not carry it; it has been this value since
/// Linux 2.6.27.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// The kernel release (`uname -r`), e.g. `6.1.0-57-amd64`: 1 to 64
/// printable ASCII characters, no space and no `#`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Release {
    bytes: [u8; MAX_RELEASE_LEN],
    len: u8,
}

impl Release {
    pub fn new(s: &str) -> Option<Release> {
        let ok = |b: &u8| b.is_ascii_graphic() && *b != b'#';
        if s.is_empty() || s.len() > MAX_RELEASE_LEN || !s.bytes().all(|b| ok(&b)) {
            return None;
        }
        let mut bytes = [0; MAX_RELEASE_LEN];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Some(Release {
            bytes,
            len: s.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (`new`).
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Byte offsets inside `struct task_struct`, and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskStruct {
    pub size: u32,
    /// `pid_t pid` (4 bytes).
    pub pid: u32,
    /// `pid_t tgid` (4 bytes).
    pub tgid: u32,
    /// `char comm[comm_len]`, NUL-padded.
    pub comm: u32,
    pub comm_len: u32,
    /// `struct task_struct *real_parent`.
    pub real_parent: u32,
    /// `struct mm_struct *mm` (NULL for kernel threads).
    pub mm: u32,
    /// `struct list_head tasks` (the list of all processes).
    pub tasks: u32,
    /// `unsigned int flags` ([`PF_KTHREAD`]).
    pub flags: u32,
}

/// Byte offsets inside `struct mm_struct`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmStruct {
    /// `pgd_t *pgd` (a kernel virtual address; CR3 holds its physical one).
    pub pgd: u32,
}

/// How the per-CPU offset of the current task was found: the kernels
/// differ, the stub reads the pointer the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CurrentTaskVia {
    /// Up to 6.1: the per-CPU variable `current_task` itself.
    CurrentTask,
    /// From 6.2: the per-CPU variable `pcpu_hot` plus
    /// `offsetof(struct pcpu_hot, current_task)`.
    PcpuHot,
}

impl CurrentTaskVia {
    pub const fn name(self) -> &'static str {
        match self {
            Self::CurrentTask => "current_task",
            Self::PcpuHot => "pcpu_hot",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "current_task" => Some(Self::CurrentTask),
            "pcpu_hot" => Some(Self::PcpuHot),
            _ => None,
        }
    }
}

/// Where the running task's `struct task_struct *` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurrentTask {
    /// Offset from the CPU's per-CPU base: the GS base while the CPU is in
    /// the kernel (`MSR_GS_BASE`), the saved `MSR_KERNEL_GS_BASE` while it
    /// is in user space (swapgs).
    pub percpu_offset: u32,
    pub via: CurrentTaskVia,
}

/// One kernel build's profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    pub release: Release,
    pub task_struct: TaskStruct,
    pub mm_struct: MmStruct,
    pub current_task: CurrentTask,
}

/// The keys of the format, in the order the writer puts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Release,
    TaskSize,
    TaskPid,
    TaskTgid,
    TaskComm,
    TaskCommLen,
    TaskRealParent,
    TaskMm,
    TaskTasks,
    TaskFlags,
    MmPgd,
    CurrentTask,
    CurrentTaskVia,
}

impl Key {
    pub const ALL: [Key; 13] = [
        Key::Release,
        Key::TaskSize,
        Key::TaskPid,
        Key::TaskTgid,
        Key::TaskComm,
        Key::TaskCommLen,
        Key::TaskRealParent,
        Key::TaskMm,
        Key::TaskTasks,
        Key::TaskFlags,
        Key::MmPgd,
        Key::CurrentTask,
        Key::CurrentTaskVia,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Key::Release => "release",
            Key::TaskSize => "task_struct.size",
            Key::TaskPid => "task_struct.pid",
            Key::TaskTgid => "task_struct.tgid",
            Key::TaskComm => "task_struct.comm",
            Key::TaskCommLen => "task_struct.comm_len",
            Key::TaskRealParent => "task_struct.real_parent",
            Key::TaskMm => "task_struct.mm",
            Key::TaskTasks => "task_struct.tasks",
            Key::TaskFlags => "task_struct.flags",
            Key::MmPgd => "mm_struct.pgd",
            Key::CurrentTask => "percpu.current_task",
            Key::CurrentTaskVia => "percpu.current_task.via",
        }
    }

    pub fn from_name(s: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The inclusive range of a numeric key; `None` for the words.
    pub const fn range(self) -> Option<(u32, u32)> {
        match self {
            Key::Release | Key::CurrentTaskVia => None,
            Key::TaskSize => Some((1, MAX_STRUCT_OFFSET - 1)),
            Key::TaskCommLen => Some((1, MAX_COMM_LEN)),
            Key::CurrentTask => Some((0, MAX_PERCPU_OFFSET - 1)),
            _ => Some((0, MAX_STRUCT_OFFSET - 1)),
        }
    }

    /// The number this key holds in `p`; `None` for the words.
    pub fn number(self, p: &Profile) -> Option<u32> {
        let t = &p.task_struct;
        Some(match self {
            Key::Release | Key::CurrentTaskVia => return None,
            Key::TaskSize => t.size,
            Key::TaskPid => t.pid,
            Key::TaskTgid => t.tgid,
            Key::TaskComm => t.comm,
            Key::TaskCommLen => t.comm_len,
            Key::TaskRealParent => t.real_parent,
            Key::TaskMm => t.mm,
            Key::TaskTasks => t.tasks,
            Key::TaskFlags => t.flags,
            Key::MmPgd => p.mm_struct.pgd,
            Key::CurrentTask => p.current_task.percpu_offset,
        })
    }

    fn number_mut(self, p: &mut Profile) -> Option<&mut u32> {
        let t = &mut p.task_struct;
        Some(match self {
            Key::Release | Key::CurrentTaskVia => return None,
            Key::TaskSize => &mut t.size,
            Key::TaskPid => &mut t.pid,
            Key::TaskTgid => &mut t.tgid,
            Key::TaskComm => &mut t.comm,
            Key::TaskCommLen => &mut t.comm_len,
            Key::TaskRealParent => &mut t.real_parent,
            Key::TaskMm => &mut t.mm,
            Key::TaskTasks => &mut t.tasks,
            Key::TaskFlags => &mut t.flags,
            Key::MmPgd => &mut p.mm_struct.pgd,
            Key::CurrentTask => &mut p.current_task.percpu_offset,
        })
    }

    /// How many bytes the field of a `task_struct.*` offset key occupies
    /// (x86-64: pointers 8, `pid_t` 4, `list_head` 16).
    fn task_field_width(self, p: &Profile) -> Option<u32> {
        Some(match self {
            Key::TaskPid | Key::TaskTgid | Key::TaskFlags => 4,
            Key::TaskComm => p.task_struct.comm_len,
            Key::TaskRealParent | Key::TaskMm => 8,
            Key::TaskTasks => 16,
            _ => return None,
        })
    }
}

impl Profile {
    /// Parses the text of a profile (grammar in `tools/profile/README.md`).
    pub fn parse(text: &str) -> Result<Profile, ParseError<'_>> {
        parse::parse(text)
    }

    /// Whether every value is within its bounds ([`Key::range`]) and every
    /// `task_struct` field lies inside `task_struct.size`: the first key
    /// that is not, and why. A profile that passes writes text that
    /// [`Profile::parse`] reads back as the same profile.
    pub fn check(&self) -> Result<(), (Key, ParseErrorKind)> {
        for key in Key::ALL {
            if let (Some(v), Some((lo, hi))) = (key.number(self), key.range()) {
                if !(lo..=hi).contains(&v) {
                    return Err((key, ParseErrorKind::OutOfRange));
                }
            }
        }
        for key in Key::ALL {
            if let (Some(off), Some(w)) = (key.number(self), key.task_field_width(self)) {
                // Both below 64 KiB here: no overflow.
                if off + w > self.task_struct.size {
                    return Err((key, ParseErrorKind::OutsideTaskStruct));
                }
            }
        }
        Ok(())
    }
}

/// The profile's text: the version line, one comment, then every key in
/// [`Key::ALL`] order, numbers in decimal (as `pahole` and `bpftool` print
/// offsets, so they can be compared by eye).
impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{MAGIC} {VERSION}")?;
        writeln!(
            f,
            "# Byte offsets from BTF; percpu.* are from the CPU's per-CPU base (kernel GS base)."
        )?;
        for key in Key::ALL {
            let name = key.name();
            match key {
                Key::Release => writeln!(f, "{name} {}", self.release)?,
                Key::CurrentTaskVia => writeln!(f, "{name} {}", self.current_task.via.name())?,
                _ => writeln!(f, "{name} {}", key.number(self).unwrap_or(0))?,
            }
        }
        Ok(())
    }
}

/// A stub gets one PVH module (xl gives a PVH guest one `ramdisk`): a
/// policy, a profile, or a policy followed by a profile (what `vmi-launch
/// --profile` writes). The profile begins at its first line, `vmi-profile
/// N`. Returns (policy, profile); a policy part of blank lines is none.
pub fn split_module(text: &str) -> (Option<&str>, Option<&str>) {
    let starts_profile = |line: &str| {
        line.strip_prefix(MAGIC)
            .is_some_and(|rest| rest.starts_with([' ', '\t']))
    };
    let mut at = 0;
    let mut profile = None;
    for line in text.split_inclusive('\n') {
        if starts_profile(line) {
            profile = Some(&text[at..]);
            break;
        }
        at += line.len();
    }
    let policy = &text[..at];
    let policy = (!policy.trim().is_empty()).then_some(policy);
    (policy, profile)
}
