//! vm_event protocol crate, over the ABI of `xen-abi`: the consumers of
//! slots, async ring and stock ring, the response builder and the policy
//! engine.
//!
//! `no_std`, no allocation. Everything that touches shared memory goes
//! through [`shm`]; the rest is plain logic on owned copies.
//! The `sim` feature adds a host model of Xen's side (std, threads).

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "std")]
extern crate std;

/// The Xen ABI, defined once in `xen-abi`.
pub use xen_abi as abi;
pub mod async_ring;
pub mod audit;
pub mod policy;
pub mod response;
pub mod ring;
pub mod shm;
pub mod slot;
pub mod stall;
pub mod stub_cmdline;

#[cfg(feature = "sim")]
pub mod sim;

pub use abi::{VmEventRequest, VmEventResponse};
pub use async_ring::{AsyncPoll, AsyncRingConsumer};
pub use audit::{Attribution, AuditRecord, AuditSource, Mode, PeekRecord, Process};
pub use policy::{Decision, Policy, Verdict};
pub use response::{respond, ResponseBuilder};
pub use ring::StockRingConsumer;
pub use slot::{SlotConsumer, SlotPoll};
