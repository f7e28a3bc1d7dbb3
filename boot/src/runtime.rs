//! Boot sequence on vCPU 0, the panic handler, and the memory services
//! (RAM frames, the GFN window) built from the memory map.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::{Mutex, Once};

use crate::arch::x86_64::{
    console, evtchn, gdt, heap, hypercall, idt, paging, percpu, sched, smp, time, xen,
};
use crate::memory::{choose_gfn_window, FrameSet, GfnWindow, Range, PAGE_SIZE};
use crate::startinfo::{BootInfo, IdentityMap};
use crate::{print, println};

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

extern "Rust" {
    /// The kernel's `main`, from [`entry!`](crate::entry).
    fn __boot_kernel_main(info: &'static BootInfo<'static>);
}

static BOOT_INFO: Once<BootInfo<'static>> = Once::new();
static RAM: Mutex<FrameSet> = Mutex::new(FrameSet::new());
static GFNS: Mutex<Option<GfnWindow>> = Mutex::new(None);
static BOOT_NS: AtomicU64 = AtomicU64::new(0);

/// Size of the GFN window for foreign/resource mappings.
pub const GFN_WINDOW_SIZE: u64 = 1 << 30;

/// Prints one line and shuts down as crashed (fatal boot problems).
fn fatal(args: core::fmt::Arguments<'_>) -> ! {
    console::emergency(format_args!("boot: fatal: {args}"));
    if hypercall::ready() {
        sched::crash();
    }
    loop {
        x86_64::instructions::hlt();
    }
}

/// Rust entry on vCPU 0 (from `pvh_start32`), `si_paddr` = `%ebx` at entry.
pub extern "C" fn boot_main(si_paddr: u32) -> ! {
    percpu::init_this_vcpu(0);
    idt::init();

    // SAFETY: Xen passes the start info in ebx; [0, 4 GiB) is identity
    // mapped, which covers the start info and everything it points to.
    let info = match unsafe { BootInfo::parse(si_paddr, IdentityMap) } {
        Ok(i) => i,
        Err(e) => fatal(format_args!("start info at {si_paddr:#x} unusable: {e:?}")),
    };
    let info: &'static BootInfo<'static> = BOOT_INFO.call_once(|| info);

    match hypercall::init() {
        Ok(_) => {}
        Err(e) => fatal(format_args!("hypervisor: {e:?}")),
    }

    // Memory: RAM minus everything up to the end of the kernel image and
    // the boot data Xen placed after it.
    let (kstart, kend) = (
        core::ptr::addr_of!(__kernel_start) as u64,
        core::ptr::addr_of!(__kernel_end) as u64,
    );
    {
        let mut ram = RAM.lock();
        for r in info.ram() {
            let _ = ram.insert(r.page_inner());
        }
        let _ = ram.remove(Range::new(0, kend.max(info.boot_data_end).max(1 << 20)));
        let _ = ram.remove(Range::with_len(info.start_info_paddr, PAGE_SIZE));
        let _ = kstart;
    }
    if let Err(e) = paging::map_identity(Range::new(0, info.memmap_end())) {
        fatal(format_args!("page tables for the memory map: {e:?}"));
    }
    let window = choose_gfn_window(info.memmap_end(), 4 << 30, GFN_WINDOW_SIZE, 1 << 30);
    match paging::map_identity(window) {
        Ok(()) => *GFNS.lock() = Some(GfnWindow::new(window)),
        Err(e) => fatal(format_args!("page tables for the GFN window: {e:?}")),
    }
    // Heap: 3/4 of the largest free RAM range, at most 256 MiB.
    let (hstart, hsize) = {
        let mut ram = RAM.lock();
        let largest = ram.iter().map(|r| r.len()).max().unwrap_or(0);
        let size = (largest / 4 * 3).min(256 << 20) & !(PAGE_SIZE - 1);
        match ram.alloc(size, PAGE_SIZE) {
            Some(s) if size >= (1 << 20) => (s, size),
            _ => fatal(format_args!(
                "not enough RAM for a heap ({largest:#x} bytes free)"
            )),
        }
    };
    // SAFETY: taken out of the free RAM set above, identity mapped.
    unsafe { heap::init(hstart, hsize) };

    let nr = smp::probe();
    gdt::init(nr as usize);
    gdt::load(0);
    idt::enable_ist();
    idt::load();

    if let Err(e) = xen::map_shared_info() {
        fatal(format_args!("XENMEM_add_to_physmap(shared_info): {e:?}"));
    }
    if let Err(e) = xen::register_vcpu_info(0) {
        fatal(format_args!("VCPUOP_register_vcpu_info(0): {e:?}"));
    }
    BOOT_NS.store(time::now_ns(), Ordering::Relaxed);
    if let Err(e) = evtchn::init() {
        fatal(format_args!("event channel upcall vector: {e:?}"));
    }
    let cons = console::init_ring();
    if let Err(e) = smp::init_events_this_vcpu() {
        fatal(format_args!("vcpu 0 timer/IPI: {e:?}"));
    }
    percpu::cpu(0).online.store(true, Ordering::Release);
    x86_64::instructions::interrupts::enable();

    let (maj, min) = hypercall::xen_version();
    print!(
        "boot: Xen {maj}.{min}{} PVH, {} vCPU(s), {} MiB RAM, heap {} KiB at {hstart:#x}, ",
        hypercall::xen_extraversion().as_str(),
        nr,
        info.ram_bytes() >> 20,
        hsize >> 10,
    );
    match cons {
        Ok((pfn, port)) => println!("console ring pfn {pfn:#x} port {port}"),
        Err(e) => println!("no console ring ({e:?}), using port 0xE9"),
    }

    // SAFETY: the kernel binary defines it with `boot::entry!`.
    unsafe { __boot_kernel_main(info) };
    sched::poweroff();
}

/// The boot information (after boot).
pub fn boot_info() -> &'static BootInfo<'static> {
    BOOT_INFO.get().expect("boot info")
}

/// System time (ns) when the runtime finished its own setup.
pub fn boot_time_ns() -> u64 {
    BOOT_NS.load(Ordering::Relaxed)
}

/// Allocates `n` contiguous RAM frames (page aligned, identity mapped, not
/// zeroed) outside the heap; returns the physical address.
pub fn alloc_ram_frames(n: u64) -> Option<u64> {
    RAM.lock().alloc(n.checked_mul(PAGE_SIZE)?, PAGE_SIZE)
}

/// Free RAM outside the heap, in bytes.
pub fn free_ram() -> u64 {
    RAM.lock().total()
}

/// Allocates `n` contiguous free guest frame numbers in the GFN window (no
/// RAM behind them; identity mapped, so the virtual address is `gfn << 12`
/// once Xen has put a frame there, e.g. with `XENMEM_acquire_resource`).
pub fn alloc_gfns(n: u64) -> Option<u64> {
    GFNS.lock().as_mut()?.alloc(n)
}

/// Returns GFNs to the window.
pub fn free_gfns(gfn: u64, n: u64) {
    if let Some(w) = GFNS.lock().as_mut() {
        let _ = w.free(gfn, n);
    }
}

/// The GFN window (bytes).
pub fn gfn_window() -> Option<Range> {
    GFNS.lock().as_ref().map(|w| w.window())
}

/// Refused configuration: prints `boot: <msg>`-style one line and shuts down
/// as crashed (SHUTDOWN_crash, 3; see boot/README.md).
pub fn config_error(args: core::fmt::Arguments<'_>) -> ! {
    console::emergency(args);
    sched::crash();
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    let vcpu = percpu::current_vcpu();
    match info.location() {
        Some(l) => console::emergency(format_args!(
            "PANIC on vcpu {vcpu} at {}:{}: {}",
            l.file(),
            l.line(),
            info.message()
        )),
        None => console::emergency(format_args!("PANIC on vcpu {vcpu}: {}", info.message())),
    }
    if hypercall::ready() {
        sched::crash();
    }
    loop {
        x86_64::instructions::hlt();
    }
}
