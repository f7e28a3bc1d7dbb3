//! `public/vcpu.h` and `public/hvm/hvm_vcpu.h` (Xen 4.17): bringing vCPUs
//! up, their `vcpu_info` and their one-shot timer.

use core::mem::{offset_of, size_of};

/// Set the initial register state of an offline vCPU.
pub const VCPUOP_INITIALISE: u32 = 0;
/// Bring a vCPU online.
pub const VCPUOP_UP: u32 = 1;
/// Is the vCPU online? (-ENOENT if it does not exist).
pub const VCPUOP_IS_UP: u32 = 3;
pub const VCPUOP_STOP_PERIODIC_TIMER: u32 = 7;
/// Arm the one-shot timer (current vCPU only).
pub const VCPUOP_SET_SINGLESHOT_TIMER: u32 = 8;
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u32 = 9;
/// Move a vCPU's `vcpu_info` out of `shared_info`.
pub const VCPUOP_REGISTER_VCPU_INFO: u32 = 10;

/// `struct vcpu_register_vcpu_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuRegisterVcpuInfo {
    /// Frame holding the `vcpu_info`.
    pub mfn: u64,
    /// Offset in that frame.
    pub offset: u32,
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

pub const VCPU_HVM_MODE_64B: u32 = 1;

/// `struct vcpu_hvm_x86_64`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
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
    pub pad: u32,
    /// 64-bit register state.
    pub regs: VcpuHvmX86_64,
    /// Rest of the union (the 32-bit arm is 120 bytes, the 64-bit one 112).
    pub union_tail: [u64; 1],
}

const _: () = {
    assert!(size_of::<VcpuRegisterVcpuInfo>() == 16);
    assert!(size_of::<VcpuSetSingleshotTimer>() == 16);
    assert!(size_of::<VcpuHvmX86_64>() == 112);
    // 8 (mode+pad) + sizeof(union), where the 32-bit arm is 120 bytes.
    assert!(size_of::<VcpuHvmContext>() == 8 + 120);
    assert!(offset_of!(VcpuHvmContext, regs) == 8);
};
