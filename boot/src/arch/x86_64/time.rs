//! Time: monotonic Xen system time from this vCPU's `vcpu_time_info`, and
//! one-shot timers (`VCPUOP_set_singleshot_timer` + per-vCPU `VIRQ_TIMER`).

use core::sync::atomic::{fence, Ordering};

use crate::xen::*;

use super::{evtchn, hypercall, percpu, sched};

/// A timer callback, run in the timer VIRQ handler with the current time.
pub type TimerCallback = fn(u64);

/// Nanoseconds of Xen system time (monotonic, since host boot). 0 before the
/// running vCPU's `vcpu_info` is registered.
pub fn now_ns() -> u64 {
    let vi = super::xen::this_vcpu_info();
    if vi.is_null() {
        return 0;
    }
    // SAFETY: our registered vcpu_info; fields read volatile, version-checked
    // as the vcpu_time_info protocol prescribes (odd = update in progress).
    unsafe {
        let t = core::ptr::addr_of!((*vi).time);
        loop {
            let v1 = core::ptr::addr_of!((*t).version).read_volatile();
            fence(Ordering::Acquire);
            let tsc_ts = core::ptr::addr_of!((*t).tsc_timestamp).read_volatile();
            let sys = core::ptr::addr_of!((*t).system_time).read_volatile();
            let mul = core::ptr::addr_of!((*t).tsc_to_system_mul).read_volatile();
            let shift = core::ptr::addr_of!((*t).tsc_shift).read_volatile();
            let tsc = core::arch::x86_64::_rdtsc();
            fence(Ordering::Acquire);
            let v2 = core::ptr::addr_of!((*t).version).read_volatile();
            if v1 & 1 == 0 && v1 == v2 {
                return sys.wrapping_add(scale_tsc_delta(tsc.wrapping_sub(tsc_ts), mul, shift));
            }
        }
    }
}

/// Wall-clock time, nanoseconds since the Unix epoch (UTC): Xen's
/// wallclock at system time 0 (`shared_info.wc_*`, as dom0 set it) plus
/// [`now_ns`]. 0 before `shared_info` is mapped.
pub fn wallclock_ns() -> u64 {
    let si = super::xen::shared_info();
    // SAFETY: `shared_info` is our mapped page (or our zeroed static page
    // before it is mapped); the wc_* fields are read volatile under their
    // version, odd while Xen updates them.
    let base = unsafe {
        loop {
            let v1 = core::ptr::addr_of!((*si).wc_version).read_volatile();
            fence(Ordering::Acquire);
            let sec = core::ptr::addr_of!((*si).wc_sec).read_volatile();
            let hi = core::ptr::addr_of!((*si).wc_sec_hi).read_volatile();
            let nsec = core::ptr::addr_of!((*si).wc_nsec).read_volatile();
            fence(Ordering::Acquire);
            let v2 = core::ptr::addr_of!((*si).wc_version).read_volatile();
            if v1 & 1 == 0 && v1 == v2 {
                break (u64::from(hi) << 32 | u64::from(sec)) * 1_000_000_000 + u64::from(nsec);
            }
        }
    };
    if base == 0 {
        return 0;
    }
    base.wrapping_add(now_ns())
}

fn on_timer(_port: crate::xen::Port) {
    let cpu = percpu::this_cpu();
    // Cleared before the count moves: a waiter that sees the new count
    // then sees no armed timer, and arms one.
    cpu.timer_armed_ns.store(0, Ordering::Relaxed);
    cpu.timer_fires.fetch_add(1, Ordering::Release);
    let cb = cpu.timer_callback.load(Ordering::Acquire);
    if cb != 0 {
        // SAFETY: only `TimerCallback` values are stored there.
        let f: TimerCallback = unsafe { core::mem::transmute::<usize, TimerCallback>(cb) };
        f(now_ns());
    }
}

/// Per-vCPU timer setup, run on the vCPU itself: stops Xen's periodic timer,
/// binds `VIRQ_TIMER` to this vCPU.
pub fn init_this_vcpu() -> Result<(), XenError> {
    let me = percpu::current_vcpu();
    // SAFETY: VCPUOP_stop_periodic_timer takes no argument.
    let _ =
        unsafe { hypercall::vcpu_op::<u8>(VCPUOP_STOP_PERIODIC_TIMER, me, core::ptr::null_mut()) };
    let port = evtchn::bind_virq(VIRQ_TIMER, me)?;
    evtchn::set_handler(port, Some(on_timer))?;
    percpu::this_cpu().timer_port.store(port, Ordering::Relaxed);
    evtchn::unmask(port)
}

/// Arms this vCPU's one-shot timer for absolute system time `deadline_ns`
/// (a deadline in the past fires at once).
pub fn set_timer(deadline_ns: u64) -> Result<(), XenError> {
    let mut t = VcpuSetSingleshotTimer {
        timeout_abs_ns: deadline_ns,
        flags: 0,
    };
    // Recorded before the hypercall: a deadline that is already due fires
    // as soon as the hypercall returns, and that fire must find it (and
    // clear it), or a later wait would count on a timer that has fired.
    // Xen keeps one one-shot timer per vCPU: this one replaces any other.
    let armed = &percpu::this_cpu().timer_armed_ns;
    armed.store(deadline_ns.max(1), Ordering::Relaxed);
    // SAFETY: VCPUOP_set_singleshot_timer takes a `vcpu_set_singleshot_timer`
    // and must be issued by the vCPU itself, which it is.
    let r =
        unsafe { hypercall::vcpu_op(VCPUOP_SET_SINGLESHOT_TIMER, percpu::current_vcpu(), &mut t) };
    if r.is_err() {
        armed.store(0, Ordering::Relaxed);
    }
    r.map(drop)
}

/// Cancels this vCPU's one-shot timer.
pub fn stop_timer() -> Result<(), XenError> {
    percpu::this_cpu()
        .timer_armed_ns
        .store(0, Ordering::Relaxed);
    // SAFETY: VCPUOP_stop_singleshot_timer takes no argument.
    unsafe {
        hypercall::vcpu_op::<u8>(
            VCPUOP_STOP_SINGLESHOT_TIMER,
            percpu::current_vcpu(),
            core::ptr::null_mut(),
        )
    }
    .map(drop)
}

/// Sets (or clears) this vCPU's timer callback.
pub fn set_callback(cb: Option<TimerCallback>) {
    percpu::this_cpu()
        .timer_callback
        .store(cb.map_or(0, |f| f as usize), Ordering::Release);
}

/// Timer interrupts taken by this vCPU so far.
pub fn fires() -> u64 {
    percpu::this_cpu().timer_fires.load(Ordering::Acquire)
}

/// Blocks (servicing events) until `cond()` holds or system time reaches
/// `deadline_ns`; returns `cond()`. Uses this vCPU's one-shot timer.
///
/// Xen fires the timer when *its* system time passes the deadline; ours is
/// extrapolated from `vcpu_time_info` and can lag by a few ms, so a fire may
/// come "early" by our clock: the timer is then re-armed rather than waiting
/// for an event that will not come.
///
/// A timer already armed for no later than `deadline_ns` is kept: its fire
/// wakes this wait early, which then re-arms for the rest. A loop that waits
/// with a deadline moving forward (a serving vCPU: "now + 200 ms" after each
/// event) so arms its timer once per fire, not once per wait.
pub fn wait_until_deadline(deadline_ns: u64, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if now_ns() >= deadline_ns {
            return cond();
        }
        let before = fires();
        let armed = percpu::this_cpu().timer_armed_ns.load(Ordering::Relaxed);
        // Long overdue and not seen to fire: armed again rather than
        // trusted (a lost fire must not block this vCPU for good).
        let overdue = armed.saturating_add(OVERDUE_NS) < now_ns();
        if (armed == 0 || armed > deadline_ns || overdue) && set_timer(deadline_ns).is_err() {
            sched::yield_now();
            continue;
        }
        sched::wait_until(|| cond() || now_ns() >= deadline_ns || fires() != before);
    }
}

/// Blocks this vCPU until system time `deadline_ns` (other events are
/// serviced meanwhile).
pub fn sleep_until(deadline_ns: u64) {
    wait_until_deadline(deadline_ns, || false);
}

/// Blocks this vCPU for `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    sleep_until(now_ns().saturating_add(ns));
}

/// How late a timer may be before a waiter stops counting on its fire.
const OVERDUE_NS: u64 = 10_000_000;
