//! `public/hvm/hvm_op.h`, `params.h` and `dm_op.h` (Xen 4.17): HVM params
//! (a PVH kernel finds its console and xenstore there; a monitor the stock
//! ring), the guest's request to its monitor, and reinjecting a trap a
//! monitor swallowed.

use core::mem::{offset_of, size_of};

pub const HVMOP_SET_PARAM: u32 = 0;
pub const HVMOP_GET_PARAM: u32 = 1;
/// `HVMOP_guest_request_vm_event`: a guest asks its monitor (no argument).
pub const HVMOP_GUEST_REQUEST_VM_EVENT: u32 = 24;

/// How event-channel upcalls are delivered (`HVM_PARAM_CALLBACK_TYPE_*`
/// in bits 56..63 of the value).
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// The vector callback type, shifted into place.
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2 << 56;
pub const HVM_PARAM_STORE_PFN: u32 = 1;
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
/// GFN of the stock vm_event ring page in the target's physmap.
pub const HVM_PARAM_MONITOR_RING_PFN: u32 = 28;

/// `struct xen_hvm_param`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenHvmParam {
    pub domid: u16,
    pub pad: u16,
    pub index: u32,
    pub value: u64,
}

pub const XEN_DMOP_INJECT_EVENT: u32 = 13;
/// Payload: `uint32_t vcpus` (OUT).
pub const XEN_DMOP_NR_VCPUS: u32 = 20;

pub const XEN_DMOP_EVENT_EXT_INT: u8 = 0;
pub const XEN_DMOP_EVENT_NMI: u8 = 2;
pub const XEN_DMOP_EVENT_HW_EXC: u8 = 3;
pub const XEN_DMOP_EVENT_SW_INT: u8 = 4;
pub const XEN_DMOP_EVENT_PRI_SW_EXC: u8 = 5;
/// INT3 (CC) and INTO: the type a software breakpoint is reinjected with.
pub const XEN_DMOP_EVENT_SW_EXC: u8 = 6;

/// `struct xen_dm_op_inject_event`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDmOpInjectEvent {
    pub vcpuid: u32,
    pub vector: u8,
    pub type_: u8,
    pub insn_len: u8,
    pub pad0: u8,
    /// `!0` for "no error code".
    pub error_code: u32,
    pub pad1: u32,
    pub cr2: u64,
}

/// `struct xen_dm_op` restricted to the member we use; the C union is
/// larger, so the payload is padded to its size.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDmOpInject {
    pub op: u32,
    pub pad: u32,
    pub inject_event: XenDmOpInjectEvent,
}

/// `struct xen_dm_op_buf`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDmOpBuf {
    pub h: u64,
    pub size: u64,
}

const _: () = {
    assert!(size_of::<XenHvmParam>() == 16);
    assert!(offset_of!(XenHvmParam, value) == 8);
    assert!(size_of::<XenDmOpInjectEvent>() == 24);
    assert!(offset_of!(XenDmOpInjectEvent, error_code) == 8);
    assert!(offset_of!(XenDmOpInjectEvent, cr2) == 16);
    assert!(offset_of!(XenDmOpInject, inject_event) == 8);
    assert!(size_of::<XenDmOpBuf>() == 16);
};
