//! Fixtures shared by the test files.
#![allow(dead_code)]

use guestmem::sim::{SimTarget, SimWindow};
use guestmem::{MapCache, PAGE_SIZE};

/// A cache of `N` slots over a window of exactly `N` slots.
pub fn cache<const N: usize>(target: SimTarget) -> MapCache<SimWindow, N> {
    MapCache::new(SimWindow::new(target, N))
}

/// A frame whose every byte says where it is (gfn and offset mixed), so a
/// read from the wrong place shows.
pub fn pattern(gfn: u64) -> [u8; PAGE_SIZE] {
    let mut p = [0u8; PAGE_SIZE];
    for (i, b) in p.iter_mut().enumerate() {
        *b = (gfn as u8).wrapping_mul(31) ^ (i as u8) ^ ((i >> 8) as u8).wrapping_mul(7);
    }
    p
}

/// RAM at each GFN of `gfns`, filled with `pattern`.
pub fn ram(target: &mut SimTarget, gfns: impl IntoIterator<Item = u64>) {
    for g in gfns {
        target.add_ram(g);
        target.write(g << 12, &pattern(g));
    }
}
