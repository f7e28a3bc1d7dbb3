//! The runtime self-test: prints the command line and memory, brings up
//! every vCPU, checks that an event bound to vCPU k is handled on vCPU k,
//! fires timers, then powers off.
//!
//! Command line (`key=value` tokens):
//! - `selftest`            run the self-test (the default without `target=`)
//! - `ipi_rounds=N`        IPI rounds per vCPU (1..=1000, default 10)
//! - `timers=N`            one-shot timers per vCPU (1..=1000, default 5)
//! - `timer_ms=N`          timer interval in ms (1..=10000, default 10)
//! - `timer_bound_ms=N`    allowed lateness in ms (1..=60000, default 250)
//! - `shadow_fires=N`      timer upcalls per vCPU for the STI shadow check
//!   (0..=100000, default 200; 0 skips it)
//! - `crash=panic|pagefault|ud`  deliberately crash after boot
//! - `crash_vcpu=N`        ... on vCPU N (0..=127, default 0; must exist)
//!
//! A bad command line prints one line naming the field and shuts down with
//! SHUTDOWN_crash (see boot/README.md). A failed self-test also crashes; a
//! passed one powers off.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use boot::cmdline::Cmdline;
use boot::xen::{Port, DOMID_SELF};
use boot::{evtchn, println, sched, smp, time, BootInfo, PerVcpu, MAX_VCPUS};

const KNOWN: &[&str] = &[
    "selftest",
    "ipi_rounds",
    "timers",
    "timer_ms",
    "timer_bound_ms",
    "shadow_fires",
    "crash",
    "crash_vcpu",
];

struct Config {
    ipi_rounds: u64,
    timers: u64,
    timer_ns: u64,
    bound_ns: u64,
    shadow_fires: u64,
    crash: &'static str,
    crash_vcpu: u32,
}

fn parse(c: &Cmdline<'static>) -> Result<Config, boot::cmdline::CmdlineError<'static>> {
    c.validate(KNOWN)?;
    c.flag("selftest")?;
    Ok(Config {
        ipi_rounds: c.number("ipi_rounds", 10, 1, 1000)?,
        timers: c.number("timers", 5, 1, 1000)?,
        timer_ns: c.number("timer_ms", 10, 1, 10_000)? * 1_000_000,
        bound_ns: c.number("timer_bound_ms", 250, 1, 60_000)? * 1_000_000,
        shadow_fires: c.number("shadow_fires", 200, 0, 100_000)?,
        crash: c.choice("crash", "none", &["none", "panic", "pagefault", "ud"])?,
        crash_vcpu: c.number("crash_vcpu", 0, 0, u64::from(smp::nr_vcpus()) - 1)? as u32,
    })
}

static IPI_PORT: PerVcpu<AtomicU32> = PerVcpu::new([const { AtomicU32::new(0) }; MAX_VCPUS]);
static IPI_GOT: PerVcpu<AtomicU64> = PerVcpu::new([const { AtomicU64::new(0) }; MAX_VCPUS]);
static LOOP_GOT: PerVcpu<AtomicU64> = PerVcpu::new([const { AtomicU64::new(0) }; MAX_VCPUS]);
static WRONG_VCPU: AtomicU64 = AtomicU64::new(0);
static FIRED_AT: PerVcpu<AtomicU64> = PerVcpu::new([const { AtomicU64::new(0) }; MAX_VCPUS]);
static MAX_LATE: PerVcpu<AtomicU64> = PerVcpu::new([const { AtomicU64::new(0) }; MAX_VCPUS]);
static EARLY: AtomicU64 = AtomicU64::new(0);
static MAX_EARLY: AtomicU64 = AtomicU64::new(0);
static TIMER_MISSED: AtomicU64 = AtomicU64::new(0);

fn on_ipi(port: Port) {
    if IPI_PORT.get().load(Ordering::Relaxed) != port {
        WRONG_VCPU.fetch_add(1, Ordering::Relaxed);
    }
    IPI_GOT.get().fetch_add(1, Ordering::SeqCst);
    wake_driver();
}

fn on_loopback(port: Port) {
    if evtchn::bound_vcpu(port) != boot::current_vcpu() {
        WRONG_VCPU.fetch_add(1, Ordering::Relaxed);
    }
    LOOP_GOT.get().fetch_add(1, Ordering::SeqCst);
    wake_driver();
}

/// vCPU 0 drives the event tests and sleeps meanwhile: wake it.
fn wake_driver() {
    if boot::current_vcpu() != 0 {
        smp::kick(0);
    }
}

fn on_timer(now: u64) {
    FIRED_AT.get().store(now, Ordering::SeqCst);
}

/// Waits up to `ns` for `cond`; false on timeout.
fn wait_for(ns: u64, cond: impl Fn() -> bool) -> bool {
    time::wait_until_deadline(time::now_ns() + ns, cond)
}

/// Spins (no timer armed, so no upcall but the one under test) for up to
/// `ns`, until `cond`.
fn spin_for(ns: u64, cond: impl Fn() -> bool) -> bool {
    let end = time::now_ns() + ns;
    while time::now_ns() < end {
        if cond() {
            return true;
        }
        core::hint::spin_loop();
    }
    cond()
}

/// A loopback pair `(a, b)`: `a` with the loopback handler, still masked.
fn loopback_pair() -> Result<(Port, Port), boot::xen::XenError> {
    let a = evtchn::alloc_unbound(DOMID_SELF)?;
    let b = evtchn::bind_interdomain(DOMID_SELF, a)?;
    evtchn::set_handler(a, Some(on_loopback))?;
    Ok((a, b))
}

/// Ports that are pending when they are unmasked or moved must still be
/// delivered, and at once: Xen raises them again only when asked right
/// (`EVTCHNOP_unmask` on a port whose mask bit is set). Each case spins
/// without a timer, so a late delivery by some other upcall cannot hide a
/// lost one.
fn pending_port_cases(n: u32) -> bool {
    let mut ok = true;
    // The waits above may have left a one-shot timer armed; its upcall
    // would scan the port's word and deliver by luck.
    let _ = time::stop_timer();
    // Unmask: the event came while masked.
    let before = LOOP_GOT.of(0).load(Ordering::SeqCst);
    let r = loopback_pair().and_then(|(a, b)| {
        evtchn::send(b)?;
        let early = spin_for(20_000_000, || {
            LOOP_GOT.of(0).load(Ordering::SeqCst) > before
        });
        evtchn::unmask(a)?;
        let got = spin_for(50_000_000, || {
            LOOP_GOT.of(0).load(Ordering::SeqCst) > before
        });
        let _ = evtchn::close(a);
        let _ = evtchn::close(b);
        Ok(!early && got)
    });
    let good = r == Ok(true);
    ok &= good;
    println!(
        "pending: unmask delivers an event that came while masked: {}",
        if good { "ok" } else { "LOST" }
    );
    if n < 2 {
        return ok;
    }
    // Moved while pending: the event is raised on vCPU 0, which has
    // interrupts off, and the port is then moved to vCPU 1.
    let before = LOOP_GOT.of(1).load(Ordering::SeqCst);
    let r = loopback_pair().and_then(|(a, b)| {
        evtchn::unmask(a)?;
        let moved = x86_64::instructions::interrupts::without_interrupts(|| {
            evtchn::send(b)?;
            evtchn::bind_vcpu(a, 1)?;
            Ok::<_, boot::xen::XenError>(spin_for(50_000_000, || {
                LOOP_GOT.of(1).load(Ordering::SeqCst) > before
            }))
        })?;
        // And once vCPU 0 takes its upcall, nothing is left for it.
        let late = spin_for(50_000_000, || {
            LOOP_GOT.of(1).load(Ordering::SeqCst) > before
        });
        let _ = evtchn::close(a);
        let _ = evtchn::close(b);
        Ok(moved && late && LOOP_GOT.of(1).load(Ordering::SeqCst) == before + 1)
    });
    let good = r == Ok(true);
    ok &= good;
    println!(
        "pending: bind_vcpu delivers a pending event on the new vCPU once: {}",
        if good { "ok" } else { "LOST" }
    );
    ok
}

/// The self-test mode (see the module documentation).
pub fn main(info: &'static BootInfo<'static>) {
    let cmdline = match Cmdline::from_bytes(info.cmdline) {
        Ok(c) => c,
        Err(e) => boot::config_error(format_args!("stubdom: bad command line: {e}")),
    };
    println!("stubdom: cmdline \"{}\"", cmdline.as_str());
    let cfg = match parse(&cmdline) {
        Ok(c) => c,
        Err(e) => boot::config_error(format_args!("stubdom: bad command line: {e}")),
    };

    for e in info.memmap() {
        println!("stubdom: memmap {} {:?}", e.range, e.kind);
    }
    for (i, m) in info.modules().enumerate() {
        println!(
            "stubdom: module {i} at {:#x}, {} bytes, cmdline \"{}\"",
            m.paddr,
            m.data.len(),
            core::str::from_utf8(m.cmdline).unwrap_or("?")
        );
    }
    let (used, free) = boot::heap::stats();
    println!(
        "stubdom: RAM {} KiB, heap used {} KiB free {} KiB, frames free {} KiB, gfn window {}",
        info.ram_bytes() >> 10,
        used >> 10,
        free >> 10,
        boot::free_ram() >> 10,
        boot::gfn_window().unwrap_or_default()
    );

    if cfg.crash != "none" {
        let (what, on) = (cfg.crash, cfg.crash_vcpu);
        if on == 0 {
            crash_now(what);
        }
        let _ = smp::start_all(|id| {
            if id == on {
                crash_now(what);
            }
            // The others wait for the crash to take the domain down.
            sched::idle_forever();
        });
    }

    let ok = selftest(&cfg);
    if ok {
        println!("stubdom: selftest PASS");
        boot::poweroff();
    } else {
        println!("stubdom: selftest FAIL");
        boot::crash();
    }
}

/// Deliberately dies the way `what` says.
fn crash_now(what: &str) {
    match what {
        "panic" => panic!("deliberate panic requested on the command line"),
        "pagefault" => {
            // Canonical but beyond every mapping (PDPT entry 320 is empty).
            let p = 0x50_0000_0000u64 as *const u64;
            // SAFETY: deliberately unsound: this read must fault (unmapped).
            let v = unsafe { p.read_volatile() };
            println!("stubdom: read {v} from an unmapped address?!");
        }
        // SAFETY: deliberately raises #UD.
        "ud" => unsafe { core::arch::asm!("ud2") },
        _ => {}
    }
}

fn selftest(cfg: &Config) -> bool {
    let mut ok = true;
    let n = smp::nr_vcpus();
    println!("stubdom: {n} vCPU(s), bringing them up");
    let t0 = time::now_ns();
    match smp::bring_up() {
        Ok(online) => println!(
            "stubdom: {online}/{n} vCPUs online in {} us",
            (time::now_ns() - t0) / 1000
        ),
        Err((id, e)) => {
            println!("stubdom: vcpu {id} failed to come up: {e:?}");
            return false;
        }
    }

    // Every vCPU binds an IPI port to itself and reports in.
    let r = smp::start_all(|id| match evtchn::bind_ipi(id) {
        Ok(port) => {
            IPI_PORT.of(id).store(port, Ordering::SeqCst);
            let _ = evtchn::set_handler(port, Some(on_ipi));
            let _ = evtchn::unmask(port);
            println!("stubdom: vcpu {id} online, ipi port {port}");
        }
        Err(e) => println!("stubdom: vcpu {id} online, bind_ipi failed: {e:?}"),
    });
    if r.is_err() {
        return false;
    }

    // IPIs: vCPU 0 sends to every vCPU's port, one at a time.
    for id in 0..n {
        let port = IPI_PORT.of(id).load(Ordering::SeqCst);
        if port == 0 {
            ok = false;
            continue;
        }
        for round in 1..=cfg.ipi_rounds {
            let _ = evtchn::send(port);
            if !wait_for(1_000_000_000, || {
                IPI_GOT.of(id).load(Ordering::SeqCst) >= round
            }) {
                break;
            }
        }
        let got = IPI_GOT.of(id).load(Ordering::SeqCst);
        let good = got == cfg.ipi_rounds;
        ok &= good;
        println!(
            "ipi: vcpu {id} port {port} received {got}/{} {}",
            cfg.ipi_rounds,
            if good { "ok" } else { "MISSING" }
        );
    }

    // EVTCHNOP_bind_vcpu: a loopback interdomain pair per vCPU, the receiving
    // end rebound to vCPU k.
    for id in 0..n {
        let res = loopback_pair().and_then(|(a, b)| {
            evtchn::bind_vcpu(a, id)?;
            evtchn::unmask(a)?;
            Ok((a, b))
        });
        match res {
            Ok((a, b)) => {
                let _ = evtchn::send(b);
                let got = wait_for(1_000_000_000, || {
                    LOOP_GOT.of(id).load(Ordering::SeqCst) >= 1
                });
                ok &= got;
                println!(
                    "bindvcpu: port {a} -> vcpu {id} {}",
                    if got { "ok" } else { "MISSING" }
                );
                let _ = evtchn::close(a);
                let _ = evtchn::close(b);
            }
            Err(e) => {
                ok = false;
                println!("bindvcpu: vcpu {id} setup failed: {e:?}");
            }
        }
    }
    ok &= pending_port_cases(n);
    let wrong = WRONG_VCPU.load(Ordering::SeqCst);
    println!("events: wrong-vcpu deliveries {wrong}");
    ok &= wrong == 0;

    // Timers on every vCPU at once.
    let timers = cfg.timers;
    let interval = cfg.timer_ns;
    let r = smp::start_all(|_id| {
        time::set_callback(Some(on_timer));
        for _ in 0..timers {
            FIRED_AT.get().store(0, Ordering::SeqCst);
            let deadline = time::now_ns() + interval;
            if time::set_timer(deadline).is_err() {
                TIMER_MISSED.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            // Xen fires when *its* clock passes the deadline; ours is
            // extrapolated from this vCPU's vcpu_time_info and may differ a
            // little, so a fire can look early: record that, don't wait on.
            sched::wait_until(|| FIRED_AT.get().load(Ordering::SeqCst) != 0);
            let at = FIRED_AT.get().load(Ordering::SeqCst);
            if at < deadline {
                EARLY.fetch_add(1, Ordering::SeqCst);
                MAX_EARLY.fetch_max(deadline - at, Ordering::SeqCst);
            }
            MAX_LATE
                .get()
                .fetch_max(at.saturating_sub(deadline), Ordering::SeqCst);
        }
        time::set_callback(None);
    });
    if r.is_err() {
        return false;
    }
    let mut worst = 0;
    for id in 0..n {
        let late = MAX_LATE.of(id).load(Ordering::SeqCst);
        worst = worst.max(late);
        println!(
            "timer: vcpu {id} fired {} timers of {} ms, max late {} us",
            timers,
            interval / 1_000_000,
            late / 1000
        );
    }
    let missed = TIMER_MISSED.load(Ordering::SeqCst);
    let early = EARLY.load(Ordering::SeqCst);
    let in_bound = worst <= cfg.bound_ns && missed == 0;
    println!(
        "timer: worst lateness {} us, bound {} us, missed {missed}, early {early} (by <= {} us): {}",
        worst / 1000,
        cfg.bound_ns / 1000,
        MAX_EARLY.load(Ordering::SeqCst) / 1000,
        if in_bound { "ok" } else { "OUT OF BOUND" }
    );
    ok &= in_bound;
    ok &= sti_shadow(cfg.shadow_fires);
    println!(
        "stubdom: runtime up {} ms, unhandled events {}, console drops {}",
        (time::now_ns() - boot::boot_time_ns()) / 1_000_000,
        evtchn::unhandled(),
        boot::console::dropped()
    );
    ok
}

/// Timer upcalls of the STI shadow check, and those taken in the shadow.
static SHADOW_FIRES: PerVcpu<AtomicU64> = PerVcpu::new([const { AtomicU64::new(0) }; MAX_VCPUS]);
static IN_SHADOW: PerVcpu<AtomicU64> = PerVcpu::new([const { AtomicU64::new(0) }; MAX_VCPUS]);
/// The check's timer interval: short, so many upcalls come while the
/// vCPU runs the probe.
const SHADOW_TIMER_NS: u64 = 200_000;

fn on_shadow_timer(now: u64) {
    let rip = boot::percpu::this_cpu().upcall_rip.load(Ordering::Relaxed);
    if boot::hypercall::in_sti_shadow(rip) {
        IN_SHADOW.get().fetch_add(1, Ordering::Relaxed);
    }
    SHADOW_FIRES.get().fetch_add(1, Ordering::Relaxed);
    let _ = time::set_timer(now + SHADOW_TIMER_NS);
}

/// No interrupt is taken in an STI shadow: every vCPU runs `cli; sti;
/// nop` over and over while its timer fires `fires` times, and no upcall
/// may come in at the `nop`. Our idle entry (`sti; nop; vmmcall`) loses
/// its wake-up where one does; a nested hypervisor that drops the shadow
/// across a #VMEXIT (QEMU's VMRUN did: tools/testbed/qemu-patches/0005)
/// lets one in at almost every fire, since the fire's own exit is the
/// one that lands there.
fn sti_shadow(fires: u64) -> bool {
    if fires == 0 {
        return true;
    }
    let r = smp::start_all(|_id| {
        time::set_callback(Some(on_shadow_timer));
        let end = time::now_ns() + 20_000_000_000;
        let _ = time::set_timer(time::now_ns() + SHADOW_TIMER_NS);
        while SHADOW_FIRES.get().load(Ordering::Relaxed) < fires && time::now_ns() < end {
            for _ in 0..64 {
                boot::hypercall::sti_shadow_probe();
            }
        }
        time::set_callback(None);
        let _ = time::stop_timer();
    });
    let mut ok = r.is_ok();
    for id in 0..smp::nr_vcpus() {
        let got = SHADOW_FIRES.of(id).load(Ordering::Relaxed);
        let bad = IN_SHADOW.of(id).load(Ordering::Relaxed);
        let good = got >= fires && bad == 0;
        ok &= good;
        println!(
            "shadow: vcpu {id} {got} timer upcalls, {bad} taken in an STI shadow: {}",
            if good { "ok" } else { "BROKEN" }
        );
    }
    ok
}
