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

use crate::cmd::{self, hash_inputs};
use crate::debsrc::{self, read_all, sorted_files};
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
    let patches = sorted_files(&layout.root.join("tools/testbed/qemu-patches"), "patch")?;
    let contents = read_all(&patches)?;
    let options = CONFIGURE.join(" ");
    let mut inputs: Vec<&[u8]> = vec![src.version.as_bytes(), options.as_bytes()];
    inputs.extend(contents.iter().map(|c| c.as_slice()));
    let dir = layout.bed.join(format!("qemu-{}", hash_inputs(&inputs)));
    let tree = dir.join("src");
    let emu = Emulator {
        binary: tree.join("build/qemu-system-x86_64"),
        version: src.version.clone(),
        patches: patches.clone(),
    };
    if dir.join("built").exists() {
        return Ok(emu);
    }
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let log = dir.join("build.log");
    eprintln!(
        "bed: building QEMU {} (x86_64-softmmu) with {} patch(es) from tools/testbed/qemu-patches (log: {})",
        src.version,
        patches.len(),
        log.display()
    );
    debsrc::unpack_and_patch(&src, &tree, &patches, "QEMU", &log)?;
    let build = tree.join("build");
    fs::create_dir_all(&build)?;
    cmd::run_logged(
        Command::new("../configure")
            .args(CONFIGURE)
            .current_dir(&build)
            .env_remove("CFLAGS")
            .env_remove("LDFLAGS"),
        &log,
    )
    .context("configuring QEMU")?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    cmd::run_logged(
        Command::new("ninja")
            .args(["-j", &jobs.to_string(), "qemu-system-x86_64"])
            .current_dir(&build),
        &log,
    )
    .context("building QEMU")?;
    if !emu.binary.exists() {
        bail!(
            "the QEMU build left no {}; log: {}",
            emu.binary.display(),
            log.display()
        );
    }
    fs::write(dir.join("built"), "")?;
    Ok(emu)
}
