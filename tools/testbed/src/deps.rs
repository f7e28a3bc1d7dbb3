//! Debian packages the bed needs on the host, installed when missing.

use std::process::Command;

use anyhow::{bail, Context};

use crate::cmd;
use crate::Layout;

/// Host packages: QEMU; what Xen's hypervisor and policy builds need; the
/// tools to fetch and unpack Debian sources and binaries; and Xen's headers
/// for the protocol crate's layout test.
pub const HOST_PACKAGES: &[&str] = &[
    "qemu-system-x86",
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
/// names what is missing instead.
pub fn ensure(layout: &Layout) -> anyhow::Result<()> {
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
