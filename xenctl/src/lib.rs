//! The hypercalls a kernel of ours makes on another domain, typed: the
//! stub's on its target, and the attack kernel's (tests/attack) on its
//! victim. Every domctl goes through one buffer per call on the stack: Xen
//! copies `struct xen_domctl` in and out, and our kernels run identity
//! mapped, so a stack address is a valid guest handle.
#![no_std]

use boot::hypercall;
use xen_abi::XenError;
use xen_abi::{
    EvtchnAllocUnbound, XenDomctl, XenDomctlGetdomaininfo, XenDomctlMonitorOp,
    XenMemAcquireResource, XenRemoveFromPhysmap, XenVmEventOpChannels, DOMID_SELF,
    EVTCHNOP_ALLOC_UNBOUND, XENMEM_ACQUIRE_RESOURCE, XENMEM_REMOVE_FROM_PHYSMAP,
    XENMEM_RESOURCE_VM_EVENT, XEN_DOMCTL_MONITOR_OP_DISABLE, XEN_DOMCTL_VM_EVENT_OP_MONITOR,
    XEN_VM_EVENT_DISABLE, XEN_VM_EVENT_RESUME,
};

/// Issues one domctl and returns Xen's copy back.
fn domctl(mut d: XenDomctl) -> Result<XenDomctl, XenError> {
    // SAFETY: `d` is a whole `struct xen_domctl` (layout checked against
    // Xen's headers in vmevent) that lives across the call.
    unsafe { hypercall::domctl(&mut d) }?;
    Ok(d)
}

pub fn getdomaininfo(domid: u16) -> Result<XenDomctlGetdomaininfo, XenError> {
    let info = domctl(XenDomctl::getdomaininfo(domid))?.getdomaininfo_out();
    // XEN_DOMCTL_getdomaininfo answers for the next domain at or above the
    // one asked for: a different id means ours does not exist.
    if info.domain != domid {
        return Err(XenError::ESRCH);
    }
    Ok(info)
}

pub fn pause(domid: u16) -> Result<(), XenError> {
    domctl(XenDomctl::pausedomain(domid)).map(drop)
}

pub fn unpause(domid: u16) -> Result<(), XenError> {
    domctl(XenDomctl::unpausedomain(domid)).map(drop)
}

pub fn monitor_capabilities(domid: u16) -> Result<u32, XenError> {
    let d = domctl(XenDomctl::monitor_op(
        domid,
        XenDomctlMonitorOp::get_capabilities(),
    ))?;
    Ok(d.monitor_op_out().event)
}

pub fn monitor(domid: u16, op: XenDomctlMonitorOp) -> Result<(), XenError> {
    domctl(XenDomctl::monitor_op(domid, op)).map(drop)
}

/// The same monitor, switched off.
pub fn monitor_off(domid: u16, mut op: XenDomctlMonitorOp) -> Result<(), XenError> {
    op.op = XEN_DOMCTL_MONITOR_OP_DISABLE;
    monitor(domid, op)
}

pub fn enable_channels(domid: u16, ring_frames: u32) -> Result<XenVmEventOpChannels, XenError> {
    Ok(domctl(XenDomctl::enable_channels(domid, ring_frames))?
        .vm_event_op_out()
        .channels())
}

/// Fills `ports` with each target vCPU's port; returns the async port.
pub fn get_ports(domid: u16, ports: &mut [u32]) -> Result<u32, XenError> {
    let d = domctl(XenDomctl::get_ports(
        domid,
        ports.as_mut_ptr() as u64,
        ports.len() as u32,
    ))?;
    Ok(d.vm_event_op_out().ports().async_port)
}

pub fn disable_channels(domid: u16) -> Result<(), XenError> {
    domctl(XenDomctl::vm_event_op(domid, XEN_VM_EVENT_DISABLE)).map(drop)
}

/// `XEN_VM_EVENT_RESUME`: Xen looks at every slot (as a notification on
/// each port would make it do).
pub fn resume(domid: u16) -> Result<(), XenError> {
    domctl(XenDomctl::vm_event_op(domid, XEN_VM_EVENT_RESUME)).map(drop)
}

/// Maps the target's channel frames at our guest frames `gfns` (one each).
pub fn acquire_channels(domid: u16, gfns: &mut [u64]) -> Result<(), XenError> {
    acquire_channel_frames(domid, 0, gfns)
}

/// Maps the target's channel frames `[frame, frame + gfns.len())` at our
/// guest frames `gfns`.
pub fn acquire_channel_frames(domid: u16, frame: u64, gfns: &mut [u64]) -> Result<(), XenError> {
    let mut arg = XenMemAcquireResource {
        domid,
        type_: XENMEM_RESOURCE_VM_EVENT,
        id: XEN_DOMCTL_VM_EVENT_OP_MONITOR,
        nr_frames: gfns.len() as u32,
        pad: 0,
        frame,
        frame_list: gfns.as_mut_ptr() as u64,
    };
    // SAFETY: `arg` and the frame list it points at live across the call;
    // for a translated caller Xen reads the list (our GFNs) and maps there.
    unsafe { hypercall::memory_op(XENMEM_ACQUIRE_RESOURCE, &mut arg) }?;
    if arg.nr_frames as usize != gfns.len() {
        return Err(XenError::E2BIG); // Xen mapped fewer than asked
    }
    Ok(())
}

/// Shows target frame `gfn` of `domid` at our guest frame `ours`
/// (`XENMEM_add_to_physmap_batch`, `XENMAPSPACE_gmfn_foreign`, one entry).
/// Returns the per-frame result: `Ok(Err(errno))` when the hypercall
/// worked but Xen refused that frame (a hole, MMIO, a paged-out frame),
/// `Err` when the hypercall itself failed.
pub fn map_foreign(domid: u16, gfn: u64, ours: u64) -> Result<Result<(), i32>, XenError> {
    use xen_abi::{XenAddToPhysmapBatch, XENMAPSPACE_GMFN_FOREIGN, XENMEM_ADD_TO_PHYSMAP_BATCH};
    let (idx, gpfn, mut err) = (gfn, ours, 0i32);
    let mut arg = XenAddToPhysmapBatch {
        domid: DOMID_SELF,
        space: XENMAPSPACE_GMFN_FOREIGN as u16,
        size: 1,
        foreign_domid: domid,
        idxs: &idx as *const u64 as u64,
        gpfns: &gpfn as *const u64 as u64,
        errs: &mut err as *mut i32 as u64,
    };
    // SAFETY: `arg` and the three one-entry arrays it points at live across
    // the call; Xen reads `idx` and `gpfn` and writes `err`.
    unsafe { hypercall::memory_op(XENMEM_ADD_TO_PHYSMAP_BATCH, &mut arg) }?;
    Ok(if err == 0 { Ok(()) } else { Err(err) })
}

/// `XENMEM_remove_from_physmap` of one of our frames (drops a foreign
/// mapping we hold).
pub fn remove_from_physmap(gfn: u64) -> Result<(), XenError> {
    let mut arg = XenRemoveFromPhysmap {
        domid: DOMID_SELF,
        gpfn: gfn,
    };
    // SAFETY: a two-field struct Xen only reads.
    unsafe { hypercall::memory_op(XENMEM_REMOVE_FROM_PHYSMAP, &mut arg) }.map(drop)
}

/// `XENMEM_populate_physmap` (`populate`) or `XENMEM_decrease_reservation`
/// of single frames at our own GFNs `gfns`; returns how many Xen did.
fn reservation(cmd: u32, gfns: &[u64]) -> Result<u64, XenError> {
    let mut arg = xen_abi::XenMemoryReservation {
        extent_start: gfns.as_ptr() as u64,
        nr_extents: gfns.len() as u64,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
    };
    // SAFETY: `arg` and the GFN list it points at live across the call;
    // for a translated caller Xen only reads the list.
    unsafe { hypercall::memory_op(cmd, &mut arg) }
}

/// Backs our free guest frames `gfns` with new pages (within our
/// allowance); returns how many it did.
pub fn populate_physmap(gfns: &[u64]) -> Result<u64, XenError> {
    reservation(xen_abi::XENMEM_POPULATE_PHYSMAP, gfns)
}

/// Gives the pages at our guest frames `gfns` back to Xen (they become
/// holes: never touch them again); returns how many it took.
pub fn decrease_reservation(gfns: &[u64]) -> Result<u64, XenError> {
    reservation(xen_abi::XENMEM_DECREASE_RESERVATION, gfns)
}

/// Reinjects a trap the monitor intercepted (`XEN_DMOP_inject_event`), so it
/// is pending when the vCPU resumes.
pub fn inject_event(domid: u16, ev: xen_abi::XenDmOpInjectEvent) -> Result<(), XenError> {
    dm_op(domid, xen_abi::XEN_DMOP_INJECT_EVENT, ev)
}

/// One `HYPERVISOR_dm_op` with one buffer: `struct xen_dm_op` with `op` and
/// an inject-event-sized payload, which holds every op we make.
fn dm_op(domid: u16, op: u32, payload: xen_abi::XenDmOpInjectEvent) -> Result<(), XenError> {
    use xen_abi::{XenDmOpBuf, XenDmOpInject, HYPERVISOR_DM_OP};
    let mut op = XenDmOpInject {
        op,
        pad: 0,
        inject_event: payload,
    };
    let mut buf = XenDmOpBuf {
        h: &mut op as *mut XenDmOpInject as u64,
        size: core::mem::size_of::<XenDmOpInject>() as u64,
    };
    // SAFETY: one buffer descriptor pointing at `op`; both live across the
    // call and Xen reads (and writes back) at most `size` bytes.
    XenError::check(unsafe {
        hypercall::hypercall(
            HYPERVISOR_DM_OP,
            u64::from(domid),
            1,
            &mut buf as *mut XenDmOpBuf as u64,
            0,
            0,
        )
    })
    .map(drop)
}

/// `EVTCHNOP_alloc_unbound` in domain `dom` (another domain, if the policy
/// lets us create channels there) for `remote_dom`; returns the new port.
pub fn alloc_unbound_in(dom: u16, remote_dom: u16) -> Result<u32, XenError> {
    let mut a = EvtchnAllocUnbound {
        dom,
        remote_dom,
        port: 0,
    };
    // SAFETY: EVTCHNOP_alloc_unbound takes an `EvtchnAllocUnbound`, which
    // lives across the call.
    unsafe { hypercall::event_channel_op(EVTCHNOP_ALLOC_UNBOUND, &mut a) }?;
    Ok(a.port)
}

/// Operations a stub needs no right for, each asked in a form that changes
/// nothing when it is allowed: the attack suite's FLASK matrix
/// (tests/attack) shows the policy and Xen refuse them even on the paired
/// target. Not used by the stub.
pub mod probe {
    use super::{dm_op, domctl, XenDomctl, XenError};
    use boot::hypercall;
    use xen_abi::{
        XenDmOpInjectEvent, XenMemAcquireResource, XENMEM_ACQUIRE_RESOURCE, XEN_DMOP_INJECT_EVENT,
        XEN_DMOP_NR_VCPUS, XEN_DOMCTL_GETHVMCONTEXT, XEN_DOMCTL_SET_ACCESS_REQUIRED,
    };

    /// `XEN_DOMCTL_gethvmcontext` with a NULL buffer: the context's size
    /// (FLASK `hvm gethvmc`, the read half of a full state load).
    pub fn gethvmcontext_size(domid: u16) -> Result<u32, XenError> {
        let d = domctl(XenDomctl::new(XEN_DOMCTL_GETHVMCONTEXT, domid))?;
        // SAFETY: `struct xen_domctl_hvmcontext` starts with `uint32_t
        // size`, which Xen filled in; every byte of the union is initialised.
        let pad = unsafe { d.u.pad };
        Ok(u32::from_le_bytes([pad[0], pad[1], pad[2], pad[3]]))
    }

    /// `XEN_DOMCTL_set_access_required` to `false` (the default): whether a
    /// mem_access fault without a listener crashes the domain.
    pub fn clear_access_required(domid: u16) -> Result<(), XenError> {
        domctl(XenDomctl::new(XEN_DOMCTL_SET_ACCESS_REQUIRED, domid)).map(drop)
    }

    /// `XEN_DMOP_nr_vcpus`: a device-model op (FLASK `hvm dm`) that only
    /// reads.
    pub fn dm_nr_vcpus(domid: u16) -> Result<(), XenError> {
        dm_op(domid, XEN_DMOP_NR_VCPUS, XenDmOpInjectEvent::default())
    }

    /// `XEN_DMOP_inject_event` for a vCPU that does not exist: on an HVM
    /// domain Xen refuses it with `EINVAL` once the permission check has
    /// passed (a denial is `EACCES`/`EPERM`), and nothing is injected.
    pub fn inject_event_to_no_vcpu(domid: u16) -> Result<(), XenError> {
        let ev = XenDmOpInjectEvent {
            vcpuid: u32::MAX,
            ..Default::default()
        };
        dm_op(domid, XEN_DMOP_INJECT_EVENT, ev)
    }

    /// `XENMEM_acquire_resource` of `type_` asking only for its size
    /// (FLASK `domain2 resource_map` for every type but the vm_event one).
    pub fn resource_size(domid: u16, type_: u16, id: u32) -> Result<u32, XenError> {
        let mut arg = XenMemAcquireResource {
            domid,
            type_,
            id,
            ..Default::default()
        };
        // SAFETY: `arg` lives across the call; with no frame list Xen only
        // writes `nr_frames`.
        unsafe { hypercall::memory_op(XENMEM_ACQUIRE_RESOURCE, &mut arg) }?;
        Ok(arg.nr_frames)
    }
}
