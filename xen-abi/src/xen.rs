//! `public/xen.h`, `sched.h` and `errno.h` (x86_64): hypercall numbers,
//! domain ids, shutdown reasons and the errno a hypercall returns. Numbers
//! come from `xen-sys` (generated from Xen's headers) where it has them.

use core::fmt;

/// `struct multicall_entry`: one hypercall of a `HYPERVISOR_multicall`
/// batch; Xen writes each call's return value into `result`.
pub use xen_sys::multicall_entry;
pub use xen_sys::{
    __HYPERVISOR_dm_op as HYPERVISOR_DM_OP, __HYPERVISOR_domctl as HYPERVISOR_DOMCTL,
    __HYPERVISOR_event_channel_op as HYPERVISOR_EVENT_CHANNEL_OP,
    __HYPERVISOR_hvm_op as HYPERVISOR_HVM_OP, __HYPERVISOR_memory_op as HYPERVISOR_MEMORY_OP,
    __HYPERVISOR_multicall as HYPERVISOR_MULTICALL, __HYPERVISOR_sched_op as HYPERVISOR_SCHED_OP,
    __HYPERVISOR_vcpu_op as HYPERVISOR_VCPU_OP, __HYPERVISOR_xen_version as HYPERVISOR_XEN_VERSION,
};
/// `shared_info`, `vcpu_info`, `vcpu_time_info`, `sched_shutdown`: read
/// or passed as Xen lays them out, never built field by field by us.
pub use xen_sys::{sched_shutdown, shared_info, vcpu_info, vcpu_time_info};
pub use xen_sys::{
    SCHEDOP_block as SCHEDOP_BLOCK, SCHEDOP_poll as SCHEDOP_POLL,
    SCHEDOP_shutdown as SCHEDOP_SHUTDOWN, SCHEDOP_yield as SCHEDOP_YIELD, VIRQ_TIMER,
};

/// `struct sched_poll`: block until one of `ports` is pending, masked or
/// not, or system time reaches `timeout` (ns; 0: none).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedPoll {
    /// `XEN_GUEST_HANDLE(evtchn_port_t)`.
    pub ports: u64,
    pub nr_ports: u32,
    pub pad: u32,
    pub timeout: u64,
}

/// Xen's limit on `SchedPoll::nr_ports`.
pub const SCHED_POLL_MAX_PORTS: usize = 128;

const _: () = assert!(core::mem::size_of::<SchedPoll>() == 24);
const _: () = assert!(core::mem::size_of::<multicall_entry>() == 64);

pub type DomId = u16;
pub const DOMID_SELF: DomId = 0x7ff0;

pub const XEN_PAGE_SIZE: usize = 4096;

/// `SHUTDOWN_*` reason codes (sched.h), as `xl` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ShutdownReason {
    /// Clean exit.
    Poweroff = 0,
    /// Reboot (the test guest's `then=reboot`: xl's default `on_reboot` restarts it).
    Reboot = 1,
    /// Suspend.
    Suspend = 2,
    /// Crash: panics, faults and refused configuration.
    Crash = 3,
    /// Watchdog.
    Watchdog = 4,
    /// Soft reset: the toolstack rebuilds the domain in place.
    SoftReset = 5,
}

/// A negative errno returned by a hypercall (`public/errno.h`: Xen's
/// values are Linux's). Compare with the constants (`XenError::ESRCH`),
/// never by name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct XenError(pub i32);

impl XenError {
    pub const EPERM: XenError = XenError(1);
    pub const ENOENT: XenError = XenError(2);
    pub const ESRCH: XenError = XenError(3);
    pub const EIO: XenError = XenError(5);
    pub const E2BIG: XenError = XenError(7);
    pub const EAGAIN: XenError = XenError(11);
    pub const ENOMEM: XenError = XenError(12);
    pub const EACCES: XenError = XenError(13);
    pub const EFAULT: XenError = XenError(14);
    pub const EBUSY: XenError = XenError(16);
    pub const EEXIST: XenError = XenError(17);
    pub const EXDEV: XenError = XenError(18);
    pub const ENODEV: XenError = XenError(19);
    pub const EINVAL: XenError = XenError(22);
    pub const ENOSPC: XenError = XenError(28);
    pub const ENOSYS: XenError = XenError(38);
    pub const ETIME: XenError = XenError(62);
    pub const EOPNOTSUPP: XenError = XenError(95);

    const NAMES: [(XenError, &'static str); 18] = [
        (Self::EPERM, "EPERM"),
        (Self::ENOENT, "ENOENT"),
        (Self::ESRCH, "ESRCH"),
        (Self::EIO, "EIO"),
        (Self::E2BIG, "E2BIG"),
        (Self::EAGAIN, "EAGAIN"),
        (Self::ENOMEM, "ENOMEM"),
        (Self::EACCES, "EACCES"),
        (Self::EFAULT, "EFAULT"),
        (Self::EBUSY, "EBUSY"),
        (Self::EEXIST, "EEXIST"),
        (Self::EXDEV, "EXDEV"),
        (Self::ENODEV, "ENODEV"),
        (Self::EINVAL, "EINVAL"),
        (Self::ENOSPC, "ENOSPC"),
        (Self::ENOSYS, "ENOSYS"),
        (Self::ETIME, "ETIME"),
        (Self::EOPNOTSUPP, "EOPNOTSUPP"),
    ];

    /// Turns a raw hypercall return into `Ok(value)` or `Err(errno)`.
    pub fn check(ret: i64) -> Result<u64, XenError> {
        if (-4095..0).contains(&ret) {
            Err(XenError(-ret as i32))
        } else {
            Ok(ret as u64)
        }
    }

    /// Whether this is a FLASK (or plain privilege) refusal.
    pub fn is_denial(self) -> bool {
        self == Self::EACCES || self == Self::EPERM
    }

    /// The symbolic name, for messages (`"E?"` if unknown).
    pub fn name(&self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(e, _)| e == self)
            .map_or("E?", |(_, n)| n)
    }
}

impl fmt::Debug for XenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-{} ({})", self.name(), self.0)
    }
}

impl fmt::Display for XenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn errno() {
        assert_eq!(XenError::check(5), Ok(5));
        assert_eq!(XenError::check(-22), Err(XenError::EINVAL));
        assert_eq!(format!("{:?}", XenError(13)), "-EACCES (13)");
        assert_eq!(XenError(9999).name(), "E?");
        assert!(XenError::EPERM.is_denial() && !XenError::ESRCH.is_denial());
        for (e, n) in XenError::NAMES {
            assert_eq!(e.name(), n);
        }
    }
}
