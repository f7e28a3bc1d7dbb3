//! Physical-range bookkeeping: a fixed-capacity set of disjoint, sorted
//! `[start, end)` ranges used as a first-fit allocator, both for RAM frames
//! and for free guest-physical frame numbers (the "GFN window" where foreign
//! or resource frames get mapped). Pure logic, unit-tested on the host.

use core::fmt;

/// Size of a page / frame.
pub const PAGE_SIZE: u64 = 4096;

/// A half-open address range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Range {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

impl Range {
    /// `[start, end)`; an inverted range becomes empty.
    pub const fn new(start: u64, end: u64) -> Self {
        if end < start {
            Range { start, end: start }
        } else {
            Range { start, end }
        }
    }

    /// `[start, start + len)` saturating at `u64::MAX`.
    pub const fn with_len(start: u64, len: u64) -> Self {
        Range::new(start, start.saturating_add(len))
    }

    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the range is empty.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `addr` lies inside.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Whether the two ranges share any address.
    pub const fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The largest page-aligned sub-range.
    pub const fn page_inner(&self) -> Range {
        Range::new(
            align_up(self.start, PAGE_SIZE),
            align_down(self.end, PAGE_SIZE),
        )
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}, {:#x})", self.start, self.end)
    }
}

/// Rounds `x` up to a multiple of the power of two `align` (saturating).
pub const fn align_up(x: u64, align: u64) -> u64 {
    match x.checked_add(align - 1) {
        Some(v) => v & !(align - 1),
        None => !(align - 1),
    }
}

/// Rounds `x` down to a multiple of the power of two `align`.
pub const fn align_down(x: u64, align: u64) -> u64 {
    x & !(align - 1)
}

/// The set ran out of slots (too fragmented).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// A set of disjoint, sorted, coalesced ranges with room for `N` of them.
#[derive(Clone, Copy)]
pub struct RangeSet<const N: usize> {
    ranges: [Range; N],
    len: usize,
}

impl<const N: usize> Default for RangeSet<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for RangeSet<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<const N: usize> RangeSet<N> {
    /// An empty set.
    pub const fn new() -> Self {
        RangeSet {
            ranges: [Range { start: 0, end: 0 }; N],
            len: 0,
        }
    }

    /// The ranges, sorted by address.
    pub fn iter(&self) -> impl Iterator<Item = Range> + '_ {
        self.ranges[..self.len].iter().copied()
    }

    /// Number of disjoint ranges.
    pub fn count(&self) -> usize {
        self.len
    }

    /// Total bytes covered.
    pub fn total(&self) -> u64 {
        self.iter().map(|r| r.len()).sum()
    }

    /// Whether the whole of `r` is covered by one range of the set.
    pub fn contains_range(&self, r: Range) -> bool {
        r.is_empty() || self.iter().any(|x| x.start <= r.start && r.end <= x.end)
    }

    /// Highest covered address + 1 (0 if empty).
    pub fn end(&self) -> u64 {
        self.iter().last().map_or(0, |r| r.end)
    }

    /// Adds `r`, merging with neighbours and overlaps.
    pub fn insert(&mut self, r: Range) -> Result<(), Full> {
        if r.is_empty() {
            return Ok(());
        }
        let mut new = r;
        // Indices of ranges that touch or overlap `new`.
        let first = self.ranges[..self.len]
            .iter()
            .position(|x| x.end >= new.start)
            .unwrap_or(self.len);
        let mut last = first;
        while last < self.len && self.ranges[last].start <= new.end {
            new.start = new.start.min(self.ranges[last].start);
            new.end = new.end.max(self.ranges[last].end);
            last += 1;
        }
        let merged = last - first;
        if merged == 0 {
            if self.len == N {
                return Err(Full);
            }
            self.ranges.copy_within(first..self.len, first + 1);
            self.len += 1;
        } else if merged > 1 {
            self.ranges.copy_within(last..self.len, first + 1);
            self.len -= merged - 1;
        }
        self.ranges[first] = new;
        Ok(())
    }

    /// Removes every address of `r` from the set (splitting a range if
    /// needed).
    pub fn remove(&mut self, r: Range) -> Result<(), Full> {
        if r.is_empty() {
            return Ok(());
        }
        let mut i = 0;
        while i < self.len {
            let x = self.ranges[i];
            if !x.overlaps(&r) {
                i += 1;
                continue;
            }
            let left = Range::new(x.start, r.start.max(x.start));
            let right = Range::new(r.end.min(x.end), x.end);
            match (left.is_empty(), right.is_empty()) {
                (true, true) => {
                    self.ranges.copy_within(i + 1..self.len, i);
                    self.len -= 1;
                    continue;
                }
                (false, true) => self.ranges[i] = left,
                (true, false) => self.ranges[i] = right,
                (false, false) => {
                    if self.len == N {
                        return Err(Full);
                    }
                    self.ranges.copy_within(i + 1..self.len, i + 2);
                    self.len += 1;
                    self.ranges[i] = left;
                    self.ranges[i + 1] = right;
                    i += 1;
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// Keeps only the addresses inside `within`.
    pub fn clip(&mut self, within: Range) {
        // Two removals never split a range, so they cannot fail.
        let _ = self.remove(Range::new(0, within.start));
        let _ = self.remove(Range::new(within.end, u64::MAX));
    }

    /// First-fit allocation of `size` bytes aligned to `align` (a power of
    /// two). Returns the start address.
    pub fn alloc(&mut self, size: u64, align: u64) -> Option<u64> {
        if size == 0 || !align.is_power_of_two() {
            return None;
        }
        let start = self.iter().find_map(|x| {
            let s = align_up(x.start, align);
            (s >= x.start && s.checked_add(size)? <= x.end).then_some(s)
        })?;
        // Carving out of one range splits it at most once; if the set is
        // full and a split is needed, fall back to a failed allocation.
        self.remove(Range::with_len(start, size)).ok()?;
        Some(start)
    }

    /// Like [`alloc`](Self::alloc) but takes from the highest addresses.
    pub fn alloc_top(&mut self, size: u64, align: u64) -> Option<u64> {
        if size == 0 || !align.is_power_of_two() {
            return None;
        }
        let start = self.ranges[..self.len].iter().rev().find_map(|x| {
            let s = align_down(x.end.checked_sub(size)?, align);
            (s >= x.start).then_some(s)
        })?;
        self.remove(Range::with_len(start, size)).ok()?;
        Some(start)
    }
}

/// Allocator of whole frames over a [`RangeSet`].
pub type FrameSet = RangeSet<64>;

/// A window of guest-physical frame numbers that hold no RAM, for mapping
/// foreign or resource frames (PVH may place them beyond its RAM).
#[derive(Clone, Copy, Debug)]
pub struct GfnWindow {
    free: RangeSet<32>,
    window: Range,
}

impl GfnWindow {
    /// A window over the byte range `window` (page aligned inward).
    pub fn new(window: Range) -> Self {
        let window = window.page_inner();
        let mut free = RangeSet::new();
        let _ = free.insert(window);
        GfnWindow { free, window }
    }

    /// The whole window (bytes).
    pub fn window(&self) -> Range {
        self.window
    }

    /// Free frames left.
    pub fn free_frames(&self) -> u64 {
        self.free.total() / PAGE_SIZE
    }

    /// Takes `n` contiguous frames; returns the first GFN.
    pub fn alloc(&mut self, n: u64) -> Option<u64> {
        let bytes = n.checked_mul(PAGE_SIZE)?;
        self.free.alloc(bytes, PAGE_SIZE).map(|a| a / PAGE_SIZE)
    }

    /// Returns `n` frames starting at `gfn` to the window. Frames outside the
    /// window are ignored.
    pub fn free(&mut self, gfn: u64, n: u64) -> Result<(), Full> {
        let r = Range::with_len(gfn.saturating_mul(PAGE_SIZE), n.saturating_mul(PAGE_SIZE));
        let r = Range::new(r.start.max(self.window.start), r.end.min(self.window.end));
        self.free.insert(r)
    }
}

/// Chooses the GFN window: `size` bytes starting at the first `align`-aligned
/// address at or above both `min_start` and the end of everything in the
/// memory map (`map_end`).
pub fn choose_gfn_window(map_end: u64, min_start: u64, size: u64, align: u64) -> Range {
    let start = align_up(map_end.max(min_start), align);
    Range::with_len(start, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(rs: &[(u64, u64)]) -> RangeSet<8> {
        let mut s = RangeSet::new();
        for &(a, b) in rs {
            s.insert(Range::new(a, b)).unwrap();
        }
        s
    }

    fn v<const N: usize>(s: &RangeSet<N>) -> Vec<(u64, u64)> {
        s.iter().map(|r| (r.start, r.end)).collect()
    }

    #[test]
    fn insert_merges() {
        let s = set(&[(10, 20), (30, 40), (20, 30)]);
        assert_eq!(v(&s), [(10, 40)]);
        let s = set(&[(50, 60), (10, 20), (30, 40), (15, 35)]);
        assert_eq!(v(&s), [(10, 40), (50, 60)]);
        let s = set(&[(0, 5), (100, 200), (1, 300)]);
        assert_eq!(v(&s), [(0, 300)]);
        let s = set(&[(5, 5)]);
        assert_eq!(s.count(), 0);
    }

    #[test]
    fn insert_full() {
        let mut s: RangeSet<2> = RangeSet::new();
        s.insert(Range::new(0, 1)).unwrap();
        s.insert(Range::new(4, 5)).unwrap();
        assert_eq!(s.insert(Range::new(8, 9)), Err(Full));
        s.insert(Range::new(1, 4)).unwrap();
        assert_eq!(v(&s), [(0, 5)]);
    }

    #[test]
    fn remove_splits() {
        let mut s = set(&[(0, 100)]);
        s.remove(Range::new(10, 20)).unwrap();
        assert_eq!(v(&s), [(0, 10), (20, 100)]);
        s.remove(Range::new(0, 15)).unwrap();
        assert_eq!(v(&s), [(20, 100)]);
        s.remove(Range::new(90, 200)).unwrap();
        assert_eq!(v(&s), [(20, 90)]);
        s.remove(Range::new(0, 1000)).unwrap();
        assert_eq!(s.count(), 0);
        let mut s = set(&[(0, 10), (20, 30), (40, 50)]);
        s.remove(Range::new(5, 45)).unwrap();
        assert_eq!(v(&s), [(0, 5), (45, 50)]);
        let mut s = set(&[(0, 100)]);
        s.clip(Range::new(10, 50));
        assert_eq!(v(&s), [(10, 50)]);
    }

    #[test]
    fn alloc_first_fit_aligned() {
        let mut s = set(&[(0x1000, 0x3000), (0x10000, 0x20000)]);
        assert_eq!(s.alloc(0x1000, 0x1000), Some(0x1000));
        assert_eq!(
            s.alloc(0x2000, 0x1000),
            Some(0x10000),
            "first range too small"
        );
        assert_eq!(s.alloc(0x1000, 0x8000), Some(0x18000));
        assert_eq!(
            v(&s),
            [(0x2000, 0x3000), (0x12000, 0x18000), (0x19000, 0x20000)]
        );
        assert_eq!(s.alloc(0x100000, 0x1000), None);
        assert_eq!(s.alloc(0, 0x1000), None);
        assert_eq!(s.alloc(1, 3), None, "alignment must be a power of two");
        assert_eq!(s.alloc_top(0x1000, 0x1000), Some(0x1f000));
        let total = s.total();
        assert_eq!(total, 0x1000 + 0x6000 + 0x6000);
    }

    #[test]
    fn alloc_near_top_of_address_space() {
        let mut s = set(&[(u64::MAX - 0x1fff, u64::MAX)]);
        assert_eq!(s.alloc(0x4000, 0x1000), None);
        assert_eq!(s.alloc(0x1000, 0x1000), Some(u64::MAX - 0x1fff));
    }

    #[test]
    fn gfn_window() {
        let r = choose_gfn_window(0x2000_0000, 4 << 30, 1 << 30, 1 << 30);
        assert_eq!(r, Range::new(4 << 30, 5 << 30));
        let r = choose_gfn_window((6 << 30) + 1, 4 << 30, 1 << 30, 1 << 30);
        assert_eq!(r.start, 7 << 30);
        let mut w = GfnWindow::new(Range::new(0x1000_0000, 0x1000_4000));
        assert_eq!(w.free_frames(), 4);
        let a = w.alloc(2).unwrap();
        assert_eq!(a, 0x10000);
        let b = w.alloc(2).unwrap();
        assert_eq!(b, 0x10002);
        assert_eq!(w.alloc(1), None);
        w.free(a, 2).unwrap();
        assert_eq!(w.alloc(2), Some(a));
        w.free(0, 5).unwrap();
        assert_eq!(w.free_frames(), 0, "frames outside the window are ignored");
        assert_eq!(w.alloc(u64::MAX), None);
    }
}
