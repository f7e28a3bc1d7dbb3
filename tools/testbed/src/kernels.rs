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
    let bz = fs::read(&dom0.kernel)?;
    let key = hash_inputs(&[&bz, GUEST_INIT.as_bytes()]);
    let dir = layout.bed.join(format!("linux-guest-{key}"));
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
    w.file("init", 0o755, GUEST_INIT.as_bytes())?;
    w.file(
        "bin/busybox",
        0o755,
        &fs::read(dom0.stage.join("bin/busybox"))?,
    )?;
    fs::write(&guest.initrd, w.finish()?)?;
    Ok(guest)
}

/// Copies `src` into a cpio at `dest`.
pub fn add_file(w: &mut cpio::Writer<Vec<u8>>, dest: &str, src: &Path) -> anyhow::Result<()> {
    let data = fs::read(src).with_context(|| format!("reading {}", src.display()))?;
    w.file(dest, 0o644, &data)?;
    Ok(())
}
