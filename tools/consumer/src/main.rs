//! `vmi-consumer`: a dom0 vm_event consumer.
//!
//! ```text
//! vmi-consumer <domid> [--ring | --channels] [--cpuid] [--guest-request]
//!              [--ring-frames R] [--seconds N]
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

mod xen;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vmevent::abi::domctl::{XenDomctl, XEN_DOMCTL_VM_EVENT_OP_MONITOR, XEN_VM_EVENT_DISABLE};
use vmevent::abi::memory::XENMEM_RESOURCE_VM_EVENT;
use vmevent::abi::vm_event::{VM_EVENT_REASON_CPUID, VM_EVENT_REASON_GUEST_REQUEST};
use vmevent::shm::{AsyncRingPtr, SlotArea, StockRingPtr};
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
}

struct Options {
    domid: u32,
    mode: Mode,
    cpuid: bool,
    guest_request: bool,
    ring_frames: u32,
    seconds: Option<u64>,
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
        ring_frames: 1,
        seconds: None,
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
            "--ring-frames" => o.ring_frames = num("--ring-frames")? as u32,
            "--seconds" => o.seconds = Some(num("--seconds")?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !o.cpuid && !o.guest_request {
        return Err("nothing to monitor: give --cpuid and/or --guest-request".into());
    }
    Ok(o)
}

/// Per-vCPU counters, printed at the end.
#[derive(Default)]
struct Counts {
    cpuid: AtomicU64,
    guest_request: AtomicU64,
    other: AtomicU64,
}

fn answer(req: &VmEventRequest, counts: &Counts) -> VmEventResponse {
    match req.reason {
        VM_EVENT_REASON_CPUID => {
            counts.cpuid.fetch_add(1, Ordering::Relaxed);
            ResponseBuilder::for_request(req)
                .cpuid(req, [None; 4])
                .build()
        }
        VM_EVENT_REASON_GUEST_REQUEST => {
            counts.guest_request.fetch_add(1, Ordering::Relaxed);
            ResponseBuilder::for_request(req).build()
        }
        _ => {
            counts.other.fetch_add(1, Ordering::Relaxed);
            ResponseBuilder::for_request(req).build()
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
        xc.monitor_guest_request(o.domid, on)?;
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
        let r = consumer.poll(|req| answer(req, &counts));
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
    let frames = u64::from(o.ring_frames + en.slot_frames);
    let res = xen::Resource::map(
        domid,
        u32::from(XENMEM_RESOURCE_VM_EVENT),
        XEN_DOMCTL_VM_EVENT_OP_MONITOR,
        frames,
    )
    .map_err(|e| e.to_string())?;
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
                while running(deadline) {
                    match consumer.poll(&slot, vcpu as u32, |req| answer(req, counts)) {
                        SlotPoll::Answered | SlotPoll::AnsweredMalformed(_) => {
                            let _ = ev.notify(local);
                        }
                        _ => {
                            let _ = ev.wait(100);
                        }
                    }
                }
                ev.unbind(local);
                Ok(())
            }));
        }
        let (ring, async_events) = (&ring, &async_events);
        workers.push(s.spawn(move || -> Result<(), String> {
            let ev = xen::Evtchn::open().map_err(|e| e.to_string())?;
            let local = ev
                .bind_interdomain(o.domid, got.async_port)
                .map_err(|e| e.to_string())?;
            let mut consumer = AsyncRingConsumer::new(*ring);
            while running(deadline) {
                let _ = ev.wait(100);
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
    drop(res);
    let disabled = dc.issue(&XenDomctl::vm_event_op(domid, XEN_VM_EVENT_DISABLE));
    result?;
    disabled.map_err(|e| format!("disabling the channels: {e}"))?;
    println!(
        "consumer: async ring: {} event(s), {} dropped by Xen",
        async_events.load(Ordering::Relaxed),
        ring.dropped().load(Ordering::Relaxed)
    );
    Ok(counts)
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
        // Pause while setting up, so no event is missed and none waits on a
        // consumer that is not there yet.
        xc.pause(o.domid).map_err(|e| e.to_string())?;
        let r = match o.mode {
            Mode::Ring => serve_ring(&xc, &o, deadline),
            Mode::Channels => serve_channels(&xc, &o, deadline),
        };
        if r.is_err() {
            let _ = xc.unpause(o.domid);
        }
        r
    };
    match run() {
        Ok(counts) => {
            for (i, c) in counts.iter().enumerate() {
                println!(
                    "consumer: vcpu={i} cpuid={} guest_request={} other={}",
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
