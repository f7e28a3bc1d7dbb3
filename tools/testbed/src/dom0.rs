//! The dom0 image: Debian's 6.1 kernel as PV dom0 and an initramfs made from
//! Debian's binary packages (busybox-static, Xen's toolstack and its
//! libraries, the Xen driver modules). Its `/init` starts the toolstack, runs
//! the scenario script a run appends as a second cpio, and powers off.
//!
//! Packages are downloaded (`apt-get download`) and unpacked into a staging
//! folder (`dpkg-deb -x`), so the host's own system is left untouched.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::cmd::{self, hash_inputs};
use crate::cpio;
use crate::Layout;

/// Xen's toolstack and what it links, by Debian package.
const XEN_PACKAGES: &[&str] = &[
    "xen-utils-4.17",
    "xen-utils-common",
    "xenstore-utils",
    "libxenmisc4.17",
    "libxencall1",
    "libxendevicemodel1",
    "libxenevtchn1",
    "libxenforeignmemory1",
    "libxengnttab1",
    "libxenstore4",
    "libxentoolcore1",
    "libxentoollog1",
    "libxenhypfs1",
    "libyajl2",
    "busybox-static",
];

/// Toolstack programs dom0 needs, from `/usr/lib/xen-4.17/bin`.
const XEN_PROGRAMS: &[&str] = &[
    "xl",
    "xenstored",
    "xenconsoled",
    "xenconsole",
    "xen-init-dom0",
    "xen-access",
    "xentrace",
    "xenctx",
    "xenstore-control",
    "lsevtchn",
    "flask-getenforce",
    "flask-setenforce",
    "flask-loadpolicy",
    "flask-get-bool",
    "flask-set-bool",
];

/// Helpers libxl runs from where it was installed (`/usr/lib/xen-4.17/bin`):
/// `xl save` and `xl restore` run the save helper.
const XEN_HELPERS: &[&str] = &["libxl-save-helper"];

/// xenstore clients from `/usr/bin` (one multi-call binary and its links).
const XENSTORE_CLIENTS: &[&str] = &[
    "xenstore",
    "xenstore-read",
    "xenstore-write",
    "xenstore-ls",
    "xenstore-rm",
    "xenstore-exists",
    "xenstore-watch",
];

/// Xen drivers dom0 needs; privcmd before xenfs, which uses it.
const MODULES: &[&str] = &[
    "xen/xen-privcmd.ko",
    "xen/xenfs/xenfs.ko",
    "xen/xen-evtchn.ko",
    "xen/xen-gntdev.ko",
    "xen/xen-gntalloc.ko",
];

/// Libraries the loader pulls in at run time, which `ldd` cannot see:
/// glibc's pthread_cancel opens libgcc_s, and `xl` needs it.
const DLOPENED: &[&str] = &["libgcc_s.so.1"];

/// dom0's `/init`. The scenario's own script and files arrive under
/// `/scenario` (a second cpio); its output goes to the second serial port
/// (ttyS1), which Xen does not use, so nothing of Xen's console interleaves
/// with what the host parses.
pub const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run /tmp /var/log/xen/console /var/lib/xen /root
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
# libxl keeps its locks under /var/run/xen: one run directory, as on Debian.
ln -sfn /run /var/run
mkdir -p /run/xen /run/xenstored /run/lock
echo "bed: dom0 userspace at $(cut -d' ' -f1 /proc/uptime)s"
for m in xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc; do
    insmod /modules/$m.ko || echo "bed: insmod $m failed"
done
mount -t xenfs xenfs /proc/xen
xenstored --pid-file=/run/xenstored.pid
xen-init-dom0
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console
echo "bed: toolstack up at $(cut -d' ' -f1 /proc/uptime)s"
out=/dev/ttyS1
[ -e $out ] || out=/dev/console
if [ -f /scenario/run.sh ]; then
    sh /scenario/run.sh > $out 2>&1
else
    echo "@@BED no-scenario" > $out
fi
echo "bed: scenario done at $(cut -d' ' -f1 /proc/uptime)s"
sync
poweroff -f
"#;

#[derive(Debug, Clone)]
pub struct Image {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The unpacked packages (busybox for guest initramfses, the kernel).
    pub stage: PathBuf,
}

/// `linux-image-amd64` is a metapackage; this is the kernel package it
/// currently depends on.
fn kernel_package() -> anyhow::Result<String> {
    let out = cmd::output(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_string)
        .context("apt-cache finds no kernel behind linux-image-amd64 (run apt-get update?)")
}

/// Downloads each package once into `target/bed/debs`; returns the files.
pub fn download(layout: &Layout, packages: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let dir = layout.dir("debs")?;
    let log = layout.dir("logs")?.join("debs.log");
    let have = |p: &str| -> anyhow::Result<Option<PathBuf>> {
        for e in fs::read_dir(&dir)? {
            let path = e?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with(&format!("{p}_")) && name.ends_with(".deb") {
                return Ok(Some(path));
            }
        }
        Ok(None)
    };
    let missing: Vec<&String> = packages
        .iter()
        .filter(|p| !matches!(have(p), Ok(Some(_))))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "bed: apt-get download {} package(s) (log: {})",
            missing.len(),
            log.display()
        );
        cmd::run_logged(
            Command::new("apt-get")
                .args(["download", "-q"])
                .args(&missing)
                .current_dir(&dir),
            &log,
        )
        .context("downloading Debian packages for dom0")?;
    }
    packages
        .iter()
        .map(|p| {
            have(p)?.with_context(|| {
                format!(
                    "package {p} is not in {} after apt-get download; log: {}",
                    dir.display(),
                    log.display()
                )
            })
        })
        .collect()
}

/// Unpacks `debs` into `stage`.
pub fn unpack(debs: &[PathBuf], stage: &Path, log: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(stage)?;
    for d in debs {
        cmd::run_logged(Command::new("dpkg-deb").arg("-x").arg(d).arg(stage), log)?;
    }
    Ok(())
}

/// The shared libraries `bins` load, resolved with `ldd` against the staged
/// Xen libraries first and the host's Debian 12 libraries second.
fn libraries(bins: &[PathBuf], stage: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let libdir = stage.join("usr/lib/x86_64-linux-gnu");
    let mut libs = BTreeMap::new();
    for b in bins {
        let out = cmd::output(Command::new("ldd").arg(b).env("LD_LIBRARY_PATH", &libdir))?;
        for line in out.lines() {
            let line = line.trim();
            if line.contains("not found") {
                bail!(
                    "{} needs {} which no staged package provides",
                    b.display(),
                    line
                );
            }
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim().split(' ').next().unwrap_or(""),
                None => line.split(' ').next().unwrap_or(""),
            };
            if path.starts_with('/') {
                let name = Path::new(path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                libs.insert(name, PathBuf::from(path));
            }
        }
    }
    for name in DLOPENED {
        let host = Path::new("/lib/x86_64-linux-gnu").join(name);
        if !host.exists() {
            bail!(
                "{} is missing on the host (Debian package libgcc-s1)",
                host.display()
            );
        }
        libs.insert(name.to_string(), host);
    }
    Ok(libs)
}

/// Builds (or reuses) the dom0 kernel and base initramfs.
pub fn build(layout: &Layout) -> anyhow::Result<Image> {
    let mut packages: Vec<String> = XEN_PACKAGES.iter().map(|s| s.to_string()).collect();
    packages.push(kernel_package()?);
    let debs = download(layout, &packages)?;
    let names: Vec<String> = debs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // What goes into the image, not only where it comes from: a program
    // added to a list must not be missing from a cached image.
    let contents = [
        XEN_PROGRAMS,
        XEN_HELPERS,
        XENSTORE_CLIENTS,
        MODULES,
        DLOPENED,
    ]
    .map(|l| l.join(","));
    let mut inputs: Vec<&[u8]> = vec![INIT.as_bytes(), env!("CARGO_PKG_VERSION").as_bytes()];
    inputs.extend(contents.iter().map(|c| c.as_bytes()));
    inputs.extend(names.iter().map(|n| n.as_bytes()));
    let dir = layout.bed.join(format!("dom0-{}", hash_inputs(&inputs)));
    let image = Image {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.cpio"),
        stage: dir.join("stage"),
    };
    if image.initrd.exists() {
        return Ok(image);
    }
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let log = dir.join("build.log");
    eprintln!("bed: assembling the dom0 image (log: {})", log.display());
    unpack(&debs, &image.stage, &log)?;
    let stage = &image.stage;

    let kver = fs::read_dir(stage.join("lib/modules"))?
        .next()
        .context("the kernel package has no /lib/modules")??
        .file_name()
        .to_string_lossy()
        .into_owned();
    fs::copy(stage.join(format!("boot/vmlinuz-{kver}")), &image.kernel)
        .context("the kernel package has no /boot/vmlinuz")?;

    let mut w = cpio::Writer::new(Vec::new());
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "usr/lib",
        "usr/lib/xen-4.17",
        "usr/lib/xen-4.17/bin",
        "lib",
        "lib64",
        "lib/x86_64-linux-gnu",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "var",
        "var/log",
        "var/lib",
        "etc",
        "modules",
    ] {
        w.dir(d)?;
    }
    w.file("init", 0o755, INIT.as_bytes())?;
    w.dir("etc/xen")?;
    // xl warns on every call without it; the defaults suit the bed.
    w.file(
        "etc/xen/xl.conf",
        0o644,
        b"# nested test bed: xl defaults\n",
    )?;
    w.file("bin/busybox", 0o755, &fs::read(stage.join("bin/busybox"))?)?;
    w.symlink("bin/sh", "busybox")?;

    let bin_dir = stage.join("usr/lib/xen-4.17/bin");
    let mut bins = Vec::new();
    // Programs go on the PATH; helpers where libxl runs them from.
    for (list, dest) in [
        (XEN_PROGRAMS, "usr/sbin"),
        (XEN_HELPERS, "usr/lib/xen-4.17/bin"),
    ] {
        for p in list {
            let src = bin_dir.join(p);
            let data = fs::read(&src)
                .with_context(|| format!("staged toolstack lacks {}", src.display()))?;
            w.file(&format!("{dest}/{p}"), 0o755, &data)?;
            bins.push(src);
        }
    }
    for p in XENSTORE_CLIENTS {
        let src = stage.join("usr/bin").join(p);
        match fs::read_link(&src) {
            Ok(target) => w.symlink(&format!("usr/bin/{p}"), &target.to_string_lossy())?,
            Err(_) => {
                w.file(&format!("usr/bin/{p}"), 0o755, &fs::read(&src)?)?;
                bins.push(src);
            }
        }
    }
    for (name, path) in libraries(&bins, stage)? {
        let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let dest = if name.starts_with("ld-linux") {
            format!("lib64/{name}")
        } else {
            format!("lib/x86_64-linux-gnu/{name}")
        };
        w.file(&dest, 0o755, &data)?;
    }
    let mod_dir = stage.join("lib/modules").join(&kver).join("kernel/drivers");
    for m in MODULES {
        let src = mod_dir.join(m);
        let name = src.file_name().unwrap().to_string_lossy().into_owned();
        let data = fs::read(&src).with_context(|| format!("kernel {kver} lacks module {m}"))?;
        w.file(&format!("modules/{name}"), 0o644, &data)?;
    }
    let cpio = w.finish()?;
    let tmp = image.initrd.with_extension("tmp");
    fs::write(&tmp, cpio)?;
    fs::rename(&tmp, &image.initrd)?;
    Ok(image)
}
