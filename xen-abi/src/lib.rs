//! The one definition of the Xen public ABI our code speaks: Xen 4.17's
//! (`XEN_RELEASE`), plus our channel extension (docs/abi.md). Every kernel,
//! tool and test takes hypercall numbers, constants and structs from here;
//! `xen-sys` supplies what it has, generated from Xen's headers. Layouts are
//! asserted at compile time here and compared with the C headers, stock and
//! patched, by `tests/layout.rs`.

#![no_std]

pub mod channels;
pub mod console;
pub mod domctl;
pub mod evtchn;
pub mod hvm;
pub mod memory;
pub mod trace;
pub mod vcpu;
pub mod version;
pub mod vm_event;
pub mod xen;

pub use channels::*;
pub use console::*;
pub use domctl::*;
pub use evtchn::*;
pub use hvm::*;
pub use memory::*;
pub use vcpu::*;
pub use version::*;
pub use vm_event::*;
pub use xen::*;
