//! Xen ABI pieces that `xen-sys` (generated from an older, PV-centric header
//! set) does not carry: `vcpu.h`, `hvm/hvm_vcpu.h`, `hvm/params.h`,
//! `hvm/hvm_op.h`, `memory.h`, `version.h`, `io/console.h`, plus an errno type.
//! Layouts follow Xen 4.17's public headers; sizes are checked in tests.
//! The event-channel, sched and shared-info types come from `xen-sys`.

use core::fmt;

pub use xen_sys::{
    evtchn_alloc_unbound, evtchn_bind_interdomain, evtchn_bind_ipi, evtchn_bind_vcpu,
    evtchn_bind_virq, evtchn_close, evtchn_send, evtchn_unmask, sched_shutdown, shared_info,
    vcpu_info, vcpu_time_info,
};

/// Event-channel port number.
pub type Port = u32;
/// Domain id.
pub type DomId = u16;

/// `DOMID_SELF`.
pub const DOMID_SELF: DomId = 0x7ff0;

/// Hypercall numbers (`__HYPERVISOR_*`).
pub mod hc {
    pub use xen_sys::{
        __HYPERVISOR_domctl as DOMCTL, __HYPERVISOR_event_channel_op as EVENT_CHANNEL_OP,
        __HYPERVISOR_hvm_op as HVM_OP, __HYPERVISOR_memory_op as MEMORY_OP,
        __HYPERVISOR_sched_op as SCHED_OP, __HYPERVISOR_vcpu_op as VCPU_OP,
        __HYPERVISOR_xen_version as XEN_VERSION,
    };
}

/// `SCHEDOP_*`.
pub mod schedop {
    pub use xen_sys::{
        SCHEDOP_block as BLOCK, SCHEDOP_shutdown as SHUTDOWN, SCHEDOP_yield as YIELD,
    };
}

/// `EVTCHNOP_*`.
pub mod evtchnop {
    pub use xen_sys::{
        EVTCHNOP_alloc_unbound as ALLOC_UNBOUND, EVTCHNOP_bind_interdomain as BIND_INTERDOMAIN,
        EVTCHNOP_bind_ipi as BIND_IPI, EVTCHNOP_bind_vcpu as BIND_VCPU,
        EVTCHNOP_bind_virq as BIND_VIRQ, EVTCHNOP_close as CLOSE, EVTCHNOP_send as SEND,
        EVTCHNOP_unmask as UNMASK,
    };
}

/// `VIRQ_TIMER`.
pub const VIRQ_TIMER: u32 = xen_sys::VIRQ_TIMER;

/// `VCPUOP_*` (vcpu.h).
pub mod vcpuop {
    /// Set the initial register state of an offline vCPU.
    pub const INITIALISE: u32 = 0;
    /// Bring a vCPU online.
    pub const UP: u32 = 1;
    /// Is the vCPU online? (-ENOENT if it does not exist).
    pub const IS_UP: u32 = 3;
    /// Stop the periodic timer.
    pub const STOP_PERIODIC_TIMER: u32 = 7;
    /// Arm the one-shot timer (current vCPU only).
    pub const SET_SINGLESHOT_TIMER: u32 = 8;
    /// Cancel the one-shot timer.
    pub const STOP_SINGLESHOT_TIMER: u32 = 9;
    /// Move a vCPU's `vcpu_info` out of `shared_info`.
    pub const REGISTER_VCPU_INFO: u32 = 10;
}

/// `struct vcpu_register_vcpu_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuRegisterVcpuInfo {
    /// Frame holding the `vcpu_info`.
    pub mfn: u64,
    /// Offset in that frame.
    pub offset: u32,
    /// Reserved.
    pub rsvd: u32,
}

/// `struct vcpu_set_singleshot_timer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuSetSingleshotTimer {
    /// Absolute system time in ns.
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*`.
    pub flags: u32,
}

/// `VCPU_HVM_MODE_64B`.
pub const VCPU_HVM_MODE_64B: u32 = 1;

/// `struct vcpu_hvm_x86_64`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(missing_docs)]
pub struct VcpuHvmX86_64 {
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rbx: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rip: u64,
    pub rflags: u64,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
}

/// `struct vcpu_hvm_context` (the union is as large as its 32-bit arm).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuHvmContext {
    /// `VCPU_HVM_MODE_*`.
    pub mode: u32,
    /// Padding.
    pub pad: u32,
    /// 64-bit register state.
    pub regs: VcpuHvmX86_64,
    /// Rest of the union (the 32-bit arm is 120 bytes, the 64-bit one 112).
    pub union_tail: [u64; 1],
}

/// `HVMOP_*` and `HVM_PARAM_*`.
pub mod hvm {
    /// `HVMOP_set_param`.
    pub const SET_PARAM: u32 = 0;
    /// `HVMOP_get_param`.
    pub const GET_PARAM: u32 = 1;
    /// `HVM_PARAM_CALLBACK_IRQ`.
    pub const PARAM_CALLBACK_IRQ: u32 = 0;
    /// `HVM_PARAM_STORE_PFN`.
    pub const PARAM_STORE_PFN: u32 = 1;
    /// `HVM_PARAM_STORE_EVTCHN`.
    pub const PARAM_STORE_EVTCHN: u32 = 2;
    /// `HVM_PARAM_CONSOLE_PFN`.
    pub const PARAM_CONSOLE_PFN: u32 = 17;
    /// `HVM_PARAM_CONSOLE_EVTCHN`.
    pub const PARAM_CONSOLE_EVTCHN: u32 = 18;
    /// `HVM_PARAM_CALLBACK_TYPE_VECTOR` (shifted into bits 56..63).
    pub const CALLBACK_TYPE_VECTOR: u64 = 2 << 56;
}

/// `struct xen_hvm_param`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenHvmParam {
    /// Domain (`DOMID_SELF`).
    pub domid: DomId,
    /// Padding.
    pub pad: u16,
    /// `HVM_PARAM_*`.
    pub index: u32,
    /// Value.
    pub value: u64,
}

/// `XENMEM_*` (memory.h).
pub mod xenmem {
    /// `XENMEM_add_to_physmap`.
    pub const ADD_TO_PHYSMAP: u32 = 7;
    /// `XENMEM_acquire_resource`.
    pub const ACQUIRE_RESOURCE: u32 = 28;
    /// `XENMAPSPACE_shared_info`.
    pub const MAPSPACE_SHARED_INFO: u32 = 0;
}

/// `struct xen_add_to_physmap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XenAddToPhysmap {
    /// Domain.
    pub domid: DomId,
    /// Number of pages (gmfn_range only).
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index in the space.
    pub idx: u64,
    /// GFN to map at.
    pub gpfn: u64,
}

/// `XENVER_*`.
pub mod xenver {
    /// Returns `major << 16 | minor`.
    pub const VERSION: u32 = 0;
    /// Fills a `char[16]`.
    pub const EXTRAVERSION: u32 = 1;
}

/// `struct xencons_interface` (io/console.h).
#[repr(C)]
pub struct XenconsInterface {
    /// Input ring.
    pub input: [u8; 1024],
    /// Output ring.
    pub output: [u8; 2048],
    /// Input consumer index.
    pub in_cons: u32,
    /// Input producer index.
    pub in_prod: u32,
    /// Output consumer index.
    pub out_cons: u32,
    /// Output producer index.
    pub out_prod: u32,
}

/// `SHUTDOWN_*` reason codes, as `xl` reports them.
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
}

/// A negative errno returned by a hypercall.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct XenError(pub i32);

impl XenError {
    /// Turns a raw hypercall return into `Ok(value)` or `Err(errno)`.
    pub fn check(ret: i64) -> Result<u64, XenError> {
        if (-4095..0).contains(&ret) {
            Err(XenError(-ret as i32))
        } else {
            Ok(ret as u64)
        }
    }

    /// The symbolic name, if known.
    pub fn name(&self) -> &'static str {
        match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            3 => "ESRCH",
            4 => "EINTR",
            7 => "E2BIG",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            14 => "EFAULT",
            16 => "EBUSY",
            17 => "EEXIST",
            18 => "EXDEV",
            19 => "ENODEV",
            22 => "EINVAL",
            28 => "ENOSPC",
            38 => "ENOSYS",
            62 => "ETIME",
            95 => "EOPNOTSUPP",
            _ => "E?",
        }
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

/// Scales a TSC delta to nanoseconds as `vcpu_time_info` prescribes:
/// shift by `tsc_shift`, then multiply by `mul / 2^32`.
pub const fn scale_tsc_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let d = if shift >= 0 {
        delta << shift
    } else {
        delta >> (-(shift as i32))
    };
    ((d as u128 * mul as u128) >> 32) as u64
}

/// One pass of the 2-level event-channel scan, as the upcall does it: for
/// every word selected in `sel` (a vCPU's `evtchn_pending_sel`), every port
/// that is pending, not masked and bound to this vCPU (`mine`) is passed to
/// `deliver`, lowest first. `pending(w)`/`mask(w)` read word `w` of the
/// shared bitmaps. Ports of other vCPUs that share a word are left alone:
/// Xen has set their own vCPU's selector bit.
pub fn scan_2l(
    sel: u64,
    pending: impl Fn(usize) -> u64,
    mask: impl Fn(usize) -> u64,
    mine: impl Fn(usize) -> bool,
    mut deliver: impl FnMut(usize),
) {
    let mut words = sel;
    while words != 0 {
        let w = words.trailing_zeros() as usize;
        words &= words - 1;
        let mut bits = pending(w) & !mask(w);
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let port = w * 64 + b;
            if mine(port) {
                deliver(port);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layouts_match_xen_4_17() {
        assert_eq!(size_of::<VcpuRegisterVcpuInfo>(), 16);
        assert_eq!(size_of::<VcpuSetSingleshotTimer>(), 16);
        // 8 (mode+pad) + sizeof(union), where the 32-bit arm is 120 bytes.
        assert_eq!(size_of::<VcpuHvmContext>(), 8 + 120);
        assert_eq!(size_of::<XenHvmParam>(), 16);
        assert_eq!(size_of::<XenAddToPhysmap>(), 24);
        assert_eq!(size_of::<XenconsInterface>(), 1024 + 2048 + 16);
        assert_eq!(size_of::<vcpu_info>(), 64);
        assert_eq!(core::mem::offset_of!(shared_info, evtchn_pending), 32 * 64);
    }

    #[test]
    fn errno() {
        assert_eq!(XenError::check(5), Ok(5));
        assert_eq!(XenError::check(-22), Err(XenError(22)));
        assert_eq!(format!("{:?}", XenError(13)), "-EACCES (13)");
    }

    #[test]
    fn scan_delivers_only_ready_ports_of_this_vcpu() {
        let pending = [0b1011u64, 0, 1 << 63, u64::MAX];
        let mask = [0b0010u64, 0, 0, !0b1];
        let mut got = Vec::new();
        // Word 1 selected but empty; word 3 not selected.
        scan_2l(
            0b0111,
            |w| pending[w],
            |w| mask[w],
            |p| p != 3,
            |p| got.push(p),
        );
        assert_eq!(
            got,
            [0, 2 * 64 + 63],
            "port 1 masked, port 3 another vCPU's"
        );
        got.clear();
        scan_2l(
            1 << 3,
            |w| pending[w],
            |w| mask[w],
            |_| true,
            |p| got.push(p),
        );
        assert_eq!(got, [3 * 64]);
        got.clear();
        scan_2l(0, |_| u64::MAX, |_| 0, |_| true, |p| got.push(p));
        assert!(got.is_empty());
    }

    #[test]
    fn tsc_scaling() {
        // 2 GHz TSC: mul = 2^31 (0.5 ns per tick), shift 0.
        assert_eq!(scale_tsc_delta(2_000, 1 << 31, 0), 1_000);
        assert_eq!(scale_tsc_delta(2_000, 1 << 31, 1), 2_000);
        assert_eq!(scale_tsc_delta(2_000, 1 << 31, -1), 500);
        // No overflow for large deltas.
        assert_eq!(
            scale_tsc_delta(1 << 40, u32::MAX, 0),
            (((1u128 << 40) * u32::MAX as u128) >> 32) as u64
        );
    }
}
