//! IDT, exception entry stubs and the event-channel upcall vector.
//!
//! Every vector we install goes through one assembly path: the stub pushes a
//! dummy error code where the CPU does not, then the vector number; the common
//! path saves all 15 general-purpose registers, calls [`trap`] with a pointer
//! to the [`TrapFrame`], restores them and `iretq`s. The frame is 22 qwords
//! (176 bytes) above a 16-byte-aligned CPU push, so `rsp` is 16-byte aligned
//! at the `call`, as the ABI wants.
//!
//! Red zone: an interrupt pushes its frame just below the interrupted `rsp`,
//! which would destroy a leaf function's red zone. `x86_64-unknown-none`
//! compiles everything with `disable-redzone: true` (verified with
//! `rustc -Z unstable-options --print target-spec-json`), and also with
//! `+soft-float,-sse,...`: no code of ours touches x87/SSE state, so the
//! handlers have no FPU state to save. Double fault, NMI and machine check
//! additionally switch to IST stacks.
//!
//! We do not use the x86_64 crate's `InterruptDescriptorTable`: its typed
//! entries want the unstable `x86-interrupt` ABI, and we want one uniform
//! assembly entry for all vectors; a 256 x 16-byte table is simpler.

use core::arch::global_asm;

use super::gdt::{IST_DOUBLE_FAULT, IST_NMI_MC};

/// Vector Xen injects for event-channel upcalls (HVM callback "vector" type).
pub const UPCALL_VECTOR: u8 = 0xf3;

/// Registers saved on entry, lowest address first.
#[repr(C)]
#[derive(Debug)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

macro_rules! stubs {
    ($($v:literal $kind:ident),* $(,)?) => {
        global_asm!(
            ".section .text.isr, \"ax\", @progbits",
            $( stubs!(@one $v $kind), )*
            "isr_common:",
            "push rax", "push rbx", "push rcx", "push rdx", "push rsi", "push rdi",
            "push rbp", "push r8", "push r9", "push r10", "push r11", "push r12",
            "push r13", "push r14", "push r15",
            "mov rdi, rsp",
            "cld",
            "call {trap}",
            "pop r15", "pop r14", "pop r13", "pop r12", "pop r11", "pop r10",
            "pop r9", "pop r8", "pop rbp", "pop rdi", "pop rsi", "pop rdx",
            "pop rcx", "pop rbx", "pop rax",
            "add rsp, 16",
            "iretq",
            ".section .rodata.isr_table, \"a\", @progbits",
            ".balign 8",
            ".globl ISR_TABLE",
            "ISR_TABLE:",
            $( concat!(".quad isr_", stringify!($v)), )*
            ".text",
            trap = sym trap,
        );
        const ISR_VECTORS: &[u8] = &[$($v),*];
    };
    (@one $v:literal noerr) => {
        concat!("isr_", stringify!($v), ":\n push 0\n push ", stringify!($v), "\n jmp isr_common")
    };
    (@one $v:literal err) => {
        concat!("isr_", stringify!($v), ":\n push ", stringify!($v), "\n jmp isr_common")
    };
}

stubs!(
    0 noerr, 1 noerr, 2 noerr, 3 noerr, 4 noerr, 5 noerr, 6 noerr, 7 noerr,
    8 err, 9 noerr, 10 err, 11 err, 12 err, 13 err, 14 err, 15 noerr,
    16 noerr, 17 err, 18 noerr, 19 noerr, 20 noerr, 21 err, 22 noerr, 23 noerr,
    24 noerr, 25 noerr, 26 noerr, 27 noerr, 28 noerr, 29 err, 30 err, 31 noerr,
    243 noerr,
);

const _: () = assert!(UPCALL_VECTOR == 243);

extern "C" {
    static ISR_TABLE: [u64; 33];
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    off_lo: u16,
    sel: u16,
    ist: u8,
    attr: u8,
    off_mid: u16,
    off_hi: u32,
    zero: u32,
}

impl Gate {
    const MISSING: Gate = Gate {
        off_lo: 0,
        sel: 0,
        ist: 0,
        attr: 0,
        off_mid: 0,
        off_hi: 0,
        zero: 0,
    };

    fn new(handler: u64, ist: u8) -> Gate {
        Gate {
            off_lo: handler as u16,
            sel: 0x08,
            ist,
            attr: 0x8e, // present, DPL 0, 64-bit interrupt gate (IF cleared)
            off_mid: (handler >> 16) as u16,
            off_hi: (handler >> 32) as u32,
            zero: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

struct IdtCell(core::cell::UnsafeCell<Idt>);
// SAFETY: written only by vCPU 0 during single-threaded boot (`init`,
// `enable_ist`), read-only afterwards.
unsafe impl Sync for IdtCell {}

static IDT: IdtCell = IdtCell(core::cell::UnsafeCell::new(Idt([Gate::MISSING; 256])));

/// Fills the IDT (no IST yet: the boot TR is Xen's dummy) and loads it on
/// vCPU 0. Call once, first thing.
pub fn init() {
    // SAFETY: single-threaded boot; ISR_TABLE is our static of stub addresses.
    unsafe {
        let idt = &mut *IDT.0.get();
        for (i, &v) in ISR_VECTORS.iter().enumerate() {
            idt.0[v as usize] = Gate::new(ISR_TABLE[i], 0);
        }
    }
    load();
}

/// Switches double fault, NMI and machine check to IST stacks (after every
/// vCPU's TSS exists, before any AP starts).
pub fn enable_ist() {
    // SAFETY: single-threaded boot; only the IST byte changes.
    unsafe {
        let idt = &mut *IDT.0.get();
        idt.0[8].ist = IST_DOUBLE_FAULT;
        idt.0[2].ist = IST_NMI_MC;
        idt.0[18].ist = IST_NMI_MC;
    }
}

/// Loads the IDT on the running vCPU.
pub fn load() {
    let ptr = x86_64::structures::DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: x86_64::VirtAddr::from_ptr(IDT.0.get()),
    };
    // SAFETY: the IDT is a 'static with valid gates for every installed vector.
    unsafe { x86_64::instructions::tables::lidt(&ptr) };
}

fn exception_name(v: u64) -> &'static str {
    match v {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD error",
        20 => "#VE virtualization",
        21 => "#CP control protection",
        _ => "reserved",
    }
}

extern "C" fn trap(frame: &mut TrapFrame) {
    let rip = frame.rip;
    if let Some(rip) = super::hypercall::idle_fixup(frame.rip) {
        frame.rip = rip;
    }
    if frame.vector == u64::from(UPCALL_VECTOR) {
        super::percpu::this_cpu()
            .upcall_rip
            .store(rip, core::sync::atomic::Ordering::Relaxed);
        super::evtchn::upcall();
        return;
    }
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    let vcpu = super::percpu::current_vcpu();
    super::console::emergency(format_args!(
        "FATAL: exception {} ({}) error={:#x} rip={:#x} cr2={:#x} vcpu={} rsp={:#x} rflags={:#x}",
        frame.vector,
        exception_name(frame.vector),
        frame.error,
        frame.rip,
        cr2,
        vcpu,
        frame.rsp,
        frame.rflags
    ));
    super::sched::crash();
}
