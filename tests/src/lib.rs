//! Scenarios for the nested test bed.
//!
//! A test describes guests (an xl config plus kernel and ramdisk files), dom0
//! steps, what to wait for and timeouts; [`Scenario::run`] boots Xen under
//! QEMU once for all of them and returns, per run, Xen's console, dom0's
//! output, every guest console and the outcome of each step.
//!
//! ```no_run
//! use nested::{Guest, Scenario};
//! let linux = nested::linux_guest();
//! let run = Scenario::new("linux-pvh")
//!     .guest(Guest::pvh("linux", &linux.vmlinux).ramdisk(&linux.initrd).memory_mb(128))
//!     .start("linux")
//!     .wait_shutdown("linux", 60)
//!     .run();
//! run.assert_ok();
//! assert!(run.console("linux").contains("userspace up"));
//! ```

mod report;
mod scenario;
pub mod steps;
pub mod stress;
mod watch;

pub mod linux;
pub use report::{Run, StepResult};
pub use scenario::{Guest, Scenario};
pub use testbed::kernels::LinuxGuest;

use std::path::PathBuf;
use std::sync::OnceLock;

use testbed::{Artifacts, Layout};

/// The bed's artefacts, built once per process (and cached on disk across
/// processes). Panics with the builder's one-line error if a build fails.
pub fn artifacts() -> &'static Artifacts {
    static ART: OnceLock<Result<Artifacts, String>> = OnceLock::new();
    match ART.get_or_init(|| testbed::prepare(&layout()).map_err(|e| format!("{e:#}"))) {
        Ok(a) => a,
        Err(e) => panic!("test bed: {e}"),
    }
}

pub fn layout() -> Layout {
    Layout::from_workspace()
}

/// Builds one of our PVH kernels (`stubdom`, `guest`) and returns its ELF.
pub fn kernel(package: &str) -> PathBuf {
    let layout = layout();
    let _lock = layout.lock("build").expect("build lock");
    testbed::kernels::build_ours(&layout, package).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Builds one of our dom0 programs (a host binary of this workspace, linked
/// against Debian's Xen libraries, which dom0 carries) and returns its path.
pub fn dom0_tool(package: &str) -> PathBuf {
    let layout = layout();
    let _lock = layout.lock("build").expect("build lock");
    testbed::kernels::build_host_tool(&layout, package).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Debian's Linux as a PVH guest whose init prints
/// [`testbed::kernels::LINUX_GUEST_MARKER`] and powers off.
pub fn linux_guest() -> LinuxGuest {
    let art = artifacts();
    testbed::kernels::linux_guest(&layout(), &art.dom0).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Debian's Linux as the monitored target of the attribution test and the
/// Quick start ([`testbed::kernels::linux_target`]).
pub fn linux_target() -> LinuxGuest {
    let art = artifacts();
    testbed::kernels::linux_target(&layout(), &art.dom0).unwrap_or_else(|e| panic!("{e:#}"))
}
