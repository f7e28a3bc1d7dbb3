//! Per-vCPU data. `GS.base` of each vCPU points at its [`PerCpu`] slot, whose
//! first field is the vCPU id, so `current_vcpu()` is one `mov` from `gs:0`.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::xen::vcpu_info;

/// Most vCPUs we handle (Xen's HVM limit).
pub const MAX_VCPUS: usize = 128;

/// Runtime state of one vCPU.
#[repr(C)]
pub struct PerCpu {
    /// vCPU id (must stay the first field: read through `gs:0`).
    pub id: AtomicU32,
    /// Timer VIRQ port (0 = none yet).
    pub timer_port: AtomicU32,
    /// IPI port used to wake this vCPU (0 = none yet).
    pub kick_port: AtomicU32,
    /// Online and running our code.
    pub online: AtomicBool,
    /// Our `vcpu_info` (registered with `VCPUOP_register_vcpu_info`).
    pub vcpu_info: AtomicPtr<vcpu_info>,
    /// Upcalls taken.
    pub upcalls: AtomicU64,
    /// Where the last upcall interrupted this vCPU (`rip`, before the idle
    /// fix-up): the self-test's evidence of where interrupts are taken.
    pub upcall_rip: AtomicU64,
    /// Events dispatched to handlers.
    pub events: AtomicU64,
    /// Timer interrupts taken.
    pub timer_fires: AtomicU64,
    /// Deadline (system time, ns) of the one-shot timer this vCPU armed and
    /// has not seen fire yet; 0 = none.
    pub timer_armed_ns: AtomicU64,
    /// Timer callback (`fn(now_ns)` as usize, 0 = none).
    pub timer_callback: core::sync::atomic::AtomicUsize,
}

impl PerCpu {
    const fn new() -> Self {
        PerCpu {
            id: AtomicU32::new(0),
            timer_port: AtomicU32::new(0),
            kick_port: AtomicU32::new(0),
            online: AtomicBool::new(false),
            vcpu_info: AtomicPtr::new(core::ptr::null_mut()),
            upcalls: AtomicU64::new(0),
            upcall_rip: AtomicU64::new(0),
            events: AtomicU64::new(0),
            timer_fires: AtomicU64::new(0),
            timer_armed_ns: AtomicU64::new(0),
            timer_callback: core::sync::atomic::AtomicUsize::new(0),
        }
    }
}

static PERCPU: [PerCpu; MAX_VCPUS] = [const { PerCpu::new() }; MAX_VCPUS];

/// Points `GS.base` of the running vCPU at slot `id`.
pub fn init_this_vcpu(id: u32) {
    let slot = &PERCPU[id as usize];
    slot.id.store(id, Ordering::Relaxed);
    // GS.base is ours to use; the slot is a 'static.
    x86_64::registers::model_specific::GsBase::write(x86_64::VirtAddr::from_ptr(slot));
}

/// Id of the running vCPU.
#[inline]
pub fn current_vcpu() -> u32 {
    let id: u32;
    // SAFETY: GS.base points at this vCPU's PerCpu (set first thing on every
    // vCPU); offset 0 is `id`.
    unsafe { asm!("mov {0:e}, gs:[0]", out(reg) id, options(nostack, readonly, preserves_flags)) };
    id
}

/// Runtime state of the running vCPU.
pub fn this_cpu() -> &'static PerCpu {
    &PERCPU[current_vcpu() as usize]
}

/// Runtime state of vCPU `id`.
pub fn cpu(id: u32) -> &'static PerCpu {
    &PERCPU[id as usize]
}

/// A value per vCPU, for kernels' own per-vCPU data:
/// `static HITS: PerVcpu<AtomicU64> = PerVcpu::new([const { AtomicU64::new(0) }; MAX_VCPUS]);`
pub struct PerVcpu<T>([T; MAX_VCPUS]);

impl<T> PerVcpu<T> {
    /// Wraps one value per possible vCPU.
    pub const fn new(values: [T; MAX_VCPUS]) -> Self {
        PerVcpu(values)
    }

    /// The running vCPU's value.
    pub fn get(&self) -> &T {
        &self.0[current_vcpu() as usize]
    }

    /// vCPU `id`'s value.
    pub fn of(&self, id: u32) -> &T {
        &self.0[id as usize]
    }
}
