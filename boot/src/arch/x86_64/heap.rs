//! The heap: `linked_list_allocator`'s heap behind a wrapper that disables
//! interrupts while the allocator lock is held (its spinlock is not
//! re-entrant, so an event handler allocating on top of an interrupted
//! allocation would deadlock; with interrupts off that cannot happen).

use core::alloc::{GlobalAlloc, Layout};

use linked_list_allocator::LockedHeap;
use x86_64::instructions::interrupts::without_interrupts;

/// Interrupt-safe global allocator.
pub struct IrqSafeHeap(LockedHeap);

// SAFETY: delegates to LockedHeap, only adding interrupt masking.
unsafe impl GlobalAlloc for IrqSafeHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        without_interrupts(|| unsafe { self.0.alloc(layout) })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        without_interrupts(|| unsafe { self.0.dealloc(ptr, layout) })
    }
}

#[global_allocator]
static HEAP: IrqSafeHeap = IrqSafeHeap(LockedHeap::empty());

/// Hands `[start, start + size)` to the heap. Once.
///
/// # Safety
/// The range must be unused, identity-mapped RAM, never used otherwise.
pub unsafe fn init(start: u64, size: u64) {
    // SAFETY: forwarded contract.
    without_interrupts(|| unsafe { HEAP.0.lock().init(start as *mut u8, size as usize) });
}

/// `(used, free)` bytes.
pub fn stats() -> (usize, usize) {
    without_interrupts(|| {
        let h = HEAP.0.lock();
        (h.used(), h.free())
    })
}
