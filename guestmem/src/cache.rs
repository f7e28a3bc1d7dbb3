//! The policy over a [`FrameWindow`]: which target frame is shown in which
//! slot, LRU replacement, and the counters.

use crate::{FrameWindow, MapError, PAGE_SHIFT, PAGE_SIZE};

/// Marks an empty slot. Never a real GFN: every GFN the crate looks up comes
/// from a GPA below `1 << 52`, so it is below `1 << 40`.
const NO_GFN: u64 = u64::MAX;

#[derive(Clone, Copy)]
struct Slot {
    gfn: u64,
    /// `MapCache::tick` at the last use; the smallest is evicted.
    last_use: u64,
}

/// What the cache did since creation (or [`MapCache::reset_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups served by a frame already in a slot.
    pub hits: u64,
    /// Lookups that had to map (whether or not the map worked).
    pub misses: u64,
    /// Mapped slots emptied to make room for another frame.
    pub evictions: u64,
    /// `map` calls that failed.
    pub map_errors: u64,
    /// `unmap` calls that failed (the slot was reused all the same).
    pub unmap_errors: u64,
}

impl CacheStats {
    /// Hits per thousand lookups, `None` before the first lookup. Integer,
    /// so the stub needs no floating point to log it.
    pub fn hit_rate_permille(&self) -> Option<u32> {
        let total = self.hits.checked_add(self.misses)?;
        if total == 0 {
            return None;
        }
        // hits <= total, so the quotient is at most 1000.
        Some((u128::from(self.hits) * 1000 / u128::from(total)) as u32)
    }
}

/// A cache of at most `N` target frames shown through a [`FrameWindow`]
/// (slots `0..N` of it), with LRU replacement.
///
/// # Contract
///
/// A slot keeps showing the frame Xen resolved when it was mapped; it does
/// not follow the target's p2m. Whenever the target may have changed its p2m
/// (ballooning, a pager, sharing, `XENMEM_*` hypercalls of its own — the
/// stub cannot see these), cached frames may be stale. So the stub calls
/// [`flush`](MapCache::flush) at the start of each batch of events, before
/// the first read for it, and [`invalidate`](MapCache::invalidate) for a GFN
/// it knows changed. Between flushes the target's vCPUs that are not paused
/// may still write the frames: reads see current bytes of the mapped frame,
/// not a snapshot.
///
/// A failed map leaves its slot empty and counted in `map_errors`; a failed
/// lookup is not cached, so the next lookup of that GFN asks Xen again.
pub struct MapCache<W: FrameWindow, const N: usize> {
    window: W,
    slots: [Slot; N],
    /// Slot of the last hit or map: checked first, because consecutive
    /// accesses (a cross-page read, a page's worth of PTEs) share a frame.
    mru: usize,
    tick: u64,
    stats: CacheStats,
}

impl<W: FrameWindow, const N: usize> MapCache<W, N> {
    /// A cache over slots `0..N` of `window`, all empty.
    ///
    /// # Panics
    ///
    /// If `N` is 0 or `window` has fewer than `N` slots: a build-time
    /// mistake of the stub, not something the target can cause.
    pub fn new(window: W) -> Self {
        assert!(N > 0, "MapCache needs at least one slot");
        assert!(
            window.slots() >= N,
            "window has {} slots, cache wants {N}",
            window.slots()
        );
        MapCache {
            window,
            slots: [Slot {
                gfn: NO_GFN,
                last_use: 0,
            }; N],
            mru: 0,
            tick: 0,
            stats: CacheStats::default(),
        }
    }

    /// The window. Use it to read the window's own state, not to map or
    /// unmap slots behind the cache's back.
    pub fn window(&self) -> &W {
        &self.window
    }

    /// The window, mutably (the simulator changes the target through it).
    /// Mapping or unmapping the cache's slots through it breaks the cache.
    pub fn window_mut(&mut self) -> &mut W {
        &mut self.window
    }

    /// Counters since creation or the last [`reset_stats`](Self::reset_stats).
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    pub fn reset_stats(&mut self) {
        self.stats = CacheStats::default();
    }

    /// Whether `gfn` is in a slot now (no lookup, no counters).
    pub fn is_cached(&self, gfn: u64) -> bool {
        gfn != NO_GFN && self.slots.iter().any(|s| s.gfn == gfn)
    }

    /// Number of slots in use.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.gfn != NO_GFN).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop `gfn` from the cache (unmapping its slot). Returns whether it
    /// was cached.
    pub fn invalidate(&mut self, gfn: u64) -> bool {
        match self
            .slots
            .iter()
            .position(|s| s.gfn == gfn && gfn != NO_GFN)
        {
            Some(i) => {
                self.empty_slot(i);
                true
            }
            None => false,
        }
    }

    /// Unmap every slot: see the contract above for when the stub must.
    pub fn flush(&mut self) {
        for i in 0..N {
            if self.slots[i].gfn != NO_GFN {
                self.empty_slot(i);
            }
        }
    }

    /// The slot showing `gfn`, mapping it (and evicting the least recently
    /// used frame) on a miss.
    fn slot_of(&mut self, gfn: u64) -> Result<usize, MapError> {
        debug_assert!(gfn != NO_GFN);
        self.tick += 1;
        let hit = if self.slots[self.mru].gfn == gfn {
            Some(self.mru)
        } else {
            self.slots.iter().position(|s| s.gfn == gfn)
        };
        if let Some(i) = hit {
            self.stats.hits += 1;
            self.slots[i].last_use = self.tick;
            self.mru = i;
            return Ok(i);
        }
        self.stats.misses += 1;
        let victim = self.victim();
        if self.slots[victim].gfn != NO_GFN {
            self.stats.evictions += 1;
            // Unmap before mapping, rather than letting Xen replace the
            // mapping: Xen 4.17 removes the old page only after its checks of
            // the new one, so a failed map would leave the slot in a state
            // that depends on which check failed. Empty first, it is known.
            self.empty_slot(victim);
        }
        match self.window.map(victim, gfn) {
            Ok(()) => {
                self.slots[victim] = Slot {
                    gfn,
                    last_use: self.tick,
                };
                self.mru = victim;
                Ok(victim)
            }
            Err(e) => {
                self.stats.map_errors += 1;
                Err(e)
            }
        }
    }

    /// An empty slot if there is one, else the least recently used.
    fn victim(&self) -> usize {
        let mut best = 0;
        for (i, s) in self.slots.iter().enumerate() {
            if s.gfn == NO_GFN {
                return i;
            }
            if s.last_use < self.slots[best].last_use {
                best = i;
            }
        }
        best
    }

    fn empty_slot(&mut self, i: usize) {
        if self.window.unmap(i).is_err() {
            self.stats.unmap_errors += 1;
        }
        self.slots[i].gfn = NO_GFN;
    }

    /// Copy from frame `gfn` at `offset`; `offset + buf.len() <= 4096`.
    pub(crate) fn read_frame(
        &mut self,
        gfn: u64,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), MapError> {
        debug_assert!(offset + buf.len() <= PAGE_SIZE);
        let slot = self.slot_of(gfn)?;
        self.window.read(slot, offset, buf);
        Ok(())
    }

    /// Copy into frame `gfn` at `offset`; `offset + buf.len() <= 4096`.
    pub(crate) fn write_frame(
        &mut self,
        gfn: u64,
        offset: usize,
        buf: &[u8],
    ) -> Result<(), MapError> {
        debug_assert!(offset + buf.len() <= PAGE_SIZE);
        let slot = self.slot_of(gfn)?;
        self.window.write(slot, offset, buf);
        Ok(())
    }

    /// The u64 at the 8-aligned `gpa` (below `1 << 52`): one lookup, one
    /// window read.
    pub(crate) fn read_u64(&mut self, gpa: u64) -> Result<u64, MapError> {
        debug_assert!(gpa % 8 == 0 && gpa < crate::GPA_LIMIT);
        let slot = self.slot_of(gpa >> PAGE_SHIFT)?;
        Ok(self.window.read_u64(slot, (gpa as usize) & (PAGE_SIZE - 1)))
    }
}
