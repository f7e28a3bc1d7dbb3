//! Guest kernels: ours (no_std PVH ELF binaries built for
//! `x86_64-unknown-none`) and Debian's Linux as a PVH guest.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::cmd::{self, hash_inputs};
use crate::cpio;
use crate::dom0::Image;
use crate::Layout;

pub const TARGET: &str = "x86_64-unknown-none";

/// Builds one of our kernels (a workspace package) and returns its ELF.
pub fn build_ours(layout: &Layout, package: &str) -> anyhow::Result<PathBuf> {
    cargo_build(layout, package, Some(TARGET))
}

/// Builds one of our dom0 programs (a host binary) and returns it.
pub fn build_host_tool(layout: &Layout, package: &str) -> anyhow::Result<PathBuf> {
    cargo_build(layout, package, None)
}

fn cargo_build(layout: &Layout, package: &str, target: Option<&str>) -> anyhow::Result<PathBuf> {
    let log = layout.dir("logs")?.join(format!("build-{package}.log"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "-p", package])
        .current_dir(&layout.root);
    let mut out = layout.root.join("target");
    if let Some(t) = target {
        cmd.args(["--target", t]);
        out.push(t);
    }
    cmd::run_logged(&mut cmd, &log).with_context(|| format!("building {package}"))?;
    let bin = out.join("release").join(package);
    if !bin.exists() {
        bail!("cargo left no {}", bin.display());
    }
    Ok(bin)
}

/// Debian's kernel as a PVH guest, with a busybox initramfs whose init prints
/// a marker and powers off.
#[derive(Debug, Clone)]
pub struct LinuxGuest {
    /// The uncompressed, stripped vmlinux ELF (a bzImage makes `xl create`
    /// decompress it in dom0: 6-10 s under TCG).
    pub vmlinux: PathBuf,
    pub initrd: PathBuf,
}

pub const LINUX_GUEST_MARKER: &str = "bed-guest: linux userspace up";

const GUEST_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
echo "bed-guest: linux userspace up after $(cut -d' ' -f1 /proc/uptime)s, cmdline: $(cat /proc/cmdline)"
poweroff -f
"#;

/// The offset of the XZ stream inside a bzImage (Debian builds with
/// CONFIG_KERNEL_XZ).
fn xz_offset(bz: &[u8]) -> Option<usize> {
    const MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
    bz.windows(MAGIC.len()).position(|w| w == MAGIC)
}

pub fn linux_guest(layout: &Layout, dom0: &Image) -> anyhow::Result<LinuxGuest> {
    build_linux(layout, dom0, "linux-guest", GUEST_INIT, &[])
}

/// Debian's kernel and busybox with `init` and `extra` files (path in the
/// initramfs, mode, bytes), cached under `bed/<name>-<hash>`.
fn build_linux(
    layout: &Layout,
    dom0: &Image,
    name: &str,
    init: &str,
    extra: &[(&str, u32, Vec<u8>)],
) -> anyhow::Result<LinuxGuest> {
    let bz = fs::read(&dom0.kernel)?;
    let mut inputs: Vec<&[u8]> = vec![&bz, init.as_bytes()];
    for (path, _, data) in extra {
        inputs.push(path.as_bytes());
        inputs.push(data);
    }
    let key = hash_inputs(&inputs);
    let dir = layout.bed.join(format!("{name}-{key}"));
    let guest = LinuxGuest {
        vmlinux: dir.join("vmlinux"),
        initrd: dir.join("initrd.cpio"),
    };
    if guest.initrd.exists() {
        return Ok(guest);
    }
    fs::create_dir_all(&dir)?;
    let off = xz_offset(&bz).context("no XZ stream in the kernel image")?;
    let packed = dir.join("payload.xz");
    fs::write(&packed, &bz[off..])?;
    // The payload is followed by the bzImage's trailer: decode one stream only.
    let out = Command::new("xz")
        .args(["-dc", "--single-stream"])
        .arg(&packed)
        .output()
        .context("running xz")?;
    if !out.stdout.starts_with(b"\x7fELF") {
        bail!(
            "the kernel payload is not an ELF (xz: {})",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::write(&guest.vmlinux, &out.stdout)?;
    fs::remove_file(&packed)?;

    let mut w = cpio::Writer::new(Vec::new());
    for d in ["bin", "proc", "dev"] {
        w.dir(d)?;
    }
    w.file("init", 0o755, init.as_bytes())?;
    w.file(
        "bin/busybox",
        0o755,
        &fs::read(dom0.stage.join("bin/busybox"))?,
    )?;
    for (path, mode, data) in extra {
        w.file(path, *mode, data)?;
    }
    fs::write(&guest.initrd, w.finish()?)?;
    Ok(guest)
}

/// What the Linux target prints, for the stub's attribution to be checked
/// against: `linux-target: NAME pid PID` before each program runs
/// (`exec` keeps the pid and makes the program's name the task's `comm`).
pub const LINUX_TARGET_DONE: &str = "linux-target: still running after the write";

/// What the Linux target prints after its probes when it boots with
/// `probes=N` (the save/restore test's workload: `cpuid-probe` N times, a
/// fifth of a second apart, each followed by `linux-target: probe I`;
/// nothing else).
pub const LINUX_TARGET_PROBES_DONE: &str = "linux-target: probes done";

/// The LSTAR value the Linux target tries to write (canonical, and not
/// where the kernel's syscall entry is): the demo's policy denies it.
pub const LINUX_TARGET_BAD_LSTAR: u64 = 0xffff_ffff_dead_0000;

/// The CPUID leaf `cpuid-probe` asks for, from user mode: nothing else in
/// the guest asks for it, so its audit record is the probe's.
pub const LINUX_TARGET_PROBE_LEAF: u32 = 0x1234_5678;

const TARGET_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
# probes=N on the kernel command line: the save/restore target (see
# LINUX_TARGET_PROBES_DONE), N probes a fifth of a second apart.
n=$(sed -n 's/.*probes=\([0-9]*\).*/\1/p' /proc/cmdline)
if [ -n "$n" ]; then
    echo "linux-target: up after $(cut -d' ' -f1 /proc/uptime)s; $n probes"
    i=0
    while [ $i -lt $n ]; do
        i=$((i + 1))
        /bin/cpuid-probe
        echo "linux-target: probe $i"
        sleep 0.2
    done
    echo "@PROBES_DONE@"
    poweroff -f
fi
insmod /msr.ko || echo "linux-target: insmod msr.ko failed"
lstar() { dd if=/dev/cpu/0/msr bs=8 count=1 skip=$((0xc0000082)) iflag=skip_bytes 2>/dev/null | od -An -tx8 | tr -d ' '; }
echo "linux-target: up after $(cut -d' ' -f1 /proc/uptime)s; lstar $(lstar)"
sh -c 'echo "linux-target: cpuid-probe pid $$"; exec /bin/cpuid-probe'
printf "@BAD@" > /bad-lstar
sh -c 'echo "linux-target: dd pid $$"; exec dd if=/bad-lstar of=/dev/cpu/0/msr bs=8 count=1 seek=$((0xc0000082)) oflag=seek_bytes 2>/dev/null'
echo "linux-target: lstar after the write $(lstar)"
echo "@DONE@: $(ls / | wc -l) entries in /"
poweroff -f
"#;

/// Debian's Linux as a 1-vCPU monitored target (the Quick start's and the
/// attribution test's): it loads `msr.ko`, runs `cpuid-probe` (a CPUID of
/// [`LINUX_TARGET_PROBE_LEAF`] from user mode) and has `dd` write
/// [`LINUX_TARGET_BAD_LSTAR`] to LSTAR through `/dev/cpu/0/msr` (a
/// kernel-mode write on the task's behalf), printing each program's pid
/// and LSTAR before and after; then it shows it still runs and powers off.
pub fn linux_target(layout: &Layout, dom0: &Image) -> anyhow::Result<LinuxGuest> {
    let modules = dom0.stage.join("lib/modules");
    let release = fs::read_dir(&modules)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.join("kernel/arch/x86/kernel/msr.ko").exists())
        .with_context(|| format!("no msr.ko under {}", modules.display()))?;
    let msr = fs::read(release.join("kernel/arch/x86/kernel/msr.ko"))?;
    let bad: String = LINUX_TARGET_BAD_LSTAR
        .to_le_bytes()
        .iter()
        .map(|b| format!("\\{b:03o}"))
        .collect();
    let init = TARGET_INIT
        .replace("@BAD@", &bad)
        .replace("@DONE@", LINUX_TARGET_DONE)
        .replace("@PROBES_DONE@", LINUX_TARGET_PROBES_DONE);
    build_linux(
        layout,
        dom0,
        "linux-target",
        &init,
        &[
            ("msr.ko", 0o644, msr),
            (
                "bin/cpuid-probe",
                0o755,
                cpuid_probe(LINUX_TARGET_PROBE_LEAF),
            ),
        ],
    )
}

/// Where `cpuid-probe` is loaded; its `rsi` at the CPUID points there, at
/// its own ELF header ([`cpuid_probe_header`]), for the stub to read.
pub const LINUX_TARGET_PROBE_BASE: u64 = 0x40_0000;

/// The first 16 bytes of `cpuid-probe` as loaded at
/// [`LINUX_TARGET_PROBE_BASE`]: what a `peek=rsi:16` must read.
pub fn cpuid_probe_header() -> [u8; 16] {
    cpuid_probe(LINUX_TARGET_PROBE_LEAF)[..16]
        .try_into()
        .unwrap()
}

/// A static x86-64 Linux program, written byte by byte (no toolchain for
/// Linux binaries needed): `cpuid` of `leaf` in user mode with `rsi`
/// pointing at its own ELF header, then `exit(0)`. One ELF header, one
/// loadable segment, 23 bytes of code.
fn cpuid_probe(leaf: u32) -> Vec<u8> {
    const BASE: u64 = LINUX_TARGET_PROBE_BASE;
    const CODE_AT: u64 = 64 + 56;
    let mut code = vec![0xbe]; // mov esi, imm32 (zero-extends into rsi)
    code.extend_from_slice(&(BASE as u32).to_le_bytes());
    code.push(0xb8); // mov eax, imm32
    code.extend_from_slice(&leaf.to_le_bytes());
    code.extend_from_slice(&[0x31, 0xc9]); // xor ecx, ecx
    code.extend_from_slice(&[0x0f, 0xa2]); // cpuid
    code.extend_from_slice(&[0xb8, 60, 0, 0, 0]); // mov eax, 60 (exit)
    code.extend_from_slice(&[0x31, 0xff]); // xor edi, edi
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    let size = CODE_AT + code.len() as u64;
    let mut elf = Vec::new();
    // e_ident: ELF, 64-bit, little endian, version 1, System V ABI.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf.extend_from_slice(&(BASE + CODE_AT).to_le_bytes()); // e_entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
                                    // PT_LOAD of the whole file, read + execute.
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&5u32.to_le_bytes());
    elf.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    elf.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&size.to_le_bytes()); // p_filesz
    elf.extend_from_slice(&size.to_le_bytes()); // p_memsz
    elf.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    debug_assert_eq!(elf.len() as u64, CODE_AT);
    elf.extend_from_slice(&code);
    elf
}

/// Copies `src` into a cpio at `dest`.
pub fn add_file(w: &mut cpio::Writer<Vec<u8>>, dest: &str, src: &Path) -> anyhow::Result<()> {
    let data = fs::read(src).with_context(|| format!("reading {}", src.display()))?;
    w.file(dest, 0o644, &data)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpuid_probe_is_one_segment_of_code_behind_the_headers() {
        let elf = cpuid_probe(0x1234_5678);
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(elf.len(), 64 + 56 + 23);
        // Entry at the code: `mov esi, 0x400000`, `mov eax, leaf`.
        assert_eq!(
            u64::from_le_bytes(elf[24..32].try_into().unwrap()),
            0x40_0078
        );
        assert_eq!(
            &elf[120..130],
            &[0xbe, 0, 0, 0x40, 0, 0xb8, 0x78, 0x56, 0x34, 0x12]
        );
        assert_eq!(&cpuid_probe_header()[..4], b"\x7fELF");
    }
}
