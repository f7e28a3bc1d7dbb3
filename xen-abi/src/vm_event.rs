//! `public/vm_event.h` of Xen 4.17 (`VM_EVENT_INTERFACE_VERSION` 7).
//!
//! Every struct here is plain old data: integers and unions of integers, so
//! any bit pattern is a valid value. That is what lets us copy a request out of
//! a page a peer can scribble on and then look at it safely.

use core::mem::{offset_of, size_of};

/// `VM_EVENT_INTERFACE_VERSION`; requests with any other version are refused.
pub const VM_EVENT_INTERFACE_VERSION: u32 = 0x0000_0007;

bitflags::bitflags! {
    /// `VM_EVENT_FLAG_*` (request and response `flags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct VmEventFlags: u32 {
        /// The vCPU is paused until the response comes back; must be echoed.
        const VCPU_PAUSED = 1 << 0;
        const FOREIGN = 1 << 1;
        const EMULATE = 1 << 2;
        const EMULATE_NOWRITE = 1 << 3;
        const TOGGLE_SINGLESTEP = 1 << 4;
        const SET_EMUL_READ_DATA = 1 << 5;
        /// Veto a CR/MSR write (honoured for write_ctrlreg and mov_to_msr).
        const DENY = 1 << 6;
        const ALTERNATE_P2M = 1 << 7;
        /// Load the GPRs, rflags and rip from `data.regs.x86`.
        const SET_REGISTERS = 1 << 8;
        const SET_EMUL_INSN_DATA = 1 << 9;
        const GET_NEXT_INTERRUPT = 1 << 10;
        const FAST_SINGLESTEP = 1 << 11;
        const NESTED_P2M = 1 << 12;
        const RESET_VMTRACE = 1 << 13;
        const RESET_FORK_STATE = 1 << 14;
        const RESET_FORK_MEMORY = 1 << 15;
    }
}

pub const VM_EVENT_REASON_UNKNOWN: u32 = 0;
pub const VM_EVENT_REASON_MEM_ACCESS: u32 = 1;
pub const VM_EVENT_REASON_MEM_SHARING: u32 = 2;
pub const VM_EVENT_REASON_MEM_PAGING: u32 = 3;
pub const VM_EVENT_REASON_WRITE_CTRLREG: u32 = 4;
pub const VM_EVENT_REASON_MOV_TO_MSR: u32 = 5;
pub const VM_EVENT_REASON_SOFTWARE_BREAKPOINT: u32 = 6;
pub const VM_EVENT_REASON_SINGLESTEP: u32 = 7;
pub const VM_EVENT_REASON_GUEST_REQUEST: u32 = 8;
pub const VM_EVENT_REASON_DEBUG_EXCEPTION: u32 = 9;
pub const VM_EVENT_REASON_CPUID: u32 = 10;
pub const VM_EVENT_REASON_PRIVILEGED_CALL: u32 = 11;
pub const VM_EVENT_REASON_INTERRUPT: u32 = 12;
pub const VM_EVENT_REASON_DESCRIPTOR_ACCESS: u32 = 13;
pub const VM_EVENT_REASON_EMUL_UNIMPLEMENTED: u32 = 14;
pub const VM_EVENT_REASON_VMEXIT: u32 = 15;

/// `VM_EVENT_REASON_*` as an enum; the wire field stays a `u32` because a
/// peer may send values we do not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum VmEventReason {
    Unknown = VM_EVENT_REASON_UNKNOWN,
    MemAccess = VM_EVENT_REASON_MEM_ACCESS,
    MemSharing = VM_EVENT_REASON_MEM_SHARING,
    MemPaging = VM_EVENT_REASON_MEM_PAGING,
    WriteCtrlreg = VM_EVENT_REASON_WRITE_CTRLREG,
    MovToMsr = VM_EVENT_REASON_MOV_TO_MSR,
    SoftwareBreakpoint = VM_EVENT_REASON_SOFTWARE_BREAKPOINT,
    Singlestep = VM_EVENT_REASON_SINGLESTEP,
    GuestRequest = VM_EVENT_REASON_GUEST_REQUEST,
    DebugException = VM_EVENT_REASON_DEBUG_EXCEPTION,
    Cpuid = VM_EVENT_REASON_CPUID,
    PrivilegedCall = VM_EVENT_REASON_PRIVILEGED_CALL,
    Interrupt = VM_EVENT_REASON_INTERRUPT,
    DescriptorAccess = VM_EVENT_REASON_DESCRIPTOR_ACCESS,
    EmulUnimplemented = VM_EVENT_REASON_EMUL_UNIMPLEMENTED,
    Vmexit = VM_EVENT_REASON_VMEXIT,
}

impl VmEventReason {
    pub const fn from_raw(v: u32) -> Option<Self> {
        Some(match v {
            VM_EVENT_REASON_UNKNOWN => Self::Unknown,
            VM_EVENT_REASON_MEM_ACCESS => Self::MemAccess,
            VM_EVENT_REASON_MEM_SHARING => Self::MemSharing,
            VM_EVENT_REASON_MEM_PAGING => Self::MemPaging,
            VM_EVENT_REASON_WRITE_CTRLREG => Self::WriteCtrlreg,
            VM_EVENT_REASON_MOV_TO_MSR => Self::MovToMsr,
            VM_EVENT_REASON_SOFTWARE_BREAKPOINT => Self::SoftwareBreakpoint,
            VM_EVENT_REASON_SINGLESTEP => Self::Singlestep,
            VM_EVENT_REASON_GUEST_REQUEST => Self::GuestRequest,
            VM_EVENT_REASON_DEBUG_EXCEPTION => Self::DebugException,
            VM_EVENT_REASON_CPUID => Self::Cpuid,
            VM_EVENT_REASON_PRIVILEGED_CALL => Self::PrivilegedCall,
            VM_EVENT_REASON_INTERRUPT => Self::Interrupt,
            VM_EVENT_REASON_DESCRIPTOR_ACCESS => Self::DescriptorAccess,
            VM_EVENT_REASON_EMUL_UNIMPLEMENTED => Self::EmulUnimplemented,
            VM_EVENT_REASON_VMEXIT => Self::Vmexit,
            _ => return None,
        })
    }

    /// Stable lower-case name used in audit records.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::MemAccess => "mem_access",
            Self::MemSharing => "mem_sharing",
            Self::MemPaging => "mem_paging",
            Self::WriteCtrlreg => "write_ctrlreg",
            Self::MovToMsr => "mov_to_msr",
            Self::SoftwareBreakpoint => "software_breakpoint",
            Self::Singlestep => "singlestep",
            Self::GuestRequest => "guest_request",
            Self::DebugException => "debug_exception",
            Self::Cpuid => "cpuid",
            Self::PrivilegedCall => "privileged_call",
            Self::Interrupt => "interrupt",
            Self::DescriptorAccess => "descriptor_access",
            Self::EmulUnimplemented => "emul_unimplemented",
            Self::Vmexit => "vmexit",
        }
    }
}

/// `write_ctrlreg.index` values.
pub const VM_EVENT_X86_CR0: u32 = 0;
pub const VM_EVENT_X86_CR3: u32 = 1;
pub const VM_EVENT_X86_CR4: u32 = 2;
pub const VM_EVENT_X86_XCR0: u32 = 3;

/// `struct vm_event_x86_selector_reg`: C bitfields `limit:20, ar:12` in one
/// `u32`; GCC on x86 allocates bitfields from the least significant bit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventX86SelectorReg(pub u32);

impl VmEventX86SelectorReg {
    pub const fn limit(self) -> u32 {
        self.0 & 0xf_ffff
    }
    pub const fn ar(self) -> u32 {
        self.0 >> 20
    }
    pub const fn new(limit: u32, ar: u32) -> Self {
        Self((limit & 0xf_ffff) | ((ar & 0xfff) << 20))
    }
}

/// `struct vm_event_regs_x86`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventRegsX86 {
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rbx: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rflags: u64,
    pub dr6: u64,
    pub dr7: u64,
    pub rip: u64,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub msr_efer: u64,
    pub msr_star: u64,
    pub msr_lstar: u64,
    pub gdtr_base: u64,
    pub npt_base: u64,
    pub vmtrace_pos: u64,
    pub cs_base: u32,
    pub ss_base: u32,
    pub ds_base: u32,
    pub es_base: u32,
    pub fs_base: u64,
    pub gs_base: u64,
    pub cs: VmEventX86SelectorReg,
    pub ss: VmEventX86SelectorReg,
    pub ds: VmEventX86SelectorReg,
    pub es: VmEventX86SelectorReg,
    pub fs: VmEventX86SelectorReg,
    pub gs: VmEventX86SelectorReg,
    pub shadow_gs: u64,
    pub gdtr_limit: u16,
    pub cs_sel: u16,
    pub ss_sel: u16,
    pub ds_sel: u16,
    pub es_sel: u16,
    pub fs_sel: u16,
    pub gs_sel: u16,
    pub _pad: u16,
}

/// `struct vm_event_regs_arm` (only here so the `regs` union has its C size).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventRegsArm {
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub ttbcr: u64,
    pub pc: u64,
    pub cpsr: u64,
}

pub const MEM_ACCESS_R: u32 = 1 << 0;
pub const MEM_ACCESS_W: u32 = 1 << 1;
pub const MEM_ACCESS_X: u32 = 1 << 2;
pub const MEM_ACCESS_RWX: u32 = MEM_ACCESS_R | MEM_ACCESS_W | MEM_ACCESS_X;
pub const MEM_ACCESS_RW: u32 = MEM_ACCESS_R | MEM_ACCESS_W;
pub const MEM_ACCESS_RX: u32 = MEM_ACCESS_R | MEM_ACCESS_X;
pub const MEM_ACCESS_WX: u32 = MEM_ACCESS_W | MEM_ACCESS_X;
pub const MEM_ACCESS_GLA_VALID: u32 = 1 << 3;
pub const MEM_ACCESS_FAULT_WITH_GLA: u32 = 1 << 4;
pub const MEM_ACCESS_FAULT_IN_GPT: u32 = 1 << 5;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventMemAccess {
    pub gfn: u64,
    pub offset: u64,
    pub gla: u64,
    pub flags: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventWriteCtrlreg {
    pub index: u32,
    pub _pad: u32,
    pub new_value: u64,
    pub old_value: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventSinglestep {
    pub gfn: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventFastSinglestep {
    pub p2midx: u16,
}

/// `struct vm_event_debug` (software_breakpoint and debug_exception).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventDebug {
    pub gfn: u64,
    pub pending_dbg: u64,
    pub insn_length: u32,
    /// `HVMOP_TRAP_*` / `XEN_DMOP_EVENT_*`.
    pub type_: u8,
    pub _pad: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventMovToMsr {
    pub msr: u64,
    pub new_value: u64,
    pub old_value: u64,
}

pub const VM_EVENT_DESC_IDTR: u8 = 1;
pub const VM_EVENT_DESC_GDTR: u8 = 2;
pub const VM_EVENT_DESC_LDTR: u8 = 3;
pub const VM_EVENT_DESC_TR: u8 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventDescAccessVmx {
    pub instr_info: u32,
    pub _pad1: u32,
    pub exit_qualification: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union VmEventDescAccessArch {
    pub vmx: VmEventDescAccessVmx,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct VmEventDescAccess {
    pub arch: VmEventDescAccessArch,
    pub descriptor: u8,
    pub is_write: u8,
    pub _pad: [u8; 6],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventCpuid {
    pub insn_length: u32,
    pub leaf: u32,
    pub subleaf: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventInterruptX86 {
    pub vector: u32,
    pub type_: u32,
    pub error_code: u32,
    pub _pad: u32,
    pub cr2: u64,
}

pub const MEM_PAGING_DROP_PAGE: u32 = 1 << 0;
pub const MEM_PAGING_EVICT_FAIL: u32 = 1 << 1;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventPaging {
    pub gfn: u64,
    pub p2mt: u32,
    pub flags: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventSharing {
    pub gfn: u64,
    pub p2mt: u32,
    pub _pad: u32,
}

/// Bytes of emulated read data: sized so the struct overlays `regs.x86`.
pub const VM_EVENT_EMUL_READ_DATA_LEN: usize = size_of::<VmEventRegsX86>() - size_of::<u32>();

#[repr(C)]
#[derive(Clone, Copy)]
pub struct VmEventEmulReadData {
    pub size: u32,
    pub data: [u8; VM_EVENT_EMUL_READ_DATA_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventEmulInsnData {
    pub data: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventVmexitVmx {
    pub reason: u64,
    pub qualification: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventVmexitArch {
    pub vmx: VmEventVmexitVmx,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEventVmexit {
    pub arch: VmEventVmexitArch,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union VmEventInterrupt {
    pub x86: VmEventInterruptX86,
}

/// The per-reason union `u` of `vm_event_st`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union VmEventU {
    pub mem_paging: VmEventPaging,
    pub mem_sharing: VmEventSharing,
    pub mem_access: VmEventMemAccess,
    pub write_ctrlreg: VmEventWriteCtrlreg,
    pub mov_to_msr: VmEventMovToMsr,
    pub desc_access: VmEventDescAccess,
    pub singlestep: VmEventSinglestep,
    pub fast_singlestep: VmEventFastSinglestep,
    pub software_breakpoint: VmEventDebug,
    pub debug_exception: VmEventDebug,
    pub cpuid: VmEventCpuid,
    pub vmexit: VmEventVmexit,
    pub interrupt: VmEventInterrupt,
    /// Not in C: a byte view so the whole union can be zeroed and compared.
    pub raw: [u64; 4],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union VmEventRegs {
    pub x86: VmEventRegsX86,
    pub arm: VmEventRegsArm,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union VmEventEmul {
    pub read: VmEventEmulReadData,
    pub insn: VmEventEmulInsnData,
}

/// The `data` union of `vm_event_st`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union VmEventData {
    pub regs: VmEventRegs,
    pub emul: VmEventEmul,
}

/// `vm_event_request_t` / `vm_event_response_t` (`struct vm_event_st`).
#[doc(alias = "vm_event_request_t")]
#[doc(alias = "vm_event_response_t")]
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VmEventSt {
    pub version: u32,
    pub flags: u32,
    pub reason: u32,
    pub vcpu_id: u32,
    pub altp2m_idx: u16,
    pub _pad: [u16; 3],
    pub u: VmEventU,
    pub data: VmEventData,
}

pub type VmEventRequest = VmEventSt;
pub type VmEventResponse = VmEventSt;

const _: () = {
    assert!(size_of::<VmEventX86SelectorReg>() == 4);
    assert!(size_of::<VmEventRegsX86>() == 344);
    assert!(offset_of!(VmEventRegsX86, rip) == 152);
    assert!(offset_of!(VmEventRegsX86, npt_base) == 248);
    assert!(offset_of!(VmEventRegsX86, vmtrace_pos) == 256);
    assert!(offset_of!(VmEventRegsX86, cs_base) == 264);
    assert!(offset_of!(VmEventRegsX86, fs_base) == 280);
    assert!(offset_of!(VmEventRegsX86, cs) == 296);
    assert!(offset_of!(VmEventRegsX86, shadow_gs) == 320);
    assert!(offset_of!(VmEventRegsX86, gdtr_limit) == 328);
    assert!(offset_of!(VmEventRegsX86, _pad) == 342);
    assert!(size_of::<VmEventRegsArm>() == 40);
    assert!(size_of::<VmEventMemAccess>() == 32);
    assert!(size_of::<VmEventWriteCtrlreg>() == 24);
    assert!(size_of::<VmEventDebug>() == 24);
    assert!(offset_of!(VmEventDebug, type_) == 20);
    assert!(size_of::<VmEventMovToMsr>() == 24);
    assert!(size_of::<VmEventDescAccess>() == 24);
    assert!(offset_of!(VmEventDescAccess, descriptor) == 16);
    assert!(size_of::<VmEventCpuid>() == 16);
    assert!(size_of::<VmEventInterruptX86>() == 24);
    assert!(size_of::<VmEventPaging>() == 16);
    assert!(size_of::<VmEventSharing>() == 16);
    assert!(size_of::<VmEventEmulReadData>() == 344);
    assert!(size_of::<VmEventEmulInsnData>() == 16);
    assert!(size_of::<VmEventVmexit>() == 16);
    assert!(size_of::<VmEventU>() == 32);
    assert!(size_of::<VmEventData>() == 344);
    assert!(offset_of!(VmEventSt, version) == 0);
    assert!(offset_of!(VmEventSt, flags) == 4);
    assert!(offset_of!(VmEventSt, reason) == 8);
    assert!(offset_of!(VmEventSt, vcpu_id) == 12);
    assert!(offset_of!(VmEventSt, altp2m_idx) == 16);
    assert!(offset_of!(VmEventSt, u) == 24);
    assert!(offset_of!(VmEventSt, data) == 56);
    assert!(size_of::<VmEventSt>() == 400);
    assert!(core::mem::align_of::<VmEventSt>() == 8);
};

impl VmEventSt {
    /// All-zero event (every field of every member is an integer).
    pub const fn zeroed() -> Self {
        // SAFETY: every field (through every union member) is an integer or
        // an array of integers, for which all-zero bytes are a valid value.
        unsafe { core::mem::zeroed() }
    }

    pub fn flags(&self) -> VmEventFlags {
        VmEventFlags::from_bits_retain(self.flags)
    }

    pub fn reason(&self) -> Option<VmEventReason> {
        VmEventReason::from_raw(self.reason)
    }

    // The accessors below read one union member. They are all sound for any
    // contents because every member is plain integers; which one is
    // *meaningful* depends on `reason`, and that is the caller's business.

    pub fn write_ctrlreg(&self) -> VmEventWriteCtrlreg {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.write_ctrlreg }
    }
    pub fn mov_to_msr(&self) -> VmEventMovToMsr {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.mov_to_msr }
    }
    pub fn cpuid(&self) -> VmEventCpuid {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.cpuid }
    }
    /// `software_breakpoint` and `debug_exception` share one layout.
    pub fn debug(&self) -> VmEventDebug {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.software_breakpoint }
    }
    pub fn mem_access(&self) -> VmEventMemAccess {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.mem_access }
    }
    pub fn desc_access(&self) -> VmEventDescAccess {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.desc_access }
    }
    pub fn interrupt_x86(&self) -> VmEventInterruptX86 {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.interrupt.x86 }
    }
    pub fn regs_x86(&self) -> &VmEventRegsX86 {
        // SAFETY: POD union member; any bit pattern is a valid value, and
        // the reference borrows our own copy, not shared memory.
        unsafe { &self.data.regs.x86 }
    }
    pub fn regs_x86_mut(&mut self) -> &mut VmEventRegsX86 {
        // SAFETY: as above; writing a POD member is always sound.
        unsafe { &mut self.data.regs.x86 }
    }

    pub fn set_write_ctrlreg(&mut self, v: VmEventWriteCtrlreg) {
        self.u.write_ctrlreg = v;
    }
    pub fn set_mov_to_msr(&mut self, v: VmEventMovToMsr) {
        self.u.mov_to_msr = v;
    }
    pub fn set_cpuid(&mut self, v: VmEventCpuid) {
        self.u.cpuid = v;
    }
    pub fn set_debug(&mut self, v: VmEventDebug) {
        self.u.software_breakpoint = v;
    }
    pub fn set_desc_access(&mut self, v: VmEventDescAccess) {
        self.u.desc_access = v;
    }
    pub fn set_emul_read_data(&mut self, bytes: &[u8]) {
        let mut read = VmEventEmulReadData {
            size: 0,
            data: [0; VM_EVENT_EMUL_READ_DATA_LEN],
        };
        let n = bytes.len().min(VM_EVENT_EMUL_READ_DATA_LEN);
        read.data[..n].copy_from_slice(&bytes[..n]);
        read.size = n as u32;
        self.data.emul.read = read;
    }
    /// Sets the read data's size word alone, to any value, as a consumer
    /// may (Xen must bound it by the buffer; the attack tests check that).
    pub fn set_emul_read_size(&mut self, size: u32) {
        let mut read = *self.emul_read_data();
        read.size = size;
        self.data.emul.read = read;
    }
    pub fn set_emul_insn_data(&mut self, insn: [u8; 16]) {
        self.data.emul.insn = VmEventEmulInsnData { data: insn };
    }
    pub fn emul_read_data(&self) -> &VmEventEmulReadData {
        // SAFETY: POD union member over our own copy.
        unsafe { &self.data.emul.read }
    }
    pub fn emul_insn_data(&self) -> [u8; 16] {
        // SAFETY: POD union member.
        unsafe { self.data.emul.insn.data }
    }

    /// The event as bytes, for hashing/fuzzing/comparison.
    ///
    /// Values built by this crate (`zeroed`, `from_bytes`, copies out of
    /// shared memory) have every byte initialised. Do not build a
    /// `VmEventSt` with a struct literal whose unions name a member smaller
    /// than the union: its tail would be uninitialised.
    pub fn as_bytes(&self) -> &[u8; 400] {
        // SAFETY: `VmEventSt` is `repr(C)`, 400 bytes, and has no padding
        // that is not an explicit field (checked by the layout assertions:
        // every gap in the C struct is a named `_pad`), so every byte is
        // initialised once the value was built from zeroed()/from_bytes().
        unsafe { &*(self as *const Self as *const [u8; 400]) }
    }

    pub fn from_bytes(bytes: &[u8; 400]) -> Self {
        let mut v = Self::zeroed();
        // SAFETY: `v` is 400 bytes of POD; any byte content is valid.
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), &mut v as *mut Self as *mut u8, 400)
        };
        v
    }
}

impl Default for VmEventSt {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl PartialEq for VmEventSt {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for VmEventSt {}

impl core::fmt::Debug for VmEventSt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VmEventSt")
            .field("version", &self.version)
            .field("flags", &self.flags())
            .field("reason", &self.reason)
            .field("vcpu_id", &self.vcpu_id)
            .field("altp2m_idx", &self.altp2m_idx)
            .field("u", &self.u_raw())
            .finish_non_exhaustive()
    }
}

impl VmEventSt {
    fn u_raw(&self) -> [u64; 4] {
        // SAFETY: POD union member.
        unsafe { self.u.raw }
    }
}
