//! Event channels, 2-level ABI. Xen raises the HVM callback vector
//! ([`UPCALL_VECTOR`](super::idt::UPCALL_VECTOR)) on the vCPU a port is bound
//! to; [`upcall`] scans that vCPU's `evtchn_pending_sel` and the shared
//! pending/mask bitmaps and runs the per-port handlers.
//!
//! Ports are handed out masked; install a handler with [`set_handler`], then
//! [`unmask`]. Handlers run with interrupts off on the vCPU the port is bound
//! to; they must not allocate (the heap lock is not re-entrant) but may print.
//! A word of the pending bitmap may hold ports of several vCPUs: each vCPU
//! handles only the ports bound to it (we track the binding), so an event is
//! always handled on its own vCPU.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::xen::*;

use super::hypercall::event_channel_op;
use super::idt::UPCALL_VECTOR;
use super::percpu;

/// Ports of the 2-level ABI on x86-64 (64 x 64 bits).
pub const NR_PORTS: usize = 64 * 64;

/// A port handler: called with the port number.
pub type Handler = fn(Port);

static HANDLERS: [AtomicUsize; NR_PORTS] = [const { AtomicUsize::new(0) }; NR_PORTS];
static BOUND: [AtomicU32; NR_PORTS] = [const { AtomicU32::new(0) }; NR_PORTS];
static UNHANDLED: AtomicU64 = AtomicU64::new(0);

fn shared() -> *mut crate::xen::shared_info {
    super::xen::shared_info()
}

fn word(array: *mut u64, idx: usize) -> &'static AtomicU64 {
    // SAFETY: `array` points into the shared_info page (mapped for the
    // domain's life); idx < 64; Xen updates these words with atomic ops too.
    unsafe { AtomicU64::from_ptr(array.add(idx)) }
}

fn pending_word(w: usize) -> &'static AtomicU64 {
    // SAFETY: address of a field of the shared_info page.
    word(
        unsafe { core::ptr::addr_of_mut!((*shared()).evtchn_pending) }.cast(),
        w,
    )
}

fn mask_word(w: usize) -> &'static AtomicU64 {
    // SAFETY: address of a field of the shared_info page.
    word(
        unsafe { core::ptr::addr_of_mut!((*shared()).evtchn_mask) }.cast(),
        w,
    )
}

fn check_port(port: Port) -> Result<usize, XenError> {
    let p = port as usize;
    if p == 0 || p >= NR_PORTS {
        return Err(XenError::EINVAL);
    }
    Ok(p)
}

/// Masks every port and routes upcalls to our vector. Call once on vCPU 0
/// after `shared_info` is mapped.
pub fn init() -> Result<(), XenError> {
    for w in 0..64 {
        mask_word(w).store(u64::MAX, Ordering::SeqCst);
    }
    super::xen::set_param(
        HVM_PARAM_CALLBACK_IRQ,
        HVM_PARAM_CALLBACK_TYPE_VECTOR | u64::from(UPCALL_VECTOR),
    )
}

fn bound(port: Port, vcpu: u32) -> Port {
    BOUND[port as usize % NR_PORTS].store(vcpu, Ordering::SeqCst);
    port
}

/// `EVTCHNOP_bind_virq`: a VIRQ delivered to `vcpu`.
pub fn bind_virq(virq: u32, vcpu: u32) -> Result<Port, XenError> {
    let mut a = EvtchnBindVirq {
        virq,
        vcpu,
        port: 0,
    };
    // SAFETY: EVTCHNOP_bind_virq takes an `EvtchnBindVirq`.
    unsafe { event_channel_op(EVTCHNOP_BIND_VIRQ, &mut a) }?;
    Ok(bound(a.port, vcpu))
}

/// `EVTCHNOP_bind_ipi`: a port whose events are delivered to `vcpu`.
pub fn bind_ipi(vcpu: u32) -> Result<Port, XenError> {
    let mut a = EvtchnBindIpi { vcpu, port: 0 };
    // SAFETY: EVTCHNOP_bind_ipi takes an `EvtchnBindIpi`.
    unsafe { event_channel_op(EVTCHNOP_BIND_IPI, &mut a) }?;
    Ok(bound(a.port, vcpu))
}

/// `EVTCHNOP_alloc_unbound`: a port `remote_dom` may bind to (delivered to
/// vCPU 0 until [`bind_vcpu`]).
pub fn alloc_unbound(remote_dom: DomId) -> Result<Port, XenError> {
    let mut a = EvtchnAllocUnbound {
        dom: DOMID_SELF,
        remote_dom,
        port: 0,
    };
    // SAFETY: EVTCHNOP_alloc_unbound takes an `EvtchnAllocUnbound`.
    unsafe { event_channel_op(EVTCHNOP_ALLOC_UNBOUND, &mut a) }?;
    Ok(bound(a.port, 0))
}

/// `EVTCHNOP_bind_interdomain`: connects to `remote_port` of `remote_dom`;
/// returns the local port (delivered to vCPU 0 until [`bind_vcpu`]).
pub fn bind_interdomain(remote_dom: DomId, remote_port: Port) -> Result<Port, XenError> {
    let mut a = EvtchnBindInterdomain {
        remote_dom,
        remote_port,
        local_port: 0,
    };
    // SAFETY: EVTCHNOP_bind_interdomain takes an `EvtchnBindInterdomain`.
    unsafe { event_channel_op(EVTCHNOP_BIND_INTERDOMAIN, &mut a) }?;
    Ok(bound(a.local_port, 0))
}

/// `EVTCHNOP_bind_vcpu`: deliver `port` to `vcpu` from now on (interdomain,
/// unbound and global-VIRQ ports; Xen refuses IPI and per-vCPU VIRQ ports).
pub fn bind_vcpu(port: Port, vcpu: u32) -> Result<(), XenError> {
    let p = check_port(port)?;
    let bit = 1u64 << (p % 64);
    // Masked across the move: an event now only sets the pending bit. Were
    // the port live, an event delivered to the old vCPU while our record
    // already named the new one would be left pending by both, and a
    // pending port is never raised again: dead for good.
    let was_masked = mask_word(p / 64).fetch_or(bit, Ordering::SeqCst) & bit != 0;
    let mut a = EvtchnBindVcpu { port, vcpu };
    // SAFETY: EVTCHNOP_bind_vcpu takes an `EvtchnBindVcpu`.
    let r = unsafe { event_channel_op(EVTCHNOP_BIND_VCPU, &mut a) };
    if r.is_ok() {
        BOUND[p].store(vcpu, Ordering::SeqCst);
    }
    if !was_masked {
        // Xen raises what came in meanwhile on the vCPU now bound.
        unmask(port)?;
    }
    r.map(drop)
}

/// The vCPU `port` is bound to (as far as we know).
pub fn bound_vcpu(port: Port) -> u32 {
    BOUND[port as usize % NR_PORTS].load(Ordering::Relaxed)
}

/// Installs (or with `None` removes) the handler of `port`.
pub fn set_handler(port: Port, handler: Option<Handler>) -> Result<(), XenError> {
    let p = check_port(port)?;
    HANDLERS[p].store(handler.map_or(0, |h| h as usize), Ordering::SeqCst);
    Ok(())
}

/// `EVTCHNOP_send`.
pub fn send(port: Port) -> Result<(), XenError> {
    let mut a = EvtchnSend { port };
    // SAFETY: EVTCHNOP_send takes an `EvtchnSend`.
    unsafe { event_channel_op(EVTCHNOP_SEND, &mut a) }.map(drop)
}

/// Masks `port`.
pub fn mask(port: Port) -> Result<(), XenError> {
    let p = check_port(port)?;
    mask_word(p / 64).fetch_or(1 << (p % 64), Ordering::SeqCst);
    Ok(())
}

/// Unmasks `port`; if it is pending, Xen re-raises it on its vCPU
/// (`EVTCHNOP_unmask`).
pub fn unmask(port: Port) -> Result<(), XenError> {
    let p = check_port(port)?;
    let bit = 1u64 << (p % 64);
    mask_word(p / 64).fetch_and(!bit, Ordering::SeqCst);
    if pending_word(p / 64).load(Ordering::SeqCst) & bit != 0 {
        // Xen re-raises a pending port only when *its* test-and-clear of
        // the mask bit finds it set: mask again and let Xen clear it.
        mask_word(p / 64).fetch_or(bit, Ordering::SeqCst);
        let mut a = EvtchnUnmask { port };
        // SAFETY: EVTCHNOP_unmask takes an `EvtchnUnmask`.
        unsafe { event_channel_op(EVTCHNOP_UNMASK, &mut a) }?;
    }
    Ok(())
}

/// Clears `port`'s pending bit; whether it was set. For a masked port a
/// vCPU watches itself (with [`super::sched::poll`]): clear, then look.
pub fn take_pending(port: Port) -> bool {
    let Ok(p) = check_port(port) else {
        return false;
    };
    let bit = 1u64 << (p % 64);
    pending_word(p / 64).fetch_and(!bit, Ordering::SeqCst) & bit != 0
}

/// `port`'s bits in the shared bitmaps: (pending, masked). For reports.
pub fn port_state(port: Port) -> (bool, bool) {
    let Ok(p) = check_port(port) else {
        return (false, false);
    };
    let bit = 1u64 << (p % 64);
    (
        pending_word(p / 64).load(Ordering::SeqCst) & bit != 0,
        mask_word(p / 64).load(Ordering::SeqCst) & bit != 0,
    )
}

/// What Xen's upcall protocol says of `vcpu` now, from its `vcpu_info`.
#[derive(Clone, Copy, Debug, Default)]
pub struct UpcallState {
    /// `evtchn_upcall_pending`: Xen has raised (or will raise) the vector.
    pub pending: u8,
    /// `evtchn_upcall_mask`.
    pub mask: u8,
    /// `evtchn_pending_sel`: words with events for this vCPU not yet scanned.
    pub sel: u64,
    /// Upcalls taken by that vCPU so far.
    pub upcalls: u64,
}

/// [`UpcallState`] of `vcpu` (zero before its `vcpu_info` is registered).
pub fn upcall_state(vcpu: u32) -> UpcallState {
    if vcpu as usize >= super::percpu::MAX_VCPUS {
        return UpcallState::default();
    }
    let cpu = super::percpu::cpu(vcpu);
    let vi = cpu.vcpu_info.load(Ordering::Acquire);
    if vi.is_null() {
        return UpcallState::default();
    }
    // SAFETY: a registered vcpu_info, mapped for the domain's life; these
    // fields are read volatile (Xen and that vCPU update them).
    unsafe {
        UpcallState {
            pending: core::ptr::addr_of!((*vi).evtchn_upcall_pending).read_volatile(),
            mask: core::ptr::addr_of!((*vi).evtchn_upcall_mask).read_volatile(),
            sel: core::ptr::addr_of!((*vi).evtchn_pending_sel).read_volatile(),
            upcalls: cpu.upcalls.load(Ordering::Relaxed),
        }
    }
}

/// Clears a pending event without running its handler.
pub fn clear(port: Port) -> Result<(), XenError> {
    let p = check_port(port)?;
    pending_word(p / 64).fetch_and(!(1 << (p % 64)), Ordering::SeqCst);
    Ok(())
}

/// `EVTCHNOP_close` (also removes the handler).
pub fn close(port: Port) -> Result<(), XenError> {
    let p = check_port(port)?;
    let _ = mask(port);
    HANDLERS[p].store(0, Ordering::SeqCst);
    let mut a = EvtchnClose { port };
    // SAFETY: EVTCHNOP_close takes an `EvtchnClose`.
    unsafe { event_channel_op(EVTCHNOP_CLOSE, &mut a) }.map(drop)
}

/// Events that arrived with no handler installed.
pub fn unhandled() -> u64 {
    UNHANDLED.load(Ordering::Relaxed)
}

/// The upcall, from the interrupt vector (interrupts off).
pub fn upcall() {
    let cpu = percpu::this_cpu();
    let me = cpu.id.load(Ordering::Relaxed);
    cpu.upcalls.fetch_add(1, Ordering::Relaxed);
    let vi = super::xen::this_vcpu_info();
    if vi.is_null() {
        return;
    }
    // SAFETY: our registered vcpu_info; Xen sets these fields atomically.
    let (pending, sel) = unsafe {
        (
            core::sync::atomic::AtomicU8::from_ptr(core::ptr::addr_of_mut!(
                (*vi).evtchn_upcall_pending
            )),
            AtomicU64::from_ptr(core::ptr::addr_of_mut!((*vi).evtchn_pending_sel)),
        )
    };
    loop {
        pending.store(0, Ordering::SeqCst);
        let sel_now = sel.swap(0, Ordering::SeqCst);
        crate::xen::scan_2l(
            sel_now,
            |w| pending_word(w).load(Ordering::SeqCst),
            |w| mask_word(w).load(Ordering::SeqCst),
            |port| BOUND[port].load(Ordering::Relaxed) == me,
            |port| {
                // Clear first: an event arriving while the handler runs
                // sets it again and is seen on the next pass.
                pending_word(port / 64).fetch_and(!(1 << (port % 64)), Ordering::SeqCst);
                match HANDLERS[port].load(Ordering::SeqCst) {
                    0 => {
                        UNHANDLED.fetch_add(1, Ordering::Relaxed);
                    }
                    h => {
                        // SAFETY: only `Handler` values are stored in HANDLERS.
                        let f: Handler = unsafe { core::mem::transmute::<usize, Handler>(h) };
                        cpu.events.fetch_add(1, Ordering::Relaxed);
                        f(port as Port);
                    }
                }
            },
        );
        if pending.load(Ordering::SeqCst) == 0 {
            break;
        }
    }
}
