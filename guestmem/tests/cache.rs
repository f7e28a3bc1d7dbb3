//! The mapping cache: counters, LRU eviction (and that it unmaps), failed
//! maps, invalidate/flush and the staleness the flush contract is about.

mod common;

use common::{cache, pattern, ram};
use guestmem::sim::{SimTarget, SimWindow};
use guestmem::{CacheStats, MapCache, MapError, PhysFault};
use xen_abi::XenError;

fn touch<const N: usize>(c: &mut MapCache<SimWindow, N>, gfn: u64) -> Result<(), MapError> {
    let mut b = [0u8; 1];
    c.read_phys(gfn << 12, &mut b).map_err(|e| match e.cause {
        PhysFault::Map(m) => m,
        PhysFault::AboveMaxPhysAddr => unreachable!(),
    })
}

#[test]
fn hits_misses_evictions_and_eviction_unmaps() {
    let mut t = SimTarget::new();
    ram(&mut t, 1..=3);
    let mut c = cache::<2>(t);
    assert_eq!(c.stats().hit_rate_permille(), None);
    touch(&mut c, 1).unwrap(); // miss
    touch(&mut c, 1).unwrap(); // hit
    touch(&mut c, 2).unwrap(); // miss, free slot
    assert_eq!(c.window().unmaps, 0);
    touch(&mut c, 3).unwrap(); // miss, evicts 1 (least recently used)
    assert_eq!(c.window().unmaps, 1, "eviction unmaps the victim");
    assert_eq!(c.window().mapped(), 2);
    assert!(!c.is_cached(1) && c.is_cached(2) && c.is_cached(3));
    assert_eq!(
        c.stats(),
        CacheStats {
            hits: 1,
            misses: 3,
            evictions: 1,
            map_errors: 0,
            unmap_errors: 0
        }
    );
    assert_eq!(c.stats().hit_rate_permille(), Some(250));
    assert_eq!(c.window().maps, 3);
    c.reset_stats();
    assert_eq!(c.stats(), CacheStats::default());
}

#[test]
fn lru_evicts_the_least_recently_used() {
    let mut t = SimTarget::new();
    ram(&mut t, 1..=4);
    let mut c = cache::<3>(t);
    for g in [1, 2, 3, 1] {
        touch(&mut c, g).unwrap();
    }
    touch(&mut c, 4).unwrap(); // 2 is the oldest now
    assert!(c.is_cached(1) && !c.is_cached(2) && c.is_cached(3) && c.is_cached(4));
}

#[test]
fn failed_map_leaves_no_slot_half_used() {
    let mut t = SimTarget::new();
    ram(&mut t, 1..=3);
    let mut c = cache::<2>(t);
    touch(&mut c, 1).unwrap();
    touch(&mut c, 2).unwrap();
    assert_eq!(touch(&mut c, 9), Err(MapError::Hole));
    let s = c.stats();
    assert_eq!((s.misses, s.evictions, s.map_errors), (3, 1, 1));
    assert_eq!(c.len(), 1, "the victim was emptied, the hole not cached");
    assert_eq!(c.window().mapped(), 1);
    assert!(!c.is_cached(9));
    // The empty slot is used next, without another eviction.
    touch(&mut c, 3).unwrap();
    assert_eq!(c.stats().evictions, 1);
    // A failed GFN is asked again, not remembered.
    assert_eq!(touch(&mut c, 9), Err(MapError::Hole));
    assert_eq!(c.stats().map_errors, 2);
}

#[test]
fn every_map_error_reaches_the_caller() {
    let mut t = SimTarget::new();
    let errs = [
        MapError::Hole,
        MapError::NotRam,
        MapError::PagedOut,
        MapError::Unmappable,
        MapError::Denied(XenError::EACCES),
        MapError::NoDomain,
        MapError::Other(XenError::ENOMEM),
    ];
    for (i, e) in errs.iter().enumerate() {
        t.set_fault(100 + i as u64, *e);
    }
    let mut c = cache::<1>(t);
    for (i, e) in errs.iter().enumerate() {
        assert_eq!(touch(&mut c, 100 + i as u64), Err(*e));
    }
    assert_eq!(c.stats().map_errors, errs.len() as u64);
    assert!(c.is_empty());
}

#[test]
fn invalidate_and_flush_unmap() {
    let mut t = SimTarget::new();
    ram(&mut t, 1..=3);
    let mut c = cache::<4>(t);
    for g in 1..=3 {
        touch(&mut c, g).unwrap();
    }
    assert!(c.invalidate(2));
    assert!(!c.invalidate(2));
    assert!(!c.invalidate(7));
    assert_eq!(c.window().unmaps, 1);
    assert_eq!(c.len(), 2);
    c.flush();
    assert_eq!(c.window().unmaps, 3);
    assert_eq!((c.len(), c.window().mapped()), (0, 0));
    c.flush(); // nothing left to unmap
    assert_eq!(c.window().unmaps, 3);
    touch(&mut c, 1).unwrap();
    assert_eq!(c.stats().misses, 4, "flushed frames are mapped again");
}

#[test]
fn a_p2m_change_is_seen_only_after_flush_or_invalidate() {
    let mut t = SimTarget::new();
    ram(&mut t, [5]);
    let mut c = cache::<2>(t);
    let mut b = [0u8; 16];
    c.read_phys(5 << 12, &mut b).unwrap();
    assert_eq!(b, pattern(5)[..16]);
    // The target's p2m moves gfn 5 to another frame.
    c.window_mut().target.remap(5, &[0xee; 4096]);
    c.read_phys(5 << 12, &mut b).unwrap();
    assert_eq!(b, pattern(5)[..16], "stale until flushed: the contract");
    c.flush();
    c.read_phys(5 << 12, &mut b).unwrap();
    assert_eq!(b, [0xee; 16]);
    c.window_mut().target.remap(5, &[0x11; 4096]);
    assert!(c.invalidate(5));
    c.read_phys(5 << 12, &mut b).unwrap();
    assert_eq!(b, [0x11; 16]);
}

#[test]
fn failed_unmaps_are_counted_and_the_slot_reused() {
    let mut t = SimTarget::new();
    ram(&mut t, 1..=2);
    let mut w = SimWindow::new(t, 1);
    w.unmap_fault = Some(MapError::Other(XenError::EFAULT));
    let mut c: MapCache<SimWindow, 1> = MapCache::new(w);
    touch(&mut c, 1).unwrap();
    touch(&mut c, 2).unwrap();
    assert_eq!(c.stats().unmap_errors, 1);
    assert!(c.is_cached(2));
}

#[test]
#[should_panic(expected = "window has 2 slots, cache wants 4")]
fn window_smaller_than_the_cache_is_refused() {
    let _: MapCache<SimWindow, 4> = MapCache::new(SimWindow::new(SimTarget::new(), 2));
}
