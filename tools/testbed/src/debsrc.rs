//! Debian source packages: downloaded once with `apt-get source`, unpacked
//! with `dpkg-source -x` (Debian's own patches applied), then our series on
//! top, in order and without fuzz. Xen and QEMU are built this way.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::cmd::{self, hash_inputs};
use crate::Layout;

/// The files of `dir` ending in `.ext`, sorted by name.
pub fn sorted_files(dir: &Path, ext: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    if dir.is_dir() {
        for e in fs::read_dir(dir)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == ext) {
                v.push(p);
            }
        }
    }
    v.sort();
    Ok(v)
}

pub fn read_all(paths: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    paths
        .iter()
        .map(|p| fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect()
}

/// A downloaded source package.
#[derive(Debug, Clone)]
pub struct Source {
    pub dsc: PathBuf,
    /// Debian's version, e.g. `4.17.5+72-g01140da4e8-1` (no epoch).
    pub version: String,
}

/// Downloads `spec` (`package/suite`) into `target/bed/<package>-source`
/// once; later calls reuse the `.dsc` found there.
pub fn download(layout: &Layout, spec: &str) -> anyhow::Result<Source> {
    let package = spec.split('/').next().unwrap_or(spec);
    let dir = layout.dir(&format!("{package}-source"))?;
    let find =
        || -> anyhow::Result<Option<PathBuf>> { Ok(sorted_files(&dir, "dsc")?.into_iter().next()) };
    let dsc = match find()? {
        Some(d) => d,
        None => {
            let log = layout.dir("logs")?.join(format!("{package}-source.log"));
            eprintln!("bed: apt-get source {spec} (log: {})", log.display());
            cmd::run_logged(
                Command::new("apt-get")
                    .args(["source", "--download-only", "-q", spec])
                    .current_dir(&dir),
                &log,
            )
            .with_context(|| {
                format!("downloading Debian's {package} source (is there a deb-src entry for bookworm?)")
            })?;
            find()?.with_context(|| format!("no .dsc in {} after apt-get source", dir.display()))?
        }
    };
    let version = dsc
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix(&format!("{package}_")))
        .unwrap_or("unknown")
        .to_string();
    Ok(Source { dsc, version })
}

/// Unpacks `src` into `tree` and applies `patches` in order with
/// `patch -p1 -F0`; a patch that does not apply is named in one line with
/// the log. `what` names the project in messages ("Xen", "QEMU").
pub fn unpack_and_patch(
    src: &Source,
    tree: &Path,
    patches: &[PathBuf],
    what: &str,
    log: &Path,
) -> anyhow::Result<()> {
    cmd::run_logged(
        Command::new("dpkg-source")
            .arg("-x")
            .arg(&src.dsc)
            .arg(tree),
        log,
    )
    .with_context(|| format!("unpacking Debian's {what} source"))?;
    for p in patches {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        cmd::run_logged(
            Command::new("patch")
                .args(["-p1", "-F0", "-N", "--no-backup-if-mismatch", "-i"])
                .arg(p)
                .current_dir(tree),
            log,
        )
        .with_context(|| {
            format!(
                "patch {name} does not apply to {what} {} without fuzz",
                src.version
            )
        })?;
    }
    Ok(())
}

/// A patched source tree of ours, `target/bed/<name>-<hash>/src`, cached by
/// a hash of the source's version, `options` (how it is built) and every
/// patch of `patch_dir`.
#[derive(Debug, Clone)]
pub struct PatchedTree {
    pub dir: PathBuf,
    pub tree: PathBuf,
    pub patches: Vec<PathBuf>,
    /// The build log, beside the tree.
    pub log: PathBuf,
    /// Built before: nothing to do.
    pub built: bool,
}

impl PatchedTree {
    /// Marks the tree built, so the next call reuses it.
    pub fn finish(&self) -> anyhow::Result<()> {
        fs::write(self.dir.join("built"), "")?;
        Ok(())
    }
}

/// The cached tree for `src` + `options` + the patches of `patch_dir`
/// (relative to the workspace); unless it was built before, a fresh one,
/// unpacked and patched (see [`unpack_and_patch`]), for the caller to build
/// and [`PatchedTree::finish`].
pub fn patched_tree(
    layout: &Layout,
    name: &str,
    src: &Source,
    patch_dir: &str,
    options: &[u8],
    what: &str,
) -> anyhow::Result<PatchedTree> {
    let patches = sorted_files(&layout.root.join(patch_dir), "patch")?;
    let contents = read_all(&patches)?;
    let mut inputs: Vec<&[u8]> = vec![src.version.as_bytes(), options];
    inputs.extend(contents.iter().map(|c| c.as_slice()));
    let dir = layout.bed.join(format!("{name}-{}", hash_inputs(&inputs)));
    let t = PatchedTree {
        tree: dir.join("src"),
        log: dir.join("build.log"),
        built: dir.join("built").exists(),
        dir,
        patches,
    };
    if t.built {
        return Ok(t);
    }
    if t.dir.exists() {
        fs::remove_dir_all(&t.dir)?;
    }
    fs::create_dir_all(&t.dir)?;
    eprintln!(
        "bed: building {what} {} with {} patch(es) from {patch_dir} (log: {})",
        src.version,
        t.patches.len(),
        t.log.display()
    );
    unpack_and_patch(src, &t.tree, &t.patches, what, &t.log)?;
    Ok(t)
}
