//! Scheduling: block, yield, shutdown.

use crate::xen::*;

use super::hypercall;

/// `SCHEDOP_shutdown(reason)`; never returns. Flushes the console first so
/// the last lines reach xenconsoled before the domain goes away.
pub fn shutdown(reason: ShutdownReason) -> ! {
    super::console::flush();
    let mut arg = sched_shutdown {
        reason: reason as u32,
    };
    loop {
        // SAFETY: SCHEDOP_shutdown takes a `sched_shutdown`.
        let _ = unsafe { hypercall::sched_op(SCHEDOP_SHUTDOWN, &mut arg) };
        // Only reached if Xen refused: keep trying, never run on.
        core::hint::spin_loop();
    }
}

/// Crash shutdown (SHUTDOWN_crash = 3): panics, faults, refused config.
pub fn crash() -> ! {
    shutdown(ShutdownReason::Crash)
}

/// Clean poweroff (SHUTDOWN_poweroff = 0).
pub fn poweroff() -> ! {
    shutdown(ShutdownReason::Poweroff)
}

/// Sleeps until an event arrives. Call with interrupts disabled after
/// checking what you wait for (see [`hypercall::block_with_interrupts`]);
/// interrupts are enabled on return.
pub fn block() {
    hypercall::block_with_interrupts();
}

/// Blocks (servicing events) until `cond()` holds; `cond` is evaluated with
/// interrupts off, so a wake-up between the check and the block is not lost.
/// Returns with interrupts enabled.
pub fn wait_until(mut cond: impl FnMut() -> bool) {
    loop {
        x86_64::instructions::interrupts::disable();
        if cond() {
            x86_64::instructions::interrupts::enable();
            return;
        }
        block();
    }
}

/// Idles this vCPU forever, servicing events.
pub fn idle_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        block();
    }
}

/// `SCHEDOP_poll`: blocks until one of `ports` is pending (at once if one
/// already is), an upcall is due, or system time reaches `deadline_ns` (0:
/// no timeout). Masked ports wake it too, with no upcall: a vCPU can wait
/// for its ports without an interrupt per event and without arming its
/// one-shot timer. Clear a port's pending bit before looking at what it
/// signals, or the wait returns at once.
pub fn poll(ports: &[Port], deadline_ns: u64) -> Result<(), XenError> {
    if ports.len() > SCHED_POLL_MAX_PORTS {
        return Err(XenError::EINVAL);
    }
    let mut a = SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: ports.len() as u32,
        pad: 0,
        timeout: deadline_ns,
    };
    // SAFETY: SCHEDOP_poll takes a `sched_poll` whose handle points at
    // `nr_ports` ports; `ports` outlives the call (identity-mapped memory).
    unsafe { hypercall::sched_op(SCHEDOP_POLL, &mut a) }.map(drop)
}

/// `SCHEDOP_yield`.
pub fn yield_now() {
    // SAFETY: SCHEDOP_yield ignores its argument.
    let _ = unsafe { hypercall::sched_op::<u8>(SCHEDOP_YIELD, core::ptr::null_mut()) };
}
