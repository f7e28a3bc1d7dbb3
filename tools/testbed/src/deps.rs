//! What the bed needs on the host, installed when missing: Debian packages
//! (apt, as root) and the Rust target and components `rust-toolchain.toml`
//! names (rustup).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::cmd;
use crate::Layout;

/// Host packages: what our QEMU build needs (and the firmware it boots
/// with, from Debian's binary packages); what Xen's hypervisor and policy
/// builds need; the tools to fetch and unpack Debian sources and binaries;
/// and Xen's headers for the protocol crate's layout test.
pub const HOST_PACKAGES: &[&str] = &[
    "ninja-build",
    "meson",
    "pkg-config",
    "libglib2.0-dev",
    "libfdt-dev",
    "libpixman-1-dev",
    "zlib1g-dev",
    "qemu-system-data",
    "seabios",
    "ipxe-qemu",
    "gcc",
    "make",
    "bison",
    "flex",
    "python3",
    "binutils",
    "checkpolicy",
    "m4",
    "dpkg-dev",
    "xz-utils",
    "libxen-dev",
];

const SOURCES_FILE: &str = "/etc/apt/sources.list.d/vmi-bed-src.sources";

fn missing(pkgs: &[&str]) -> Vec<String> {
    pkgs.iter()
        .filter(|p| {
            let out = Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output();
            !matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .map(|p| p.to_string())
        .collect()
}

fn has_xen_source() -> bool {
    Command::new("apt-cache")
        .args(["showsrc", "xen"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("Package: xen"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    cmd::output(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}

/// Installs missing host packages and makes Debian's source packages
/// reachable (a `deb-src` entry for bookworm), as root; without root it
/// names what is missing instead. Then the Rust side ([`ensure_rust`]).
pub fn ensure(layout: &Layout) -> anyhow::Result<()> {
    ensure_debian(layout)?;
    ensure_rust(layout)
}

fn ensure_debian(layout: &Layout) -> anyhow::Result<()> {
    let log = layout.dir("logs")?.join("deps.log");
    let need = missing(HOST_PACKAGES);
    let need_src = !has_xen_source();
    if need.is_empty() && !need_src {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing host packages [{}]{}; run as root or install them",
            need.join(" "),
            if need_src {
                " and no deb-src entry for bookworm"
            } else {
                ""
            }
        );
    }
    if need_src {
        eprintln!("bed: adding a deb-src entry for bookworm ({SOURCES_FILE})");
        std::fs::write(
            SOURCES_FILE,
            "Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n\
             Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
             Types: deb-src\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\
             Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
        )
        .with_context(|| format!("writing {SOURCES_FILE}"))?;
    }
    eprintln!("bed: apt-get update (log: {})", log.display());
    cmd::run_logged(Command::new("apt-get").args(["update", "-q"]), &log)?;
    if !need.is_empty() {
        eprintln!("bed: installing {}", need.join(" "));
        cmd::run_logged(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&need),
            &log,
        )
        .context("installing host packages")?;
    }
    if !has_xen_source() {
        bail!("Debian's xen source package is still not reachable after adding {SOURCES_FILE}; log: {}", log.display());
    }
    Ok(())
}

/// The `targets` and `components` lists of a `rust-toolchain.toml`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ToolchainFile {
    pub targets: Vec<String>,
    pub components: Vec<String>,
}

impl ToolchainFile {
    /// Reads the `[toolchain]` table's `targets = [..]` and
    /// `components = [..]` (one line each, as rustup documents them).
    pub fn parse(text: &str) -> anyhow::Result<ToolchainFile> {
        let mut t = ToolchainFile::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let list = match key.trim() {
                "targets" => &mut t.targets,
                "components" => &mut t.components,
                _ => continue,
            };
            let inner = value
                .trim()
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .with_context(|| {
                    format!(
                        "rust-toolchain.toml line {}: '{}' is not a one-line list",
                        n + 1,
                        key.trim()
                    )
                })?;
            list.extend(
                inner
                    .split(',')
                    .map(|w| w.trim().trim_matches('"').to_string())
                    .filter(|w| !w.is_empty()),
            );
        }
        Ok(t)
    }
}

/// rustup: on PATH, else where rustup installs itself.
fn find_rustup() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("rustup"))
            .find(|f| f.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
        Some(home.join("bin/rustup")).filter(|f| f.is_file())
    })
}

/// `rustup <what> list --installed` for the workspace's toolchain (rustup
/// reads `rust-toolchain.toml` from the working directory).
fn rustup_installed(rustup: &Path, root: &Path, what: &str) -> anyhow::Result<Vec<String>> {
    let out = cmd::output(
        Command::new(rustup)
            .args([what, "list", "--installed"])
            .current_dir(root),
    )?;
    // Components are listed with their host triple (`clippy-x86_64-...`).
    Ok(out.lines().map(|l| l.trim().to_string()).collect())
}

/// What of `want` is not in `have`; components are listed with the host
/// triple after a '-' (`clippy-x86_64-unknown-linux-gnu`), targets exactly.
fn missing_rust(want: &[String], have: &[String], component: bool) -> Vec<String> {
    let installed = |w: &str, h: &str| {
        h == w || (component && h.strip_prefix(w).is_some_and(|r| r.starts_with('-')))
    };
    want.iter()
        .filter(|w| !have.iter().any(|h| installed(w, h)))
        .cloned()
        .collect()
}

/// Installs the targets and components `rust-toolchain.toml` names with
/// rustup (its toolchain-file install is not to be relied on: it is off
/// with `RUSTUP_AUTO_INSTALL=0`, and cargo run through xtask bypasses the
/// proxy). Without rustup it says what to install.
pub fn ensure_rust(layout: &Layout) -> anyhow::Result<()> {
    let file = layout.root.join("rust-toolchain.toml");
    let want = ToolchainFile::parse(
        &std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?,
    )?;
    let Some(rustup) = find_rustup() else {
        bail!(
            "no rustup found (PATH, $CARGO_HOME/bin, ~/.cargo/bin): install rustup, or install the \
             Rust target(s) [{}] and component(s) [{}] for your toolchain by hand",
            want.targets.join(" "),
            want.components.join(" ")
        );
    };
    let log = layout.dir("logs")?.join("deps.log");
    for (what, list) in [("target", &want.targets), ("component", &want.components)] {
        let have = rustup_installed(&rustup, &layout.root, what)?;
        let need = missing_rust(list, &have, what == "component");
        if need.is_empty() {
            continue;
        }
        eprintln!(
            "bed: installing the Rust {what}(s) {} of rust-toolchain.toml with rustup",
            need.join(" ")
        );
        cmd::run_logged(
            Command::new(&rustup)
                .args([what, "add"])
                .args(&need)
                .current_dir(&layout.root),
            &log,
        )
        .with_context(|| format!("installing the Rust {what}(s) {}", need.join(" ")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolchain_file_lists() {
        let t = ToolchainFile::parse(
            "[toolchain]\nchannel = \"stable\"\ntargets = [\"x86_64-unknown-none\"] # ours\n\
             components = [ \"clippy\", \"rustfmt\" ]\n",
        )
        .unwrap();
        assert_eq!(t.targets, ["x86_64-unknown-none"]);
        assert_eq!(t.components, ["clippy", "rustfmt"]);
        assert!(ToolchainFile::parse("targets = [\n\"a\"\n]").is_err());
        let ours = ToolchainFile::parse(include_str!("../../../rust-toolchain.toml")).unwrap();
        assert!(ours.targets.iter().any(|t| t == crate::kernels::TARGET));
    }

    #[test]
    fn installed_components_carry_the_host_triple() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let have = s(&["clippy-x86_64-unknown-linux-gnu", "x86_64-unknown-none"]);
        assert_eq!(
            missing_rust(&s(&["clippy", "rustfmt"]), &have, true),
            ["rustfmt"]
        );
        let targets = s(&["x86_64-unknown-none", "x86_64"]);
        assert_eq!(missing_rust(&targets, &have, false), ["x86_64"]);
    }
}
