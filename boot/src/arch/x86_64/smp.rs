//! SMP: find every vCPU the domain has (`VCPUOP_is_up` until `-ENOENT`),
//! start them in 64-bit mode with `VCPUOP_initialise` (HVM context: our page
//! tables, a fresh stack, `rip = ap_start64`, `rdi = id`) and `VCPUOP_up`,
//! and run work on all of them with [`start_all`].

use alloc::vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use spin::Mutex;
use x86_64::registers::control::{Cr0Flags, Cr4Flags};
use x86_64::registers::model_specific::EferFlags;

use crate::xen::*;

use super::percpu::{self, MAX_VCPUS};
use super::{evtchn, gdt, hypercall, idt, sched, time};

/// Stack size of each secondary vCPU.
pub const AP_STACK_SIZE: usize = 64 * 1024;

static NR_VCPUS: AtomicU32 = AtomicU32::new(1);
static ONLINE: AtomicU32 = AtomicU32::new(1);
static BROUGHT_UP: spin::Once<Result<u32, (u32, XenError)>> = spin::Once::new();

#[derive(Clone, Copy)]
struct WorkPtr(*const (dyn Fn(u32) + Sync));
// SAFETY: the pointee is `Sync` and outlives every use (start_all waits).
unsafe impl Send for WorkPtr {}

static WORK: Mutex<Option<WorkPtr>> = Mutex::new(None);
static WORK_GEN: AtomicU64 = AtomicU64::new(0);
static WORK_DONE: AtomicU32 = AtomicU32::new(0);

/// Counts the domain's vCPUs (capped at [`MAX_VCPUS`]). Called at boot.
pub fn probe() -> u32 {
    let mut n = 0;
    while (n as usize) < MAX_VCPUS {
        // SAFETY: VCPUOP_is_up takes no argument.
        match unsafe { hypercall::vcpu_op::<u8>(VCPUOP_IS_UP, n, core::ptr::null_mut()) } {
            Ok(_) => n += 1,
            Err(_) => break,
        }
    }
    let n = n.max(1);
    NR_VCPUS.store(n, Ordering::Relaxed);
    n
}

/// vCPUs the domain has.
pub fn nr_vcpus() -> u32 {
    NR_VCPUS.load(Ordering::Relaxed)
}

/// vCPUs running our code.
pub fn online() -> u32 {
    ONLINE.load(Ordering::Acquire)
}

fn kick_handler(_port: Port) {}

/// Per-vCPU event setup run on the vCPU itself: timer VIRQ and kick IPI.
pub(crate) fn init_events_this_vcpu() -> Result<(), XenError> {
    time::init_this_vcpu()?;
    let me = percpu::current_vcpu();
    let port = evtchn::bind_ipi(me)?;
    evtchn::set_handler(port, Some(kick_handler))?;
    evtchn::unmask(port)?;
    percpu::this_cpu().kick_port.store(port, Ordering::Release);
    Ok(())
}

/// Wakes vCPU `id` if it is blocked.
pub fn kick(id: u32) {
    let port = percpu::cpu(id).kick_port.load(Ordering::Acquire);
    if port != 0 {
        let _ = evtchn::send(port);
    }
}

fn start_one(id: u32) -> Result<(), XenError> {
    super::xen::register_vcpu_info(id)?;
    let stack = vec![0u8; AP_STACK_SIZE].leak();
    let top = (stack.as_ptr_range().end as u64) & !15;
    let cr3 = x86_64::registers::control::Cr3::read_raw()
        .0
        .start_address()
        .as_u64();
    let mut ctx = VcpuHvmContext {
        mode: VCPU_HVM_MODE_64B,
        pad: 0,
        regs: VcpuHvmX86_64 {
            rsp: top,
            rdi: u64::from(id),
            rip: super::start::ap_start64 as *const () as u64,
            rflags: 0x2,
            cr0: (Cr0Flags::PAGING
                | Cr0Flags::WRITE_PROTECT
                | Cr0Flags::NUMERIC_ERROR
                | Cr0Flags::EXTENSION_TYPE
                | Cr0Flags::MONITOR_COPROCESSOR
                | Cr0Flags::PROTECTED_MODE_ENABLE)
                .bits(),
            cr3,
            cr4: Cr4Flags::PHYSICAL_ADDRESS_EXTENSION.bits(),
            efer: (EferFlags::LONG_MODE_ENABLE | EferFlags::LONG_MODE_ACTIVE).bits(),
            ..Default::default()
        },
        union_tail: [0],
    };
    // SAFETY: VCPUOP_initialise takes a `vcpu_hvm_context` for PVH guests;
    // the stack and page tables stay valid forever.
    unsafe { hypercall::vcpu_op(VCPUOP_INITIALISE, id, &mut ctx) }?;
    // SAFETY: VCPUOP_up takes no argument.
    unsafe { hypercall::vcpu_op::<u8>(VCPUOP_UP, id, core::ptr::null_mut()) }?;
    Ok(())
}

/// Brings every vCPU online (idempotent). Returns how many are online, or
/// the first vCPU that failed and why.
pub fn bring_up() -> Result<u32, (u32, XenError)> {
    *BROUGHT_UP.call_once(|| {
        let n = nr_vcpus();
        for id in 1..n {
            start_one(id).map_err(|e| (id, e))?;
            // Wait (bounded, 5 s) until it runs our code.
            let deadline = time::now_ns() + 5_000_000_000;
            while !percpu::cpu(id).online.load(Ordering::Acquire) {
                if time::now_ns() > deadline {
                    return Err((id, XenError::ETIME));
                }
                sched::yield_now();
            }
        }
        Ok(online())
    })
}

/// Runs `f(vcpu_id)` on every vCPU (vCPU 0 included, on the caller) and
/// returns when every call has returned. Brings the vCPUs up first if
/// needed. Must be called from vCPU 0.
pub fn start_all<F: Fn(u32) + Sync>(f: F) -> Result<u32, (u32, XenError)> {
    assert_eq!(percpu::current_vcpu(), 0, "start_all from a secondary vCPU");
    let n = bring_up()?;
    let fref: &(dyn Fn(u32) + Sync) = &f;
    // SAFETY: erasing the lifetime; we do not return before every vCPU has
    // finished calling it, and clear WORK before `f` is dropped.
    let ptr: *const (dyn Fn(u32) + Sync) = unsafe { core::mem::transmute(fref) };
    *WORK.lock() = Some(WorkPtr(ptr));
    WORK_DONE.store(0, Ordering::SeqCst);
    WORK_GEN.fetch_add(1, Ordering::SeqCst);
    for id in 1..n {
        kick(id);
    }
    f(0);
    sched::wait_until(|| WORK_DONE.load(Ordering::SeqCst) >= n - 1);
    *WORK.lock() = None;
    Ok(n)
}

/// Rust entry of a secondary vCPU (from `ap_start64`).
pub extern "C" fn ap_main(id: u64) -> ! {
    let id = id as u32;
    percpu::init_this_vcpu(id);
    gdt::load(id);
    idt::load();
    if let Err(e) = init_events_this_vcpu() {
        crate::println!("vcpu {id}: event setup failed: {e:?}");
        sched::crash();
    }
    ONLINE.fetch_add(1, Ordering::AcqRel);
    percpu::cpu(id).online.store(true, Ordering::Release);
    x86_64::instructions::interrupts::enable();
    let mut seen = 0;
    loop {
        let mut gen = 0;
        sched::wait_until(|| {
            gen = WORK_GEN.load(Ordering::SeqCst);
            gen != seen
        });
        seen = gen;
        let work = *WORK.lock();
        if let Some(WorkPtr(p)) = work {
            // SAFETY: start_all keeps the closure alive until WORK_DONE
            // reaches n - 1, which needs our increment below.
            let f = unsafe { &*p };
            f(id);
        }
        WORK_DONE.fetch_add(1, Ordering::SeqCst);
        kick(0);
    }
}
