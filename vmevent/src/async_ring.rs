//! Consumer of the async ring (docs/abi.md, "Async ring").
//!
//! Our private `cons` is the truth; the shared `cons` is only published.
//! `prod` is read once per batch (acquire) and checked against the capacity
//! we computed ourselves, so a hostile header can at worst make us skip or
//! re-read entries, never index out of bounds or loop.

use crate::abi::VmEventRequest;
use crate::shm::AsyncRingPtr;
use core::sync::atomic::Ordering;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsyncStats {
    pub consumed: u64,
    /// Sum of `dropped` increments seen (events Xen lost because full).
    pub dropped: u64,
    /// Times `prod` was more than a ring ahead of us (bad header).
    pub bad_prod: u64,
}

/// Outcome of one [`AsyncRingConsumer::poll`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsyncPoll {
    pub consumed: u32,
    /// New drops since the previous poll.
    pub new_drops: u32,
    /// `prod` was impossible; we resynchronised to it and skipped the lot.
    pub resynced: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct AsyncRingConsumer {
    ring: AsyncRingPtr,
    cons: u32,
    last_dropped: u32,
    pub stats: AsyncStats,
}

impl AsyncRingConsumer {
    /// Start consuming at the ring's current `cons` (0 for a fresh ring).
    pub fn new(ring: AsyncRingPtr) -> Self {
        let cons = ring.cons().load(Ordering::Acquire);
        let last_dropped = ring.dropped().load(Ordering::Relaxed);
        Self {
            ring,
            cons,
            last_dropped,
            stats: AsyncStats::default(),
        }
    }

    pub fn ring(&self) -> &AsyncRingPtr {
        &self.ring
    }

    /// Consume up to `max` entries, passing each copy to `handler`, then
    /// publish `cons`. Call again while `consumed == max`.
    pub fn poll<F: FnMut(&VmEventRequest)>(&mut self, max: u32, mut handler: F) -> AsyncPoll {
        let mut out = AsyncPoll::default();
        let dropped = self.ring.dropped().load(Ordering::Relaxed);
        out.new_drops = dropped.wrapping_sub(self.last_dropped);
        self.last_dropped = dropped;
        self.stats.dropped += out.new_drops as u64;

        let prod = self.ring.prod().load(Ordering::Acquire);
        let avail = prod.wrapping_sub(self.cons);
        let cap = self.ring.nr_entries();
        if avail > cap {
            // Cannot happen with an honest producer: skip to its prod.
            self.stats.bad_prod += 1;
            self.cons = prod;
            self.ring.cons().store(self.cons, Ordering::Release);
            out.resynced = true;
            return out;
        }
        let n = avail.min(max);
        for _ in 0..n {
            let req = self.ring.read_entry(self.cons);
            self.cons = self.cons.wrapping_add(1);
            handler(&req);
        }
        if n > 0 {
            // Release: our reads of the entries happen before Xen may reuse them.
            self.ring.cons().store(self.cons, Ordering::Release);
        }
        out.consumed = n;
        self.stats.consumed += n as u64;
        out
    }
}

/// Producer side (what Xen does), for the simulator and tests: returns
/// `false` and counts a drop when full.
pub fn async_produce(ring: &AsyncRingPtr, req: &VmEventRequest) -> bool {
    let prod = ring.prod().load(Ordering::Relaxed);
    let cons = ring.cons().load(Ordering::Acquire);
    if prod.wrapping_sub(cons) >= ring.nr_entries() {
        ring.dropped().fetch_add(1, Ordering::Relaxed);
        return false;
    }
    ring.write_entry(prod, req);
    ring.prod().store(prod.wrapping_add(1), Ordering::Release);
    true
}
