//! Shared-page layouts: our slots and async ring (docs/abi.md) and Xen's
//! stock vm_event ring (`DEFINE_RING_TYPES(vm_event, ...)` of
//! `public/io/ring.h` over one 4 KiB page).

use super::vm_event::VmEventSt;
use super::xen::XEN_PAGE_SIZE;
use core::mem::{offset_of, size_of};

pub const VM_EVENT_SLOT_SIZE: usize = 512;
pub const VM_EVENT_SLOTS_PER_PAGE: usize = XEN_PAGE_SIZE / VM_EVENT_SLOT_SIZE;

pub const VM_EVENT_SLOT_IDLE: u32 = 0;
pub const VM_EVENT_SLOT_SUBMIT: u32 = 1;
pub const VM_EVENT_SLOT_FINISH: u32 = 2;

/// `union { vm_event_request_t req; vm_event_response_t rsp; }` — both are
/// `struct vm_event_st`, so one field stands for both.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VmEventSlotU {
    pub req: VmEventSt,
}

/// `struct vm_event_slot`; consecutive slots are `VM_EVENT_SLOT_SIZE` apart.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VmEventSlot {
    pub state: u32,
    pub pad: u32,
    pub u: VmEventSlotU,
}

pub const VM_EVENT_SLOT_STATE_OFFSET: usize = offset_of!(VmEventSlot, state);
pub const VM_EVENT_SLOT_PAYLOAD_OFFSET: usize = offset_of!(VmEventSlot, u);

/// Byte offset of vCPU `vcpu`'s slot from the start of the slot frames
/// (frame `R + vcpu / 8` of the resource, at `(vcpu % 8) * 512`).
pub const fn slot_offset(vcpu: u32) -> usize {
    vcpu as usize * VM_EVENT_SLOT_SIZE
}

/// Number of slot frames S for `nr_vcpus` target vCPUs.
pub const fn slot_frames(nr_vcpus: u32) -> u32 {
    nr_vcpus.div_ceil(VM_EVENT_SLOTS_PER_PAGE as u32)
}

/// Header of `struct vm_event_async_ring`; entries follow at offset 64.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmEventAsyncRing {
    pub prod: u32,
    pub cons: u32,
    pub nr_entries: u32,
    pub dropped: u32,
    pub pad: [u8; 48],
}

pub const VM_EVENT_ASYNC_RING_HDR_SIZE: usize = size_of::<VmEventAsyncRing>();
pub const VM_EVENT_ASYNC_PROD_OFFSET: usize = offset_of!(VmEventAsyncRing, prod);
pub const VM_EVENT_ASYNC_CONS_OFFSET: usize = offset_of!(VmEventAsyncRing, cons);
pub const VM_EVENT_ASYNC_NR_ENTRIES_OFFSET: usize = offset_of!(VmEventAsyncRing, nr_entries);
pub const VM_EVENT_ASYNC_DROPPED_OFFSET: usize = offset_of!(VmEventAsyncRing, dropped);

/// Capacity of an async ring of `ring_frames` frames
/// (`VM_EVENT_ASYNC_RING_ENTRIES`): the requests that fit, rounded down to a
/// power of two, so that `prod % capacity` stays continuous when the
/// free-running 32-bit counters wrap.
pub const fn async_ring_entries(ring_frames: u32) -> u32 {
    let fit = (ring_frames as usize * XEN_PAGE_SIZE - VM_EVENT_ASYNC_RING_HDR_SIZE)
        / size_of::<VmEventSt>();
    1 << (usize::BITS - 1 - fit.leading_zeros())
}

/// Header of `struct vm_event_sring` (`RING_IDX req_prod, req_event,
/// rsp_prod, rsp_event; pvt; __pad[44]`); entries follow at offset 64.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmEventSringHdr {
    pub req_prod: u32,
    pub req_event: u32,
    pub rsp_prod: u32,
    pub rsp_event: u32,
    pub pvt: [u8; 4],
    pub __pad: [u8; 44],
}

pub const VM_EVENT_SRING_HDR_SIZE: usize = size_of::<VmEventSringHdr>();
/// `__CONST_RING_SIZE(vm_event, 4096)`: rounded down to a power of two.
pub const VM_EVENT_RING_SIZE: u32 = {
    let n = (XEN_PAGE_SIZE - VM_EVENT_SRING_HDR_SIZE) / size_of::<VmEventSt>();
    1 << (usize::BITS - 1 - n.leading_zeros())
};

const _: () = {
    assert!(offset_of!(VmEventSlot, u) == 8);
    assert!(size_of::<VmEventSlot>() == 408);
    assert!(size_of::<VmEventSlot>() <= VM_EVENT_SLOT_SIZE);
    assert!(VM_EVENT_SLOTS_PER_PAGE == 8);
    assert!(VM_EVENT_ASYNC_RING_HDR_SIZE == 64);
    assert!(VM_EVENT_ASYNC_DROPPED_OFFSET == 12);
    assert!(async_ring_entries(1) == 8);
    assert!(async_ring_entries(16) == 128);
    assert!(VM_EVENT_SRING_HDR_SIZE == 64);
    assert!(VM_EVENT_RING_SIZE == 8);
};
