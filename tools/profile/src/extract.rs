//! The profile out of a kernel's BTF: each field looked up by name, its
//! type checked to be what the stub will read it as (a field renamed or
//! retyped in some kernel must be refused here, not misread in the stub).

use btf_rs::{Struct, Type};
use linux_profile::{
    CurrentTask, CurrentTaskVia, MmStruct, Profile, Release, TaskStruct, MAX_COMM_LEN,
};

use crate::btf::{kind_of, Btf};

/// What a field must be.
enum Shape<'a> {
    /// An integer of this many bytes (pid_t, unsigned int).
    Int(usize),
    /// A pointer to `struct <name>` (`None`: to anything).
    PtrTo(Option<&'a str>),
    /// `struct <name>`, embedded.
    Embedded(&'a str),
    /// `char[N]`, N given back.
    CharArray,
}

/// A field's byte offset and, for a char array, its length.
struct Found {
    offset: u32,
    len: u32,
}

fn field(btf: &Btf, s: &Struct, sname: &str, member: &str, shape: Shape) -> Result<Found, String> {
    let what = format!("{sname}.{member}");
    let m = btf.required_member(s, sname, member)?;
    let offset = m.byte_offset(&what)?;
    let ty = btf.peel(m.ty)?;
    let bad = |want: &str, got: &Type| Err(format!("{what} is {}, not {want}", kind_of(got)));
    let mut len = 0;
    match shape {
        Shape::Int(n) => match &ty {
            Type::Int(i) if i.size() == n => {}
            other => return bad(&format!("a {n}-byte integer"), other),
        },
        Shape::PtrTo(target) => {
            let Some(to) = btf.pointee(ty.clone())? else {
                return bad("a pointer", &ty);
            };
            if let Some(target) = target {
                check_struct(btf, &to, target)
                    .map_err(|got| format!("{what} points to {got}, not to struct {target}"))?;
            }
        }
        Shape::Embedded(target) => {
            check_struct(btf, &ty, target)
                .map_err(|got| format!("{what} is {got}, not struct {target}"))?;
        }
        Shape::CharArray => match &ty {
            Type::Array(a) => {
                let elem = btf.peel(btf.element(a)?)?;
                if !matches!(&elem, Type::Int(i) if i.size() == 1) {
                    return Err(format!(
                        "{what} is an array of {}, not of char",
                        kind_of(&elem)
                    ));
                }
                len = u32::try_from(a.len()).unwrap_or(u32::MAX);
                if len == 0 || len > MAX_COMM_LEN {
                    return Err(format!(
                        "{what} has {len} characters (the profile holds 1 to {MAX_COMM_LEN})"
                    ));
                }
            }
            other => return bad("a char array", other),
        },
    }
    Ok(Found { offset, len })
}

/// `Ok` if `t` is `struct name` (or its forward declaration: BTF may point
/// at one); else a description of what it is.
fn check_struct(btf: &Btf, t: &Type, name: &str) -> Result<(), String> {
    let n = match t {
        Type::Struct(s) => btf.struct_name(s)?,
        Type::Fwd(f) if f.is_struct() => btf.fwd_name(f)?,
        other => return Err(kind_of(other)),
    };
    if n == name {
        Ok(())
    } else if n.is_empty() {
        Err("an anonymous struct".into())
    } else {
        Err(format!("struct {n}"))
    }
}

/// Where the current task pointer is: 6.1 and earlier have a per-CPU
/// `current_task`; 6.2 moved it into `pcpu_hot`. The variable is looked for
/// first, so a kernel that has it again after dropping `pcpu_hot` (as
/// later mainline did) is read the 6.1 way. Only 6.1 is measured here.
fn current_task(btf: &Btf) -> Result<CurrentTask, String> {
    if let Some((offset, ty)) = btf.percpu_var("current_task")? {
        let to = btf.pointee(ty.clone())?;
        match to {
            Some(to) => check_struct(btf, &to, "task_struct").map_err(|got| {
                format!("per-CPU current_task points to {got}, not to struct task_struct")
            })?,
            None => {
                return Err(format!(
                    "per-CPU current_task is {}, not a pointer",
                    kind_of(&btf.peel(ty)?)
                ))
            }
        }
        return Ok(CurrentTask {
            percpu_offset: offset,
            via: CurrentTaskVia::CurrentTask,
        });
    }
    let Some((base, ty)) = btf.percpu_var("pcpu_hot")? else {
        return Err(
            "BTF has neither a per-CPU current_task nor a per-CPU pcpu_hot: cannot find the current task"
                .into(),
        );
    };
    let hot = match btf.peel(ty)? {
        Type::Struct(s) => s,
        other => {
            return Err(format!(
                "per-CPU pcpu_hot is {}, not a struct",
                kind_of(&other)
            ))
        }
    };
    let f = field(
        btf,
        &hot,
        "pcpu_hot",
        "current_task",
        Shape::PtrTo(Some("task_struct")),
    )?;
    Ok(CurrentTask {
        percpu_offset: base
            .checked_add(f.offset)
            .ok_or("pcpu_hot.current_task's per-CPU offset overflows")?,
        via: CurrentTaskVia::PcpuHot,
    })
}

/// The profile of the kernel whose BTF is `btf_bytes` and whose release is
/// `release`, checked against the format's bounds.
pub fn profile(btf_bytes: &[u8], release: &str) -> Result<Profile, String> {
    let release = Release::new(release)
        .ok_or_else(|| format!("the release `{release}` is not 1-64 printable characters"))?;
    let btf = Btf::parse(btf_bytes)?;
    let ts = btf.named_struct("task_struct")?;
    let t = |m: &str, shape| field(&btf, &ts, "task_struct", m, shape);
    let comm = t("comm", Shape::CharArray)?;
    let task_struct = TaskStruct {
        size: u32::try_from(ts.size()).unwrap_or(u32::MAX),
        pid: t("pid", Shape::Int(4))?.offset,
        tgid: t("tgid", Shape::Int(4))?.offset,
        comm: comm.offset,
        comm_len: comm.len,
        real_parent: t("real_parent", Shape::PtrTo(Some("task_struct")))?.offset,
        mm: t("mm", Shape::PtrTo(Some("mm_struct")))?.offset,
        tasks: t("tasks", Shape::Embedded("list_head"))?.offset,
        flags: t("flags", Shape::Int(4))?.offset,
    };
    let mm = btf.named_struct("mm_struct")?;
    let mm_struct = MmStruct {
        pgd: field(&btf, &mm, "mm_struct", "pgd", Shape::PtrTo(None))?.offset,
    };
    let p = Profile {
        release,
        task_struct,
        mm_struct,
        current_task: current_task(&btf)?,
    };
    p.check().map_err(|(key, kind)| {
        format!(
            "{} = {} does not fit the profile format: {}",
            key.name(),
            key.number(&p).unwrap_or(0),
            kind.message()
        )
    })?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::profile;
    use crate::testbtf::{at, kernel, Enc, Percpu, M};
    use linux_profile::CurrentTaskVia;

    #[test]
    fn a_6_1_layout_gives_every_offset() {
        let p = profile(&kernel(Percpu::CurrentTask), "6.1.0-57-amd64").unwrap();
        let t = p.task_struct;
        assert_eq!(p.release.as_str(), "6.1.0-57-amd64");
        assert_eq!(t.size, at::TASK_SIZE);
        assert_eq!(t.flags, at::FLAGS);
        assert_eq!(t.tasks, at::TASKS);
        assert_eq!(t.mm, at::MM);
        assert_eq!((t.pid, t.tgid), (at::PID, at::TGID));
        assert_eq!(t.real_parent, at::REAL_PARENT);
        assert_eq!((t.comm, t.comm_len), (at::COMM, 16));
        assert_eq!(p.mm_struct.pgd, at::PGD);
        assert_eq!(p.current_task.percpu_offset, at::CURRENT_TASK);
        assert_eq!(p.current_task.via, CurrentTaskVia::CurrentTask);
    }

    #[test]
    fn a_6_2_layout_finds_current_task_in_pcpu_hot() {
        let p = profile(&kernel(Percpu::PcpuHot), "6.2.0").unwrap();
        assert_eq!(p.current_task.percpu_offset, at::HOT_CURRENT_TASK);
        assert_eq!(p.current_task.via, CurrentTaskVia::PcpuHot);
        assert_eq!(p.task_struct.pid, at::PID);
    }

    #[test]
    fn no_current_task_at_all_is_named() {
        assert_eq!(
            profile(&kernel(Percpu::None), "6.1.0").unwrap_err(),
            "BTF has neither a per-CPU current_task nor a per-CPU pcpu_hot: cannot find the current task"
        );
    }

    /// A kernel whose task_struct is `members` (name, type), one every
    /// 16 bytes, and nothing else.
    fn task_with(members: &[(&str, &str)]) -> Result<linux_profile::Profile, String> {
        let mut e = Enc::new();
        let int = e.int("int", 4, true);
        let long = e.int("long", 8, true);
        let chr = e.int("char", 1, true);
        let comm8 = e.array(chr, int, 8);
        let intarr = e.array(int, int, 16);
        let lp = e.ptr(long);
        let ms: Vec<M> = members
            .iter()
            .enumerate()
            .map(|(i, (name, ty))| {
                let id = match *ty {
                    "int" => int,
                    "long" => long,
                    "comm8" => comm8,
                    "intarr" => intarr,
                    "ptr" => lp,
                    _ => unreachable!(),
                };
                M::new(name, id, i as u32 * 128)
            })
            .collect();
        e.strukt("task_struct", 1024, &ms);
        profile(&e.finish(), "6.1.0")
    }

    #[test]
    fn a_missing_or_retyped_member_is_named() {
        assert_eq!(
            task_with(&[("pid", "int")]).unwrap_err(),
            "BTF has no member task_struct.comm"
        );
        assert_eq!(
            task_with(&[("comm", "intarr")]).unwrap_err(),
            "task_struct.comm is an array of a 4-byte integer, not of char"
        );
        assert_eq!(
            task_with(&[("comm", "comm8"), ("pid", "long")]).unwrap_err(),
            "task_struct.pid is a 8-byte integer, not a 4-byte integer"
        );
        assert_eq!(
            task_with(&[
                ("comm", "comm8"),
                ("pid", "int"),
                ("tgid", "int"),
                ("real_parent", "int")
            ])
            .unwrap_err(),
            "task_struct.real_parent is a 4-byte integer, not a pointer"
        );
        assert_eq!(
            task_with(&[
                ("comm", "comm8"),
                ("pid", "int"),
                ("tgid", "int"),
                ("real_parent", "ptr")
            ])
            .unwrap_err(),
            "task_struct.real_parent points to a 8-byte integer, not to struct task_struct"
        );
    }

    #[test]
    fn the_comm_length_comes_from_btf() {
        // comm8 passes its own checks; the next missing member is named.
        let e = task_with(&[("comm", "comm8")]).unwrap_err();
        assert_eq!(e, "BTF has no member task_struct.pid");
    }

    #[test]
    fn mm_struct_is_required() {
        let err = profile(&kernel_without_mm(), "6.1.0").unwrap_err();
        assert_eq!(err, "BTF has no struct mm_struct");
    }

    /// A kernel whose task_struct is complete but which has no mm_struct
    /// definition (only a forward declaration).
    fn kernel_without_mm() -> Vec<u8> {
        let mut e = Enc::new();
        let int = e.int("int", 4, true);
        let uint = e.int("unsigned int", 4, false);
        let chr = e.int("char", 1, true);
        let comm = e.array(chr, int, 16);
        let lh = e.reserve();
        let lhp = e.ptr(lh);
        e.define_struct(
            lh,
            "list_head",
            16,
            &[M::new("next", lhp, 0), M::new("prev", lhp, 64)],
        );
        let mm = e.fwd("mm_struct");
        let mmp = e.ptr(mm);
        let task = e.reserve();
        let tp = e.ptr(task);
        e.define_struct(
            task,
            "task_struct",
            256,
            &[
                M::new("flags", uint, 0),
                M::new("pid", int, 32),
                M::new("tgid", int, 64),
                M::new("tasks", lh, 128),
                M::new("real_parent", tp, 256),
                M::new("mm", mmp, 320),
                M::new("comm", comm, 384),
            ],
        );
        e.finish()
    }

    #[test]
    fn a_bad_release_is_refused() {
        assert!(profile(&kernel(Percpu::CurrentTask), "6.1 with space")
            .unwrap_err()
            .starts_with("the release `6.1 with space`"));
    }
}
