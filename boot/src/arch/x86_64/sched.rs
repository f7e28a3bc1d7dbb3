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
    let mut a = sched_poll_arg(ports, deadline_ns)?;
    // SAFETY: SCHEDOP_poll takes a `sched_poll` whose handle points at
    // `nr_ports` ports; `ports` outlives the call (identity-mapped memory).
    unsafe { hypercall::sched_op(SCHEDOP_POLL, &mut a) }.map(drop)
}

fn sched_poll_arg(ports: &[Port], deadline_ns: u64) -> Result<SchedPoll, XenError> {
    if ports.len() > SCHED_POLL_MAX_PORTS {
        return Err(XenError::EINVAL);
    }
    Ok(SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: ports.len() as u32,
        pad: 0,
        timeout: deadline_ns,
    })
}

/// `EVTCHNOP_send(send)` then [`poll`], in one hypercall (a multicall):
/// the vCPU gives its pCPU up in the same entry into Xen that notifies.
/// Where a pCPU is short, the vCPU the notify wakes (a target's, waiting
/// for its answer) can have this pCPU without this vCPU's return from the
/// send and its next entry to poll: on the bed one VMMCALL exit per event
/// instead of two (`cargo xtask bench trace`; there the target's wait from
/// its wake-up to its switch-in, ~600,000 cycles, did not shrink
/// measurably: Xen's own schedule and context switch remain). Returns the
/// send's and the poll's results.
pub fn send_and_poll(
    send: Port,
    ports: &[Port],
    deadline_ns: u64,
) -> (Result<(), XenError>, Result<(), XenError>) {
    let mut poll_arg = match sched_poll_arg(ports, deadline_ns) {
        Ok(a) => a,
        Err(e) => return (super::evtchn::send(send), Err(e)),
    };
    let mut send_arg = EvtchnSend { port: send };
    let entry = |op: u32, cmd: u32, arg: u64| multicall_entry {
        op: op.into(),
        result: 0,
        args: [cmd.into(), arg, 0, 0, 0, 0],
    };
    let mut calls = [
        entry(
            HYPERVISOR_EVENT_CHANNEL_OP,
            EVTCHNOP_SEND,
            &mut send_arg as *mut EvtchnSend as u64,
        ),
        entry(
            HYPERVISOR_SCHED_OP,
            SCHEDOP_POLL,
            &mut poll_arg as *mut SchedPoll as u64,
        ),
    ];
    // SAFETY: an EVTCHNOP_send with its `evtchn_send` and a SCHEDOP_poll
    // with its `sched_poll` (whose handle points at `ports`); both
    // arguments and `ports` outlive the call.
    match unsafe { hypercall::multicall(&mut calls) } {
        // Each call's return value, as the signed long Xen stored.
        Ok(_) => {
            let result = |c: &multicall_entry| XenError::check(c.result as i64).map(drop);
            (result(&calls[0]), result(&calls[1]))
        }
        // Nothing is known to have run: the caller sends again.
        Err(e) => (Err(e), Err(e)),
    }
}

/// `SCHEDOP_yield`.
pub fn yield_now() {
    // SAFETY: SCHEDOP_yield ignores its argument.
    let _ = unsafe { hypercall::sched_op::<u8>(SCHEDOP_YIELD, core::ptr::null_mut()) };
}
