//! One stub vCPU's serving loop: wait for its ports, answer the slots it
//! owns, notify Xen, audit; vCPU 0 also drains the async ring and checks
//! on the target and on dom0.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use xenctl as xenops;

use boot::xen::{Port, XenError};
use boot::{evtchn, println, smp, time};
use vmevent::abi::vm_event::VM_EVENT_REASON_GUEST_REQUEST;
use vmevent::{AsyncRingConsumer, Policy, SlotConsumer, SlotPoll, VmEventResponse};

use super::attach::{target_gone, Attachment};
use super::audit::{audit, decide, shown, AUDIT};
use super::control::Control;
use super::introspect::Inspector;
use super::stall;
use super::stats::Stats;
use super::{Config, LogMode, WaitMode, WORK};

static STOP: AtomicBool = AtomicBool::new(false);
/// Stub vCPUs in their serving loop.
static SERVING: AtomicU32 = AtomicU32::new(0);

/// What every serving vCPU shares, borrowed from `run`.
pub(super) struct Context<'a> {
    pub(super) cfg: &'a Config,
    pub(super) policy: &'a Policy,
    pub(super) a: &'a Attachment,
    pub(super) control: &'a Control,
    pub(super) stats: &'a Stats,
    pub(super) stub_vcpus: u32,
    pub(super) profile: Option<&'a linux_profile::Profile>,
}

/// Serves stub vCPU `me`'s ports until `STOP`.
pub(super) fn serve(ctx: &Context, me: u32) {
    let Context {
        cfg,
        policy,
        a,
        control,
        stats,
        stub_vcpus,
        profile,
    } = *ctx;
    // With a profile, each event is attributed to a task, read from the
    // target's memory while its vCPU waits for the answer (the task is
    // the one that caused the event only until the vCPU runs again).
    // A rule's `peek=` needs the memory window too.
    let peeks = policy.rules().iter().any(|r| r.peek.is_some());
    let mut inspector = None;
    if profile.is_some() || peeks {
        inspector = Inspector::new(a.target, profile.copied());
        if inspector.is_none() {
            println!("stub: vCPU {me}: no free frames for a memory window: events not attributed");
        }
    }
    let mine: Vec<u32> = (0..a.nr_target_vcpus)
        .filter(|i| i % stub_vcpus == me)
        .collect();
    // How this vCPU waits for its ports. SCHEDOP_poll on masked ports
    // costs no upcall per event and no timer re-arm per wait; but a
    // vCPU polling several ports is woken by every event of this
    // domain, so it is used where the ports are this vCPU's whole
    // world: a one-vCPU stub, or a vCPU with one slot port (vCPU 0's
    // async port then takes upcalls). Otherwise, blocking, the ports
    // are unmasked and their upcalls set WORK. Spinning (`mode=poll`)
    // reads every slot on every pass: its ports stay masked, so Xen
    // does not interrupt the spin.
    let async_port = a.local_ports[a.nr_target_vcpus as usize];
    let polled = cfg.wait == WaitMode::Block && (stub_vcpus == 1 || mine.len() == 1);
    let mut ports: Vec<Port> = mine.iter().map(|&v| a.local_ports[v as usize]).collect();
    if me == 0 && (stub_vcpus == 1 || !polled) {
        ports.push(async_port);
    }
    if cfg.wait == WaitMode::Block {
        if !polled {
            for &p in &ports {
                let _ = evtchn::unmask(p);
            }
        } else if me == 0 && stub_vcpus > 1 {
            let _ = evtchn::unmask(async_port);
        }
    }
    SERVING.fetch_add(1, Ordering::AcqRel);
    if me == 0 {
        // attach() left the target paused: it runs once every stub
        // vCPU has set up its ports, so no event waits for a vCPU still
        // booting.
        while SERVING.load(Ordering::Acquire) < stub_vcpus {
            boot::sched::yield_now();
        }
        match xenops::unpause(a.target) {
            Ok(()) => println!(
                "stub: serving on {stub_vcpus} vCPU(s); domain {} unpaused",
                a.target
            ),
            Err(e) => {
                println!("stub: cannot unpause domain {}: {}", a.target, e.name());
                STOP.store(true, Ordering::Release);
                for id in 1..stub_vcpus {
                    smp::kick(id);
                }
            }
        }
    }
    let mut consumer = SlotConsumer::new();
    let mut async_consumer = (me == 0).then(|| AsyncRingConsumer::new(a.ring));
    let mut watch = (me == 0).then(|| stall::Watch::new(a.nr_target_vcpus, stub_vcpus));
    let mut next_check = time::now_ns();
    let mut next_publish = time::now_ns();
    // Target vCPUs whose answer is published but whose notify failed:
    // Xen reads a FINISH slot only when notified, so until a send gets
    // through that vCPU stays paused. Retried on every pass.
    let mut unsent: Vec<u32> = Vec::new();
    // `spin=`: until then, a blocking vCPU keeps looking instead of
    // waiting. Where the target runs on another pCPU, its next event
    // often comes within microseconds of an answer: caught spinning, it
    // costs no block, no wake-up and no scheduler switch on either side.
    let mut spin_until = 0;
    // A polled vCPU that blocks (no `spin=`) notifies its pass's last
    // answer in the hypercall that waits (boot::sched::send_and_poll):
    // on a short pCPU the target vCPU gets it at once. That answer's
    // audit comes after the notify, at the top of the next pass (like
    // the console drain and vCPU 0's housekeeping, which therefore run
    // before the slots are read, not between an answer and the wait).
    let bundle = polled && cfg.spin_ns == 0;
    let mut held_notify: Option<u32> = None;
    let mut held_audit: Vec<vmevent::AuditRecord> = Vec::new();
    while !STOP.load(Ordering::Acquire) {
        stall::pass();
        // A swap, not a store: it is a full barrier, so the slot loads
        // below cannot be done before the flag is cleared (an event that
        // sets it again after this point is seen by the wait below).
        WORK.get().swap(false, Ordering::AcqRel);
        if polled {
            // Likewise: cleared before the slots are read, so an event
            // from now on leaves its bit set and the poll returns.
            for &p in &ports {
                evtchn::take_pending(p);
            }
        }
        unsent.retain(|&v| notify(stats, a.local_ports[v as usize]).is_err());
        for rec in held_audit.drain(..) {
            audit(cfg, &a.source, &rec);
        }
        // The audit lines so far (and any backlog): what the console
        // takes now, never waiting for it.
        AUDIT.drain();
        if let Some(c) = async_consumer.as_mut() {
            c.poll(u32::MAX, |req| {
                stats.async_events.fetch_add(1, Ordering::Relaxed);
                if req.reason == VM_EVENT_REASON_GUEST_REQUEST || cfg.log == LogMode::All {
                    let mut ignored = VmEventResponse::zeroed();
                    audit(
                        cfg,
                        &a.source,
                        &decide(
                            cfg,
                            policy,
                            stats,
                            req,
                            &mut ignored,
                            false,
                            vmevent::Attribution::None,
                        ),
                    );
                }
            });
            let now = time::now_ns();
            if now >= next_publish {
                next_publish = now + 1_000_000_000;
                control.publish(stats, a.ring.dropped().load(Ordering::Relaxed), false);
            }
            if now >= next_check {
                next_check = now + 200_000_000;
                if let Some(w) = watch.as_mut() {
                    w.check(a, stats, stub_vcpus, now);
                }
                let gone = target_gone(a.target);
                if gone || cfg.stop_requested() || control.shutdown_requested() {
                    if gone {
                        println!("stub: domain {} is gone", a.target);
                    }
                    STOP.store(true, Ordering::Release);
                    for id in 0..stub_vcpus {
                        smp::kick(id);
                    }
                    break;
                }
            }
        }
        for &v in &mine {
            let Some(slot) = a.slots.slot(v) else {
                continue;
            };
            let mut record = None;
            let r = consumer.poll(&slot, v, |req, rsp| {
                // Before the answer is published: the memory is as it was
                // when the event happened only while the vCPU waits. The
                // task first: `comm=` rules decide on it.
                let who = inspector
                    .as_mut()
                    .map_or(vmevent::Attribution::None, |i| i.attribute(req));
                let mut rec = decide(cfg, policy, stats, req, rsp, true, who);
                if let (Some(i), vmevent::PeekRecord::Wanted { gva, len }) =
                    (inspector.as_mut(), rec.peek)
                {
                    rec.peek = i.peek(req, gva, len);
                }
                record = Some(rec);
            });
            let answered = match r {
                SlotPoll::Answered => true,
                SlotPoll::AnsweredMalformed(_) => {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    true
                }
                _ => false,
            };
            if answered {
                // Bundled: the previous answer of this pass goes now, this
                // one with the wait.
                let now = if bundle {
                    held_notify.replace(v)
                } else {
                    Some(v)
                };
                if let Some(v) = now {
                    let port = a.local_ports[v as usize];
                    sent(stats, port, evtchn::send(port), v, &mut unsent);
                }
            }
            if answered && cfg.spin_ns > 0 {
                spin_until = time::now_ns() + cfg.spin_ns;
            }
            // Answered (and notified, unless held for the wait): now the
            // console, or with a held notify, the next pass.
            if let Some(rec) = record {
                if !bundle {
                    audit(cfg, &a.source, &rec);
                } else if shown(cfg, &rec) {
                    held_audit.push(rec);
                }
            }
        }
        // Lines waiting for the console: come back soon to drain them.
        let wait_ns = if AUDIT.waiting() || !held_audit.is_empty() {
            2_000_000
        } else {
            200_000_000
        };
        match cfg.wait {
            _ if !unsent.is_empty() => {
                if let Some(v) = held_notify.take() {
                    let port = a.local_ports[v as usize];
                    sent(stats, port, evtchn::send(port), v, &mut unsent);
                }
                core::hint::spin_loop()
            }
            WaitMode::Poll => core::hint::spin_loop(),
            // (`spin=0`, the default, reads no clock here.)
            WaitMode::Block if cfg.spin_ns > 0 && spin_until > time::now_ns() => {
                core::hint::spin_loop()
            }
            WaitMode::Block if polled => {
                // Bounded, so vCPU 0 keeps checking on the target.
                let deadline = time::now_ns() + wait_ns;
                let waited = match held_notify.take() {
                    Some(v) => {
                        let port = a.local_ports[v as usize];
                        let (r, waited) = boot::sched::send_and_poll(port, &ports, deadline);
                        sent(stats, port, r, v, &mut unsent);
                        waited
                    }
                    None => boot::sched::poll(&ports, deadline),
                };
                if waited.is_err() {
                    core::hint::spin_loop();
                }
            }
            WaitMode::Block => {
                // Bounded, so vCPU 0 keeps checking on the target and
                // on dom0's requests while no event comes.
                time::wait_until_deadline(time::now_ns() + wait_ns, || {
                    WORK.get().load(Ordering::Acquire) || STOP.load(Ordering::Acquire)
                });
            }
        }
    }
    // Answers held for the wait were all sent; their audits not yet
    // (run() flushes the queue).
    for rec in held_audit.drain(..) {
        audit(cfg, &a.source, &rec);
    }
    if let Some(i) = inspector {
        i.finish(me);
    }
}

/// Tells Xen a slot was answered; a failure is counted (and said once).
fn notify(stats: &Stats, port: Port) -> Result<(), XenError> {
    counted(stats, port, evtchn::send(port))
}

/// The result `r` of target vCPU `v`'s notify on `port`: a failure is
/// counted, and `v` waits in `unsent` for the next pass's retry.
fn sent(stats: &Stats, port: Port, r: Result<(), XenError>, v: u32, unsent: &mut Vec<u32>) {
    if counted(stats, port, r).is_err() && !unsent.contains(&v) {
        unsent.push(v);
    }
}

/// A notify's result `r`, its failure counted (and said once).
fn counted(stats: &Stats, port: Port, r: Result<(), XenError>) -> Result<(), XenError> {
    if let Err(e) = r {
        if stats.notify_failed.fetch_add(1, Ordering::Relaxed) == 0 {
            println!(
                "stub: notifying port {port} failed: {} (retried; further failures counted)",
                e.name()
            );
        }
    }
    r
}
