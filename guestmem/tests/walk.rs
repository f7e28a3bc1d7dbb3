//! The VA → GPA walker: page sizes, 4 and 5 levels, rights combined over
//! levels, CR3/PCID handling, canonical checks, reserved bits, unreadable
//! tables, hostile self-referencing tables and the read bound.

mod common;

use common::cache;
use guestmem::sim::{bits, PageTableBuilder, Perms, SimTarget, SimWindow};
use guestmem::{MapCache, MapError, PageSize, PagingRegs, Translation, WalkError};

const ROOT: u64 = 0x100;

fn setup(levels: u8) -> (SimTarget, PageTableBuilder) {
    let mut t = SimTarget::new();
    let b = PageTableBuilder::new(&mut t, levels, ROOT);
    (t, b)
}

fn walker(t: SimTarget) -> MapCache<SimWindow, 8> {
    cache::<8>(t)
}

/// Entry reads the walk made (one lookup per entry).
fn lookups(c: &MapCache<SimWindow, 8>) -> u64 {
    c.stats().hits + c.stats().misses
}

#[test]
fn each_page_size_at_4_and_5_levels() {
    for levels in [4u8, 5] {
        let (mut t, mut b) = setup(levels);
        let cases = [
            (0x0000_1234_5000u64, 0x7_6543_2000u64, PageSize::Size4K),
            (0x0000_4060_0000, 0x8_0020_0000, PageSize::Size2M),
            (0xffff_ff80_4000_0000, 0x3_4000_0000, PageSize::Size1G),
        ];
        for (gva, gpa, size) in cases {
            b.map(&mut t, gva, gpa, size, Perms::ALL, Perms::ALL)
                .unwrap();
        }
        let regs = b.regs(true);
        let mut c = walker(t);
        for (gva, gpa, size) in cases {
            let off = size.bytes() - 8;
            let before = lookups(&c);
            let tr = c.translate(&regs, gva + off).unwrap();
            assert_eq!((tr.gpa, tr.size, tr.level), (gpa + off, size, size.level()));
            assert!(tr.writable && tr.user && !tr.nx);
            assert_eq!(
                lookups(&c) - before,
                u64::from(levels - size.level() + 1),
                "one read per level walked"
            );
        }
    }
}

#[test]
fn la57_addresses_need_5_levels() {
    let gva = 0x00ff_ffff_ffff_f000u64; // bit 56 clear, bits 55..48 set
    let (mut t, mut b) = setup(5);
    b.map(
        &mut t,
        gva,
        0x9000,
        PageSize::Size4K,
        Perms::ALL,
        Perms::ALL,
    )
    .unwrap();
    let regs5 = b.regs(false);
    let mut c = walker(t);
    assert_eq!(c.translate(&regs5, gva + 7).unwrap().gpa, 0x9007);
    let regs4 = PagingRegs {
        cr4: regs5.cr4 & !bits::CR4_LA57,
        ..regs5
    };
    assert_eq!(
        c.translate(&regs4, gva),
        Err(WalkError::NonCanonical { gva })
    );
    // With LA57 the canonical boundary moves to bit 56.
    let bad = 0x0100_0000_0000_0000;
    assert_eq!(
        c.translate(&regs5, bad),
        Err(WalkError::NonCanonical { gva: bad })
    );
}

#[test]
fn non_canonical_and_upper_half() {
    let (t, b) = setup(4);
    let regs = b.regs(false);
    let mut c = walker(t);
    for gva in [
        0x0000_8000_0000_0000u64,
        0xffff_7fff_ffff_ffff,
        0x8000_0000_0000_0000,
    ] {
        assert_eq!(
            c.translate(&regs, gva),
            Err(WalkError::NonCanonical { gva })
        );
    }
    assert_eq!(lookups(&c), 0, "refused before any read");
    // Canonical but unmapped: the empty root says not present.
    assert!(matches!(
        c.translate(&regs, 0xffff_8000_0000_0000),
        Err(WalkError::NotPresent { level: 4, entry: 0 })
    ));
}

/// Builds a 4-level chain by hand so each level gets its own rights, for
/// every combination of (R/W, U/S, XD) at every level.
#[test]
fn rights_combine_over_levels() {
    let gva = 0x0000_7f12_3456_7000u64;
    let idx = |l: u32| (gva >> (12 + 9 * (l - 1))) & 0x1ff;
    let mut t = SimTarget::new();
    for g in 1..=4 {
        t.add_ram(g);
    }
    let mut c = walker(t);
    for nxe in [false, true] {
        let efer = bits::EFER_LME | bits::EFER_LMA | if nxe { bits::EFER_NXE } else { 0 };
        let regs = PagingRegs::new(1 << 12, bits::CR4_PAE, efer);
        // 3 bits per level, 4 levels.
        for combo in 0u32..(1 << 12) {
            let r = |l: u32| (combo >> (3 * (l - 1))) & 7;
            if !nxe && (1..=4).any(|l| r(l) & 4 != 0) {
                continue; // XD would be reserved; tested elsewhere
            }
            for l in 1..=4u32 {
                let next = if l == 1 { 0xabcd } else { u64::from(5 - l) + 1 };
                let rl = r(l);
                let e = bits::P
                    | if rl & 1 != 0 { bits::RW } else { 0 }
                    | if rl & 2 != 0 { bits::US } else { 0 }
                    | if rl & 4 != 0 { bits::XD } else { 0 }
                    | (next << 12);
                // Level l's table is gfn 5 - l (root = 1 at level 4).
                c.window_mut()
                    .target
                    .write_u64(((5 - u64::from(l)) << 12) + idx(l) * 8, e);
            }
            let tr = c.translate(&regs, gva + 0x10).unwrap();
            let all = |bit| (1..=4).all(|l| r(l) & bit != 0);
            let any = |bit| (1..=4).any(|l| r(l) & bit != 0);
            assert_eq!(tr.gpa, (0xabcd << 12) + 0x10);
            assert_eq!(tr.writable, all(1), "combo {combo:#x}");
            assert_eq!(tr.user, all(2), "combo {combo:#x}");
            assert_eq!(tr.nx, nxe && any(4), "combo {combo:#x}");
        }
    }
}

#[test]
fn xd_without_nxe_is_reserved() {
    let (mut t, mut b) = setup(4);
    let nx = Perms {
        nx: true,
        ..Perms::ALL
    };
    b.map(&mut t, 0x1000, 0x5000, PageSize::Size4K, nx, Perms::ALL)
        .unwrap();
    b.map(
        &mut t,
        0x8000_0000_0000,
        0x6000,
        PageSize::Size4K,
        Perms::ALL,
        nx,
    )
    .unwrap_err(); // non-canonical, refused by the builder
    b.map(
        &mut t,
        0x7f80_0000_0000,
        0x6000,
        PageSize::Size4K,
        Perms::ALL,
        nx,
    )
    .unwrap();
    let mut c = walker(t);
    assert!(c.translate(&b.regs(true), 0x1000).unwrap().nx);
    assert!(matches!(
        c.translate(&b.regs(false), 0x1000),
        Err(WalkError::ReservedBits { level: 1, .. })
    ));
    assert!(matches!(
        c.translate(&b.regs(false), 0x7f80_0000_0000),
        Err(WalkError::ReservedBits { level: 4, .. })
    ));
}

#[test]
fn pcid_and_cr3_flag_bits_are_masked() {
    let (mut t, mut b) = setup(4);
    b.map(
        &mut t,
        0x2000,
        0x7000,
        PageSize::Size4K,
        Perms::ALL,
        Perms::ALL,
    )
    .unwrap();
    let base = b.regs(false);
    let mut c = walker(t);
    let with = |cr3: u64, pcide: bool| PagingRegs {
        cr3,
        cr4: base.cr4 | if pcide { bits::CR4_PCIDE } else { 0 },
        ..base
    };
    let root = ROOT << 12;
    // PCIDE = 1: bits 11:0 are the PCID, bit 63 the no-flush hint.
    let r = with(root | 0xabc | (1 << 63), true);
    assert_eq!(r.pcid(), Some(0xabc));
    assert_eq!(c.translate(&r, 0x2008).unwrap().gpa, 0x7008);
    // PCIDE = 0: PWT/PCD (bits 3, 4) and the ignored low bits.
    let r = with(root | 0x018 | 0xfe7, false);
    assert_eq!(r.pcid(), None);
    assert_eq!(c.translate(&r, 0x2008).unwrap().gpa, 0x7008);
    // LAM bits 62:61 are not address bits.
    assert!(c.translate(&with(root | (3 << 61), false), 0x2008).is_ok());
    // Bit 63 is reserved without PCIDE; address bits past MAXPHYADDR too.
    for (cr3, regs) in [
        (root | (1 << 63), with(root | (1 << 63), false)),
        (root | (1 << 52), with(root | (1 << 52), true)),
        (
            root | (1 << 45),
            with(root | (1 << 45), false).with_maxphyaddr(40),
        ),
    ] {
        assert_eq!(c.translate(&regs, 0x2008), Err(WalkError::BadCr3 { cr3 }));
    }
}

#[test]
fn not_long_mode_is_refused() {
    let (t, b) = setup(4);
    let mut c = walker(t);
    let r = b.regs(false);
    for regs in [
        PagingRegs {
            efer: r.efer & !bits::EFER_LMA,
            ..r
        },
        PagingRegs {
            cr4: r.cr4 & !bits::CR4_PAE,
            ..r
        },
    ] {
        assert_eq!(c.translate(&regs, 0), Err(WalkError::NotLongMode));
    }
}

#[test]
fn reserved_bits_at_each_level() {
    // A chain of tables at gfns 1 (root) .. 4 for gva 0, 4 levels.
    let mut t = SimTarget::new();
    for g in 1..=4 {
        t.add_ram(g);
    }
    let ent = |next: u64| bits::P | bits::RW | (next << 12);
    let regs = PagingRegs::new(1 << 12, bits::CR4_PAE, bits::EFER_LMA);
    let mut c = walker(t);
    let set = |c: &mut MapCache<SimWindow, 8>, pml4: u64, pdpt: u64, pd: u64, pt: u64| {
        let tg = &mut c.window_mut().target;
        tg.write_u64(1 << 12, pml4);
        tg.write_u64(2 << 12, pdpt);
        tg.write_u64(3 << 12, pd);
        tg.write_u64(4 << 12, pt);
    };
    let rsvd = |level: u8| Err::<u64, u8>(level);
    let level_of = |r: Result<Translation, WalkError>| match r {
        Err(WalkError::ReservedBits { level, .. }) => Err(level),
        Ok(tr) => Ok(tr.gpa),
        Err(e) => panic!("unexpected {e:?}"),
    };
    set(&mut c, ent(2), ent(3), ent(4), ent(9));
    assert_eq!(level_of(c.translate(&regs, 0)), Ok(0x9000));
    // PS in a PML4E.
    set(&mut c, ent(2) | bits::PS, ent(3), ent(4), ent(9));
    assert_eq!(level_of(c.translate(&regs, 0)), rsvd(4));
    // 1 GiB page with bit 20 set (bits 29:13 reserved); bit 12 is PAT.
    set(
        &mut c,
        ent(2),
        bits::P | bits::PS | (1 << 30) | (1 << 20),
        0,
        0,
    );
    assert_eq!(level_of(c.translate(&regs, 0)), rsvd(3));
    set(
        &mut c,
        ent(2),
        bits::P | bits::PS | (1 << 30) | bits::PAT_LARGE,
        0,
        0,
    );
    assert_eq!(level_of(c.translate(&regs, 0x123)), Ok((1 << 30) + 0x123));
    // 2 MiB page with bit 13 set (bits 20:13 reserved).
    set(
        &mut c,
        ent(2),
        ent(3),
        bits::P | bits::PS | (1 << 21) | (1 << 13),
        0,
    );
    assert_eq!(level_of(c.translate(&regs, 0)), rsvd(2));
    // Address bits past MAXPHYADDR, in a PTE: fine at 52, reserved at 46.
    set(&mut c, ent(2), ent(3), ent(4), bits::P | (1 << 47));
    assert_eq!(level_of(c.translate(&regs, 0)), Ok(1 << 47));
    assert_eq!(level_of(c.translate(&regs.with_maxphyaddr(46), 0)), rsvd(1));
    // Ignored high bits (62:52) are not address bits.
    set(
        &mut c,
        ent(2) | (0x7ff << 52),
        ent(3),
        ent(4),
        ent(9) | (0x7ff << 52),
    );
    assert_eq!(level_of(c.translate(&regs, 0)), Ok(0x9000));
    // Reserved bits of a not-present entry are ignored: not present wins.
    set(&mut c, ent(2), ent(3), (1 << 51) | bits::PS, 0);
    assert!(matches!(
        c.translate(&regs.with_maxphyaddr(40), 0),
        Err(WalkError::NotPresent { level: 2, .. })
    ));
}

#[test]
fn reserved_ps_in_a_pml5e() {
    let mut t = SimTarget::new();
    t.add_ram(1);
    t.write_u64(1 << 12, bits::P | bits::PS | (2 << 12));
    let regs = PagingRegs::new(1 << 12, bits::CR4_PAE | bits::CR4_LA57, bits::EFER_LMA);
    let mut c = walker(t);
    assert!(matches!(
        c.translate(&regs, 0),
        Err(WalkError::ReservedBits { level: 5, .. })
    ));
}

#[test]
fn unreadable_tables_report_level_gpa_and_why() {
    let mut t = SimTarget::new();
    t.add_ram(1);
    t.add_ram(2);
    t.set_fault(3, MapError::NotRam);
    let p = bits::P | bits::RW;
    t.write_u64(1 << 12, p | (2 << 12));
    t.write_u64((2 << 12) + 8, p | (3 << 12)); // PDPT[1] → MMIO
    t.write_u64((2 << 12) + 16, p | (0x777 << 12)); // PDPT[2] → hole
    let regs = PagingRegs::new(1 << 12, bits::CR4_PAE, bits::EFER_LMA);
    let mut c = walker(t);
    let gva = (1 << 30) | (5 << 21);
    assert_eq!(
        c.translate(&regs, gva),
        Err(WalkError::TableUnreadable {
            level: 2,
            gpa: (3 << 12) + 5 * 8,
            err: MapError::NotRam
        })
    );
    assert_eq!(
        c.translate(&regs, 2 << 30),
        Err(WalkError::TableUnreadable {
            level: 2,
            gpa: 0x777 << 12,
            err: MapError::Hole
        })
    );
    // The root itself unreadable.
    let regs = PagingRegs {
        cr3: 0x55 << 12,
        ..regs
    };
    assert!(matches!(
        c.translate(&regs, 0),
        Err(WalkError::TableUnreadable { level: 4, .. })
    ));
}

#[test]
fn self_referencing_tables_end_after_one_read_per_level() {
    for levels in [4u8, 5] {
        let mut t = SimTarget::new();
        t.add_ram(1);
        // Entry 0 of the root points at the root: every level reads it.
        t.write_u64(1 << 12, bits::P | bits::RW | (1 << 12));
        let la57 = if levels == 5 { bits::CR4_LA57 } else { 0 };
        let regs = PagingRegs::new(1 << 12, bits::CR4_PAE | la57, bits::EFER_LMA);
        let mut c = walker(t);
        let before = c.window().reads();
        let tr = c.translate(&regs, 0x10).unwrap();
        // The "PTE" is the root entry, so the page is the root itself.
        assert_eq!((tr.gpa, tr.size), ((1 << 12) + 0x10, PageSize::Size4K));
        assert_eq!(c.window().reads() - before, u64::from(levels));
        assert_eq!(c.stats().misses, 1, "one frame, cached");
    }
}

#[test]
fn tables_shared_between_mappings() {
    let (mut t, mut b) = setup(4);
    for i in 0..600u64 {
        // Crosses a page-table boundary at 512.
        b.map(
            &mut t,
            i << 12,
            (0x4000 + i) << 12,
            PageSize::Size4K,
            Perms::ALL,
            Perms::ALL,
        )
        .unwrap();
    }
    assert_eq!(
        b.map(&mut t, 5 << 12, 0, PageSize::Size4K, Perms::ALL, Perms::ALL),
        Err("already mapped")
    );
    assert_eq!(
        b.map(&mut t, 0, 0, PageSize::Size2M, Perms::ALL, Perms::ALL),
        Err("already mapped")
    );
    let regs = b.regs(false);
    let mut c = walker(t);
    for i in [0u64, 1, 511, 512, 599] {
        assert_eq!(
            c.translate(&regs, (i << 12) | 0x44).unwrap().gpa,
            ((0x4000 + i) << 12) | 0x44
        );
    }
    assert!(matches!(
        c.translate(&regs, 600 << 12),
        Err(WalkError::NotPresent { level: 1, .. })
    ));
}
