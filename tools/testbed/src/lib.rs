//! The nested test bed: everything this project does happens inside Xen, so
//! every feature is proven by booting a real Xen under QEMU and reading what
//! the domains printed.
//!
//! * [`deps`] installs the Debian packages the bed needs on the host;
//! * [`xen`] builds the hypervisor (Debian's 4.17.5 source + `xen/patches/`,
//!   FLASK on) and the FLASK policy (`tools/flask/policy` + `xen/flask/*.te`);
//! * [`dom0`] assembles the dom0 initramfs from Debian's binary packages;
//! * [`kernels`] builds our own PVH kernels and unpacks Linux for PVH guests;
//! * [`qemu`] boots the result, one QEMU at a time, always under a timeout.
//!
//! Every artefact is cached under `target/bed/` by a hash of its inputs.

pub mod cmd;
pub mod cpio;
pub mod deps;
pub mod dom0;
pub mod kernels;
pub mod layout;
pub mod qemu;
pub mod xen;

pub use layout::Layout;

/// Everything a boot of the bed needs, built (or found in the cache).
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub xen: xen::Hypervisor,
    pub policy: std::path::PathBuf,
    pub dom0: dom0::Image,
}

/// Installs what is missing, then builds (or reuses) Xen, the policy and the
/// dom0 image. Safe to call from several processes: builds are serialised by
/// a lock file.
pub fn prepare(layout: &Layout) -> anyhow::Result<Artifacts> {
    let _lock = layout.lock("build")?;
    deps::ensure(layout)?;
    let xen = xen::build_hypervisor(layout)?;
    let policy = xen::build_policy(layout, &xen)?;
    let dom0 = dom0::build(layout)?;
    Ok(Artifacts { xen, policy, dom0 })
}
