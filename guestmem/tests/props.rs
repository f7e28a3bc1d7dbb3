//! Properties:
//! (a) walks over random page-table bytes never panic and read at most one
//!     entry per level;
//! (b) a random valid mapping made by the test-side builder (the reference
//!     model) translates to the builder's GPA with the builder's rights;
//! (c) read_phys/write_phys of random ranges agree with the simulator's
//!     bytes, and a failure names the first bad GPA and the bytes before it.

mod common;

use common::cache;
use guestmem::sim::{bits, PageTableBuilder, Perms, SimTarget};
use guestmem::{MapError, PageSize, PagingRegs, PhysFault, WalkError, GPA_LIMIT};
use proptest::prelude::*;

/// xorshift64*: cheap bytes for whole pages from one proptest seed.
fn rng(mut s: u64) -> impl FnMut() -> u64 {
    s |= 1;
    move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_random_tables_never_panic_and_stay_bounded(
        seed: u64,
        nframes in 1u64..8,
        la57: bool,
        pcide: bool,
        nxe: bool,
        maxphyaddr in 32u8..=52,
        cr3_low: u64,
        gvas in prop::collection::vec(any::<u64>(), 1..8),
    ) {
        let mut next = rng(seed);
        let mut t = SimTarget::new();
        for g in 0..nframes {
            t.add_ram(g);
            for i in 0..512u64 {
                let r = next();
                // Half the entries look like table entries pointing at the
                // frames (or just past them), so walks go deep; the rest are
                // raw random bits.
                let e = if r & 1 == 0 {
                    (r & 0xfff) | bits::P | ((next() % (nframes + 2)) << 12)
                        | (next() & (0x7ff << 52)) | (r & bits::XD)
                } else {
                    r
                };
                t.write_u64((g << 12) + i * 8, e);
            }
        }
        t.set_fault(nframes, MapError::NotRam);
        let cr3 = ((cr3_low % (nframes + 1)) << 12) | (cr3_low & 0xfff)
            | if cr3_low & (1 << 40) != 0 { 1 << 63 } else { 0 };
        let regs = PagingRegs::new(
            cr3,
            bits::CR4_PAE
                | if la57 { bits::CR4_LA57 } else { 0 }
                | if pcide { bits::CR4_PCIDE } else { 0 },
            bits::EFER_LMA | if nxe { bits::EFER_NXE } else { 0 },
        )
        .with_maxphyaddr(maxphyaddr);
        let levels = regs.levels();
        let mut c = cache::<3>(t);
        for gva in gvas {
            // Half canonical by construction, half as drawn.
            let gva = if gva & 1 == 0 {
                let s = 64 - (12 + 9 * u32::from(levels));
                ((gva << s) as i64 >> s) as u64
            } else {
                gva
            };
            let s0 = c.stats();
            let reads0 = c.window().reads();
            let r = c.translate(&regs, gva);
            let s1 = c.stats();
            let lookups = (s1.hits + s1.misses) - (s0.hits + s0.misses);
            prop_assert!(lookups <= u64::from(levels), "{lookups} reads");
            prop_assert!(c.window().reads() - reads0 <= u64::from(levels));
            match r {
                Ok(tr) => {
                    prop_assert!(tr.gpa < (1u64 << maxphyaddr));
                    prop_assert_eq!(tr.gpa & (tr.size.bytes() - 1), gva & (tr.size.bytes() - 1));
                    prop_assert!(nxe || !tr.nx);
                }
                Err(WalkError::NotPresent { level, .. })
                | Err(WalkError::ReservedBits { level, .. })
                | Err(WalkError::TableUnreadable { level, .. }) => {
                    prop_assert!((1..=levels).contains(&level));
                }
                Err(WalkError::NonCanonical { .. }) | Err(WalkError::BadCr3 { .. }) => {
                    prop_assert_eq!(lookups, 0);
                }
                Err(WalkError::NotLongMode) => prop_assert!(false, "LMA and PAE are set"),
            }
        }
    }

    #[test]
    fn b_builder_mappings_translate_back(
        la57: bool,
        nxe: bool,
        pcid in 0u64..0x1000,
        noise: u64,
        reqs in prop::collection::vec(
            (any::<u64>(), 0u8..3, any::<u64>(), 0u8..8, 0u8..8, any::<u64>()),
            1..16,
        ),
    ) {
        let levels = if la57 { 5 } else { 4 };
        let mut t = SimTarget::new();
        let mut b = PageTableBuilder::new(&mut t, levels, 0x10_0000);
        b.noise = noise;
        let perms = |p: u8| Perms { w: p & 1 != 0, u: p & 2 != 0, nx: nxe && p & 4 != 0 };
        let mut offsets = Vec::new();
        for (gva, size, gpa, leaf, upper, off) in reqs {
            let size = [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G][size as usize];
            let s = 64 - (12 + 9 * u32::from(levels));
            let gva = (((gva << s) as i64 >> s) as u64) & !(size.bytes() - 1);
            let gpa = (gpa % GPA_LIMIT) & !(size.bytes() - 1);
            // Overlapping requests are refused by the builder; skip them.
            if b.map(&mut t, gva, gpa, size, perms(leaf), perms(upper)).is_ok() {
                offsets.push(off % size.bytes());
            }
        }
        let base = b.regs(nxe);
        let regs = PagingRegs {
            cr3: base.cr3 | pcid | (1 << 63),
            cr4: base.cr4 | bits::CR4_PCIDE,
            ..base
        };
        let mut c = cache::<4>(t);
        for (m, off) in b.mappings().iter().zip(offsets) {
            let s0 = c.stats();
            let tr = c.translate(&regs, m.gva + off).unwrap();
            let s1 = c.stats();
            prop_assert_eq!(tr.gpa, m.gpa + off);
            prop_assert_eq!(tr.size, m.size);
            prop_assert_eq!(tr.level, m.size.level());
            prop_assert_eq!(
                Perms { w: tr.writable, u: tr.user, nx: tr.nx },
                m.rights
            );
            prop_assert_eq!(
                (s1.hits + s1.misses) - (s0.hits + s0.misses),
                u64::from(levels - m.size.level() + 1)
            );
        }
    }

    #[test]
    fn c_phys_ranges_match_the_sim(
        seed: u64,
        kinds in prop::collection::vec(0u8..8, 8),
        gpa in 0u64..(9 << 12),
        len in 0usize..(3 << 12),
        write: bool,
    ) {
        let mut next = rng(seed);
        let mut t = SimTarget::new();
        for (g, k) in kinds.iter().enumerate() {
            let g = g as u64;
            match k {
                0 => {}
                1 => t.set_fault(g, MapError::NotRam),
                2 => t.set_fault(g, MapError::PagedOut),
                _ => {
                    t.add_ram(g);
                    let page: Vec<u8> = (0..4096).map(|_| next() as u8).collect();
                    t.write(g << 12, &page);
                }
            }
        }
        // gfn 8 and up are holes.
        let mut expect = vec![0u8; len];
        let sim = t.read(gpa, &mut expect);
        let mut c = cache::<3>(t);
        if write {
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let r = c.write_phys(gpa, &data);
            let mut back = vec![0u8; len];
            match sim {
                Ok(()) => {
                    prop_assert_eq!(r, Ok(()));
                    c.window().target.read(gpa, &mut back).unwrap();
                    prop_assert_eq!(back, data);
                }
                Err(bad) => {
                    let e = r.unwrap_err();
                    let done = (bad - gpa) as usize;
                    prop_assert_eq!((e.gpa, e.done), (bad, done));
                    c.window().target.read(gpa, &mut back[..done]).unwrap();
                    prop_assert_eq!(&back[..done], &data[..done]);
                }
            }
        } else {
            let mut got = vec![0xa5u8; len];
            let r = c.read_phys(gpa, &mut got);
            match sim {
                Ok(()) => {
                    prop_assert_eq!(r, Ok(()));
                    prop_assert_eq!(got, expect);
                }
                Err(bad) => {
                    let e = r.unwrap_err();
                    let done = (bad - gpa) as usize;
                    prop_assert_eq!((e.gpa, e.done), (bad, done));
                    prop_assert!(matches!(e.cause, PhysFault::Map(_)));
                    prop_assert_eq!(&got[..done], &expect[..done]);
                    prop_assert!(got[done..].iter().all(|&x| x == 0xa5));
                }
            }
        }
    }
}
