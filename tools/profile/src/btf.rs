//! Questions to the kernel's BTF, over `btf-rs`: a struct by name, the
//! byte offset of a member (through anonymous structs and unions, and
//! across bitfield encodings), a per-CPU variable's offset in the
//! `.data..percpu` DATASEC.
//!
//! btf-rs parses the section and gives members with their kflag-aware bit
//! offsets and DATASEC entries with their offsets; what a name means
//! (anonymous nesting, typedef chains, "is this a pointer to
//! task_struct") is decided here. Every error is one line naming the type
//! or member that was looked for.

use btf_rs::{BtfType, Struct, Type};

/// A modifier chain longer than this, or anonymous nesting deeper than
/// this, is taken as a loop in corrupt BTF (real kernels need 3 or 4).
const MAX_DEPTH: usize = 32;

pub struct Btf {
    inner: btf_rs::Btf,
}

/// A member found inside a struct.
#[derive(Debug)]
pub struct Member {
    /// From the start of the outermost struct, through anonymous members.
    pub bit_offset: u32,
    /// The width of a bitfield member, `None` for an ordinary member.
    pub bitfield_bits: Option<u32>,
    pub ty: Type,
}

impl Member {
    /// The byte offset, refused for a field that is not byte-addressable
    /// (the stub reads whole fields from guest memory).
    pub fn byte_offset(&self, what: &str) -> Result<u32, String> {
        if let Some(bits) = self.bitfield_bits {
            return Err(format!(
                "{what} is a {bits}-bit bitfield, not a field the stub can read"
            ));
        }
        if !self.bit_offset.is_multiple_of(8) {
            return Err(format!(
                "{what} starts at bit {}, not on a byte",
                self.bit_offset
            ));
        }
        Ok(self.bit_offset / 8)
    }
}

impl Btf {
    pub fn parse(bytes: &[u8]) -> Result<Btf, String> {
        let inner = btf_rs::Btf::from_bytes(bytes).map_err(|e| format!("bad BTF: {e}"))?;
        Ok(Btf { inner })
    }

    fn name(&self, t: &dyn BtfType) -> Result<String, String> {
        self.inner
            .resolve_name(t)
            .map_err(|e| format!("bad BTF: {e}"))
    }

    fn chained(&self, t: &dyn BtfType) -> Result<Type, String> {
        self.inner
            .resolve_chained_type(t)
            .map_err(|e| format!("bad BTF: {e}"))
    }

    /// The type a type stands for: typedefs, `const`, `volatile`,
    /// `restrict` and type tags removed.
    pub fn peel(&self, mut t: Type) -> Result<Type, String> {
        for _ in 0..MAX_DEPTH {
            t = match &t {
                Type::Typedef(x) => self.chained(x)?,
                Type::Const(x) | Type::Volatile(x) | Type::Restrict(x) => self.chained(x)?,
                Type::TypeTag(x) => self.chained(x)?,
                _ => return Ok(t),
            };
        }
        Err("bad BTF: a typedef/modifier chain does not end".into())
    }

    /// What a pointer points to (peeled), or `None` if `t` is no pointer.
    pub fn pointee(&self, t: Type) -> Result<Option<Type>, String> {
        match self.peel(t)? {
            Type::Ptr(p) => Ok(Some(self.peel(self.chained(&p)?)?)),
            _ => Ok(None),
        }
    }

    /// An array's element type (not peeled).
    pub fn element(&self, a: &btf_rs::Array) -> Result<Type, String> {
        self.chained(a)
    }

    /// The name of a forward declaration.
    pub fn fwd_name(&self, f: &btf_rs::Fwd) -> Result<String, String> {
        self.name(f)
    }

    /// The name of a struct or union type (empty if anonymous).
    pub fn struct_name(&self, s: &Struct) -> Result<String, String> {
        self.name(s)
    }

    /// The one `struct <name>` of the kernel. BTF may also hold forward
    /// declarations of it, which are skipped; two different definitions
    /// are refused rather than guessed between.
    pub fn named_struct(&self, name: &str) -> Result<Struct, String> {
        let types = self
            .inner
            .resolve_types_by_name(name)
            .map_err(|e| format!("bad BTF: {e}"))?;
        let mut found: Option<Struct> = None;
        for t in types {
            if let Type::Struct(s) = t {
                match &found {
                    Some(f) if f.size() != s.size() || f.members.len() != s.members.len() => {
                        return Err(format!(
                            "BTF has two different definitions of struct {name}"
                        ))
                    }
                    Some(_) => {}
                    None => found = Some(s),
                }
            }
        }
        found.ok_or_else(|| format!("BTF has no struct {name}"))
    }

    /// `member` of `s`, looked for in `s` and, in declaration order, in the
    /// anonymous structs and unions it contains (C lets those members be
    /// named as if they were the outer struct's: `task_struct` in 6.1 has
    /// anonymous unions, `mm_struct`'s fields sit in an anonymous struct,
    /// and randomized layouts wrap fields in one).
    pub fn member(&self, s: &Struct, member: &str) -> Result<Option<Member>, String> {
        self.member_in(s, member, 0, 0)
    }

    fn member_in(
        &self,
        s: &Struct,
        member: &str,
        base_bits: u32,
        depth: usize,
    ) -> Result<Option<Member>, String> {
        if depth > MAX_DEPTH {
            return Err("bad BTF: anonymous members nest without end".into());
        }
        for m in &s.members {
            // btf-rs reads the offset by the struct's kflag: with it set,
            // the low 24 bits are the bit offset and the high 8 the
            // bitfield width (0: not a bitfield). Without kflag a bitfield
            // would only show in its INT's bit count, which btf-rs keeps
            // private; pahole sets kflag on every struct that has a
            // bitfield, and one off a byte boundary is still caught by
            // `byte_offset`.
            let bit_offset = base_bits
                .checked_add(m.bit_offset())
                .ok_or("bad BTF: a member offset overflows")?;
            let name = self.name(m)?;
            if name == member {
                return Ok(Some(Member {
                    bit_offset,
                    bitfield_bits: m.bitfield_size().filter(|&b| b != 0),
                    ty: self.chained(m)?,
                }));
            }
            if name.is_empty() {
                match self.peel(self.chained(m)?)? {
                    Type::Struct(inner) | Type::Union(inner) => {
                        if let Some(found) =
                            self.member_in(&inner, member, bit_offset, depth + 1)?
                        {
                            return Ok(Some(found));
                        }
                    }
                    // An unnamed bitfield (padding): nothing inside.
                    _ => {}
                }
            }
        }
        Ok(None)
    }

    /// `struct_name.member`, which must exist.
    pub fn required_member(
        &self,
        s: &Struct,
        struct_name: &str,
        member: &str,
    ) -> Result<Member, String> {
        self.member(s, member)?
            .ok_or_else(|| format!("BTF has no member {struct_name}.{member}"))
    }

    /// The offset of per-CPU variable `var` in the `.data..percpu` DATASEC
    /// and its type, or `None` if that section lists no such variable.
    /// DATASEC offsets are from the start of the section, which x86-64
    /// links at address 0: the offset is the variable's distance from a
    /// CPU's per-CPU base.
    pub fn percpu_var(&self, var: &str) -> Result<Option<(u32, Type)>, String> {
        let secs = self
            .inner
            .resolve_types_by_name(crate::elf::PERCPU_SECTION)
            .map_err(|e| format!("bad BTF: {e}"))?;
        let mut any = false;
        for sec in secs {
            let Type::Datasec(sec) = sec else { continue };
            any = true;
            for v in &sec.variables {
                let Type::Var(decl) = self.chained(v)? else {
                    return Err(format!(
                        "bad BTF: an entry of DATASEC {} is no VAR",
                        crate::elf::PERCPU_SECTION
                    ));
                };
                if self.name(&decl)? == var {
                    return Ok(Some((v.offset(), self.chained(&decl)?)));
                }
            }
        }
        if !any {
            return Err(format!(
                "BTF has no DATASEC {} (the pahole that built it emitted no per-CPU variables)",
                crate::elf::PERCPU_SECTION
            ));
        }
        Ok(None)
    }
}

/// A short description of a (peeled) type for refusals.
pub fn kind_of(t: &Type) -> String {
    match t {
        Type::Int(i) => format!("a {}-byte integer", i.size()),
        Type::Array(a) => format!("an array of {}", a.len()),
        Type::Struct(s) => format!("a {}-byte struct", s.size()),
        Type::Union(u) => format!("a {}-byte union", u.size()),
        other => other.name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testbtf::{Enc, M};

    /// A struct that hides its members the ways 6.1's task_struct and
    /// mm_struct do: an anonymous union, an anonymous struct inside an
    /// anonymous union, kflag bitfields, a const typedef'd member.
    fn nested() -> Vec<u8> {
        let mut e = Enc::new();
        let int = e.int("int", 4, true);
        let uint = e.int("unsigned int", 4, false);
        let pid_t = e.typedef("pid_t", int);
        let cpid = e.konst(pid_t);
        let inner = e.strukt(
            "",
            8,
            &[
                M::new("deep", int, 0),
                M::new("deeper_bits", uint, 35).bits(3),
            ],
        );
        let un = e.union("", 8, &[M::new("alias", uint, 0), M::new("", inner, 0)]);
        let top = e.strukt(
            "outer",
            32,
            &[
                M::new("first", uint, 0),
                M::new("flag_a", uint, 32).bits(1),
                M::new("flag_b", uint, 33).bits(7),
                M::new("", un, 64),
                M::new("pid", cpid, 128),
                M::new("odd", int, 196),
            ],
        );
        let _ = top;
        e.finish()
    }

    fn member(btf: &Btf, name: &str) -> Option<Member> {
        let s = btf.named_struct("outer").unwrap();
        btf.member(&s, name).unwrap()
    }

    #[test]
    fn members_resolve_through_anonymous_unions_and_structs() {
        let btf = Btf::parse(&nested()).unwrap();
        let at = |n: &str| member(&btf, n).map(|m| (m.bit_offset, m.bitfield_bits));
        assert_eq!(at("first"), Some((0, None)));
        assert_eq!(at("alias"), Some((64, None)));
        assert_eq!(at("deep"), Some((64, None)));
        assert_eq!(at("pid"), Some((128, None)));
        assert_eq!(at("nope"), None);
        let deep = member(&btf, "deep").unwrap();
        assert_eq!(deep.byte_offset("outer.deep"), Ok(8));
    }

    #[test]
    fn bitfields_keep_their_bit_offset_and_are_refused_as_fields() {
        let btf = Btf::parse(&nested()).unwrap();
        let a = member(&btf, "flag_a").unwrap();
        assert_eq!((a.bit_offset, a.bitfield_bits), (32, Some(1)));
        let b = member(&btf, "flag_b").unwrap();
        assert_eq!((b.bit_offset, b.bitfield_bits), (33, Some(7)));
        assert_eq!(
            b.byte_offset("outer.flag_b").unwrap_err(),
            "outer.flag_b is a 7-bit bitfield, not a field the stub can read"
        );
        // A bitfield inside an anonymous struct inside an anonymous union:
        // 64 (union) + 0 (struct) + 35.
        let d = member(&btf, "deeper_bits").unwrap();
        assert_eq!((d.bit_offset, d.bitfield_bits), (99, Some(3)));
        // kflag structs mark ordinary members with width 0.
        assert_eq!(member(&btf, "first").unwrap().bitfield_bits, None);
        let odd = member(&btf, "odd").unwrap();
        assert_eq!(
            odd.byte_offset("outer.odd").unwrap_err(),
            "outer.odd starts at bit 196, not on a byte"
        );
    }

    #[test]
    fn typedefs_and_modifiers_are_peeled() {
        let btf = Btf::parse(&nested()).unwrap();
        let pid = member(&btf, "pid").unwrap();
        assert!(matches!(pid.ty, Type::Const(_)));
        match btf.peel(pid.ty).unwrap() {
            Type::Int(i) => assert_eq!(i.size(), 4),
            other => panic!("pid peels to {}", other.name()),
        }
    }

    #[test]
    fn structs_are_found_by_name_past_forward_declarations() {
        let mut e = Enc::new();
        let int = e.int("int", 4, true);
        e.fwd("thing");
        e.strukt("thing", 4, &[M::new("x", int, 0)]);
        let btf = Btf::parse(&e.finish()).unwrap();
        assert_eq!(btf.named_struct("thing").unwrap().size(), 4);
        assert_eq!(
            btf.named_struct("other").unwrap_err(),
            "BTF has no struct other"
        );

        let mut e = Enc::new();
        let int = e.int("int", 4, true);
        e.strukt("thing", 4, &[M::new("x", int, 0)]);
        e.strukt("thing", 8, &[M::new("x", int, 0), M::new("y", int, 32)]);
        let btf = Btf::parse(&e.finish()).unwrap();
        assert_eq!(
            btf.named_struct("thing").unwrap_err(),
            "BTF has two different definitions of struct thing"
        );
    }

    #[test]
    fn percpu_variables_give_their_datasec_offset() {
        let mut e = Enc::new();
        let int = e.int("int", 4, true);
        let p = e.ptr(int);
        let a = e.var("cpu_number", int);
        let b = e.var("current_task", p);
        let other = e.var("jiffies", int);
        e.datasec(".data", 64, &[(other, 0, 4)]);
        e.datasec(".data..percpu", 0x20000, &[(a, 0x10, 4), (b, 0x1fb80, 8)]);
        let btf = Btf::parse(&e.finish()).unwrap();
        let (off, ty) = btf.percpu_var("current_task").unwrap().unwrap();
        assert_eq!(off, 0x1fb80);
        assert!(matches!(btf.pointee(ty).unwrap(), Some(Type::Int(_))));
        assert!(btf.percpu_var("jiffies").unwrap().is_none());

        let mut e = Enc::new();
        e.int("int", 4, true);
        let btf = Btf::parse(&e.finish()).unwrap();
        assert!(btf
            .percpu_var("current_task")
            .unwrap_err()
            .starts_with("BTF has no DATASEC .data..percpu"));
    }

    #[test]
    fn a_self_containing_anonymous_member_is_an_error_not_a_hang() {
        let mut e = Enc::new();
        let id = e.reserve();
        e.define_struct(id, "", 4, &[M::new("", id, 0)]);
        e.strukt("loop", 4, &[M::new("", id, 0)]);
        let btf = Btf::parse(&e.finish()).unwrap();
        let s = btf.named_struct("loop").unwrap();
        assert!(btf
            .member(&s, "x")
            .unwrap_err()
            .contains("nest without end"));
    }

    #[test]
    fn garbage_is_bad_btf() {
        assert!(Btf::parse(b"not btf at all, not even close")
            .err()
            .unwrap()
            .starts_with("bad BTF: "));
    }
}
