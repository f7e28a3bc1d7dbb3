//! The walker on hostile memory: the input is the vCPU's CR3/CR4/EFER, a
//! VA, and the bytes of up to 8 target frames (gfn 0..8), some of which can
//! be made to fail mapping. Every walk must end with a result or an error,
//! within one entry read per level, and `read_virt` must stay bounded.
#![no_main]

use guestmem::sim::{SimTarget, SimWindow};
use guestmem::{MapCache, MapError, PagingRegs, WalkError};
use libfuzzer_sys::fuzz_target;

const HEADER: usize = 8 * 4 + 4;

fn u64_at(d: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(d[i * 8..i * 8 + 8].try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let (cr3, cr4, efer, gva) = (
        u64_at(data, 0),
        u64_at(data, 1),
        u64_at(data, 2),
        u64_at(data, 3),
    );
    let [maxphyaddr, faults, len, fold] = data[32..36].try_into().unwrap();
    let mem = &data[HEADER..];
    let nframes = mem.len().div_ceil(4096).min(8) as u64;

    let mut t = SimTarget::new();
    for g in 0..nframes {
        let chunk = &mem[(g as usize) * 4096..mem.len().min((g as usize + 1) * 4096)];
        if faults & (1 << g) != 0 {
            t.set_fault(
                g,
                if g % 2 == 0 {
                    MapError::NotRam
                } else {
                    MapError::PagedOut
                },
            );
        } else {
            t.add_ram(g);
            t.write(g << 12, chunk);
        }
    }
    // Most of the time point CR3 into the frames we have, so walks go deep.
    let cr3 = if fold & 1 != 0 && nframes > 0 {
        (cr3 & !0x000f_ffff_ffff_f000) | ((cr3 >> 12) % nframes) << 12
    } else {
        cr3
    };
    let regs = PagingRegs::new(cr3, cr4, efer).with_maxphyaddr(maxphyaddr);
    let levels = u64::from(regs.levels());
    let mut c: MapCache<SimWindow, 3> = MapCache::new(SimWindow::new(t, 3));

    let r = c.translate(&regs, gva);
    let s = c.stats();
    assert!(
        s.hits + s.misses <= levels,
        "walk read more than one entry per level"
    );
    if let Ok(tr) = r {
        assert!(tr.gpa < 1 << 52);
        assert_eq!(tr.gpa & (tr.size.bytes() - 1), gva & (tr.size.bytes() - 1));
    }
    if let Err(WalkError::NotPresent { level, .. } | WalkError::ReservedBits { level, .. }) = r {
        assert!((1..=levels as u8).contains(&level));
    }

    // A virtual read of up to 2 pages: at most 3 pages touched, so at most
    // 3 walks and 3 data pieces per page.
    let mut buf = vec![0u8; usize::from(len) * 32];
    c.reset_stats();
    let _ = c.read_virt(&regs, gva, &mut buf);
    let s = c.stats();
    assert!(s.hits + s.misses <= 3 * (levels + 1));
});
