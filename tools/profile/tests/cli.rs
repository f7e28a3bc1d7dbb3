//! The command line: a profile from a small kernel-shaped ELF, and each
//! refusal as exactly one line on stderr, a failing exit and no output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use linux_profile::{CurrentTaskVia, Profile};
use object::write::Object;
use object::{Architecture, BinaryFormat, Endianness, SectionKind};

#[path = "../src/testbtf.rs"]
mod testbtf;

use testbtf::{at, Percpu};

const BANNER: &[u8] =
    b"\0Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC\n\0";

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmi-profile-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn file(name: &str, data: &[u8]) -> PathBuf {
    let p = dir().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// An x86-64 ELF with the sections the tool reads: `.BTF` (if given), a
/// `.rodata` with the banner, a `.data..percpu` at address 0.
fn elf(arch: Architecture, btf: Option<&[u8]>) -> Vec<u8> {
    elf_with(arch, btf, &[])
}

/// [`elf`] with more (empty) sections.
fn elf_with(arch: Architecture, btf: Option<&[u8]>, more: &[&str]) -> Vec<u8> {
    let mut o = Object::new(BinaryFormat::Elf, arch, Endianness::Little);
    for name in more {
        let s = o.add_section(
            Vec::new(),
            name.as_bytes().to_vec(),
            SectionKind::ReadOnlyData,
        );
        o.set_section_data(s, vec![0u8; 8], 1);
    }
    let text = o.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    o.set_section_data(text, vec![0xc3u8], 16);
    let ro = o.add_section(Vec::new(), b".rodata".to_vec(), SectionKind::ReadOnlyData);
    o.set_section_data(ro, BANNER.to_vec(), 8);
    let pc = o.add_section(Vec::new(), b".data..percpu".to_vec(), SectionKind::Data);
    o.set_section_data(pc, vec![0u8; 64], 64);
    if let Some(btf) = btf {
        let s = o.add_section(Vec::new(), b".BTF".to_vec(), SectionKind::ReadOnlyData);
        o.set_section_data(s, btf.to_vec(), 4);
    }
    o.write().unwrap()
}

fn run(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmi-profile"))
        .args(args)
        .output()
        .unwrap()
}

/// The tool failed with exactly `vmi-profile: <file>: <what>` and printed
/// nothing on stdout.
fn refused(out: &Output, file: &Path, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded: {err}");
    assert_eq!(err, format!("vmi-profile: {}: {what}\n", file.display()));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_kernel_shaped_elf_gives_its_profile_on_stdout_and_with_dash_o() {
    let k = file(
        "k61",
        &elf(
            Architecture::X86_64,
            Some(&testbtf::kernel(Percpu::CurrentTask)),
        ),
    );
    let out = run(&[&k]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    let text = String::from_utf8(out.stdout).unwrap();
    let p = Profile::parse(&text).unwrap();
    assert_eq!(p.release.as_str(), "6.1.0-57-amd64");
    assert_eq!((p.task_struct.pid, p.task_struct.comm), (at::PID, at::COMM));
    assert_eq!(p.mm_struct.pgd, at::PGD);
    assert_eq!(p.current_task.percpu_offset, at::CURRENT_TASK);

    let to = dir().join("k61.profile");
    let out = run(&[&k, Path::new("-o"), &to]);
    assert!(out.status.success() && out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&to).unwrap(), text);

    let k = file(
        "k62",
        &elf(
            Architecture::X86_64,
            Some(&testbtf::kernel(Percpu::PcpuHot)),
        ),
    );
    let p = Profile::parse(&String::from_utf8(run(&[&k]).stdout).unwrap()).unwrap();
    assert_eq!(p.current_task.via, CurrentTaskVia::PcpuHot);
}

#[test]
fn a_file_that_is_no_kernel_is_refused() {
    let f = file(
        "text",
        b"just some text, longer than a boot sector would need to be",
    );
    refused(&run(&[&f]), &f, "neither an ELF vmlinux nor a bzImage");
    let f = file("short-elf", b"\x7fELF\x02\x01");
    let out = run(&[&f]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!(
        "vmi-profile: {}: not a valid ELF file: ",
        f.display()
    )));
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn an_elf_without_btf_is_refused() {
    let no_btf = "no BTF: the kernel was built without CONFIG_DEBUG_INFO_BTF";
    let k = file("nobtf", &elf(Architecture::X86_64, None));
    refused(&run(&[&k]), &k, no_btf);
    // A real ELF of the build (this test binary) has no .BTF either.
    let me = std::env::current_exe().unwrap();
    refused(&run(&[&me]), &me, no_btf);
    // Nothing is written on a refusal.
    let to = dir().join("nobtf.profile");
    let out = run(&[&k, Path::new("-o"), &to]);
    assert!(!out.status.success());
    assert!(!to.exists());
}

#[test]
fn a_kernel_module_is_refused() {
    let btf = testbtf::kernel(Percpu::CurrentTask);
    let m = file(
        "msr.ko",
        &elf_with(Architecture::X86_64, Some(&btf), &[".modinfo"]),
    );
    refused(
        &run(&[&m]),
        &m,
        "a kernel module, not the kernel: give its vmlinux or bzImage",
    );
}

#[test]
fn another_architecture_is_refused() {
    let k = file(
        "arm",
        &elf(
            Architecture::Aarch64,
            Some(&testbtf::kernel(Percpu::CurrentTask)),
        ),
    );
    refused(&run(&[&k]), &k, "not an x86-64 kernel (an ELF for Aarch64)");
}

#[test]
fn a_kernel_missing_what_the_stub_needs_names_it() {
    let k = file(
        "nocurrent",
        &elf(Architecture::X86_64, Some(&testbtf::kernel(Percpu::None))),
    );
    refused(
        &run(&[&k]),
        &k,
        "BTF has neither a per-CPU current_task nor a per-CPU pcpu_hot: cannot find the current task",
    );
    let mut e = testbtf::Enc::new();
    let int = e.int("int", 4, true);
    e.strukt("task_struct", 64, &[testbtf::M::new("pid", int, 0)]);
    let k = file("nocomm", &elf(Architecture::X86_64, Some(&e.finish())));
    refused(&run(&[&k]), &k, "BTF has no member task_struct.comm");
}

#[test]
fn a_missing_file_and_bad_usage_are_one_line() {
    let f = dir().join("does-not-exist");
    let out = run(&[&f]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.starts_with(&format!("vmi-profile: {}: ", f.display())),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = run(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("vmi-profile: give the kernel"));
}
