//! Property tests: any valid profile writes text that reads back as the
//! same profile; no text makes the parser panic; dropping any one key is
//! refused naming that key.

use linux_profile::{
    CurrentTask, CurrentTaskVia, Key, MmStruct, ParseErrorKind, Profile, Release, TaskStruct,
    MAX_COMM_LEN, MAX_PERCPU_OFFSET, MAX_STRUCT_OFFSET,
};
use proptest::prelude::*;

/// An offset at which a field of `width` bytes fits in `size`.
fn field(size: u32, width: u32) -> impl Strategy<Value = u32> {
    0..=size - width
}

fn profile() -> impl Strategy<Value = Profile> {
    let release = "[!-\"$-~]{1,64}".prop_map(|s| Release::new(&s).expect("generated release"));
    (release, 1..=MAX_COMM_LEN)
        .prop_flat_map(|(release, comm_len)| {
            // Room for the widest field: a 64-byte comm.
            let size = 64..MAX_STRUCT_OFFSET;
            (Just(release), Just(comm_len), size)
        })
        .prop_flat_map(|(release, comm_len, size)| {
            let task = (
                field(size, 4),
                field(size, 4),
                field(size, comm_len),
                field(size, 8),
                field(size, 8),
                field(size, 16),
                field(size, 4),
            )
                .prop_map(
                    move |(pid, tgid, comm, real_parent, mm, tasks, flags)| TaskStruct {
                        size,
                        pid,
                        tgid,
                        comm,
                        comm_len,
                        real_parent,
                        mm,
                        tasks,
                        flags,
                    },
                );
            let via = prop_oneof![
                Just(CurrentTaskVia::CurrentTask),
                Just(CurrentTaskVia::PcpuHot)
            ];
            (
                Just(release),
                task,
                0..MAX_STRUCT_OFFSET,
                0..MAX_PERCPU_OFFSET,
                via,
            )
        })
        .prop_map(|(release, task_struct, pgd, percpu_offset, via)| Profile {
            release,
            task_struct,
            mm_struct: MmStruct { pgd },
            current_task: CurrentTask { percpu_offset, via },
        })
}

proptest! {
    #[test]
    fn written_profiles_read_back(p in profile()) {
        prop_assert_eq!(p.check(), Ok(()));
        let text = p.to_string();
        prop_assert_eq!(Profile::parse(&text), Ok(p));
    }

    #[test]
    fn dropping_a_key_names_it(p in profile(), which in 0..Key::ALL.len()) {
        let key = Key::ALL[which];
        let text: String = p
            .to_string()
            .lines()
            .filter(|l| l.split_whitespace().next() != Some(key.name()))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = Profile::parse(&text).unwrap_err();
        prop_assert_eq!(e.kind, ParseErrorKind::MissingKey);
        prop_assert_eq!(e.key, key.name());
    }

    #[test]
    fn arbitrary_text_never_panics(s in "vmi-profile 1\n(([a-z_.]{1,24}|#)[ \t]{0,2}[ -~]{0,12}\n){0,16}") {
        let _ = Profile::parse(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(s in any::<String>()) {
        let _ = Profile::parse(&s);
    }
}
