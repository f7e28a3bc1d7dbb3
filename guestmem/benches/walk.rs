//! Plain bench binary (no criterion): `cargo bench -p guestmem --bench walk`.
//!
//! Host ns per operation over the simulator, whose `map` is a hash lookup:
//! this measures the walker and cache logic, not Xen's cost of
//! `add_to_physmap_batch` / `remove_from_physmap` (a hypercall each, plus a
//! p2m update and TLB flush in the stub), which dominates a real miss.
//!
//! Each line: median and min–max over `ROUNDS` rounds of `ITERS` iterations.
//! Prints only; never asserts (a broken setup is printed, not panicked on).

use guestmem::sim::{PageTableBuilder, Perms, SimTarget, SimWindow};
use guestmem::{MapCache, PageSize, PagingRegs};
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: usize = 9;
const ITERS: u64 = 200_000;

/// ns per iteration of each round, sorted.
fn rounds(mut f: impl FnMut()) -> Vec<f64> {
    let mut v: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ITERS {
                f();
            }
            t.elapsed().as_nanos() as f64 / ITERS as f64
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn report(what: &str, v: &[f64]) {
    println!(
        "{what:<46} median {:>7.1} ns   min–max {:.1}–{:.1} ns",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1]
    );
}

/// Tables for `levels`, two adjacent 4 KiB pages at `GVA` to data frames
/// that are not adjacent, and a cache of 8 slots.
const GVA: u64 = 0x7f12_3456_7000;

fn setup(levels: u8) -> (MapCache<SimWindow, 8>, PagingRegs) {
    let mut t = SimTarget::new();
    let mut b = PageTableBuilder::new(&mut t, levels, 0x1000);
    for (i, gfn) in [0x20u64, 0x90].into_iter().enumerate() {
        t.add_ram(gfn);
        b.map(
            &mut t,
            GVA + (i as u64) * 0x1000,
            gfn << 12,
            PageSize::Size4K,
            Perms::ALL,
            Perms::ALL,
        )
        .unwrap();
    }
    // A second frame right after 0x20 for the cross-frame physical read.
    t.add_ram(0x21);
    let regs = b.regs(true);
    (MapCache::new(SimWindow::new(t, 8)), regs)
}

fn main() {
    println!(
        "guestmem walk bench: {ROUNDS} rounds x {ITERS} iterations, sim window (map = hash lookup)"
    );
    for levels in [4u8, 5] {
        let (mut c, regs) = setup(levels);
        if let Err(e) = c.translate(&regs, GVA) {
            println!("setup broken, numbers below are meaningless: {e}");
        }
        report(
            &format!("{levels}-level 4K walk, all frames cached"),
            &rounds(|| {
                let _ = black_box(c.translate(&regs, black_box(GVA + 0x18)));
            }),
        );
        report(
            &format!("{levels}-level 4K walk, cold (flush, then {levels} misses)"),
            &rounds(|| {
                c.flush();
                let _ = black_box(c.translate(&regs, black_box(GVA + 0x18)));
            }),
        );
    }
    let (mut c, regs) = setup(4);
    let mut buf = [0u8; 64];
    let warm = c.read_phys(0x20fe0, &mut buf).map_err(|e| e.to_string());
    let warm = warm.and(
        c.read_virt(&regs, GVA + 0xfe0, &mut buf)
            .map_err(|e| e.to_string()),
    );
    if let Err(e) = warm {
        println!("setup broken, numbers below are meaningless: {e}");
    }
    report(
        "read_phys 64 B across a frame boundary, cached",
        &rounds(|| {
            let _ = black_box(c.read_phys(black_box(0x20fe0), &mut buf));
            black_box(&buf);
        }),
    );
    report(
        "read_virt 64 B across a page boundary, cached",
        &rounds(|| {
            let _ = black_box(c.read_virt(&regs, black_box(GVA + 0xfe0), &mut buf));
            black_box(&buf);
        }),
    );
    let s = c.stats();
    println!(
        "last cache: hits {} misses {} evictions {} hit rate {}‰",
        s.hits,
        s.misses,
        s.evictions,
        s.hit_rate_permille().unwrap_or(0)
    );
}
