//! The hypercall page and the raw hypercall path.
//!
//! Xen advertises itself in CPUID leaves `0x4000_0000 + 0x100*k`
//! ("XenVMMXenVMM"); leaf base+2 names the MSR through which we ask Xen to
//! write its hypercall stubs into our page (`HYPERCALL_PAGE`, the symbol
//! `xen-sys`'s trampolines also expect). Entry `op` is at offset `32 * op`.
//!
//! We do not call `xen-sys`'s `hypercall_N` trampolines, for three reasons:
//! `hypercall_5` passes argument 5 in `r9` instead of `r8`; each trampoline
//! declares only its own argument registers as clobbered although a debug
//! Xen poisons every argument register the hypercall *declares* (a caller using
//! fewer arguments would see `rsi`/`rdx`/`r10`/`r8` change under it); and the
//! `call` is made under `options(nostack)`, which is not true. The single
//! trampoline below passes five arguments and clobbers all of them.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::xen::*;

global_asm!(
    r#"
    .section .text.hypercall_page, "ax", @progbits
    .balign 4096
    .globl HYPERCALL_PAGE
HYPERCALL_PAGE:
    .fill 4096, 1, 0xcc
    .text
    "#
);

extern "C" {
    static HYPERCALL_PAGE: [u8; 4096];
}

static READY: AtomicBool = AtomicBool::new(false);
static AMD: AtomicBool = AtomicBool::new(false);
static XEN_VERSION: AtomicU32 = AtomicU32::new(0);

/// Why the hypervisor is unusable.
#[derive(Clone, Copy, Debug)]
pub enum InitError {
    /// No Xen CPUID leaves: not running on Xen.
    NotXen,
    /// Xen older than the minimum we support.
    TooOld(u32, u32),
}

/// Oldest Xen we accept (VCPUOP_initialise with an HVM context, PVH vCPU
/// hot-plug and the per-vCPU vcpu_info all work from 4.10 on).
pub const MIN_XEN: (u32, u32) = (4, 10);

fn cpuid(leaf: u32) -> core::arch::x86_64::CpuidResult {
    // SAFETY: CPUID is always available in long mode.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::__cpuid(leaf)
    }
}

/// Finds Xen's CPUID base leaf.
pub fn xen_cpuid_base() -> Option<u32> {
    (0x4000_0000u32..0x4001_0000).step_by(0x100).find(|&base| {
        let r = cpuid(base);
        let mut sig = [0u8; 12];
        sig[..4].copy_from_slice(&r.ebx.to_le_bytes());
        sig[4..8].copy_from_slice(&r.ecx.to_le_bytes());
        sig[8..].copy_from_slice(&r.edx.to_le_bytes());
        &sig == b"XenVMMXenVMM" && r.eax >= base + 2
    })
}

/// Installs the hypercall page and checks the Xen version. Returns
/// `(major, minor)`.
pub fn init() -> Result<(u32, u32), InitError> {
    let base = xen_cpuid_base().ok_or(InitError::NotXen)?;
    let msr = cpuid(base + 2).ebx;
    let page = core::ptr::addr_of!(HYPERCALL_PAGE) as u64;
    // SAFETY: the MSR Xen named in leaf base+2 takes the guest-physical
    // address of a page (identity mapped, so == virtual) to fill with stubs.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).write(page) };
    // Entry of sched_op: `mov eax, imm32` (5 bytes) then vmcall (0f 01 c1)
    // or vmmcall (0f 01 d9): remember which for `block_with_interrupts`.
    // SAFETY: Xen has written the page; reading bytes of our own static.
    let b = unsafe {
        core::ptr::read_volatile((page as *const u8).add(HYPERVISOR_SCHED_OP as usize * 32 + 7))
    };
    AMD.store(b == 0xd9, Ordering::Relaxed);
    READY.store(true, Ordering::Release);
    // SAFETY: XENVER_version takes no buffer.
    let v = unsafe { hypercall(HYPERVISOR_XEN_VERSION, XENVER_VERSION as u64, 0, 0, 0, 0) } as u32;
    XEN_VERSION.store(v, Ordering::Relaxed);
    let (maj, min) = (v >> 16, v & 0xffff);
    if (maj, min) < MIN_XEN {
        return Err(InitError::TooOld(maj, min));
    }
    Ok((maj, min))
}

/// Whether hypercalls can be made.
pub fn ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// `(major, minor)` of the running Xen (0.0 before `init`).
pub fn xen_version() -> (u32, u32) {
    let v = XEN_VERSION.load(Ordering::Relaxed);
    (v >> 16, v & 0xffff)
}

/// Xen's extraversion (`XENVER_extraversion`, a `char[16]`).
#[derive(Clone, Copy)]
pub struct Extraversion([u8; 16]);

impl Extraversion {
    /// The text up to the first NUL (`".5"`); empty if it is not UTF-8.
    pub fn as_str(&self) -> &str {
        let n = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        core::str::from_utf8(&self.0[..n]).unwrap_or("")
    }
}

/// Xen's extraversion string (e.g. ".5").
pub fn xen_extraversion() -> Extraversion {
    let mut buf = [0u8; 16];
    // SAFETY: XENVER_extraversion writes a char[16] into `buf`.
    unsafe {
        hypercall(
            HYPERVISOR_XEN_VERSION,
            XENVER_EXTRAVERSION as u64,
            buf.as_mut_ptr() as u64,
            0,
            0,
            0,
        )
    };
    Extraversion(buf)
}

/// Whether Xen's stubs use `vmmcall` (AMD SVM) rather than `vmcall`.
pub fn is_svm() -> bool {
    AMD.load(Ordering::Relaxed)
}

/// The generic hypercall: `op` with up to five arguments (unused ones 0).
/// Returns Xen's raw `long` result.
///
/// # Safety
/// The arguments must be what hypercall `op` expects; pointers must point to
/// memory that is valid (and identity mapped) for what Xen reads and writes.
#[inline]
pub unsafe fn hypercall(op: u32, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    debug_assert!(op < 128);
    let entry = core::ptr::addr_of!(HYPERCALL_PAGE) as u64 + u64::from(op) * 32;
    let ret: i64;
    // SAFETY: per this function's contract; the stub preserves everything but
    // rax and the argument registers, all declared here.
    unsafe {
        asm!(
            "call {entry}",
            entry = in(reg) entry,
            inlateout("rax") u64::from(op) => ret,
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            inlateout("r8") a5 => _,
            out("rcx") _,
            out("r11") _,
        )
    };
    ret
}

/// `hypercall!(op, a1, ...)`: [`hypercall`] with 0..=5 arguments, each cast
/// to `u64`.
#[macro_export]
macro_rules! hypercall {
    ($op:expr) => {
        $crate::hypercall::hypercall($op, 0, 0, 0, 0, 0)
    };
    ($op:expr, $a1:expr) => {
        $crate::hypercall::hypercall($op, $a1 as u64, 0, 0, 0, 0)
    };
    ($op:expr, $a1:expr, $a2:expr) => {
        $crate::hypercall::hypercall($op, $a1 as u64, $a2 as u64, 0, 0, 0)
    };
    ($op:expr, $a1:expr, $a2:expr, $a3:expr) => {
        $crate::hypercall::hypercall($op, $a1 as u64, $a2 as u64, $a3 as u64, 0, 0)
    };
    ($op:expr, $a1:expr, $a2:expr, $a3:expr, $a4:expr) => {
        $crate::hypercall::hypercall($op, $a1 as u64, $a2 as u64, $a3 as u64, $a4 as u64, 0)
    };
    ($op:expr, $a1:expr, $a2:expr, $a3:expr, $a4:expr, $a5:expr) => {
        $crate::hypercall::hypercall(
            $op, $a1 as u64, $a2 as u64, $a3 as u64, $a4 as u64, $a5 as u64,
        )
    };
}

/// `HYPERVISOR_memory_op(cmd, arg)`.
///
/// # Safety
/// `arg` must be the structure `cmd` expects.
pub unsafe fn memory_op<T>(cmd: u32, arg: *mut T) -> Result<u64, XenError> {
    // SAFETY: forwarded contract.
    XenError::check(unsafe { hypercall(HYPERVISOR_MEMORY_OP, cmd.into(), arg as u64, 0, 0, 0) })
}

/// `HYPERVISOR_hvm_op(cmd, arg)`.
///
/// # Safety
/// `arg` must be the structure `cmd` expects.
pub unsafe fn hvm_op<T>(cmd: u32, arg: *mut T) -> Result<u64, XenError> {
    // SAFETY: forwarded contract.
    XenError::check(unsafe { hypercall(HYPERVISOR_HVM_OP, cmd.into(), arg as u64, 0, 0, 0) })
}

/// `HYPERVISOR_event_channel_op(cmd, arg)`.
///
/// # Safety
/// `arg` must be the structure `cmd` expects.
pub unsafe fn event_channel_op<T>(cmd: u32, arg: *mut T) -> Result<u64, XenError> {
    // SAFETY: forwarded contract.
    XenError::check(unsafe {
        hypercall(HYPERVISOR_EVENT_CHANNEL_OP, cmd.into(), arg as u64, 0, 0, 0)
    })
}

/// `HYPERVISOR_sched_op(cmd, arg)`.
///
/// # Safety
/// `arg` must be the structure `cmd` expects.
pub unsafe fn sched_op<T>(cmd: u32, arg: *mut T) -> Result<u64, XenError> {
    // SAFETY: forwarded contract.
    XenError::check(unsafe { hypercall(HYPERVISOR_SCHED_OP, cmd.into(), arg as u64, 0, 0, 0) })
}

/// `HYPERVISOR_multicall(calls, n)`: Xen runs the calls in order, in one
/// entry, and writes each one's return value into its `result`.
///
/// # Safety
/// Each entry must be a call (and arguments) this domain may make, its
/// pointer arguments valid until the multicall returns.
pub unsafe fn multicall(calls: &mut [multicall_entry]) -> Result<u64, XenError> {
    // SAFETY: forwarded contract; `calls` is `calls.len()` entries Xen may
    // read and write back.
    XenError::check(unsafe {
        hypercall(
            HYPERVISOR_MULTICALL,
            calls.as_mut_ptr() as u64,
            calls.len() as u64,
            0,
            0,
            0,
        )
    })
}

/// `HYPERVISOR_vcpu_op(cmd, vcpu, arg)`.
///
/// # Safety
/// `arg` must be the structure `cmd` expects (or null where allowed).
pub unsafe fn vcpu_op<T>(cmd: u32, vcpu: u32, arg: *mut T) -> Result<u64, XenError> {
    // SAFETY: forwarded contract.
    XenError::check(unsafe {
        hypercall(
            HYPERVISOR_VCPU_OP,
            cmd.into(),
            vcpu.into(),
            arg as u64,
            0,
            0,
        )
    })
}

/// `HYPERVISOR_xen_version(cmd, arg)`.
///
/// # Safety
/// `arg` must be the buffer `cmd` expects (or null).
pub unsafe fn xen_version_op<T>(cmd: u32, arg: *mut T) -> Result<u64, XenError> {
    // SAFETY: forwarded contract.
    XenError::check(unsafe { hypercall(HYPERVISOR_XEN_VERSION, cmd.into(), arg as u64, 0, 0, 0) })
}

/// `HYPERVISOR_domctl(arg)`. `arg` must start with the common header
/// `{ u32 cmd; u32 interface_version; u16 domain; ... }` and be the full
/// 256-byte `struct xen_domctl` (Xen copies the whole structure in and out).
///
/// # Safety
/// `arg` must point to a valid, writable `struct xen_domctl`.
pub unsafe fn domctl<T>(arg: *mut T) -> Result<u64, XenError> {
    // SAFETY: forwarded contract.
    XenError::check(unsafe { hypercall(HYPERVISOR_DOMCTL, arg as u64, 0, 0, 0, 0) })
}

// Idle entry: `SCHEDOP_block` with interrupts enabled. `sti` is followed by a
// `nop` so Xen does not see an STI interrupt shadow at the trap (it would
// treat a pending upcall as blocked and sleep). An upcall taken in the
// one-instruction window before the trap would be consumed and we would then
// sleep with the caller's condition already true: the trap handler therefore
// moves a `rip` equal to `*_call` to `*_end` (see `idle_fixup`), skipping the
// block. So callers can check their condition with interrupts off and call
// `block_with_interrupts` without losing a wake-up.
global_asm!(
    r#"
    .text
    .globl boot_idle_vmx
boot_idle_vmx:
    mov eax, {sched_op}
    mov edi, {block}
    xor esi, esi
    sti
    nop
    .globl boot_idle_vmx_call
boot_idle_vmx_call:
    vmcall
    .globl boot_idle_vmx_end
boot_idle_vmx_end:
    ret

    .globl boot_idle_svm
boot_idle_svm:
    mov eax, {sched_op}
    mov edi, {block}
    xor esi, esi
    sti
    nop
    .globl boot_idle_svm_call
boot_idle_svm_call:
    vmmcall
    .globl boot_idle_svm_end
boot_idle_svm_end:
    ret
    "#,
    sched_op = const HYPERVISOR_SCHED_OP,
    block = const SCHEDOP_BLOCK,
);

extern "C" {
    fn boot_idle_vmx();
    fn boot_idle_vmx_call();
    fn boot_idle_vmx_end();
    fn boot_idle_svm();
    fn boot_idle_svm_call();
    fn boot_idle_svm_end();
}

// The STI shadow probe: `cli; sti; nop; nop`. No interrupt may be taken
// at the first `nop` (the instruction after `sti`, in its shadow): the idle
// entry above depends on it. The self-test runs this with timers firing and
// counts upcalls whose `rip` is `boot_sti_shadow`.
global_asm!(
    r#"
    .text
    .globl boot_sti_shadow_probe
boot_sti_shadow_probe:
    cli
    sti
    .globl boot_sti_shadow
boot_sti_shadow:
    nop
    nop
    ret
    "#
);

extern "C" {
    fn boot_sti_shadow_probe();
    fn boot_sti_shadow();
}

/// One pass through `cli; sti; nop; nop` (see [`in_sti_shadow`]).
pub fn sti_shadow_probe() {
    // SAFETY: our assembly above; it clobbers nothing and leaves
    // interrupts enabled, as they must be when this is called.
    unsafe { boot_sti_shadow_probe() }
}

/// Whether `rip` is the instruction in the probe's STI shadow: an
/// interrupt taken there broke the shadow.
pub fn in_sti_shadow(rip: u64) -> bool {
    rip == boot_sti_shadow as *const () as u64
}

/// Called by the trap entry with the interrupted `rip`: returns where to
/// resume instead if the interrupt hit the idle window.
pub fn idle_fixup(rip: u64) -> Option<u64> {
    if rip == boot_idle_vmx_call as *const () as u64 {
        Some(boot_idle_vmx_end as *const () as u64)
    } else if rip == boot_idle_svm_call as *const () as u64 {
        Some(boot_idle_svm_end as *const () as u64)
    } else {
        None
    }
}

/// `SCHEDOP_block` with interrupts enabled, without a lost-wake-up window:
/// call it with interrupts *disabled* after checking your wait condition.
/// Returns with interrupts enabled, after at least one event (or at once if
/// one was already pending).
pub fn block_with_interrupts() {
    if is_svm() {
        // SAFETY: our assembly above; clobbers only rax/rdi/rsi (caller-saved
        // in the C ABI) and Xen preserves the rest.
        unsafe { boot_idle_svm() }
    } else {
        // SAFETY: as above.
        unsafe { boot_idle_vmx() }
    }
}
