//! `vmi-profile` on the bed's real Debian kernel: the bzImage dom0 boots
//! and the vmlinux extracted from it (the Linux guest's kernel) give the
//! same profile, and its values are those of that kernel. Nothing boots:
//! this needs the bed's cached artefacts only.

use std::path::Path;
use std::process::Command;

use linux_profile::{CurrentTaskVia, Profile, MAX_PERCPU_OFFSET};

fn profile(tool: &Path, kernel: &Path) -> String {
    let out = Command::new(tool).arg(kernel).output().unwrap();
    assert!(
        out.status.success(),
        "vmi-profile {}: {}",
        kernel.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_bed_kernel_gives_one_sane_profile_from_its_bzimage_and_its_vmlinux() {
    let tool = nested::dom0_tool("vmi-profile");
    let dom0 = &nested::artifacts().dom0;
    let guest = nested::linux_guest();
    let from_bz = profile(&tool, &dom0.kernel);
    let from_elf = profile(&tool, &guest.vmlinux);
    assert_eq!(from_bz, from_elf, "the bzImage and its vmlinux disagree");
    eprintln!("{from_bz}");

    let p = Profile::parse(&from_bz).unwrap();
    // A second route to the release: the kernel package's module directory.
    let modules: Vec<String> = std::fs::read_dir(dom0.stage.join("lib/modules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(modules, [p.release.as_str()]);

    let t = p.task_struct;
    // TASK_COMM_LEN; pid and tgid are adjacent pid_t's (4 bytes each).
    assert_eq!(t.comm_len, 16);
    assert_eq!(t.tgid, t.pid + 4);
    for (name, off, align) in [
        ("pid", t.pid, 4),
        ("flags", t.flags, 4),
        ("real_parent", t.real_parent, 8),
        ("mm", t.mm, 8),
        ("tasks", t.tasks, 8),
        ("mm_struct.pgd", p.mm_struct.pgd, 8),
        ("current_task", p.current_task.percpu_offset, 8),
    ] {
        assert_eq!(off % align, 0, "{name} at {off} is not {align}-aligned");
    }
    // flags is among the first fields of task_struct in every 6.x layout.
    assert!(t.flags < 128, "flags at {}", t.flags);
    assert!(
        (4096..32768).contains(&t.size),
        "task_struct is {} bytes",
        t.size
    );
    assert!(p.current_task.percpu_offset < MAX_PERCPU_OFFSET);
    // Up to 6.1 the current task is a per-CPU variable of its own.
    if p.release.as_str().starts_with("6.1.") {
        assert_eq!(p.current_task.via, CurrentTaskVia::CurrentTask);
    }

    // A module of the same kernel carries split BTF only: refused by name.
    let msr = dom0
        .stage
        .join("lib/modules")
        .join(p.release.as_str())
        .join("kernel/arch/x86/kernel/msr.ko");
    if msr.exists() {
        let out = Command::new(&tool).arg(&msr).output().unwrap();
        assert!(!out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "vmi-profile: {}: a kernel module, not the kernel: give its vmlinux or bzImage\n",
                msr.display()
            )
        );
    }
}
