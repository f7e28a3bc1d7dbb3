//! Pages shared with Xen: `shared_info` (mapped with
//! `XENMEM_add_to_physmap`), per-vCPU `vcpu_info` (registered with
//! `VCPUOP_register_vcpu_info`, so more than the 32 legacy slots work), HVM
//! parameters.

use core::sync::atomic::Ordering;

use crate::xen::*;

use super::hypercall;
use super::percpu::{self, MAX_VCPUS};

#[repr(C, align(4096))]
struct SharedInfoPage([u8; 4096]);

#[repr(C, align(4096))]
struct VcpuInfoArea([vcpu_info; MAX_VCPUS]);

static mut SHARED_INFO: SharedInfoPage = SharedInfoPage([0; 4096]);
static mut VCPU_INFO: core::mem::MaybeUninit<VcpuInfoArea> = core::mem::MaybeUninit::zeroed();

/// The shared-info page.
pub fn shared_info() -> *mut shared_info {
    core::ptr::addr_of_mut!(SHARED_INFO).cast()
}

/// Maps `shared_info` over our static page (its RAM frame is given back).
pub fn map_shared_info() -> Result<(), XenError> {
    let mut xatp = XenAddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space: XENMAPSPACE_SHARED_INFO,
        idx: 0,
        gpfn: shared_info() as u64 >> 12,
    };
    // SAFETY: XENMEM_add_to_physmap takes a `xen_add_to_physmap`.
    unsafe { hypercall::memory_op(XENMEM_ADD_TO_PHYSMAP, &mut xatp) }.map(drop)
}

/// Registers `vcpu`'s `vcpu_info` (any vCPU may do it for any other before
/// that one is up).
pub fn register_vcpu_info(vcpu: u32) -> Result<(), XenError> {
    // SAFETY: address computation inside our static array.
    let p: *mut vcpu_info = unsafe {
        core::ptr::addr_of_mut!(VCPU_INFO)
            .cast::<vcpu_info>()
            .add(vcpu as usize)
    };
    let mut arg = VcpuRegisterVcpuInfo {
        mfn: p as u64 >> 12,
        offset: (p as u64 & 0xfff) as u32,
        rsvd: 0,
    };
    // SAFETY: VCPUOP_register_vcpu_info takes a `vcpu_register_vcpu_info`;
    // the 64-byte slot does not cross a page (64-byte aligned array).
    unsafe { hypercall::vcpu_op(VCPUOP_REGISTER_VCPU_INFO, vcpu, &mut arg) }?;
    percpu::cpu(vcpu).vcpu_info.store(p, Ordering::Release);
    Ok(())
}

/// The running vCPU's `vcpu_info`.
pub fn this_vcpu_info() -> *mut vcpu_info {
    percpu::this_cpu().vcpu_info.load(Ordering::Acquire)
}

/// `HVMOP_get_param`.
pub fn get_param(index: u32) -> Result<u64, XenError> {
    let mut p = XenHvmParam {
        domid: DOMID_SELF,
        pad: 0,
        index,
        value: 0,
    };
    // SAFETY: HVMOP_get_param takes a `xen_hvm_param`.
    unsafe { hypercall::hvm_op(HVMOP_GET_PARAM, &mut p) }?;
    Ok(p.value)
}

/// `HVMOP_set_param`.
pub fn set_param(index: u32, value: u64) -> Result<(), XenError> {
    let mut p = XenHvmParam {
        domid: DOMID_SELF,
        pad: 0,
        index,
        value,
    };
    // SAFETY: HVMOP_set_param takes a `xen_hvm_param`.
    unsafe { hypercall::hvm_op(HVMOP_SET_PARAM, &mut p) }.map(drop)
}
