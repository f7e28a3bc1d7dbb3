//! x86-64 PVH guest under Xen: one file per hardware concern.

pub mod console;
pub mod evtchn;
pub mod gdt;
pub mod heap;
pub mod hypercall;
pub mod idt;
pub mod paging;
pub mod percpu;
pub mod sched;
pub mod smp;
pub mod start;
pub mod time;
pub mod xen;
