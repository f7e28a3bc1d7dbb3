//! Where the bed keeps its inputs, caches and logs.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::Context;

#[derive(Debug, Clone)]
pub struct Layout {
    /// The repository (workspace) root.
    pub root: PathBuf,
    /// `target/bed`: caches, build trees, run logs.
    pub bed: PathBuf,
}

/// A held lock file; released on drop.
pub struct Lock(#[allow(dead_code)] File);

impl Layout {
    /// The layout of the repository this crate was built from.
    pub fn from_workspace() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .expect("tools/testbed lives two levels below the workspace root")
            .to_path_buf();
        let bed = std::env::var_os("BED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/bed"));
        Layout { root, bed }
    }

    pub fn dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let d = self.bed.join(name);
        fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        Ok(d)
    }

    /// Takes `target/bed/<name>.lock` exclusively, waiting for other holders
    /// (another test binary, another xtask) to finish.
    pub fn lock(&self, name: &str) -> anyhow::Result<Lock> {
        fs::create_dir_all(&self.bed)?;
        let path = self.bed.join(format!("{name}.lock"));
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening lock {}", path.display()))?;
        f.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(Lock(f))
    }

    /// A fresh directory for the logs of one run, kept after the run.
    pub fn run_dir(&self, scenario: &str) -> anyhow::Result<PathBuf> {
        let runs = self.dir("runs")?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let d = runs.join(format!("{scenario}-{stamp}"));
        fs::create_dir_all(&d)?;
        Ok(d)
    }
}
