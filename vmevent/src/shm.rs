//! Accessors for foreign shared memory (pages Xen, or a peer, writes while we
//! read them).
//!
//! Rules kept here so the logic modules need no `unsafe`:
//! - never form a `&T`/`&mut T` to shared bytes (Rust could assume they do
//!   not change); control words go through atomics, payloads are copied in
//!   and out with volatile accesses;
//! - every payload read yields an owned copy, which is then validated; a
//!   torn copy is just another garbage value the validators reject or
//!   answer conservatively.

use crate::abi::{
    VmEventSt, VM_EVENT_ASYNC_CONS_OFFSET, VM_EVENT_ASYNC_DROPPED_OFFSET,
    VM_EVENT_ASYNC_NR_ENTRIES_OFFSET, VM_EVENT_ASYNC_PROD_OFFSET, VM_EVENT_ASYNC_RING_HDR_SIZE,
    VM_EVENT_SLOT_PAYLOAD_OFFSET, VM_EVENT_SLOT_SIZE, VM_EVENT_SLOT_STATE_OFFSET,
    VM_EVENT_SRING_HDR_SIZE, XEN_PAGE_SIZE,
};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

/// What the slot state machine needs from a slot's memory. The real
/// implementation is [`SlotPtr`]; the loom model supplies its own so the
/// same consumer code is checked.
pub trait SlotMem {
    fn load_state(&self, order: Ordering) -> u32;
    fn store_state(&self, v: u32, order: Ordering);
    fn compare_exchange_state(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32>;
    fn read_event(&self) -> VmEventSt;
    fn write_event(&self, ev: &VmEventSt);
}

/// Volatile copy of a `VmEventSt` out of foreign memory.
///
/// # Safety
/// `src` must be valid for reads of 400 bytes and 8-byte aligned.
#[inline(always)]
unsafe fn read_event_volatile(src: *const u8) -> VmEventSt {
    // SAFETY: caller guarantees validity and alignment; every bit pattern is
    // a valid `VmEventSt`. Volatile so the compiler neither elides nor
    // re-reads the copy: we validate exactly what we copied.
    unsafe { core::ptr::read_volatile(src as *const VmEventSt) }
}

/// # Safety
/// `dst` must be valid for writes of 400 bytes and 8-byte aligned.
#[inline(always)]
unsafe fn write_event_volatile(dst: *mut u8, ev: &VmEventSt) {
    // SAFETY: caller guarantees validity and alignment.
    unsafe { core::ptr::write_volatile(dst as *mut VmEventSt, *ev) }
}

/// # Safety
/// `p` must be valid, 4-byte aligned and only ever accessed atomically.
#[inline(always)]
unsafe fn atomic_at<'a>(p: *mut u8) -> &'a AtomicU32 {
    // SAFETY: caller guarantees; `AtomicU32` has interior mutability, so a
    // shared reference to it does not let Rust assume the value is stable.
    unsafe { AtomicU32::from_ptr(p as *mut u32) }
}

/// One slot (`struct vm_event_slot`) in mapped memory.
#[derive(Clone, Copy, Debug)]
pub struct SlotPtr {
    base: NonNull<u8>,
}

// SAFETY: a SlotPtr is an address; all accesses through it are atomic or
// volatile copies, so sharing it between vCPUs/threads is sound.
unsafe impl Send for SlotPtr {}
// SAFETY: as above.
unsafe impl Sync for SlotPtr {}

impl SlotPtr {
    /// # Safety
    /// `base` must point to `VM_EVENT_SLOT_SIZE` bytes that stay mapped and
    /// writable while this value (or a copy) is used, be 8-byte aligned, and
    /// its first word must only be accessed atomically by this domain.
    pub unsafe fn new(base: *mut u8) -> Self {
        debug_assert!(base as usize % 8 == 0);
        Self {
            // SAFETY: caller promises a valid mapping, hence non-null.
            base: unsafe { NonNull::new_unchecked(base) },
        }
    }

    fn state(&self) -> &AtomicU32 {
        // SAFETY: per `new`'s contract the state word is mapped, aligned and
        // atomic-only.
        unsafe { atomic_at(self.base.as_ptr().add(VM_EVENT_SLOT_STATE_OFFSET)) }
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }
}

impl SlotMem for SlotPtr {
    #[inline]
    fn load_state(&self, order: Ordering) -> u32 {
        self.state().load(order)
    }
    #[inline]
    fn store_state(&self, v: u32, order: Ordering) {
        self.state().store(v, order)
    }
    #[inline]
    fn compare_exchange_state(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        self.state()
            .compare_exchange(current, new, success, failure)
    }
    #[inline]
    fn read_event(&self) -> VmEventSt {
        // SAFETY: the payload lies within the slot (408 <= 512 bytes), at
        // offset 8 of an 8-aligned base.
        unsafe { read_event_volatile(self.base.as_ptr().add(VM_EVENT_SLOT_PAYLOAD_OFFSET)) }
    }
    #[inline]
    fn write_event(&self, ev: &VmEventSt) {
        // SAFETY: as for `read_event`.
        unsafe { write_event_volatile(self.base.as_ptr().add(VM_EVENT_SLOT_PAYLOAD_OFFSET), ev) }
    }
}

/// The slot frames `[R, R + S)` of the resource, as one contiguous mapping.
#[derive(Clone, Copy, Debug)]
pub struct SlotArea {
    base: NonNull<u8>,
    nr_vcpus: u32,
}

// SAFETY: only hands out `SlotPtr`s, which are Send + Sync.
unsafe impl Send for SlotArea {}
// SAFETY: as above.
unsafe impl Sync for SlotArea {}

impl SlotArea {
    /// # Safety
    /// `base` must be page aligned and map `slot_frames(nr_vcpus)` pages for
    /// as long as the area or any slot from it is used.
    pub unsafe fn new(base: *mut u8, nr_vcpus: u32) -> Self {
        debug_assert!(base as usize % XEN_PAGE_SIZE == 0);
        Self {
            // SAFETY: caller promises a valid mapping.
            base: unsafe { NonNull::new_unchecked(base) },
            nr_vcpus,
        }
    }

    pub fn nr_vcpus(&self) -> u32 {
        self.nr_vcpus
    }

    /// The slot of target vCPU `vcpu`, or `None` when out of range.
    pub fn slot(&self, vcpu: u32) -> Option<SlotPtr> {
        if vcpu >= self.nr_vcpus {
            return None;
        }
        // SAFETY: vcpu < nr_vcpus, so the slot lies inside the mapping.
        Some(unsafe { SlotPtr::new(self.base.as_ptr().add(vcpu as usize * VM_EVENT_SLOT_SIZE)) })
    }
}

/// The async ring frames `[0, R)` of the resource.
#[derive(Clone, Copy, Debug)]
pub struct AsyncRingPtr {
    base: NonNull<u8>,
    nr_entries: u32,
}

// SAFETY: atomic header accesses and volatile entry copies only.
unsafe impl Send for AsyncRingPtr {}
// SAFETY: as above.
unsafe impl Sync for AsyncRingPtr {}

impl AsyncRingPtr {
    /// `nr_entries` is computed by us from R (never taken from the header).
    ///
    /// # Safety
    /// `base` must be page aligned and map `ring_frames` pages for as long as
    /// this value is used.
    pub unsafe fn new(base: *mut u8, ring_frames: u32) -> Self {
        Self {
            // SAFETY: caller promises a valid mapping.
            base: unsafe { NonNull::new_unchecked(base) },
            nr_entries: crate::abi::async_ring_entries(ring_frames),
        }
    }

    pub fn nr_entries(&self) -> u32 {
        self.nr_entries
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: header words are within the first page, aligned.
        unsafe { atomic_at(self.base.as_ptr().add(off)) }
    }
    pub fn prod(&self) -> &AtomicU32 {
        self.word(VM_EVENT_ASYNC_PROD_OFFSET)
    }
    pub fn cons(&self) -> &AtomicU32 {
        self.word(VM_EVENT_ASYNC_CONS_OFFSET)
    }
    pub fn nr_entries_word(&self) -> &AtomicU32 {
        self.word(VM_EVENT_ASYNC_NR_ENTRIES_OFFSET)
    }
    pub fn dropped(&self) -> &AtomicU32 {
        self.word(VM_EVENT_ASYNC_DROPPED_OFFSET)
    }

    fn entry_ptr(&self, idx: u32) -> *mut u8 {
        let i = (idx % self.nr_entries) as usize;
        // SAFETY: i < nr_entries, and nr_entries entries fit in R frames
        // after the header (that is how nr_entries was computed).
        unsafe {
            self.base
                .as_ptr()
                .add(VM_EVENT_ASYNC_RING_HDR_SIZE + i * core::mem::size_of::<VmEventSt>())
        }
    }

    /// Copy out entry `idx` (free-running index).
    pub fn read_entry(&self, idx: u32) -> VmEventSt {
        // SAFETY: in-bounds (entry_ptr), 8-aligned (64 + i * 400).
        unsafe { read_event_volatile(self.entry_ptr(idx)) }
    }

    /// Producer side (simulator, tests).
    pub fn write_entry(&self, idx: u32, ev: &VmEventSt) {
        // SAFETY: as for `read_entry`.
        unsafe { write_event_volatile(self.entry_ptr(idx), ev) }
    }
}

/// Xen's stock vm_event ring: one page, `struct vm_event_sring`.
#[derive(Clone, Copy, Debug)]
pub struct StockRingPtr {
    base: NonNull<u8>,
}

// SAFETY: atomic header accesses and volatile entry copies only.
unsafe impl Send for StockRingPtr {}
// SAFETY: as above.
unsafe impl Sync for StockRingPtr {}

impl StockRingPtr {
    /// # Safety
    /// `base` must be page aligned and map one page for as long as this
    /// value is used.
    pub unsafe fn new(base: *mut u8) -> Self {
        Self {
            // SAFETY: caller promises a valid mapping.
            base: unsafe { NonNull::new_unchecked(base) },
        }
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: the four RING_IDX words are at 0, 4, 8, 12 of the page.
        unsafe { atomic_at(self.base.as_ptr().add(off)) }
    }
    pub fn req_prod(&self) -> &AtomicU32 {
        self.word(0)
    }
    pub fn req_event(&self) -> &AtomicU32 {
        self.word(4)
    }
    pub fn rsp_prod(&self) -> &AtomicU32 {
        self.word(8)
    }
    pub fn rsp_event(&self) -> &AtomicU32 {
        self.word(12)
    }

    fn entry_ptr(&self, idx: u32) -> *mut u8 {
        let i = (idx % crate::abi::VM_EVENT_RING_SIZE) as usize;
        // SAFETY: 64 + 8 * 400 = 3264 <= 4096.
        unsafe {
            self.base
                .as_ptr()
                .add(VM_EVENT_SRING_HDR_SIZE + i * core::mem::size_of::<VmEventSt>())
        }
    }

    pub fn read_entry(&self, idx: u32) -> VmEventSt {
        // SAFETY: in-bounds and 8-aligned (entry_ptr).
        unsafe { read_event_volatile(self.entry_ptr(idx)) }
    }

    pub fn write_entry(&self, idx: u32, ev: &VmEventSt) {
        // SAFETY: in-bounds and 8-aligned (entry_ptr).
        unsafe { write_event_volatile(self.entry_ptr(idx), ev) }
    }

    /// `SHARED_RING_INIT`: what Xen does when it sets the ring up.
    pub fn init(&self) {
        self.req_prod().store(0, Ordering::Relaxed);
        self.rsp_prod().store(0, Ordering::Relaxed);
        self.req_event().store(1, Ordering::Relaxed);
        self.rsp_event().store(1, Ordering::Release);
    }
}
