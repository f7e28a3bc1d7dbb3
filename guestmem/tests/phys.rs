//! Physical reads and writes: crossing frames, stopping at the first frame
//! that fails with the GPA and the bytes done, and the 52-bit limit.

mod common;

use common::{cache, pattern, ram};
use guestmem::sim::SimTarget;
use guestmem::{MapError, PhysError, PhysFault, GPA_LIMIT};

fn sim_bytes(gfns: std::ops::Range<u64>) -> Vec<u8> {
    gfns.flat_map(|g| pattern(g).to_vec()).collect()
}

#[test]
fn read_crosses_frames() {
    let mut t = SimTarget::new();
    ram(&mut t, 0x10..0x13);
    let mut c = cache::<2>(t);
    let mut buf = vec![0u8; 0x1020];
    c.read_phys(0x10ff0, &mut buf).unwrap();
    let all = sim_bytes(0x10..0x13);
    assert_eq!(buf, all[0xff0..0xff0 + 0x1020]);
    assert_eq!(c.stats().misses, 3);
}

#[test]
fn write_crosses_frames() {
    let mut t = SimTarget::new();
    ram(&mut t, 0x10..0x12);
    let mut c = cache::<4>(t);
    let data: Vec<u8> = (0..100u8).collect();
    c.write_phys(0x10fd0, &data).unwrap();
    let mut back = vec![0u8; 100];
    c.window().target.read(0x10fd0, &mut back).unwrap();
    assert_eq!(back, data);
    let mut via_cache = vec![0u8; 100];
    c.read_phys(0x10fd0, &mut via_cache).unwrap();
    assert_eq!(via_cache, data);
}

#[test]
fn read_failing_midway_says_where_and_how_much() {
    let mut t = SimTarget::new();
    ram(&mut t, 0x10..0x12);
    t.set_fault(0x12, MapError::PagedOut);
    let mut c = cache::<4>(t);
    let mut buf = vec![0xaau8; 0x1000];
    let e = c.read_phys(0x11800, &mut buf).unwrap_err();
    assert_eq!(
        e,
        PhysError {
            gpa: 0x12000,
            done: 0x800,
            cause: PhysFault::Map(MapError::PagedOut)
        }
    );
    assert_eq!(buf[..0x800], pattern(0x11)[0x800..]);
    assert!(
        buf[0x800..].iter().all(|&b| b == 0xaa),
        "no bytes past the failure"
    );
    assert_eq!(e.to_string(), "gpa 0x12000 after 2048 bytes: paged out");
}

#[test]
fn read_failing_at_the_first_byte() {
    let mut c = cache::<1>(SimTarget::new());
    let mut buf = [0u8; 8];
    let e = c.read_phys(0x5008, &mut buf).unwrap_err();
    assert_eq!((e.gpa, e.done), (0x5008, 0));
    assert_eq!(e.cause, PhysFault::Map(MapError::Hole));
}

#[test]
fn write_failing_midway_writes_nothing_after() {
    let mut t = SimTarget::new();
    ram(&mut t, [0x20]);
    t.set_fault(0x21, MapError::NotRam);
    let mut c = cache::<2>(t);
    let e = c.write_phys(0x20ffc, &[1, 2, 3, 4, 5, 6]).unwrap_err();
    assert_eq!((e.gpa, e.done), (0x21000, 4));
    assert_eq!(e.cause, PhysFault::Map(MapError::NotRam));
    let mut back = [0u8; 4];
    c.window().target.read(0x20ffc, &mut back).unwrap();
    assert_eq!(back, [1, 2, 3, 4]);
}

#[test]
fn gpas_above_52_bits_are_refused() {
    let top = (GPA_LIMIT >> 12) - 1;
    let mut t = SimTarget::new();
    ram(&mut t, [top]);
    let mut c = cache::<1>(t);
    let mut buf = [0u8; 32];
    let e = c.read_phys(GPA_LIMIT, &mut buf).unwrap_err();
    assert_eq!(
        (e.gpa, e.done, e.cause),
        (GPA_LIMIT, 0, PhysFault::AboveMaxPhysAddr)
    );
    let e = c.read_phys(u64::MAX - 3, &mut buf).unwrap_err();
    assert_eq!((e.done, e.cause), (0, PhysFault::AboveMaxPhysAddr));
    // The last frame below the limit reads; the range stops at the limit.
    let e = c.read_phys(GPA_LIMIT - 16, &mut buf).unwrap_err();
    assert_eq!(
        (e.gpa, e.done, e.cause),
        (GPA_LIMIT, 16, PhysFault::AboveMaxPhysAddr)
    );
    assert_eq!(buf[..16], pattern(top)[4096 - 16..]);
    assert_eq!(
        c.stats().misses,
        1,
        "the refused part never reached the window"
    );
}

#[test]
fn empty_buffers_touch_nothing() {
    let mut c = cache::<1>(SimTarget::new());
    c.read_phys(0x1234, &mut []).unwrap();
    c.write_phys(GPA_LIMIT + 5, &[]).unwrap();
    assert_eq!(c.stats().misses + c.stats().hits, 0);
}
