//! The trapping instructions, one function each, timed with `rdtsc`.
//!
//! `rdtsc`, never `rdtscp`: under QEMU's emulated SVM, Xen cannot decode
//! `rdtscp` when it has to emulate it. `lfence` on both sides keeps the
//! measured instruction inside the window.

use core::arch::asm;
use core::arch::x86_64::__cpuid_count;

#[inline(always)]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: lfence and rdtsc only read the TSC; no memory is touched.
    unsafe {
        asm!("lfence", "rdtsc", "lfence", out("eax") lo, out("edx") hi, options(nostack, nomem));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Runs `f` between two TSC reads; returns (cycles, f's result).
#[inline(always)]
pub fn timed<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let t0 = rdtsc();
    let r = f();
    let t1 = rdtsc();
    (t1.wrapping_sub(t0), r)
}

pub fn cpuid(leaf: u32) -> [u32; 4] {
    let r = __cpuid_count(leaf, 0);
    [r.eax, r.ebx, r.ecx, r.edx]
}

pub const CR0_WP: u64 = 1 << 16;
/// Time-stamp disable: only affects `rdtsc` at CPL > 0, and we run at CPL 0,
/// so toggling it is harmless here.
pub const CR4_TSD: u64 = 1 << 2;
pub const CR4_SMEP: u64 = 1 << 20;

pub fn read_cr0() -> u64 {
    let v;
    // SAFETY: reading CR0 at CPL 0 has no side effects.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nostack, nomem)) };
    v
}

pub fn read_cr4() -> u64 {
    let v;
    // SAFETY: reading CR4 at CPL 0 has no side effects.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nostack, nomem)) };
    v
}

/// # Safety
/// `v` must be a valid CR0 for the running kernel (we only toggle WP).
pub unsafe fn write_cr0(v: u64) {
    // SAFETY: the caller keeps paging and protection mode as they are.
    unsafe { asm!("mov cr0, {}", in(reg) v, options(nostack)) };
}

/// # Safety
/// `v` must be a valid CR4 for the running kernel (we only toggle TSD and
/// SMEP; no page of ours is user-accessible, so SMEP cannot fault).
pub unsafe fn write_cr4(v: u64) {
    // SAFETY: see the function's contract.
    unsafe { asm!("mov cr4, {}", in(reg) v, options(nostack)) };
}

pub const MSR_EFER: u32 = 0xc000_0080;
pub const MSR_LSTAR: u32 = 0xc000_0082;
pub const MSR_SYSENTER_EIP: u32 = 0x176;
/// EFER.SCE enables `syscall`, which this kernel never executes.
pub const EFER_SCE: u64 = 1;

pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the MSRs we read exist on every x86-64 CPU.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nostack, nomem)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// # Safety
/// The MSR must exist and the value must not break the running kernel (we
/// only write syscall/sysenter entry points, never used here, and EFER.SCE).
pub unsafe fn wrmsr(msr: u32, v: u64) {
    // SAFETY: see the function's contract.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") v as u32, in("edx") (v >> 32) as u32, options(nostack))
    };
}

/// Executes `int3`; true when the breakpoint reached our own #BP handler
/// ([`install_breakpoint_handler`]), false when a monitor swallowed it.
pub fn int3() -> bool {
    let hit: u64;
    // SAFETY: our #BP handler only sets r11 and returns; int3 is a trap, so
    // execution resumes after it whether or not the guest saw it.
    unsafe { asm!("xor r11d, r11d", "int3", "mov {}, r11", out(reg) hit, out("r11") _) };
    hit == 1
}

core::arch::global_asm!(
    ".pushsection .text.guest_bp, \"ax\"",
    ".global guest_breakpoint_entry",
    "guest_breakpoint_entry:",
    // The only thing the guest's breakpoint handler does: tell the
    // interrupted `int3` sequence it arrived (r11 is clobbered there).
    "mov r11d, 1",
    "iretq",
    ".popsection",
);

extern "C" {
    fn guest_breakpoint_entry();
}

/// Points IDT vector 3 (#BP) at our handler, in the IDT this vCPU has loaded
/// (all vCPUs share it).
pub fn install_breakpoint_handler() {
    #[repr(C, packed)]
    struct Idtr {
        limit: u16,
        base: u64,
    }
    let mut idtr = Idtr { limit: 0, base: 0 };
    // SAFETY: sidt stores 10 bytes into `idtr`.
    unsafe { asm!("sidt [{}]", in(reg) &mut idtr, options(nostack)) };
    let cs: u16;
    // SAFETY: reading CS has no side effects.
    unsafe { asm!("mov {0:x}, cs", out(reg) cs, options(nostack, nomem)) };
    let handler = guest_breakpoint_entry as *const () as u64;
    let low = (handler & 0xffff)
        | (u64::from(cs) << 16)
        | (0x8e00u64 << 32) // present, DPL 0, 64-bit interrupt gate
        | ((handler >> 16) & 0xffff) << 48;
    let high = handler >> 32;
    assert!(idtr.limit >= 3 * 16 + 15, "IDT too small for #BP");
    let gate = (idtr.base + 3 * 16) as *mut u64;
    // SAFETY: gate 3 lies inside the loaded IDT (checked against its limit);
    // a gate write races with nothing because no vCPU executes int3 yet.
    unsafe {
        gate.write_volatile(low);
        gate.add(1).write_volatile(high);
    }
}

/// `HVMOP_guest_request_vm_event`: a hypercall with no argument.
pub const HVMOP_GUEST_REQUEST_VM_EVENT: u64 = boot::xen::HVMOP_GUEST_REQUEST_VM_EVENT as u64;

/// A page the `mem` kind writes to.
#[repr(C, align(4096))]
pub struct Page(pub [u8; 4096]);
pub static mut MEM_PAGE: Page = Page([0; 4096]);

pub fn mem_write(vcpu: u32, i: u32) {
    let off = ((vcpu as usize) * 64 + (i as usize) % 64) % 4096;
    // SAFETY: in-bounds byte of a static page; each vCPU writes its own
    // cache line, and nothing reads it, so races are harmless.
    unsafe {
        (core::ptr::addr_of_mut!(MEM_PAGE.0) as *mut u8)
            .add(off)
            .write_volatile(i as u8)
    };
}
