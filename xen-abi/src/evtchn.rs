//! `public/event_channel.h` (Xen 4.17): the ops our kernels and tools use
//! to allocate, bind and signal ports. The op numbers are `xen-sys`'s; the
//! structs are ours (they are built field by field, so they derive
//! `Default`), layout-tested against the header.

use core::mem::{offset_of, size_of};

pub use xen_sys::{
    EVTCHNOP_alloc_unbound as EVTCHNOP_ALLOC_UNBOUND,
    EVTCHNOP_bind_interdomain as EVTCHNOP_BIND_INTERDOMAIN, EVTCHNOP_bind_ipi as EVTCHNOP_BIND_IPI,
    EVTCHNOP_bind_vcpu as EVTCHNOP_BIND_VCPU, EVTCHNOP_bind_virq as EVTCHNOP_BIND_VIRQ,
    EVTCHNOP_close as EVTCHNOP_CLOSE, EVTCHNOP_send as EVTCHNOP_SEND,
    EVTCHNOP_status as EVTCHNOP_STATUS, EVTCHNOP_unmask as EVTCHNOP_UNMASK,
};
pub use xen_sys::{
    EVTCHNSTAT_closed as EVTCHNSTAT_CLOSED, EVTCHNSTAT_interdomain as EVTCHNSTAT_INTERDOMAIN,
    EVTCHNSTAT_ipi as EVTCHNSTAT_IPI, EVTCHNSTAT_pirq as EVTCHNSTAT_PIRQ,
    EVTCHNSTAT_unbound as EVTCHNSTAT_UNBOUND, EVTCHNSTAT_virq as EVTCHNSTAT_VIRQ,
};

pub type EvtchnPort = u32;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnAllocUnbound {
    pub dom: u16,
    pub remote_dom: u16,
    pub port: EvtchnPort,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindInterdomain {
    pub remote_dom: u16,
    pub remote_port: EvtchnPort,
    pub local_port: EvtchnPort,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVirq {
    pub virq: u32,
    pub vcpu: u32,
    pub port: EvtchnPort,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindIpi {
    pub vcpu: u32,
    pub port: EvtchnPort,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnClose {
    pub port: EvtchnPort,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnSend {
    pub port: EvtchnPort,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVcpu {
    pub port: EvtchnPort,
    pub vcpu: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnUnmask {
    pub port: EvtchnPort,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnStatusInterdomain {
    pub dom: u16,
    pub port: EvtchnPort,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union EvtchnStatusU {
    pub unbound_dom: u16,
    pub interdomain: EvtchnStatusInterdomain,
    pub pirq: u32,
    pub virq: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct EvtchnStatus {
    pub dom: u16,
    pub port: EvtchnPort,
    pub status: u32,
    pub vcpu: u32,
    pub u: EvtchnStatusU,
}

const _: () = {
    assert!(size_of::<EvtchnAllocUnbound>() == 8);
    assert!(offset_of!(EvtchnAllocUnbound, port) == 4);
    assert!(size_of::<EvtchnBindInterdomain>() == 12);
    assert!(offset_of!(EvtchnBindInterdomain, remote_port) == 4);
    assert!(offset_of!(EvtchnBindInterdomain, local_port) == 8);
    assert!(size_of::<EvtchnBindVirq>() == 12);
    assert!(size_of::<EvtchnBindIpi>() == 8);
    assert!(size_of::<EvtchnClose>() == 4);
    assert!(size_of::<EvtchnSend>() == 4);
    assert!(size_of::<EvtchnBindVcpu>() == 8);
    assert!(size_of::<EvtchnUnmask>() == 4);
    assert!(size_of::<EvtchnStatus>() == 24);
    assert!(offset_of!(EvtchnStatus, u) == 16);
};
