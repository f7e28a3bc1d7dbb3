//! Byte-exact mirror of the Xen 4.17 public ABI we use, plus our channel
//! extension (docs/abi.md). Layouts are asserted at compile time here and
//! compared with the C headers by `tests/layout.rs`.

pub mod channels;
pub mod domctl;
pub mod evtchn;
pub mod hvm;
pub mod memory;
pub mod vm_event;
pub mod xen;

pub use channels::*;
pub use domctl::*;
pub use evtchn::*;
pub use hvm::*;
pub use memory::*;
pub use vm_event::*;
pub use xen::*;
