//! Hypercall numbers and basic types from `public/xen.h` (x86_64).

pub const HYPERVISOR_MEMORY_OP: u32 = 12;
pub const HYPERVISOR_SCHED_OP: u32 = 29;
pub const HYPERVISOR_EVENT_CHANNEL_OP: u32 = 32;
pub const HYPERVISOR_HVM_OP: u32 = 34;
pub const HYPERVISOR_DOMCTL: u32 = 36;
pub const HYPERVISOR_DM_OP: u32 = 41;

pub type DomId = u16;
pub const DOMID_SELF: DomId = 0x7ff0;

pub const XEN_PAGE_SIZE: usize = 4096;
