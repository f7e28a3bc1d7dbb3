//! The nested test bed: everything this project does happens inside Xen, so
//! every feature is proven by booting a real Xen under QEMU and reading what
//! the domains printed.
//!
//! * [`deps`] installs the Debian packages and the Rust target the bed needs;
//! * [`debsrc`] fetches, unpacks and patches Debian source packages;
//! * [`qemu_build`] builds the bed's QEMU (Debian's 7.2 source + our
//!   `tools/testbed/qemu-patches/`);
//! * [`xen`] builds the hypervisor (Debian's 4.17.5 source + `xen/patches/4.17/`,
//!   FLASK on) and the FLASK policy (`tools/flask/policy` + `xen/flask/*.te`);
//! * [`dom0`] assembles the dom0 initramfs from Debian's binary packages;
//! * [`kernels`] builds our own PVH kernels and unpacks Linux for PVH guests;
//! * [`qemu`] boots the result, one QEMU at a time, always under a timeout.
//!
//! Every artefact is cached under `target/bed/` by a hash of its inputs.

pub mod cmd;
pub mod cpio;
pub mod debsrc;
pub mod deps;
pub mod dom0;
pub mod kernels;
pub mod layout;
pub mod qemu;
pub mod qemu_build;
pub mod xen;

pub use layout::Layout;

/// Everything a boot of the bed needs, built (or found in the cache).
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub qemu: qemu_build::Emulator,
    pub xen: xen::Hypervisor,
    pub policy: std::path::PathBuf,
    pub dom0: dom0::Image,
}

/// Installs what is missing, then builds (or reuses) QEMU, Xen, the policy
/// and the dom0 image. Safe to call from several processes: builds are serialised by
/// a lock file.
pub fn prepare(layout: &Layout) -> anyhow::Result<Artifacts> {
    let _lock = layout.lock("build")?;
    deps::ensure(layout)?;
    let qemu = qemu_build::build(layout)?;
    let xen = xen::build_hypervisor(layout)?;
    let policy = xen::build_policy(layout, &xen)?;
    let dom0 = dom0::build(layout)?;
    Ok(Artifacts {
        qemu,
        xen,
        policy,
        dom0,
    })
}
