//! `peek=1`: memory for the monitor to read, announced before each read
//! request (a CPUID of `PEEK_LEAF` with `rsi` at the address), including
//! mappings made hostile on purpose in the upper half of our address space,
//! which nothing of ours ever touches: the monitor must give an error for
//! each (or, for a table that maps itself, that table's bytes) and keep
//! serving.

use alloc::string::String;
use core::arch::asm;
use core::fmt::Write as _;

use boot::{paging, println};
use workload::{PEEK_CASES, PEEK_LEAF, PEEK_LEN};

const PRESENT_RW: u64 = 0x3;
/// PS in a PML4 entry: reserved (SDM Vol. 3A, 4.5.4).
const PS: u64 = 0x80;
/// PML4 slots of the upper half, one per hostile case.
const SLOT_MAPPED: usize = 300;
const SLOT_NOT_PRESENT: usize = 301;
const SLOT_RESERVED: usize = 302;
const SLOT_BEYOND_RAM: usize = 303;
const SLOT_LOOP: usize = 304;

/// The canonical VA whose PML4/PDPT/PD/PT indexes are `i4..i1`.
fn va(i4: usize, i3: usize, i2: usize, i1: usize, offset: u64) -> u64 {
    let v = (i4 as u64) << 39 | (i3 as u64) << 30 | (i2 as u64) << 21 | (i1 as u64) << 12 | offset;
    if i4 >= 256 {
        v | 0xffff_0000_0000_0000
    } else {
        v
    }
}

fn frame() -> *mut u64 {
    let f = boot::alloc_ram_frames(1).expect("guest: peek: a free frame") as *mut u64;
    // SAFETY: a whole frame of ours, identity mapped.
    unsafe { core::ptr::write_bytes(f, 0, 512) };
    f
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Asks the monitor to read at `gva`: CPUID(PEEK_LEAF) with `rsi` = gva.
fn request(gva: u64) {
    // SAFETY: CPUID has no memory effects; rbx is saved around it because
    // LLVM reserves it.
    unsafe {
        asm!(
            "xchg {b}, rbx",
            "cpuid",
            "xchg {b}, rbx",
            b = inout(reg) 0u64 => _,
            inout("eax") PEEK_LEAF => _,
            inout("ecx") 0u32 => _,
            out("edx") _,
            in("rsi") gva,
            options(nostack, nomem),
        );
    }
}

fn announce(case: &str, gva: u64, expect: &str) {
    println!("WORKLOAD-PEEK case={case} gva={gva:#x} expect={expect}");
    request(gva);
}

/// Runs every case of `PEEK_CASES`, in order.
pub fn run() {
    // Two data frames mapped with 4 KiB pages at consecutive VAs of
    // PML4 slot SLOT_MAPPED: PDPT -> PD -> PT -> (d0, d1).
    let (pdpt, pd, pt) = (frame(), frame(), frame());
    let (d0, d1) = (frame() as *mut u8, frame() as *mut u8);
    for i in 0..4096 {
        // SAFETY: both are whole frames of ours.
        unsafe {
            d0.add(i).write((i % 251) as u8);
            d1.add(i).write(0xff - (i % 251) as u8);
        }
    }
    // SAFETY: the tables are frames of ours; index 0 and 1 are in bounds.
    unsafe {
        pdpt.write(pd as u64 | PRESENT_RW);
        pd.write(pt as u64 | PRESENT_RW);
        pt.write(d0 as u64 | PRESENT_RW);
        pt.add(1).write(d1 as u64 | PRESENT_RW);
    }
    let _ = paging::set_upper_pml4_entry(SLOT_MAPPED, pdpt as u64 | PRESENT_RW);
    // The other slots: absent, reserved PS, a table beyond our RAM (64 GiB
    // up), and the PML4 itself (a table that maps itself at every level).
    let _ = paging::set_upper_pml4_entry(SLOT_NOT_PRESENT, 0);
    let _ = paging::set_upper_pml4_entry(SLOT_RESERVED, frame() as u64 | PRESENT_RW | PS);
    let _ = paging::set_upper_pml4_entry(SLOT_BEYOND_RAM, (64u64 << 30) | PRESENT_RW);
    let pml4 = paging::pml4_address();
    let _ = paging::set_upper_pml4_entry(SLOT_LOOP, pml4 | PRESENT_RW);

    let read = |p: *const u8, n: usize| -> String {
        // SAFETY: callers pass ranges inside frames of ours.
        hex(unsafe { core::slice::from_raw_parts(p, n) })
    };
    for case in PEEK_CASES {
        match case {
            "ok" => announce(
                case,
                va(SLOT_MAPPED, 0, 0, 0, 0x100),
                &alloc::format!(
                    "bytes:{}",
                    read(
                        // SAFETY: offset 0x100 + 32 is inside d0.
                        unsafe { d0.add(0x100) },
                        PEEK_LEN,
                    )
                ),
            ),
            "cross" => {
                let half = PEEK_LEN / 2;
                // SAFETY: the last `half` bytes of d0 and the first of d1.
                let (a, b) = unsafe { (read(d0.add(4096 - half), half), read(d1, half)) };
                announce(
                    case,
                    va(SLOT_MAPPED, 0, 0, 0, (4096 - half) as u64),
                    &alloc::format!("bytes:{a}{b}"),
                );
            }
            "not_present" => announce(case, va(SLOT_NOT_PRESENT, 0, 0, 0, 0), "error"),
            "reserved" => announce(case, va(SLOT_RESERVED, 0, 0, 0, 0), "error"),
            "beyond_ram" => announce(case, va(SLOT_BEYOND_RAM, 0, 0, 0, 0), "error"),
            _ => {
                // Every level indexes SLOT_LOOP: the walk ends on the PML4
                // frame itself, which reads as the PML4's own entries.
                let off = 8 * 300; // entries 300.. (ours, set above)
                let gva = va(SLOT_LOOP, SLOT_LOOP, SLOT_LOOP, SLOT_LOOP, off);
                let bytes = read((pml4 + off) as *const u8, PEEK_LEN);
                announce(case, gva, &alloc::format!("bytes:{bytes}"));
            }
        }
    }
    println!("WORKLOAD-PEEKS n={}", PEEK_CASES.len());
}
