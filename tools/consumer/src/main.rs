//! `vmi-consumer`: a dom0 vm_event consumer.
//!
//! ```text
//! vmi-consumer <domid> [--ring | --channels] [--cpuid] [--guest-request]
//!              [--guest-request-async] [--ring-frames R] [--seconds N]
//!              [--async-stall N] [--hostile MODE]
//! vmi-consumer <domid> --disable
//! vmi-consumer <domid> --cycles N
//! ```
//!
//! `--channels` (default) uses our Xen patch: `ENABLE_CHANNELS`, the
//! `XENMEM_resource_vm_event` mapping, one thread per target vCPU each
//! blocked on that vCPU's port, and one thread draining the async ring.
//! `--ring` uses Xen's stock 8-entry ring through libxenctrl, one thread.
//! Either way it answers CPUID events with Xen's own result (moving rip past
//! the instruction) and guest requests with a plain unpause, and prints one
//! `consumer:` line per target vCPU with its counts when it stops (SIGINT,
//! SIGTERM, or after `--seconds`).
//!
//! Test modes (they exist to prove Xen survives a bad consumer):
//! `--async-stall N` leaves the async ring alone for N seconds so Xen must
//! drop; `--hostile garbage|vcpu|version|flood` answers wrongly (state words
//! that are no state, responses naming another vCPU, a bad interface
//! version, a storm of notifications); `--disable` only disables the
//! channels (after a consumer was killed); `--cycles N` enables, maps,
//! unmaps and disables N times.

mod xen;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vmevent::abi::channels::{VM_EVENT_SLOT_FINISH, VM_EVENT_SLOT_SUBMIT};
use vmevent::abi::domctl::{XenDomctl, XEN_DOMCTL_VM_EVENT_OP_MONITOR, XEN_VM_EVENT_DISABLE};
use vmevent::abi::memory::XENMEM_RESOURCE_VM_EVENT;
use vmevent::abi::vm_event::{VM_EVENT_REASON_CPUID, VM_EVENT_REASON_GUEST_REQUEST};
use vmevent::shm::{AsyncRingPtr, SlotArea, SlotMem, SlotPtr, StockRingPtr};
use vmevent::{AsyncRingConsumer, ResponseBuilder, SlotConsumer, SlotPoll, StockRingConsumer};
use vmevent::{VmEventRequest, VmEventResponse};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ring,
    Channels,
    Disable,
    Cycles(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hostile {
    /// State words that are no state.
    Garbage,
    /// Responses that name another vCPU.
    Vcpu,
    /// Responses with a bad interface version.
    Version,
    /// A notification storm on every port, with honest answers.
    Flood,
}

struct Options {
    domid: u32,
    mode: Mode,
    cpuid: bool,
    guest_request: bool,
    guest_request_async: bool,
    ring_frames: u32,
    seconds: Option<u64>,
    async_stall: u64,
    hostile: Option<Hostile>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    let domid = it
        .next()
        .ok_or("usage: vmi-consumer <domid> [--ring|--channels] [--cpuid] [--guest-request] [--ring-frames R] [--seconds N]")?
        .parse()
        .map_err(|_| "the domain id must be a number".to_string())?;
    let mut o = Options {
        domid,
        mode: Mode::Channels,
        cpuid: false,
        guest_request: false,
        guest_request_async: false,
        ring_frames: 1,
        seconds: None,
        async_stall: 0,
        hostile: None,
    };
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match a.as_str() {
            "--ring" => o.mode = Mode::Ring,
            "--channels" => o.mode = Mode::Channels,
            "--cpuid" => o.cpuid = true,
            "--guest-request" => o.guest_request = true,
            "--guest-request-async" => {
                o.guest_request = true;
                o.guest_request_async = true;
            }
            "--async-stall" => o.async_stall = num("--async-stall")?,
            "--disable" => o.mode = Mode::Disable,
            "--cycles" => o.mode = Mode::Cycles(num("--cycles")? as u32),
            "--hostile" => {
                o.hostile = Some(match it.next().map(String::as_str) {
                    Some("garbage") => Hostile::Garbage,
                    Some("vcpu") => Hostile::Vcpu,
                    Some("version") => Hostile::Version,
                    Some("flood") => Hostile::Flood,
                    _ => return Err("--hostile takes garbage, vcpu, version or flood".into()),
                })
            }
            "--ring-frames" => o.ring_frames = num("--ring-frames")? as u32,
            "--seconds" => o.seconds = Some(num("--seconds")?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let serving = matches!(o.mode, Mode::Ring | Mode::Channels);
    if serving && !o.cpuid && !o.guest_request {
        return Err("nothing to monitor: give --cpuid and/or --guest-request".into());
    }
    Ok(o)
}

/// CPUID leaves counted one by one (the test guest's leaves are in here).
const COUNTED_LEAVES: [u32; 4] = [0x6, 0xa, 0x8000_0007, 0x4000_0100];

/// Per-vCPU counters, printed at the end.
#[derive(Default)]
struct Counts {
    cpuid: AtomicU64,
    by_leaf: [AtomicU64; COUNTED_LEAVES.len()],
    guest_request: AtomicU64,
    other: AtomicU64,
}

fn answer(req: &VmEventRequest, rsp: &mut VmEventResponse, counts: &Counts) {
    let b = ResponseBuilder::for_request(rsp, req);
    match req.reason {
        VM_EVENT_REASON_CPUID => {
            counts.cpuid.fetch_add(1, Ordering::Relaxed);
            let leaf = req.cpuid().leaf;
            if let Some(i) = COUNTED_LEAVES.iter().position(|l| *l == leaf) {
                counts.by_leaf[i].fetch_add(1, Ordering::Relaxed);
            }
            b.cpuid(req, [None; 4]);
        }
        VM_EVENT_REASON_GUEST_REQUEST => {
            counts.guest_request.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            counts.other.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn running(deadline: Option<Instant>) -> bool {
    !STOP.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d)
}

fn enable_monitors(xc: &xen::Xc, o: &Options, on: bool) -> std::io::Result<()> {
    if o.cpuid {
        xc.monitor_cpuid(o.domid, on)?;
    }
    if o.guest_request {
        xc.monitor_guest_request(o.domid, on, !o.guest_request_async)?;
    }
    Ok(())
}

fn serve_ring(xc: &xen::Xc, o: &Options, deadline: Option<Instant>) -> Result<Vec<Counts>, String> {
    let (page, port) = xc.monitor_enable(o.domid).map_err(|e| e.to_string())?;
    // SAFETY: libxenctrl mapped one page for us; it stays mapped until
    // xc_monitor_disable, after the consumer is gone.
    let ring = unsafe { StockRingPtr::new(page) };
    ring.init();
    let mut consumer = StockRingConsumer::new(ring);
    let ev = xen::Evtchn::open().map_err(|e| e.to_string())?;
    let local = ev
        .bind_interdomain(o.domid, port)
        .map_err(|e| e.to_string())?;
    enable_monitors(xc, o, true).map_err(|e| e.to_string())?;
    xc.unpause(o.domid).map_err(|e| e.to_string())?;
    println!(
        "consumer: serving domain {} on the stock ring (port {port})",
        o.domid
    );
    let counts = Counts::default();
    while running(deadline) {
        let _ = ev.wait(100);
        let r = consumer.poll(|req, rsp| answer(req, rsp, &counts));
        if r.notify {
            let _ = ev.notify(local);
        }
    }
    let _ = enable_monitors(xc, o, false);
    ev.unbind(local);
    xc.monitor_disable(o.domid).map_err(|e| e.to_string())?;
    Ok(vec![counts])
}

fn serve_channels(
    xc: &xen::Xc,
    o: &Options,
    deadline: Option<Instant>,
) -> Result<Vec<Counts>, String> {
    let domid = o.domid as u16;
    let dc = xen::Domctl::open().map_err(|e| e.to_string())?;
    let en = dc
        .issue(&XenDomctl::enable_channels(domid, o.ring_frames))
        .map_err(|e| format!("ENABLE_CHANNELS: {e}"))?
        .vm_event_op_out()
        .channels();
    let n = en.nr_vcpus;
    let ports_buf = dc.alloc_u32s(n as usize).map_err(|e| e.to_string())?;
    let got = dc
        .issue(&XenDomctl::get_ports(domid, ports_buf as u64, n))
        .map_err(|e| format!("GET_PORTS: {e}"))?
        .vm_event_op_out()
        .ports();
    // SAFETY: Xen wrote `n` ports into the buffer we gave it.
    let ports: Vec<u32> = (0..n as usize)
        .map(|i| unsafe { ports_buf.add(i).read() })
        .collect();
    let res = map_channels(domid, o.ring_frames + en.slot_frames).map_err(|e| e.to_string())?;
    // SAFETY: the mapping holds R ring frames then S slot frames (ABI).
    let (ring, slots) = unsafe {
        (
            AsyncRingPtr::new(res.addr, o.ring_frames),
            SlotArea::new(res.addr.add(o.ring_frames as usize * 4096), n),
        )
    };
    println!(
        "consumer: serving domain {} through channels: {n} vCPU slot(s), async port {}, ports {ports:?}",
        o.domid, got.async_port
    );
    let counts: Vec<Counts> = (0..n).map(|_| Counts::default()).collect();
    let async_events = AtomicU64::new(0);
    let seen_dropped = std::sync::atomic::AtomicU32::new(0);
    let result = std::thread::scope(|s| -> Result<(), String> {
        let mut workers = Vec::new();
        for (vcpu, &port) in ports.iter().enumerate() {
            let (slots, counts) = (&slots, &counts[vcpu]);
            workers.push(s.spawn(move || -> Result<(), String> {
                let ev = xen::Evtchn::open().map_err(|e| e.to_string())?;
                let local = ev
                    .bind_interdomain(o.domid, port)
                    .map_err(|e| e.to_string())?;
                let slot = slots.slot(vcpu as u32).ok_or("no slot")?;
                let mut consumer = SlotConsumer::new();
                let mut tick = 0u32;
                while running(deadline) {
                    tick = tick.wrapping_add(1);
                    if let Some(h) = o.hostile {
                        hostile_step(h, &slot, vcpu as u32, n, tick, counts);
                        let _ = ev.notify(local);
                        if h != Hostile::Flood {
                            let _ = ev.wait(10);
                            continue;
                        }
                    }
                    match consumer.poll(&slot, vcpu as u32, |req, rsp| answer(req, rsp, counts)) {
                        SlotPoll::Answered | SlotPoll::AnsweredMalformed(_) => {
                            let _ = ev.notify(local);
                        }
                        _ => {
                            if o.hostile.is_none() {
                                let _ = ev.wait(100);
                            }
                        }
                    }
                }
                ev.unbind(local);
                Ok(())
            }));
        }
        let (ring, async_events, seen_dropped) = (&ring, &async_events, &seen_dropped);
        workers.push(s.spawn(move || -> Result<(), String> {
            let ev = xen::Evtchn::open().map_err(|e| e.to_string())?;
            let local = ev
                .bind_interdomain(o.domid, got.async_port)
                .map_err(|e| e.to_string())?;
            let mut consumer = AsyncRingConsumer::new(*ring);
            let stall_until = Instant::now() + Duration::from_secs(o.async_stall);
            while running(deadline) {
                let _ = ev.wait(100);
                // Xen scrubs the pages when the channels close (and the
                // target may die first): keep the drop count as it goes.
                seen_dropped.fetch_max(ring.dropped().load(Ordering::Relaxed), Ordering::Relaxed);
                if Instant::now() < stall_until {
                    continue;
                }
                consumer.poll(u32::MAX, |_| {
                    async_events.fetch_add(1, Ordering::Relaxed);
                });
            }
            ev.unbind(local);
            Ok(())
        }));
        // Serving threads are bound; now let the target run.
        std::thread::sleep(Duration::from_millis(200));
        enable_monitors(xc, o, true).map_err(|e| e.to_string())?;
        xc.unpause(o.domid).map_err(|e| e.to_string())?;
        for w in workers {
            w.join()
                .map_err(|_| "a serving thread panicked".to_string())??;
        }
        Ok(())
    });
    let _ = enable_monitors(xc, o, false);
    // Read what we report from the pages before they are unmapped (and
    // what the async thread saw, in case Xen has scrubbed them already).
    let dropped = ring
        .dropped()
        .load(Ordering::Relaxed)
        .max(seen_dropped.load(Ordering::Relaxed));
    drop(res);
    let disabled = match dc.issue(&XenDomctl::vm_event_op(domid, XEN_VM_EVENT_DISABLE)) {
        // The target is gone: Xen tore the channels down with it.
        Err(e) if e.errno == libc::ESRCH => Ok(()),
        r => r.map(drop),
    };
    result?;
    disabled.map_err(|e| format!("disabling the channels: {e}"))?;
    println!(
        "consumer: async ring: {} event(s), {dropped} dropped by Xen",
        async_events.load(Ordering::Relaxed)
    );
    Ok(counts)
}

/// One round of misbehaviour on a slot. Xen must ignore or count all of it
/// and keep running; the target's vCPU may stay paused until the channels
/// are disabled.
fn hostile_step(h: Hostile, slot: &SlotPtr, vcpu: u32, nr_vcpus: u32, tick: u32, counts: &Counts) {
    let state = slot.load_state(Ordering::Acquire);
    match h {
        Hostile::Garbage => {
            // Anything but a state, and sometimes a FINISH over nothing.
            let v = if tick.is_multiple_of(3) {
                VM_EVENT_SLOT_FINISH
            } else {
                0xdead_0000 | tick
            };
            slot.store_state(v, Ordering::Release);
        }
        Hostile::Vcpu | Hostile::Version if state == VM_EVENT_SLOT_SUBMIT => {
            let req = slot.read_event();
            let mut rsp = VmEventResponse::zeroed();
            answer(&req, &mut rsp, counts);
            if h == Hostile::Vcpu {
                rsp.vcpu_id = (vcpu + 1) % nr_vcpus.max(2);
            } else {
                rsp.version = 0xbad;
            }
            slot.write_event(&rsp);
            slot.store_state(VM_EVENT_SLOT_FINISH, Ordering::Release);
        }
        _ => {}
    }
}

fn disable(o: &Options) -> Result<Vec<Counts>, String> {
    let dc = xen::Domctl::open().map_err(|e| e.to_string())?;
    dc.issue(&XenDomctl::vm_event_op(
        o.domid as u16,
        XEN_VM_EVENT_DISABLE,
    ))
    .map_err(|e| format!("disabling the channels: {e}"))?;
    println!("consumer: channels of domain {} disabled", o.domid);
    Ok(Vec::new())
}

/// Maps all `frames` of the target's channels (ring then slots) in one call,
/// so a multi-frame async ring is virtually contiguous.
fn map_channels(domid: u16, frames: u32) -> std::io::Result<xen::Resource> {
    xen::Resource::map(
        domid,
        u32::from(XENMEM_RESOURCE_VM_EVENT),
        XEN_DOMCTL_VM_EVENT_OP_MONITOR,
        u64::from(frames),
    )
}

/// Enable, map, unmap, disable, `n` times: nothing may leak.
fn cycles(o: &Options, n: u32) -> Result<Vec<Counts>, String> {
    let domid = o.domid as u16;
    let dc = xen::Domctl::open().map_err(|e| e.to_string())?;
    for i in 0..n {
        let en = dc
            .issue(&XenDomctl::enable_channels(domid, o.ring_frames))
            .map_err(|e| format!("cycle {i}: ENABLE_CHANNELS: {e}"))?
            .vm_event_op_out()
            .channels();
        drop(
            map_channels(domid, o.ring_frames + en.slot_frames)
                .map_err(|e| format!("cycle {i}: {e}"))?,
        );
        dc.issue(&XenDomctl::vm_event_op(domid, XEN_VM_EVENT_DISABLE))
            .map_err(|e| format!("cycle {i}: DISABLE: {e}"))?;
    }
    println!(
        "consumer: {n} enable/map/unmap/disable cycles on domain {}",
        o.domid
    );
    Ok(Vec::new())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vmi-consumer: {e}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let deadline = o.seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let run = || -> Result<Vec<Counts>, String> {
        let xc = xen::Xc::open().map_err(|e| e.to_string())?;
        let serve = match o.mode {
            Mode::Ring => serve_ring,
            Mode::Channels => serve_channels,
            Mode::Disable => return disable(&o),
            Mode::Cycles(n) => return cycles(&o, n),
        };
        // Pause while setting up, so no event is missed and none waits on a
        // consumer that is not there yet.
        xc.pause(o.domid).map_err(|e| e.to_string())?;
        let r = serve(&xc, &o, deadline);
        if r.is_err() {
            let _ = xc.unpause(o.domid);
        }
        r
    };
    match run() {
        Ok(counts) => {
            for (i, c) in counts.iter().enumerate() {
                let mut leaves = String::new();
                for (l, n) in COUNTED_LEAVES.iter().zip(&c.by_leaf) {
                    leaves.push_str(&format!(" leaf.{l:#x}={}", n.load(Ordering::Relaxed)));
                }
                println!(
                    "consumer: vcpu={i} cpuid={} guest_request={} other={}{leaves}",
                    c.cpuid.load(Ordering::Relaxed),
                    c.guest_request.load(Ordering::Relaxed),
                    c.other.load(Ordering::Relaxed)
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vmi-consumer: domain {}: {e}", o.domid);
            ExitCode::FAILURE
        }
    }
}
