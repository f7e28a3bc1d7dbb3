//! The format: a real profile reads and writes back, and every refusal
//! names its line and key.

use linux_profile::{CurrentTaskVia, Key, ParseError, ParseErrorKind as K, Profile, PF_KTHREAD};

/// Debian 12's 6.1.0-57-amd64, as `vmi-profile` measured it (and
/// `pahole -C task_struct` agrees).
const DEBIAN_6_1: &str = "vmi-profile 1
# Byte offsets from BTF; percpu.* are from the CPU's per-CPU base (kernel GS base).
release 6.1.0-57-amd64
task_struct.size 9792
task_struct.pid 2416
task_struct.tgid 2420
task_struct.comm 2976
task_struct.comm_len 16
task_struct.real_parent 2432
task_struct.mm 2272
task_struct.tasks 2192
task_struct.flags 44
mm_struct.pgd 72
percpu.current_task 129920
percpu.current_task.via current_task
";

fn with(line_of: &str, replacement: &str) -> String {
    DEBIAN_6_1
        .lines()
        .map(|l| {
            if l.split_whitespace().next() == Some(line_of) {
                replacement.to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn fails(text: &str) -> (u32, K, String, String) {
    let e: ParseError<'_> = Profile::parse(text).expect_err("must be refused");
    (e.line, e.kind, e.key.to_string(), e.value.to_string())
}

#[test]
fn the_real_kernel_profile_reads_and_writes_back_identically() {
    let p = Profile::parse(DEBIAN_6_1).unwrap();
    assert_eq!(p.release.as_str(), "6.1.0-57-amd64");
    assert_eq!(p.task_struct.pid, 2416);
    assert_eq!(p.task_struct.tgid, p.task_struct.pid + 4);
    assert_eq!(p.task_struct.comm_len, 16);
    assert_eq!(p.mm_struct.pgd, 72);
    assert_eq!(p.current_task.percpu_offset, 0x1fb80);
    assert_eq!(p.current_task.via, CurrentTaskVia::CurrentTask);
    assert_eq!(p.to_string(), DEBIAN_6_1);
    assert_eq!(p.check(), Ok(()));
    assert_eq!(PF_KTHREAD, 0x0020_0000);
}

#[test]
fn comments_blank_lines_hex_and_any_order_are_accepted() {
    let mut lines: Vec<&str> = DEBIAN_6_1.lines().skip(2).collect();
    lines.reverse();
    let text = format!(
        "vmi-profile 1 # the version line may carry a comment\n\n\t# indented comment\n{}\n",
        lines.join("\n  \n")
    )
    .replace("task_struct.size 9792", "task_struct.size 0x2640  # 9792");
    assert_eq!(Profile::parse(&text), Profile::parse(DEBIAN_6_1));
    let crlf = DEBIAN_6_1.replace('\n', "\r\n");
    assert_eq!(Profile::parse(&crlf), Profile::parse(DEBIAN_6_1));
}

#[test]
fn the_version_line_is_checked_first() {
    for text in [
        "",
        "\nvmi-profile 1",
        "release 6.1\n",
        "vmi-profile\n",
        "vmi-profile 1 2\n",
        "VMI-PROFILE 1\n",
    ] {
        assert_eq!(fails(text).1, K::NotAProfile, "{text:?}");
        assert_eq!(fails(text).0, 1);
    }
    let v2 = DEBIAN_6_1.replacen("vmi-profile 1", "vmi-profile 2", 1);
    assert_eq!(fails(&v2), (1, K::WrongVersion, "".into(), "2".into()));
    let e = Profile::parse(&v2).unwrap_err().to_string();
    assert_eq!(
        e, "line 1: this parser reads profile version 1 only `2`",
        "{e}"
    );
    assert_eq!(
        fails("vmi-profile one\n"),
        (1, K::BadNumber, "vmi-profile".into(), "one".into())
    );
}

#[test]
fn unknown_duplicate_and_missing_keys_are_named_with_their_line() {
    let unknown = with("task_struct.flags", "task_struct.flagz 44");
    assert_eq!(
        fails(&unknown),
        (12, K::UnknownKey, "task_struct.flagz".into(), "".into())
    );
    let e = Profile::parse(&unknown).unwrap_err().to_string();
    assert_eq!(e, "line 12: unknown key: `task_struct.flagz`");

    let dup = format!("{DEBIAN_6_1}task_struct.pid 2416\n");
    assert_eq!(
        fails(&dup),
        (16, K::DuplicateKey, "task_struct.pid".into(), "".into())
    );

    let missing = with("mm_struct.pgd", "# no pgd");
    let (line, kind, key, _) = fails(&missing);
    assert_eq!(
        (line, kind, key.as_str()),
        (15, K::MissingKey, "mm_struct.pgd")
    );
    let e = Profile::parse(&missing).unwrap_err().to_string();
    assert_eq!(e, "line 15: the profile ends without key: `mm_struct.pgd`");

    // The first key of the writer's order that is missing is the one named.
    let (_, kind, key, _) = fails("vmi-profile 1\n");
    assert_eq!((kind, key.as_str()), (K::MissingKey, "release"));
}

#[test]
fn values_are_checked() {
    let cases = [
        ("task_struct.pid", "task_struct.pid", K::MissingValue, ""),
        (
            "task_struct.pid",
            "task_struct.pid 1 2",
            K::UnexpectedToken,
            "2",
        ),
        ("task_struct.pid", "task_struct.pid 0x", K::BadNumber, "0x"),
        ("task_struct.pid", "task_struct.pid -4", K::BadNumber, "-4"),
        (
            "task_struct.pid",
            "task_struct.pid 65536",
            K::OutOfRange,
            "65536",
        ),
        ("task_struct.size", "task_struct.size 0", K::OutOfRange, "0"),
        (
            "task_struct.comm_len",
            "task_struct.comm_len 0",
            K::OutOfRange,
            "0",
        ),
        (
            "task_struct.comm_len",
            "task_struct.comm_len 65",
            K::OutOfRange,
            "65",
        ),
        (
            "percpu.current_task",
            "percpu.current_task 0x100000",
            K::OutOfRange,
            "0x100000",
        ),
        (
            "percpu.current_task.via",
            "percpu.current_task.via gs",
            K::BadValue,
            "gs",
        ),
        (
            "release",
            "release \u{e9}t\u{e9}",
            K::BadValue,
            "\u{e9}t\u{e9}",
        ),
        (
            "release",
            &format!("release {}", "x".repeat(65)),
            K::BadValue,
            "",
        ),
    ];
    for (key, line, kind, value) in cases {
        let (_, k, named, v) = fails(&with(key, line));
        assert_eq!((k, named.as_str()), (kind, key), "{line}");
        if !value.is_empty() {
            assert_eq!(v, value, "{line}");
        }
    }
    let e = Profile::parse(&with("task_struct.pid", "task_struct.pid 65536"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "line 5: number out of range: `task_struct.pid` `65536` (allowed: 0..=65535)"
    );
    let e = Profile::parse(&with(
        "percpu.current_task.via",
        "percpu.current_task.via gs",
    ))
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "line 15: bad value: `percpu.current_task.via` `gs` (current_task or pcpu_hot)"
    );
    // 64 characters is the longest release.
    let long = "r".repeat(64);
    let p = Profile::parse(&with("release", &format!("release {long}"))).unwrap();
    assert_eq!(p.release.as_str(), long);
}

#[test]
fn a_field_past_the_end_of_task_struct_names_its_own_line() {
    // comm (16 bytes at 2976) must fit: a size of 2991 cuts it by one.
    let (line, kind, key, value) = fails(&with("task_struct.size", "task_struct.size 2991"));
    assert_eq!(
        (line, kind, key.as_str(), value.as_str()),
        (7, K::OutsideTaskStruct, "task_struct.comm", "2976")
    );
    assert!(Profile::parse(&with("task_struct.size", "task_struct.size 2992")).is_ok());
    let (_, kind, key, _) = fails(&with("task_struct.tasks", "task_struct.tasks 9780"));
    assert_eq!(
        (kind, key.as_str()),
        (K::OutsideTaskStruct, "task_struct.tasks")
    );
}

#[test]
fn check_names_the_first_bad_key() {
    let mut p = Profile::parse(DEBIAN_6_1).unwrap();
    p.task_struct.mm = 70_000;
    assert_eq!(p.check(), Err((Key::TaskMm, K::OutOfRange)));
    p.task_struct.mm = 9790;
    assert_eq!(p.check(), Err((Key::TaskMm, K::OutsideTaskStruct)));
}

#[test]
fn every_key_has_a_distinct_name_that_reads_back() {
    for (i, k) in Key::ALL.into_iter().enumerate() {
        assert_eq!(k as usize, i, "Key::ALL is in declaration order");
        assert_eq!(Key::from_name(k.name()), Some(k));
        assert!(!k.name().contains(char::is_whitespace));
    }
}

#[test]
fn a_module_splits_into_its_policy_and_its_profile() {
    use linux_profile::split_module;
    let policy = "# rules\nmsr msr=0xc0000082 deny\nany allow\n";
    let both = format!("{policy}{DEBIAN_6_1}");
    assert_eq!(split_module(&both), (Some(policy), Some(DEBIAN_6_1)));
    assert_eq!(split_module(DEBIAN_6_1), (None, Some(DEBIAN_6_1)));
    assert_eq!(split_module(policy), (Some(policy), None));
    assert_eq!(split_module("\n  \n"), (None, None));
    // Only a line that starts with the magic word and a blank starts it.
    let lookalike = "msr msr=0x10 deny # vmi-profile 1\nvmi-profiles 1\n";
    assert_eq!(split_module(lookalike), (Some(lookalike), None));
    assert_eq!(
        Profile::parse(split_module(&both).1.unwrap()),
        Profile::parse(DEBIAN_6_1)
    );
}
