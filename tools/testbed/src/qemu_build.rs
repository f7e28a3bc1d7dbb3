//! The bed's own QEMU: Debian 12's source package (7.2, the only QEMU
//! source reachable here) with our series `tools/testbed/qemu-patches/`,
//! `x86_64-softmmu` only, cached by a hash of its inputs like Xen. Our
//! patches make the emulated SVM behave as AMD hardware does where Xen
//! relies on it (see each patch's message).
//!
//! Firmware (SeaBIOS, the option ROMs QEMU loads Xen with) comes from
//! Debian's binary packages; the runner points `-L` at their folders.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use crate::cmd;
use crate::debsrc;
use crate::Layout;

const SOURCE_SPEC: &str = "qemu/bookworm";

/// Where Debian's firmware packages (`qemu-system-data`, `seabios`,
/// `ipxe-qemu`) put what QEMU loads.
pub const FIRMWARE_DIRS: &[&str] = &[
    "/usr/share/qemu",
    "/usr/share/seabios",
    "/usr/lib/ipxe/qemu",
];

/// Enough of QEMU to boot Xen: one target, TCG, nothing for a display,
/// nothing downloaded.
const CONFIGURE: &[&str] = &[
    "--target-list=x86_64-softmmu",
    "--without-default-features",
    "--enable-tcg",
    "--enable-fdt=system",
    "--disable-werror",
    "--disable-docs",
    "--disable-install-blobs",
];

#[derive(Debug, Clone)]
pub struct Emulator {
    pub binary: PathBuf,
    /// Debian's version of the source, e.g. `7.2+dfsg-7+deb12u18`.
    pub version: String,
    pub patches: Vec<PathBuf>,
}

impl Emulator {
    /// `-L DIR` for every firmware folder that exists.
    pub fn firmware_args(&self) -> Vec<String> {
        FIRMWARE_DIRS
            .iter()
            .filter(|d| std::path::Path::new(d).is_dir())
            .flat_map(|d| ["-L".to_string(), d.to_string()])
            .collect()
    }
}

/// Builds QEMU, or returns the cached build for the same source, patches and
/// options.
pub fn build(layout: &Layout) -> anyhow::Result<Emulator> {
    let src = debsrc::download(layout, SOURCE_SPEC)?;
    let options = CONFIGURE.join(" ");
    let pt = debsrc::patched_tree(
        layout,
        "qemu",
        &src,
        "tools/testbed/qemu-patches",
        options.as_bytes(),
        "QEMU",
    )?;
    let tree = &pt.tree;
    let log = &pt.log;
    let emu = Emulator {
        binary: tree.join("build/qemu-system-x86_64"),
        version: src.version.clone(),
        patches: pt.patches.clone(),
    };
    if pt.built {
        return Ok(emu);
    }
    let build = tree.join("build");
    fs::create_dir_all(&build)?;
    cmd::run_logged(
        Command::new("../configure")
            .args(CONFIGURE)
            .current_dir(&build)
            .env_remove("CFLAGS")
            .env_remove("LDFLAGS"),
        log,
    )
    .context("configuring QEMU")?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    cmd::run_logged(
        Command::new("ninja")
            .args(["-j", &jobs.to_string(), "qemu-system-x86_64"])
            .current_dir(&build),
        log,
    )
    .context("building QEMU")?;
    if !emu.binary.exists() {
        bail!(
            "the QEMU build left no {}; log: {}",
            emu.binary.display(),
            log.display()
        );
    }
    pt.finish()?;
    Ok(emu)
}
