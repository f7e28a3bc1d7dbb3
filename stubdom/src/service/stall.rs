//! The stall watch, run by vCPU 0 with its other housekeeping: a target
//! vCPU whose slot holds the same request (or the same answer, not taken
//! by Xen) for [`LIMIT_NS`] is named in one line with what the stub vCPU
//! serving it looks like — its passes through the loop, its port's bits,
//! its upcall state and timer — and that vCPU is kicked (an IPI, which
//! wakes it from any wait). A second line says when the slot moved on.
//!
//! No event takes a second; a slot stuck that long means a wake-up was
//! lost (the serving vCPU does not look), or Xen did not take an answer.
//! The line tells which, from the stub's side.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use boot::{evtchn, percpu, println, smp, PerVcpu, MAX_VCPUS};
use vmevent::shm::SlotMem;
use vmevent::stall::{Finding, SlotWatch, Stuck};

use super::attach::Attachment;
use super::stats::Stats;
use super::WORK;

/// How long a slot may hold one request or answer before it is said.
const LIMIT_NS: u64 = 2_000_000_000;

/// A counter on a cache line of its own: each is written on every pass
/// by its vCPU alone.
#[repr(align(64))]
struct Passes(AtomicU64);

/// Passes through its serving loop, per stub vCPU.
static PASSES: PerVcpu<Passes> = PerVcpu::new([const { Passes(AtomicU64::new(0)) }; MAX_VCPUS]);

/// Counts one pass of the running vCPU's serving loop.
pub(super) fn pass() {
    PASSES.get().0.fetch_add(1, Ordering::Relaxed);
}

fn passes(id: u32) -> u64 {
    PASSES.of(id).0.load(Ordering::Relaxed)
}

/// vCPU 0's watch over every slot.
pub(super) struct Watch {
    slots: Vec<SlotWatch>,
    /// Passes of each stub vCPU at the previous look.
    passes: Vec<u64>,
}

impl Watch {
    pub(super) fn new(nr_target_vcpus: u32, stub_vcpus: u32) -> Self {
        Watch {
            slots: (0..nr_target_vcpus).map(|_| SlotWatch::new()).collect(),
            passes: (0..stub_vcpus).map(passes).collect(),
        }
    }

    /// One look at every slot at time `now`.
    pub(super) fn check(&mut self, a: &Attachment, stats: &Stats, stub_vcpus: u32, now: u64) {
        let before = core::mem::replace(&mut self.passes, (0..stub_vcpus).map(passes).collect());
        for (v, w) in self.slots.iter_mut().enumerate() {
            let Some(slot) = a.slots.slot(v as u32) else {
                continue;
            };
            let state = slot.load_state(Ordering::Acquire);
            let answered = stats
                .by_vcpu
                .get(v)
                .map_or(0, |c| c.served.load(Ordering::Relaxed));
            let port = a.local_ports[v];
            // The vCPU Xen delivers this slot's port to: the one serving it.
            let owner = evtchn::bound_vcpu(port);
            match w.observe(state, answered, now, LIMIT_NS) {
                Some(Finding::Stalled { stuck, for_ns }) => {
                    let (pending, masked) = evtchn::port_state(port);
                    let up = evtchn::upcall_state(owner);
                    let cpu = percpu::cpu(owner);
                    let armed = cpu.timer_armed_ns.load(Ordering::Relaxed);
                    let moved = self.passes[owner as usize]
                        .wrapping_sub(before.get(owner as usize).copied().unwrap_or(0));
                    println!(
                        "stub: stall: target vCPU {v}'s slot has held {} for {} ms ({answered} answered); \
                         stub vCPU {owner}: {} passes ({moved} since the last look), port {port} \
                         pending={} masked={}, upcall pending={} mask={} sel={:#x}, {} upcalls, \
                         {} timer fires, timer {}, WORK={}; kicked",
                        match stuck {
                            Stuck::Unanswered => "a request not answered",
                            Stuck::NotTaken => "an answer Xen has not taken",
                        },
                        for_ns / 1_000_000,
                        self.passes[owner as usize],
                        u8::from(pending),
                        u8::from(masked),
                        up.pending,
                        up.mask,
                        up.sel,
                        up.upcalls,
                        cpu.timer_fires.load(Ordering::Relaxed),
                        match armed {
                            0 => alloc::string::String::from("not armed"),
                            t if t <= now => alloc::format!("due {} ms ago", (now - t) / 1_000_000),
                            t => alloc::format!("due in {} ms", (t - now) / 1_000_000),
                        },
                        u8::from(WORK.of(owner).load(Ordering::Relaxed)),
                    );
                    // Work to look for, then the wake-up: a kick alone
                    // wakes the wait, which finds no work and waits on.
                    WORK.of(owner).store(true, Ordering::Release);
                    smp::kick(owner);
                }
                Some(Finding::Resumed { for_ns }) => println!(
                    "stub: stall over: target vCPU {v}'s slot moved on after {} ms",
                    for_ns / 1_000_000
                ),
                None => {}
            }
        }
    }
}
