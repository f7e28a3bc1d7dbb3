//! Test support: a tiny BTF encoder (from the format of
//! Documentation/bpf/btf.rst: a 24-byte header, the type section, the
//! string section) and kernels built with it that hide their fields the
//! ways real ones do. Shared by the unit tests and, through `#[path]`, the
//! command-line tests.

#![allow(dead_code)]

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_CONST: u32 = 10;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;

/// A struct or union member: name, type, bit offset, bitfield width.
pub struct M<'a> {
    name: &'a str,
    ty: u32,
    bit_offset: u32,
    bits: u8,
}

impl<'a> M<'a> {
    pub fn new(name: &'a str, ty: u32, bit_offset: u32) -> Self {
        M {
            name,
            ty,
            bit_offset,
            bits: 0,
        }
    }

    pub fn bits(mut self, bits: u8) -> Self {
        self.bits = bits;
        self
    }
}

pub struct Enc {
    /// The encoding of type id i+1 (`None`: reserved, not yet defined).
    types: Vec<Option<Vec<u8>>>,
    strings: Vec<u8>,
}

impl Default for Enc {
    fn default() -> Self {
        Self::new()
    }
}

impl Enc {
    pub fn new() -> Self {
        Enc {
            types: Vec::new(),
            strings: vec![0],
        }
    }

    fn name(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// A type id to refer to before its type is defined (a struct holding
    /// a pointer to itself).
    pub fn reserve(&mut self) -> u32 {
        self.types.push(None);
        self.types.len() as u32
    }

    fn define(&mut self, id: u32, bytes: Vec<u8>) -> u32 {
        self.types[id as usize - 1] = Some(bytes);
        id
    }

    fn head(
        &mut self,
        name: &str,
        kind: u32,
        kflag: bool,
        vlen: u32,
        size_or_type: u32,
    ) -> Vec<u8> {
        let info = (u32::from(kflag) << 31) | (kind << 24) | vlen;
        let mut b = Vec::new();
        for w in [self.name(name), info, size_or_type] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b
    }

    fn add(&mut self, bytes: Vec<u8>) -> u32 {
        let id = self.reserve();
        self.define(id, bytes)
    }

    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let mut b = self.head(name, KIND_INT, false, 0, size);
        let encoding = u32::from(signed);
        b.extend_from_slice(&((encoding << 24) | (size * 8)).to_le_bytes());
        self.add(b)
    }

    pub fn ptr(&mut self, to: u32) -> u32 {
        let b = self.head("", KIND_PTR, false, 0, to);
        self.add(b)
    }

    pub fn typedef(&mut self, name: &str, to: u32) -> u32 {
        let b = self.head(name, KIND_TYPEDEF, false, 0, to);
        self.add(b)
    }

    pub fn konst(&mut self, to: u32) -> u32 {
        let b = self.head("", KIND_CONST, false, 0, to);
        self.add(b)
    }

    pub fn fwd(&mut self, name: &str) -> u32 {
        let b = self.head(name, KIND_FWD, false, 0, 0);
        self.add(b)
    }

    pub fn array(&mut self, elem: u32, index: u32, n: u32) -> u32 {
        let mut b = self.head("", KIND_ARRAY, false, 0, 0);
        for w in [elem, index, n] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        self.add(b)
    }

    fn members(&mut self, kind: u32, name: &str, size: u32, members: &[M]) -> Vec<u8> {
        // As pahole does: kflag only where some member is a bitfield.
        let kflag = members.iter().any(|m| m.bits != 0);
        let mut b = self.head(name, kind, kflag, members.len() as u32, size);
        for m in members {
            let off = if kflag {
                (u32::from(m.bits) << 24) | m.bit_offset
            } else {
                m.bit_offset
            };
            for w in [self.name(m.name), m.ty, off] {
                b.extend_from_slice(&w.to_le_bytes());
            }
        }
        b
    }

    pub fn strukt(&mut self, name: &str, size: u32, members: &[M]) -> u32 {
        let id = self.reserve();
        self.define_struct(id, name, size, members)
    }

    pub fn define_struct(&mut self, id: u32, name: &str, size: u32, members: &[M]) -> u32 {
        let b = self.members(KIND_STRUCT, name, size, members);
        self.define(id, b)
    }

    pub fn union(&mut self, name: &str, size: u32, members: &[M]) -> u32 {
        let b = self.members(KIND_UNION, name, size, members);
        self.add(b)
    }

    /// A global variable.
    pub fn var(&mut self, name: &str, ty: u32) -> u32 {
        let mut b = self.head(name, KIND_VAR, false, 0, ty);
        b.extend_from_slice(&1u32.to_le_bytes());
        self.add(b)
    }

    /// A data section: (var id, offset, size) entries.
    pub fn datasec(&mut self, name: &str, size: u32, vars: &[(u32, u32, u32)]) -> u32 {
        let mut b = self.head(name, KIND_DATASEC, false, vars.len() as u32, size);
        for &(v, off, sz) in vars {
            for w in [v, off, sz] {
                b.extend_from_slice(&w.to_le_bytes());
            }
        }
        self.add(b)
    }

    pub fn finish(self) -> Vec<u8> {
        let types: Vec<u8> = self
            .types
            .into_iter()
            .enumerate()
            .flat_map(|(i, t)| {
                t.unwrap_or_else(|| panic!("type {} reserved, never defined", i + 1))
            })
            .collect();
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.push(1); // version
        out.push(0); // flags
        let tlen = types.len() as u32;
        for w in [24, 0, tlen, tlen, self.strings.len() as u32] {
            out.extend_from_slice(&u32::to_le_bytes(w));
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// Which per-CPU layout a test kernel has.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Percpu {
    /// 6.1: `struct task_struct *current_task` is a per-CPU variable.
    CurrentTask,
    /// 6.2+: `struct pcpu_hot pcpu_hot` holds `current_task`.
    PcpuHot,
    /// Neither: extraction must name both.
    None,
}

/// The offsets the test kernel places its fields at (bytes).
pub mod at {
    pub const TASK_SIZE: u32 = 9792;
    pub const FLAGS: u32 = 44;
    pub const TASKS: u32 = 2192;
    pub const MM: u32 = 2272;
    /// pid and tgid sit in an anonymous struct (as a randomized layout
    /// would put them) at 2400, itself in an anonymous union.
    pub const PID: u32 = 2416;
    pub const TGID: u32 = 2420;
    pub const REAL_PARENT: u32 = 2432;
    pub const COMM: u32 = 2976;
    /// mm_struct's fields sit in an anonymous struct at 0.
    pub const PGD: u32 = 72;
    pub const CURRENT_TASK: u32 = 0x1fb80;
    /// pcpu_hot at 0x1f000, current_task at 0 in it (its first member,
    /// in an anonymous struct in an anonymous union, as in 6.2).
    pub const PCPU_HOT: u32 = 0x1f000;
    pub const HOT_CURRENT_TASK: u32 = 0x1f000;
}

/// A kernel's BTF with task_struct, mm_struct and the per-CPU current task
/// laid out like Debian's 6.1 (offsets in [`at`]), its fields hidden in
/// anonymous unions and structs and next to bitfields.
pub fn kernel(percpu: Percpu) -> Vec<u8> {
    let mut e = Enc::new();
    let int = e.int("int", 4, true);
    let uint = e.int("unsigned int", 4, false);
    let ulong = e.int("long unsigned int", 8, false);
    let chr = e.int("char", 1, true);
    let pid_t = e.typedef("pid_t", int);
    let comm = e.array(chr, int, 16);

    let list_head = e.reserve();
    let lh_ptr = e.ptr(list_head);
    e.define_struct(
        list_head,
        "list_head",
        16,
        &[M::new("next", lh_ptr, 0), M::new("prev", lh_ptr, 64)],
    );

    let pgd_t = e.strukt("", 8, &[M::new("pgd", ulong, 0)]);
    let pgd_t = e.typedef("pgd_t", pgd_t);
    let pgd_ptr = e.ptr(pgd_t);
    let mm_fields = e.strukt(
        "",
        1088,
        &[
            M::new("mmap_base", ulong, 0),
            M::new("pgd", pgd_ptr, at::PGD * 8),
        ],
    );
    let mm = e.strukt(
        "mm_struct",
        1096,
        &[
            M::new("", mm_fields, 0),
            M::new("cpu_bitmap", ulong, 1088 * 8),
        ],
    );
    let mm_ptr = e.ptr(mm);

    let task = e.reserve();
    let task_ptr = e.ptr(task);
    let ids = e.strukt(
        "",
        24,
        &[
            M::new("exit_state", int, 0),
            M::new("pid", pid_t, (at::PID - 2400) * 8),
            M::new("tgid", pid_t, (at::TGID - 2400) * 8),
        ],
    );
    let ids_union = e.union("", 24, &[M::new("", ids, 0), M::new("rcu_users", int, 0)]);
    e.define_struct(
        task,
        "task_struct",
        at::TASK_SIZE,
        &[
            M::new("__state", uint, 24 * 8),
            M::new("flags", uint, at::FLAGS * 8),
            M::new("in_execve", uint, 48 * 8).bits(1),
            M::new("in_iowait", uint, 48 * 8 + 1).bits(1),
            M::new("tasks", list_head, at::TASKS * 8),
            M::new("mm", mm_ptr, at::MM * 8),
            M::new("", ids_union, 2400 * 8),
            M::new("real_parent", task_ptr, at::REAL_PARENT * 8),
            M::new("comm", comm, at::COMM * 8),
        ],
    );

    match percpu {
        Percpu::CurrentTask => {
            let other = e.var("cpu_number", int);
            let cur = e.var("current_task", task_ptr);
            e.datasec(
                ".data..percpu",
                0x35000,
                &[(other, 0x100, 4), (cur, at::CURRENT_TASK, 8)],
            );
        }
        Percpu::PcpuHot => {
            let hot_fields = e.strukt(
                "",
                16,
                &[
                    M::new("current_task", task_ptr, 0),
                    M::new("preempt_count", int, 64),
                ],
            );
            let pad = e.array(chr, int, 64);
            let hot_union = e.union("", 64, &[M::new("", hot_fields, 0), M::new("pad", pad, 0)]);
            let hot = e.strukt("pcpu_hot", 64, &[M::new("", hot_union, 0)]);
            let var = e.var("pcpu_hot", hot);
            e.datasec(".data..percpu", 0x35000, &[(var, at::PCPU_HOT, 64)]);
        }
        Percpu::None => {
            let other = e.var("cpu_number", int);
            e.datasec(".data..percpu", 0x35000, &[(other, 0x100, 4)]);
        }
    }
    e.finish()
}
