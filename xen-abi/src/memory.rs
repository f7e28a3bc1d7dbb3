//! `public/memory.h` (Xen 4.17): `XENMEM_add_to_physmap`,
//! `XENMEM_add_to_physmap_batch`, `XENMEM_acquire_resource`,
//! `XENMEM_access_op`, and `XENMEM_populate_physmap` /
//! `XENMEM_decrease_reservation` (a domain's own memory).

use core::mem::{offset_of, size_of};

pub const XENMEM_DECREASE_RESERVATION: u32 = 1;
pub const XENMEM_POPULATE_PHYSMAP: u32 = 6;
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;
pub const XENMEM_REMOVE_FROM_PHYSMAP: u32 = 15;
pub const XENMEM_ACCESS_OP: u32 = 21;
/// Maps many frames in one call, each with its own error (`errs`); the only
/// way to use `XENMAPSPACE_GMFN_FOREIGN` (guestmem's frame window).
pub const XENMEM_ADD_TO_PHYSMAP_BATCH: u32 = 23;
pub const XENMEM_ACQUIRE_RESOURCE: u32 = 28;

/// `struct xen_memory_reservation`: `nr_extents` extents of
/// `2^extent_order` frames at the GFNs listed at `extent_start`. Xen
/// returns how many extents it did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMemoryReservation {
    /// Guest handle of the GFN list.
    pub extent_start: u64,
    pub nr_extents: u64,
    pub extent_order: u32,
    pub mem_flags: u32,
    pub domid: u16,
}

/// `struct xen_remove_from_physmap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenRemoveFromPhysmap {
    pub domid: u16,
    /// GFN of the page to unmap.
    pub gpfn: u64,
}

/// `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_gmfn_foreign`: `idx` is a GFN of `foreign_domid`
/// (`XENMEM_add_to_physmap_batch` only).
pub const XENMAPSPACE_GMFN_FOREIGN: u32 = 4;

/// `struct xen_add_to_physmap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenAddToPhysmap {
    pub domid: u16,
    /// Number of pages (`XENMAPSPACE_gmfn_range` only).
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index in the space.
    pub idx: u64,
    /// GFN to map at.
    pub gpfn: u64,
}

/// `struct xen_add_to_physmap_batch` (interface version >= 0x00040700:
/// `foreign_domid` is the union `u`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenAddToPhysmapBatch {
    /// The domain whose physmap changes (`DOMID_SELF` for the caller).
    pub domid: u16,
    /// `XENMAPSPACE_*`.
    pub space: u16,
    /// Number of entries in `idxs`, `gpfns` and `errs`.
    pub size: u16,
    /// `u.foreign_domid`: the domain owning the frames
    /// (`XENMAPSPACE_GMFN_FOREIGN`; 0 for the other spaces).
    pub foreign_domid: u16,
    /// `XEN_GUEST_HANDLE(xen_ulong_t)`: indexes in the space (foreign GFNs).
    pub idxs: u64,
    /// `XEN_GUEST_HANDLE(xen_pfn_t)`: GFNs of `domid` where they appear.
    pub gpfns: u64,
    /// `XEN_GUEST_HANDLE(int)`, OUT: per-entry 0 or negative errno.
    pub errs: u64,
}

pub const XENMEM_RESOURCE_IOREQ_SERVER: u16 = 0;
pub const XENMEM_RESOURCE_GRANT_TABLE: u16 = 1;
pub const XENMEM_RESOURCE_VMTRACE_BUF: u16 = 2;
/// Ours (docs/abi.md): the async ring and the slots, `id` =
/// `XEN_DOMCTL_VM_EVENT_OP_MONITOR`.
pub const XENMEM_RESOURCE_VM_EVENT: u16 = 3;

/// `struct xen_mem_acquire_resource`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMemAcquireResource {
    pub domid: u16,
    pub type_: u16,
    pub id: u32,
    /// IN: frames wanted; `0` asks for the resource size (OUT).
    pub nr_frames: u32,
    pub pad: u32,
    /// IN: first frame of the resource to map.
    pub frame: u64,
    /// `XEN_GUEST_HANDLE(xen_pfn_t)`: for a translated caller, the GFNs
    /// where the frames are to appear.
    pub frame_list: u64,
}

pub const XENMEM_ACCESS_OP_SET_ACCESS: u8 = 0;
pub const XENMEM_ACCESS_OP_GET_ACCESS: u8 = 1;
pub const XENMEM_ACCESS_OP_SET_ACCESS_MULTI: u8 = 4;

/// `xenmem_access_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum XenmemAccess {
    N = 0,
    R = 1,
    W = 2,
    Rw = 3,
    X = 4,
    Rx = 5,
    Wx = 6,
    Rwx = 7,
    Rx2rw = 8,
    N2rwx = 9,
    Default = 10,
}

/// `struct xen_mem_access_op`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMemAccessOp {
    pub op: u8,
    pub access: u8,
    pub domid: u16,
    pub nr: u32,
    pub pfn: u64,
    pub pfn_list: u64,
    pub access_list: u64,
}

const _: () = {
    assert!(size_of::<XenAddToPhysmap>() == 24);
    assert!(size_of::<XenRemoveFromPhysmap>() == 16);
    assert!(size_of::<XenAddToPhysmapBatch>() == 32);
    assert!(offset_of!(XenAddToPhysmapBatch, foreign_domid) == 6);
    assert!(offset_of!(XenAddToPhysmapBatch, idxs) == 8);
    assert!(offset_of!(XenAddToPhysmapBatch, errs) == 24);
    assert!(offset_of!(XenAddToPhysmap, idx) == 8);
    assert!(size_of::<XenMemAcquireResource>() == 32);
    assert!(offset_of!(XenMemAcquireResource, id) == 4);
    assert!(offset_of!(XenMemAcquireResource, frame) == 16);
    assert!(offset_of!(XenMemAcquireResource, frame_list) == 24);
    assert!(size_of::<XenMemAccessOp>() == 32);
    assert!(offset_of!(XenMemAccessOp, pfn) == 8);
    assert!(offset_of!(XenMemAccessOp, access_list) == 24);
};
