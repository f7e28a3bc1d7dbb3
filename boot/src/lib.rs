//! `boot`: the PVH runtime shared by our Xen kernels (stubdom, tests/guest).
//!
//! The pure parts (`cmdline`, `memory`, `startinfo`, `xen` ABI types) build
//! and test on the host; the hardware side (`arch::x86_64`) exists only for
//! `target_os = "none"`. See boot/README.md for the API tour.

#![cfg_attr(not(test), no_std)]

#[cfg(target_os = "none")]
extern crate alloc;

pub mod cmdline;
pub mod console;
pub mod memory;
pub mod startinfo;
pub mod xen;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
mod runtime;

pub use startinfo::BootInfo;

#[cfg(target_os = "none")]
pub use arch::x86_64::percpu::{current_vcpu, PerVcpu, MAX_VCPUS};
#[cfg(target_os = "none")]
pub use arch::x86_64::{evtchn, gdt, heap, hypercall, idt, paging, percpu, sched, smp, time};
#[cfg(target_os = "none")]
pub use runtime::{
    alloc_gfns, alloc_ram_frames, boot_info, boot_time_ns, config_error, free_gfns, free_ram,
    gfn_window, GFN_WINDOW_SIZE,
};
#[cfg(target_os = "none")]
pub use sched::{crash, poweroff, shutdown};

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints a line to the console (one call = one uninterrupted line).
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Declares the kernel's entry: `boot::entry!(main)` with
/// `fn main(info: &'static boot::BootInfo<'static>)`. Runs on vCPU 0 with
/// interrupts on, heap, console, events and timers ready; when it returns
/// the domain powers off.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        fn __boot_kernel_main(info: &'static $crate::BootInfo<'static>) {
            let f: fn(&'static $crate::BootInfo<'static>) = $main;
            f(info)
        }
    };
}
