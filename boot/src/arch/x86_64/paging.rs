//! Paging. The boot assembly identity-maps [0, 4 GiB) with 2 MiB pages; here
//! we extend the identity map to whatever else we need: RAM Xen put above
//! 4 GiB (from the memory map) and the GFN window for foreign/resource frames.
//! New page-table pages come from a static pool.

use core::sync::atomic::{AtomicUsize, Ordering};

use spin::Mutex;

use crate::memory::{align_down, align_up, Range};

const PRESENT_RW: u64 = 0x3;
const HUGE: u64 = 0x80;
const TWO_MIB: u64 = 2 << 20;

#[repr(C, align(4096))]
struct Table([u64; 512]);

const POOL_PAGES: usize = 16;
static mut POOL: [Table; POOL_PAGES] = [const { Table([0; 512]) }; POOL_PAGES];
static POOL_USED: AtomicUsize = AtomicUsize::new(0);
static LOCK: Mutex<()> = Mutex::new(());

extern "C" {
    static mut boot_pml4: [u64; 512];
}

/// The page-table pool ran dry.
#[derive(Clone, Copy, Debug)]
pub struct OutOfTables;

fn new_table() -> Result<*mut u64, OutOfTables> {
    let i = POOL_USED.fetch_add(1, Ordering::Relaxed);
    if i >= POOL_PAGES {
        return Err(OutOfTables);
    }
    // SAFETY: each pool page is handed out once (zeroed static).
    Ok(unsafe { core::ptr::addr_of_mut!(POOL[i]) }.cast())
}

/// Identity-maps `range` (rounded out to 2 MiB) with 2 MiB pages, write-back.
/// Already-mapped parts are left alone.
pub fn map_identity(range: Range) -> Result<(), OutOfTables> {
    let _g = LOCK.lock();
    let mut addr = align_down(range.start, TWO_MIB);
    let end = align_up(range.end, TWO_MIB);
    // SAFETY: we own the page tables (identity mapped); the lock serialises
    // writers; entries only go from not-present to present.
    unsafe {
        let pml4 = core::ptr::addr_of_mut!(boot_pml4).cast::<u64>();
        while addr < end && addr < (1 << 47) {
            let l4 = pml4.add(((addr >> 39) & 511) as usize);
            if *l4 & 1 == 0 {
                *l4 = new_table()? as u64 | PRESENT_RW;
            }
            let pdpt = (*l4 & 0x000f_ffff_ffff_f000) as *mut u64;
            let l3 = pdpt.add(((addr >> 30) & 511) as usize);
            if *l3 & 1 == 0 {
                *l3 = new_table()? as u64 | PRESENT_RW;
            }
            if *l3 & HUGE == 0 {
                let pd = (*l3 & 0x000f_ffff_ffff_f000) as *mut u64;
                let l2 = pd.add(((addr >> 21) & 511) as usize);
                if *l2 & 1 == 0 {
                    *l2 = addr | PRESENT_RW | HUGE;
                }
            }
            addr += TWO_MIB;
        }
    }
    Ok(())
}

/// A PML4 index of the lower half, which the runtime's identity map owns.
#[derive(Clone, Copy, Debug)]
pub struct LowerHalf;

/// The physical (= identity-mapped virtual) address of the live PML4.
pub fn pml4_address() -> u64 {
    core::ptr::addr_of!(boot_pml4) as u64
}

/// Sets PML4 entry `index` of the upper half (256..512), which the runtime
/// never maps: for a kernel that builds mappings of its own there (the
/// test guest makes hostile ones for a monitor to walk). `Err` for an index
/// in the lower half.
pub fn set_upper_pml4_entry(index: usize, entry: u64) -> Result<(), LowerHalf> {
    if !(256..512).contains(&index) {
        return Err(LowerHalf);
    }
    let _g = LOCK.lock();
    // SAFETY: the index is in bounds and names an entry the runtime does
    // not use (it maps below 1 << 47 only); the lock serialises writers.
    unsafe {
        core::ptr::addr_of_mut!(boot_pml4)
            .cast::<u64>()
            .add(index)
            .write_volatile(entry)
    };
    Ok(())
}
