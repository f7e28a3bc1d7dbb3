//! Host commands: run with their output kept in a log file, and fail with
//! one line that names the command and the log.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// Runs `cmd`, appending its stdout and stderr to `log`. On failure the error
/// names the program, the exit status and the log path.
pub fn run_logged(cmd: &mut Command, log: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))?;
    writeln!(f, "\n$ {cmd:?}")?;
    let out = f.try_clone()?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(f)
        .status()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); log: {}",
            cmd.get_program().to_string_lossy(),
            log.display()
        );
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; stderr is included in the error.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A short, stable hash of several inputs, for cache directory names.
pub fn hash_inputs(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
