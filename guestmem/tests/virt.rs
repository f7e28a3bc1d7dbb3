//! Virtual reads: translation per page, crossing pages, stopping with the
//! GVA and the bytes done.

mod common;

use common::{cache, pattern, ram};
use guestmem::sim::{PageTableBuilder, Perms, SimTarget};
use guestmem::{MapError, PageSize, PhysFault, VirtError, VirtFault, WalkError};

const ALL: Perms = Perms::ALL;

#[test]
fn crosses_pages_mapped_to_scattered_frames() {
    let mut t = SimTarget::new();
    let mut b = PageTableBuilder::new(&mut t, 4, 0x100);
    ram(&mut t, [0x205, 0x1f0, 0x333]);
    let va = 0x7fff_0000_0000u64;
    for (i, gfn) in [0x205u64, 0x1f0, 0x333].into_iter().enumerate() {
        b.map(
            &mut t,
            va + (i as u64) * 0x1000,
            gfn << 12,
            PageSize::Size4K,
            ALL,
            ALL,
        )
        .unwrap();
    }
    let regs = b.regs(false);
    let mut c = cache::<8>(t);
    let mut buf = vec![0u8; 0x1010];
    c.read_virt(&regs, va + 0xff8, &mut buf).unwrap();
    assert_eq!(buf[..8], pattern(0x205)[0xff8..]);
    assert_eq!(buf[8..0x1008], pattern(0x1f0)[..]);
    assert_eq!(buf[0x1008..], pattern(0x333)[..8]);
}

#[test]
fn one_walk_per_large_page() {
    let mut t = SimTarget::new();
    let mut b = PageTableBuilder::new(&mut t, 4, 0x100);
    ram(&mut t, 0x400..0x600); // the 2 MiB page's frames
    b.map(&mut t, 0x4000_0000, 0x40_0000, PageSize::Size2M, ALL, ALL)
        .unwrap();
    let regs = b.regs(false);
    let mut c = cache::<8>(t);
    let before = c.window().reads();
    let mut buf = vec![0u8; 0x2000];
    c.read_virt(&regs, 0x4000_0800, &mut buf).unwrap();
    assert_eq!(buf[..0x800], pattern(0x400)[0x800..]);
    assert_eq!(buf[0x1800..], pattern(0x402)[..0x800]);
    // 3 entry reads (PML4E, PDPTE, PDE) + 3 frame pieces.
    assert_eq!(c.window().reads() - before, 3 + 3);
}

#[test]
fn stops_at_an_unmapped_page() {
    let mut t = SimTarget::new();
    let mut b = PageTableBuilder::new(&mut t, 4, 0x100);
    ram(&mut t, [0x500]);
    b.map(&mut t, 0x10000, 0x500 << 12, PageSize::Size4K, ALL, ALL)
        .unwrap();
    let regs = b.regs(false);
    let mut c = cache::<8>(t);
    let mut buf = [0x5au8; 64];
    let e = c.read_virt(&regs, 0x10fe0, &mut buf).unwrap_err();
    assert_eq!((e.gva, e.done), (0x11000, 32));
    assert!(matches!(
        e.cause,
        VirtFault::Walk(WalkError::NotPresent { level: 1, .. })
    ));
    assert_eq!(buf[..32], pattern(0x500)[0xfe0..]);
    assert!(buf[32..].iter().all(|&x| x == 0x5a));
}

#[test]
fn stops_at_a_data_frame_that_will_not_map() {
    let mut t = SimTarget::new();
    let mut b = PageTableBuilder::new(&mut t, 5, 0x100);
    ram(&mut t, [0x600]);
    t.set_fault(0x601, MapError::PagedOut);
    b.map(&mut t, 0x20000, 0x600 << 12, PageSize::Size4K, ALL, ALL)
        .unwrap();
    b.map(&mut t, 0x21000, 0x601 << 12, PageSize::Size4K, ALL, ALL)
        .unwrap();
    let regs = b.regs(false);
    let mut c = cache::<8>(t);
    let mut buf = [0u8; 0x20];
    let e = c.read_virt(&regs, 0x20ff0, &mut buf).unwrap_err();
    assert_eq!(
        e,
        VirtError {
            gva: 0x21000,
            done: 0x10,
            cause: VirtFault::Phys {
                gpa: 0x601 << 12,
                cause: PhysFault::Map(MapError::PagedOut)
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "gva 0x21000 after 16 bytes: gpa 0x601000: paged out"
    );
}

#[test]
fn a_range_past_2_pow_64_stops_at_the_wrap() {
    let mut t = SimTarget::new();
    let mut b = PageTableBuilder::new(&mut t, 4, 0x100);
    ram(&mut t, [0x700]);
    b.map(
        &mut t,
        0xffff_ffff_ffff_f000,
        0x700 << 12,
        PageSize::Size4K,
        ALL,
        ALL,
    )
    .unwrap();
    let regs = b.regs(false);
    let mut c = cache::<8>(t);
    let mut buf = [0u8; 16];
    let e = c
        .read_virt(&regs, 0xffff_ffff_ffff_fff8, &mut buf)
        .unwrap_err();
    assert_eq!((e.gva, e.done, e.cause), (0, 8, VirtFault::Wrap));
    assert_eq!(buf[..8], pattern(0x700)[0xff8..]);
}
