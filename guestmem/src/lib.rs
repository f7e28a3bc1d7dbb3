//! The target's memory as the stub sees it (issue 15).
//!
//! - [`FrameWindow`]: the mechanism the stub implements — a fixed window of
//!   its own GFNs ("slots"), each of which can show one target frame
//!   (`XENMEM_add_to_physmap_batch`, `XENMAPSPACE_gmfn_foreign`).
//! - [`MapCache`]: the policy — which target frame sits in which slot, LRU
//!   replacement, counters, `invalidate`/`flush` (the cache contract is on
//!   [`MapCache`]).
//! - [`MapCache::read_phys`] / [`MapCache::write_phys`]: guest-physical
//!   accesses that cross frames and stop at the first frame that fails.
//! - [`MapCache::translate`] / [`MapCache::read_virt`]: x86-64 long-mode
//!   page walks (4 and 5 levels, 4 KiB / 2 MiB / 1 GiB pages).
//!
//! `no_std`, no allocation, no `unsafe`. Every input that comes from the
//! target (page-table bytes, CR3, addresses) may be hostile: the code gives
//! an error or a result, never panics and never loops unboundedly.
//! The `sim` feature adds a host model of the target and of the window
//! (`sim`), for tests, the bench and the fuzz target.
//!
//! ```
//! # use guestmem::sim::{PageTableBuilder, Perms, SimTarget, SimWindow};
//! # use guestmem::{MapCache, PageSize};
//! let mut target = SimTarget::new();
//! let mut tables = PageTableBuilder::new(&mut target, 4, 0x100);
//! target.add_ram(0x42);
//! target.write(0x42 << 12, b"hello");
//! tables
//!     .map(&mut target, 0x7fff_0000_0000, 0x42 << 12, PageSize::Size4K, Perms::ALL, Perms::ALL)
//!     .unwrap();
//! let regs = tables.regs(true); // CR3, CR4, EFER of a vCPU (vm_event regs in the stub)
//!
//! // The stub: its FrameWindow over a window of 16 GFNs, a cache of 16.
//! let mut mem: MapCache<SimWindow, 16> = MapCache::new(SimWindow::new(target, 16));
//! mem.flush(); // at the start of each event batch
//! let mut buf = [0u8; 5];
//! mem.read_virt(&regs, 0x7fff_0000_0000, &mut buf).unwrap();
//! assert_eq!(&buf, b"hello");
//! assert_eq!(mem.translate(&regs, 0x7fff_0000_0001).unwrap().gpa, (0x42 << 12) + 1);
//! ```

#![no_std]

#[cfg(feature = "std")]
extern crate std;

mod cache;
mod error;
mod phys;
mod virt;
mod walk;
mod window;

#[cfg(feature = "sim")]
pub mod sim;

pub use cache::{CacheStats, MapCache};
pub use error::{MapError, PhysError, PhysFault, VirtError, VirtFault, WalkError};
pub use walk::{PageSize, PagingRegs, Translation};
pub use window::FrameWindow;

/// log2 of a Xen/x86 frame.
pub const PAGE_SHIFT: u32 = 12;
/// Bytes in a frame (`XEN_PAGE_SIZE`).
pub const PAGE_SIZE: usize = xen_abi::XEN_PAGE_SIZE;
const _: () = assert!(PAGE_SIZE == 1 << PAGE_SHIFT);

/// The architectural limit on physical address width (Intel SDM Vol. 3A
/// §4.1.4: MAXPHYADDR is at most 52). GPAs at or above `1 << 52` are refused.
pub const MAX_PHYS_BITS: u32 = 52;
/// First GPA that no x86-64 guest can have.
pub const GPA_LIMIT: u64 = 1 << MAX_PHYS_BITS;
