//! The hypervisor and its FLASK policy: Debian's Xen 4.17 source package,
//! every patch of `xen/patches/4.17/` in order (no fuzz), Debian's hypervisor
//! config plus XSM/FLASK; the policy from the source's `tools/flask/policy`
//! plus every module of `xen/flask/`.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use crate::cmd::{self, hash_inputs};
use crate::debsrc::{self, read_all, sorted_files};
use crate::Layout;

/// What we add to Debian's `debian/xen-kconfig`.
const CONFIG_FRAGMENT: &str = "CONFIG_XSM=y\nCONFIG_XSM_FLASK=y\n";
/// The only Xen source reachable here: Debian 12's 4.17.5.
const SOURCE_SPEC: &str = "xen/bookworm";
/// Our series for that release line (a port to another line gets a folder
/// of its own beside it).
pub const PATCH_DIR: &str = "xen/patches/4.17";

#[derive(Debug, Clone)]
pub struct Hypervisor {
    /// The patched, built source tree.
    pub tree: PathBuf,
    /// The multiboot image QEMU loads (`xen/xen`).
    pub image: PathBuf,
    /// Debian's version string, e.g. `4.17.5+72-g01140da4e8-1`.
    pub version: String,
    pub patches: Vec<PathBuf>,
}

impl Hypervisor {
    /// The patched public headers (`xen/include/public`).
    pub fn public_headers(&self) -> PathBuf {
        self.tree.join("xen/include/public")
    }

    /// `4.17.5` out of Debian's version string.
    pub fn upstream_version(&self) -> &str {
        self.version
            .split(['+', '-'])
            .next()
            .unwrap_or(&self.version)
    }
}

/// Builds the hypervisor, or returns the cached build for the same source,
/// patches and config.
pub fn build_hypervisor(layout: &Layout) -> anyhow::Result<Hypervisor> {
    let src = debsrc::download(layout, SOURCE_SPEC)?;
    let pt = debsrc::patched_tree(
        layout,
        "xen",
        &src,
        PATCH_DIR,
        CONFIG_FRAGMENT.as_bytes(),
        "Xen",
    )?;
    let tree = pt.tree.clone();
    let hv = Hypervisor {
        image: tree.join("xen/xen"),
        tree: tree.clone(),
        version: src.version.clone(),
        patches: pt.patches.clone(),
    };
    if pt.built {
        return Ok(hv);
    }
    let log = &pt.log;
    let mut config = fs::read_to_string(tree.join("debian/xen-kconfig"))
        .context("Debian's source has no debian/xen-kconfig")?;
    config.push_str(CONFIG_FRAGMENT);
    fs::write(tree.join("xen/.config"), config)?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let make = |args: &[&str]| -> anyhow::Result<()> {
        cmd::run_logged(
            Command::new("make")
                .arg("-C")
                .arg(tree.join("xen"))
                .args(args)
                .env_remove("CFLAGS")
                .env_remove("LDFLAGS")
                .env("WGET", "/bin/false")
                .env("GIT", "/bin/false"),
            log,
        )
    };
    make(&["olddefconfig"])?;
    let cfg = fs::read_to_string(tree.join("xen/.config"))?;
    for want in CONFIG_FRAGMENT.lines() {
        if !cfg.lines().any(|l| l == want) {
            bail!("Xen's Kconfig dropped {want}; log: {}", log.display());
        }
    }
    make(&[&format!("-j{jobs}"), "xen"]).context("building the hypervisor")?;
    if !hv.image.exists() {
        bail!(
            "the hypervisor build left no {}; log: {}",
            hv.image.display(),
            log.display()
        );
    }
    pt.finish()?;
    Ok(hv)
}

/// Builds the FLASK policy for `hv`'s tree with our modules; cached by the
/// modules' contents.
pub fn build_policy(layout: &Layout, hv: &Hypervisor) -> anyhow::Result<PathBuf> {
    let modules = sorted_files(&layout.root.join("xen/flask"), "te")?;
    let contents = read_all(&modules)?;
    let mut inputs: Vec<&[u8]> = vec![hv.tree.as_os_str().as_encoded_bytes()];
    for (p, c) in modules.iter().zip(&contents) {
        inputs.push(p.file_name().unwrap_or_default().as_encoded_bytes());
        inputs.push(c);
    }
    let out = layout.bed.join(format!("policy-{}", hash_inputs(&inputs)));
    let policy = out.join("xenpolicy");
    if policy.exists() {
        return Ok(policy);
    }
    fs::create_dir_all(&out)?;
    let log = out.join("build.log");
    eprintln!(
        "bed: building the FLASK policy with {} module(s) from xen/flask (log: {})",
        modules.len(),
        log.display()
    );
    // Work on a sibling copy of the policy sources: Makefile.common finds the
    // hypervisor's access vectors by a path relative to itself, and the tree
    // itself stays as patched.
    let key = out.file_name().unwrap_or_default().to_string_lossy();
    let src = hv.tree.join("tools/flask").join(key.as_ref());
    if src.exists() {
        fs::remove_dir_all(&src)?;
    }
    cmd::run_logged(
        Command::new("cp")
            .arg("-a")
            .arg(hv.tree.join("tools/flask/policy"))
            .arg(&src),
        &log,
    )?;
    let mut conf = fs::read_to_string(src.join("modules/modules.conf"))?;
    for (p, c) in modules.iter().zip(&contents) {
        let name = p.file_stem().unwrap_or_default().to_string_lossy();
        fs::write(src.join("modules").join(format!("{name}.te")), c)?;
        conf.push_str(&format!("{name} = on\n"));
    }
    fs::write(src.join("modules/modules.conf"), conf)?;
    let build = out.join("build");
    fs::create_dir_all(&build)?;
    cmd::run_logged(
        Command::new("make")
            .arg("-f")
            .arg(src.join("Makefile.common"))
            .arg("-C")
            .arg(&src)
            .arg(format!("FLASK_BUILD_DIR={}", build.display()))
            .arg(format!("XEN_FULLVERSION={}", hv.upstream_version())),
        &log,
    )
    .context("compiling the FLASK policy (a module in xen/flask may be wrong)")?;
    let built = build.join(format!("xenpolicy-{}", hv.upstream_version()));
    fs::copy(&built, &policy)
        .with_context(|| format!("no policy at {}; log: {}", built.display(), log.display()))?;
    Ok(policy)
}
