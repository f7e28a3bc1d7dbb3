//! The introspection service: attach to one target with our own hypercalls,
//! serve every vCPU's slot on one of our vCPUs, enforce the policy, audit,
//! and detach leaving the target running.
//!
//! Target vCPU `i`'s port is bound to stub vCPU `i mod N`; each stub vCPU
//! waits for its ports (in `SCHEDOP_poll` on masked ports where they are
//! all it serves, else in `SCHEDOP_block` woken by their upcalls; with
//! `mode=poll` it spins), then answers the slots it owns, then audits. The
//! target runs only once every stub vCPU serves. Answering happens in the
//! vCPU's own loop, not in the upcall, so event handlers stay tiny.

mod config;
use xenctl as xenops;

pub use config::{Config, LogMode, WaitMode};

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use boot::xen::{Port, XenError};
use boot::{evtchn, println, smp, time, PerVcpu, MAX_VCPUS};
use vmevent::abi::domctl::{check_release, Release, XenDomctlMonitorOp};
use vmevent::abi::vm_event::VM_EVENT_REASON_GUEST_REQUEST;
use vmevent::policy::LogLevel;
use vmevent::shm::{AsyncRingPtr, SlotArea};
use vmevent::{AsyncRingConsumer, Policy, SlotConsumer, SlotPoll, VmEventRequest, VmEventResponse};

/// Set by a port's handler for the stub vCPU it is bound to.
static WORK: PerVcpu<AtomicBool> = PerVcpu::new([const { AtomicBool::new(false) }; MAX_VCPUS]);
static STOP: AtomicBool = AtomicBool::new(false);
/// Stub vCPUs in their serving loop.
static SERVING: AtomicU32 = AtomicU32::new(0);

fn on_port(_port: Port) {
    WORK.get().store(true, Ordering::Release);
}

/// Counters, printed at the end (and what the tests compare with the
/// target's own counts).
struct Stats {
    served: AtomicU64,
    denied: AtomicU64,
    malformed: AtomicU64,
    async_events: AtomicU64,
    inject_failed: AtomicU64,
    /// Failed `EVTCHNOP_send`s of an answered slot (each retried).
    notify_failed: AtomicU64,
    /// `[target vCPU][VM_EVENT_REASON_*]`.
    by_vcpu: [[AtomicU64; NR_REASONS]; MAX_VCPUS],
    denied_by_reason: [AtomicU64; NR_REASONS],
}

const NR_REASONS: usize = 16;

/// The kinds the summary names, by `VM_EVENT_REASON_*`.
const REPORTED: [(u32, &str); 5] = [
    (10, "cpuid"),
    (4, "cr"),
    (5, "msr"),
    (6, "int3"),
    (8, "guest_request"),
];

impl Stats {
    const fn new() -> Self {
        Stats {
            served: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            async_events: AtomicU64::new(0),
            inject_failed: AtomicU64::new(0),
            notify_failed: AtomicU64::new(0),
            by_vcpu: [const { [const { AtomicU64::new(0) }; NR_REASONS] }; MAX_VCPUS],
            denied_by_reason: [const { AtomicU64::new(0) }; NR_REASONS],
        }
    }

    fn print(&self, nr_target_vcpus: u32) {
        use core::fmt::Write;
        for (v, counts) in self
            .by_vcpu
            .iter()
            .enumerate()
            .take(nr_target_vcpus as usize)
        {
            let mut line = alloc::format!("stub: vcpu={v}");
            for (r, name) in REPORTED {
                let _ = write!(
                    line,
                    " {name}={}",
                    counts[r as usize].load(Ordering::Relaxed)
                );
            }
            println!("{line}");
        }
        if nr_target_vcpus as usize > MAX_VCPUS {
            println!(
                "stub: vCPUs {MAX_VCPUS}..{nr_target_vcpus} are served but not counted per vCPU"
            );
        }
        let mut line = String::from("stub: denied");
        for (r, name) in REPORTED {
            let _ = write!(
                line,
                " {name}={}",
                self.denied_by_reason[r as usize].load(Ordering::Relaxed)
            );
        }
        println!("{line}");
    }
}

static STATS: Stats = Stats::new();

/// What failed while attaching, as one line for the console.
struct AttachError(String);

fn named(e: XenError, what: &str, target: u16) -> AttachError {
    let why = match e {
        XenError::ESRCH => alloc::format!("no such domain {target}"),
        XenError::EBUSY => alloc::format!("domain {target} is already monitored (EBUSY)"),
        e if e.is_denial() => alloc::format!(
            "not permitted to {what} domain {target} ({}: check the FLASK labels and policy)",
            e.name()
        ),
        e => alloc::format!("{what} domain {target} failed: {}", e.name()),
    };
    AttachError(why)
}

/// Attached state: what must be undone at detach.
struct Attachment {
    target: u16,
    gfns: Vec<u64>,
    local_ports: Vec<Port>,
    monitors: Vec<XenDomctlMonitorOp>,
    slots: SlotArea,
    ring: AsyncRingPtr,
    nr_target_vcpus: u32,
}

/// Refuses a hypervisor whose domctls we cannot speak, before issuing any:
/// Xen would answer each with EACCES, which reads like a FLASK denial.
fn check_hypervisor(cfg: &Config) -> Result<(), AttachError> {
    let (major, minor) = boot::hypercall::xen_version();
    let extra = boot::hypercall::xen_extraversion();
    check_release(
        Release::new(major, minor),
        extra.as_str(),
        cfg.release,
        "this stub",
    )
    .map_err(|m| AttachError(alloc::format!("{m}: not attached")))
}

fn attach(cfg: &Config, policy: &Policy) -> Result<Attachment, AttachError> {
    check_hypervisor(cfg)?;
    let t = cfg.target;
    // Xen answers getdomaininfo with the next domain at or above the id, so
    // for a target that is gone it may check our rights on another one.
    let info = xenops::getdomaininfo(t).map_err(|e| match e {
        e if e.is_denial() => AttachError(alloc::format!(
            "no such domain {t}, or not permitted to inspect it ({}: check the FLASK labels and policy)",
            e.name()
        )),
        _ => named(e, "inspect", t),
    })?;
    if let Some(why) = not_running(&info) {
        return Err(AttachError(alloc::format!(
            "domain {t} {why}: not attached"
        )));
    }
    let monitors = policy.monitors();
    let caps = xenops::monitor_capabilities(t)
        .map_err(|e| named(e, "query monitor capabilities of", t))?;
    if let Err(u) = monitors.check_capabilities(caps) {
        return Err(AttachError(alloc::format!("policy {u}")));
    }
    xenops::pause(t).map_err(|e| named(e, "pause", t))?;
    let mut undo = Undo {
        target: t,
        paused: true,
        channels: false,
        gfns: Vec::new(),
    };

    let ch = xenops::enable_channels(t, cfg.ring_frames).map_err(|e| match e {
        // Stock Xen answers a vm_event op it does not know with ENOSYS.
        XenError::ENOSYS => {
            let (major, minor) = boot::hypercall::xen_version();
            AttachError(alloc::format!(
                "this Xen {major}.{minor} has no vm_event channels (ENOSYS: our patch \
                 series, xen/patches/4.17/, is not applied): not attached"
            ))
        }
        _ => named(e, "enable vm_event channels on", t),
    })?;
    undo.channels = true;
    let n = ch.nr_vcpus;
    if n != info.max_vcpu_id + 1 {
        // Xen 4.17 answers ENABLE on a domain that started to die with
        // success and no slots: say what happened, not what it looks like.
        let now = xenops::getdomaininfo(t);
        if let Some(why) = now.as_ref().ok().and_then(not_running) {
            return Err(AttachError(alloc::format!(
                "domain {t} {why}: not attached"
            )));
        }
        if now.is_err() {
            return Err(AttachError(alloc::format!(
                "domain {t} went away while attaching: not attached"
            )));
        }
        return Err(AttachError(alloc::format!(
            "Xen reports {n} slots for a domain with {} vCPUs",
            info.max_vcpu_id + 1
        )));
    }
    let mut ports = vec![0u32; n as usize];
    let async_port =
        xenops::get_ports(t, &mut ports).map_err(|e| named(e, "get the ports of", t))?;

    let frames = (cfg.ring_frames + ch.slot_frames) as u64;
    let base = boot::alloc_gfns(frames)
        .ok_or_else(|| AttachError("no free guest frames for the channel pages".into()))?;
    let mut gfns: Vec<u64> = (base..base + frames).collect();
    xenops::acquire_channels(t, &mut gfns).map_err(|e| named(e, "map the channels of", t))?;
    undo.gfns = gfns.clone();
    let va = (base << 12) as *mut u8;
    // SAFETY: Xen just mapped R ring frames then S slot frames at these
    // identity-mapped GFNs; they stay mapped until detach removes them.
    let (ring, slots) = unsafe {
        (
            AsyncRingPtr::new(va, cfg.ring_frames),
            SlotArea::new(va.add(cfg.ring_frames as usize * 4096), n),
        )
    };

    let stub_vcpus = smp::nr_vcpus();
    let mut local_ports = Vec::new();
    for (i, &p) in ports
        .iter()
        .chain(core::iter::once(&async_port))
        .enumerate()
    {
        let local =
            evtchn::bind_interdomain(t, p).map_err(|e| named(e, "bind an event channel of", t))?;
        local_ports.push(local);
        let owner = if i < n as usize {
            i as u32 % stub_vcpus
        } else {
            0
        };
        evtchn::bind_vcpu(local, owner).map_err(|e| named(e, "move a port of", t))?;
        // Left masked: each serving vCPU chooses how it waits for its
        // ports (run: `sched::poll` on masked ports, or upcalls).
        evtchn::set_handler(local, Some(on_port)).map_err(|e| named(e, "handle a port of", t))?;
    }
    let ops: Vec<_> = monitors.enable_ops().collect();
    let writes = monitors.cr0.is_some()
        || monitors.cr3.is_some()
        || monitors.cr4.is_some()
        || monitors.nr_msrs > 0;
    if writes {
        // Monitored CR/MSR writes must wait for our answer, or a deny
        // would come too late.
        xenops::monitor(t, XenDomctlMonitorOp::control_registers())
            .map_err(|e| named(e, "hold back monitored writes of", t))?;
    }
    for (k, op) in ops.iter().enumerate() {
        if let Err(e) = xenops::monitor(t, *op) {
            for done in &ops[..k] {
                let _ = xenops::monitor_off(t, *done);
            }
            return Err(named(e, "enable a monitor on", t));
        }
    }
    // Still paused: `run` lets the target go once every stub vCPU serves.
    undo.forget();
    println!(
        "stub: attached to domain {t}: {n} vCPU slot(s) on {stub_vcpus} stub vCPU(s), {} monitor(s), ring {} frame(s), async port {async_port}",
        ops.len(),
        cfg.ring_frames
    );
    Ok(Attachment {
        target: t,
        gfns,
        local_ports,
        monitors: ops,
        slots,
        ring,
        nr_target_vcpus: n,
    })
}

/// Rolls back a half-done attach so the target is never left paused or
/// with channels nobody serves.
struct Undo {
    target: u16,
    paused: bool,
    channels: bool,
    gfns: Vec<u64>,
}

impl Undo {
    fn forget(&mut self) {
        self.paused = false;
        self.channels = false;
        self.gfns.clear();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for g in &self.gfns {
            let _ = xenops::remove_from_physmap(*g);
        }
        if self.channels {
            let _ = xenops::disable_channels(self.target);
        }
        if self.paused {
            let _ = xenops::unpause(self.target);
        }
    }
}

fn detach(a: &Attachment) {
    for op in &a.monitors {
        let _ = xenops::monitor_off(a.target, *op);
    }
    for p in &a.local_ports {
        let _ = evtchn::close(*p);
    }
    for g in &a.gfns {
        let _ = xenops::remove_from_physmap(*g);
    }
    match xenops::disable_channels(a.target) {
        Ok(()) => println!(
            "stub: detached from domain {}: monitors off, channels disabled",
            a.target
        ),
        // Xen freed the channels with the domain.
        Err(XenError::ESRCH) => println!(
            "stub: detached from domain {}: it is gone, nothing left to disable",
            a.target
        ),
        Err(e) => println!(
            "stub: detaching from domain {}: disable failed: {}",
            a.target,
            e.name()
        ),
    }
    if let Some(g) = a.gfns.first() {
        boot::free_gfns(*g, a.gfns.len() as u64);
    }
}

fn audit(cfg: &Config, rec: &vmevent::AuditRecord) {
    let show = match cfg.log {
        LogMode::All => true,
        LogMode::Violations => rec.level >= LogLevel::Warn || rec.action == "deny",
        LogMode::None => false,
    };
    if show {
        let mut buf = [0u8; 512];
        if let Some(line) = rec.write_json(&mut buf) {
            println!("{line}");
        }
    }
}

/// Answers one request with the policy and counts it; returns its audit
/// record, printed by the caller once the answer is out (the target vCPU
/// must not wait for the console). `sync`: it came from a slot (and is
/// counted as served); async events are counted by kind only.
fn decide(
    cfg: &Config,
    policy: &Policy,
    stats: &Stats,
    req: &VmEventRequest,
    rsp: &mut VmEventResponse,
    sync: bool,
) -> vmevent::AuditRecord {
    let verdict = policy.evaluate(req, rsp);
    if let Some(ev) = verdict.inject {
        // Before the answer is published, so the trap is pending when the
        // vCPU resumes.
        if let Err(e) = xenops::inject_event(cfg.target, ev) {
            stats.inject_failed.fetch_add(1, Ordering::Relaxed);
            if stats.inject_failed.load(Ordering::Relaxed) == 1 {
                println!(
                    "stub: reinjecting a trap failed: {} (further failures counted)",
                    e.name()
                );
            }
        }
    }
    let reason = req.reason as usize % NR_REASONS;
    if sync {
        stats.served.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(v) = stats.by_vcpu.get(req.vcpu_id as usize) {
        v[reason].fetch_add(1, Ordering::Relaxed);
    }
    if verdict.audit.action == "deny" {
        stats.denied.fetch_add(1, Ordering::Relaxed);
        stats.denied_by_reason[reason].fetch_add(1, Ordering::Relaxed);
    }
    verdict.audit
}

/// dom0's view of the stub: the PV shutdown protocol (`xl shutdown`) and
/// counters under the stub's own xenstore path (`data/vmi/*`).
struct Control {
    xs: Option<xenstore::Xenstore>,
}

impl Control {
    fn connect() -> Control {
        match xenstore::Xenstore::connect() {
            Ok(xs) => {
                let _ = xs.advertise_poweroff();
                if let Err(e) = xs.watch_shutdown() {
                    println!("stub: xenstore: cannot watch control/shutdown: {e:?}");
                }
                Control { xs: Some(xs) }
            }
            Err(e) => {
                println!(
                    "stub: xenstore unavailable ({e:?}): no xl shutdown, no published counters"
                );
                Control { xs: None }
            }
        }
    }

    /// True once dom0 asked us to shut down (poweroff, halt or reboot).
    fn shutdown_requested(&self) -> bool {
        let Some(xs) = &self.xs else { return false };
        match xs.poll_watch() {
            Some(ev) if ev.token == xenstore::SHUTDOWN_TOKEN => {
                matches!(xs.take_shutdown_request(), Ok(Some(_)))
            }
            _ => false,
        }
    }

    /// Publishes the counters. While serving (`wait: false`) the writes
    /// are posted, never waited for: vCPU 0 serves slots too. The last
    /// publish, after the detach, waits for each.
    fn publish(&self, stats: &Stats, dropped: u32, wait: bool) {
        let Some(xs) = &self.xs else { return };
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (key, v) in [
            ("data/vmi/served", n(&stats.served)),
            ("data/vmi/denied", n(&stats.denied)),
            ("data/vmi/malformed", n(&stats.malformed)),
            ("data/vmi/async", n(&stats.async_events)),
            ("data/vmi/dropped", u64::from(dropped)),
        ] {
            let v = alloc::format!("{v}");
            let _ = if wait {
                xs.write_str(key, &v)
            } else {
                xs.post_write(key, v.as_bytes())
            };
        }
    }
}

/// Runs the service; returns when the target is gone or the stub is asked
/// to stop. `Err` is a one-line reason the attach failed.
pub fn run(cfg: &Config, policy: &Policy) -> Result<(), String> {
    let control = Control::connect();
    let a = attach(cfg, policy).map_err(|e| e.0)?;
    if let Some(xs) = &control.xs {
        let _ = xs.write_str("data/vmi/target", &alloc::format!("{}", a.target));
    }
    let stats = &STATS;
    let stub_vcpus = smp::nr_vcpus();
    let started = time::now_ns();
    let res = smp::start_all(|me| {
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
        let mut next_check = time::now_ns();
        let mut next_publish = time::now_ns();
        // Target vCPUs whose answer is published but whose notify failed:
        // Xen reads a FINISH slot only when notified, so until a send gets
        // through that vCPU stays paused. Retried on every pass.
        let mut unsent: Vec<u32> = Vec::new();
        while !STOP.load(Ordering::Acquire) {
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
            for &v in &mine {
                let Some(slot) = a.slots.slot(v) else {
                    continue;
                };
                let mut record = None;
                let r = consumer.poll(&slot, v, |req, rsp| {
                    record = Some(decide(cfg, policy, stats, req, rsp, true));
                });
                let answered = match r {
                    SlotPoll::Answered => true,
                    SlotPoll::AnsweredMalformed(_) => {
                        stats.malformed.fetch_add(1, Ordering::Relaxed);
                        true
                    }
                    _ => false,
                };
                if answered
                    && notify(stats, a.local_ports[v as usize]).is_err()
                    && !unsent.contains(&v)
                {
                    unsent.push(v);
                }
                // Answered and notified: now the console.
                if let Some(rec) = record {
                    audit(cfg, &rec);
                }
            }
            if let Some(c) = async_consumer.as_mut() {
                c.poll(u32::MAX, |req| {
                    stats.async_events.fetch_add(1, Ordering::Relaxed);
                    if req.reason == VM_EVENT_REASON_GUEST_REQUEST || cfg.log == LogMode::All {
                        let mut ignored = VmEventResponse::zeroed();
                        audit(cfg, &decide(cfg, policy, stats, req, &mut ignored, false));
                    }
                });
                let now = time::now_ns();
                if now >= next_publish {
                    next_publish = now + 1_000_000_000;
                    control.publish(stats, a.ring.dropped().load(Ordering::Relaxed), false);
                }
                if now >= next_check {
                    next_check = now + 200_000_000;
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
            match cfg.wait {
                _ if !unsent.is_empty() => core::hint::spin_loop(),
                WaitMode::Poll => core::hint::spin_loop(),
                WaitMode::Block if polled => {
                    // Bounded, so vCPU 0 keeps checking on the target.
                    if boot::sched::poll(&ports, time::now_ns() + 200_000_000).is_err() {
                        core::hint::spin_loop();
                    }
                }
                WaitMode::Block => {
                    // Bounded, so vCPU 0 keeps checking on the target and
                    // on dom0's requests while no event comes.
                    time::wait_until_deadline(time::now_ns() + 200_000_000, || {
                        WORK.get().load(Ordering::Acquire) || STOP.load(Ordering::Acquire)
                    });
                }
            }
        }
    });
    if let Err((id, e)) = res {
        // Nothing served: the target is still paused by us.
        println!("stub: vCPU {id} did not come up: {}", e.name());
        let _ = xenops::unpause(a.target);
    }
    // The pages go with the detach: read what we report first.
    let dropped = a.ring.dropped().load(Ordering::Relaxed);
    detach(&a);
    control.publish(stats, dropped, true);
    let secs = (time::now_ns() - started) as f64 / 1e9;
    println!(
        "stub: served {} sync event(s) ({} denied, {} malformed) and {} async event(s) in {secs:.1} s; async ring dropped {dropped}",
        stats.served.load(Ordering::Relaxed),
        stats.denied.load(Ordering::Relaxed),
        stats.malformed.load(Ordering::Relaxed),
        stats.async_events.load(Ordering::Relaxed),
    );
    stats.print(a.nr_target_vcpus);
    Ok(())
}

/// Tells Xen a slot was answered; a failure is counted (and said once).
fn notify(stats: &Stats, port: Port) -> Result<(), XenError> {
    let r = evtchn::send(port);
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

/// Why a domain cannot be (or stay) monitored: it is dying, or it has shut
/// down and waits for the toolstack to destroy or restart it.
fn not_running(i: &vmevent::abi::domctl::XenDomctlGetdomaininfo) -> Option<String> {
    use vmevent::abi::domctl::{
        XEN_DOMINF_DYING, XEN_DOMINF_SHUTDOWN, XEN_DOMINF_SHUTDOWNMASK, XEN_DOMINF_SHUTDOWNSHIFT,
    };
    if i.flags & XEN_DOMINF_DYING != 0 {
        return Some("is dying".into());
    }
    if i.flags & XEN_DOMINF_SHUTDOWN != 0 {
        let code = (i.flags >> XEN_DOMINF_SHUTDOWNSHIFT) & XEN_DOMINF_SHUTDOWNMASK;
        return Some(alloc::format!("has shut down (reason code {code})"));
    }
    None
}

/// The target died, or shut down and waits to be destroyed.
fn target_gone(t: u16) -> bool {
    xenops::getdomaininfo(t).map_or(true, |i| not_running(&i).is_some())
}
