//! Test kernel for the `xenstore` client against the real xenstored of the
//! nested bed. It connects, prints its domid and home path, publishes
//! `data/vmi/hello` = "world", runs self-checks (one `xskernel: check NAME
//! ok` line each, or `FAILED`), advertises `control/feature-poweroff`,
//! watches `control/shutdown`, prints `xskernel: ready` and waits for the
//! toolstack: on `poweroff` (or `halt`) it acknowledges, prints
//! `xskernel: shutdown requested: poweroff` and powers off. While idle it
//! writes `data/vmi/heartbeat` every second and reports a timed-out write
//! (`xskernel: heartbeat timeout`) and the recovery after it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use boot::{println, BootInfo};
use xenstore::{Errno, Error, ShutdownRequest, Xenstore, SHUTDOWN_TOKEN};

boot::entry!(main);

static FAILED: AtomicU32 = AtomicU32::new(0);

fn check(name: &str, r: Result<(), String>) {
    match r {
        Ok(()) => println!("xskernel: check {name} ok"),
        Err(e) => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            println!("xskernel: check {name} FAILED: {e}");
        }
    }
}

fn s(e: Error) -> String {
    format!("{e}")
}

fn main(_info: &'static BootInfo<'static>) {
    let xs = match Xenstore::connect() {
        Ok(x) => x,
        Err(e) => {
            println!("xskernel: connect failed: {e}");
            boot::crash();
        }
    };
    println!("xskernel: domid {} path {}", xs.domid(), xs.home());

    check("hello", hello(&xs));
    check("enoent", enoent(&xs));
    check("big", big(&xs));
    check("quota", quota(&xs));
    check("directory", directory(&xs));
    check("rm", rm(&xs));
    check("badpath", badpath(&xs));
    check("watch", watch(&xs));
    check("vcpu1", other_vcpu(&xs));
    check("latency", latency(&xs));
    check("timeout", timeout(&xs));
    let failed = FAILED.load(Ordering::Relaxed);
    println!("xskernel: {failed} checks failed");

    if let Err(e) = xs.advertise_poweroff() {
        // Not needed by libxl; other toolstacks may not let us write it.
        println!("xskernel: feature-poweroff not written: {e}");
    }
    if let Err(e) = xs.watch_shutdown() {
        println!("xskernel: cannot watch control/shutdown: {e}");
        boot::crash();
    }
    println!("xskernel: ready");
    // While idle, a heartbeat every second with a 1 s timeout: the nested
    // test stops xenstored for a while and expects one timeout line, then
    // one recovery line (the late reply to the abandoned write is dropped).
    xs.set_timeout_ns(1_000_000_000);
    let mut beats = 0u64;
    let mut stalled = false;
    loop {
        match xs.wait_event_or_timeout(1_000_000_000) {
            Ok(Some(ev)) if ev.token == SHUTDOWN_TOKEN => match xs.take_shutdown_request() {
                Ok(Some(req @ (ShutdownRequest::Poweroff | ShutdownRequest::Halt))) => {
                    println!("xskernel: shutdown requested: {req}");
                    println!("xskernel: stray replies {}", xs.stats().stray_replies);
                    boot::poweroff();
                }
                Ok(Some(req)) => println!("xskernel: ignoring control request {req}"),
                Ok(None) => {} // the initial firing, or our own acknowledgement
                Err(e) => println!("xskernel: reading control/shutdown: {e}"),
            },
            Ok(Some(ev)) => println!("xskernel: stray watch event {ev:?}"),
            Ok(None) => {
                beats += 1;
                match xs.write_str("data/vmi/heartbeat", &format!("{beats}")) {
                    Ok(()) if stalled => {
                        stalled = false;
                        println!("xskernel: heartbeat recovered");
                    }
                    Ok(()) => {}
                    Err(Error::Timeout) if !stalled => {
                        stalled = true;
                        println!("xskernel: heartbeat timeout");
                    }
                    Err(Error::Timeout) => {}
                    Err(e) => println!("xskernel: heartbeat: {e}"),
                }
            }
            Err(e) => {
                println!("xskernel: xenstore broken: {e}");
                boot::crash();
            }
        }
    }
}

fn hello(xs: &Xenstore) -> Result<(), String> {
    xs.write_str("data/vmi/hello", "world").map_err(s)?;
    let v = xs.read_string("data/vmi/hello").map_err(s)?;
    // Absolute and relative paths name the same node.
    let abs = xs
        .read_string(&format!("{}/data/vmi/hello", xs.home()))
        .map_err(s)?;
    if v == "world" && abs == "world" {
        Ok(())
    } else {
        Err(format!("read back {v:?} / {abs:?}"))
    }
}

fn enoent(xs: &Xenstore) -> Result<(), String> {
    match xs.read("data/vmi/no-such-node") {
        Err(e) if e.is_enoent() => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

/// A value bigger than the 1 KiB ring, both ways: the request and the
/// reply each wrap the ring. (xenstored refuses nodes of 2048 bytes and
/// more from a domU with ENOSPC: `quota_max_entry_size` counts the value,
/// the permissions and the child names.)
fn big(xs: &Xenstore) -> Result<(), String> {
    let value: Vec<u8> = (0..1900u32).map(|i| b'a' + (i % 26) as u8).collect();
    xs.write("data/vmi/big", &value).map_err(s)?;
    let back = xs.read("data/vmi/big").map_err(s)?;
    if back == value {
        Ok(())
    } else {
        Err(format!("{} bytes back, differ", back.len()))
    }
}

/// The other side of that limit: a 3000-byte value is refused by
/// xenstored (ENOSPC), not by us, and the connection stays usable.
fn quota(xs: &Xenstore) -> Result<(), String> {
    match xs.write("data/vmi/toobig", &[b'x'; 3000]) {
        Err(Error::Xs(Errno::ENOSPC)) => {}
        other => return Err(format!("{other:?}")),
    }
    xs.read_string("domid").map(drop).map_err(s)
}

fn directory(xs: &Xenstore) -> Result<(), String> {
    let d = xs.directory("data/vmi").map_err(s)?;
    if d.iter().any(|c| c == "hello") && d.iter().any(|c| c == "big") {
        Ok(())
    } else {
        Err(format!("{d:?}"))
    }
}

fn rm(xs: &Xenstore) -> Result<(), String> {
    xs.rm("data/vmi/big").map_err(s)?;
    match xs.read("data/vmi/big") {
        Err(e) if e.is_enoent() => Ok(()),
        other => Err(format!("after rm: {other:?}")),
    }
}

fn badpath(xs: &Xenstore) -> Result<(), String> {
    match (xs.read("data//x"), xs.write_str("data/x y", "1")) {
        (Err(Error::Path(_)), Err(Error::Path(_))) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

/// Watch a counter we publish: the initial firing, then at least one
/// event for three writes. xenstored drops a watch event identical to one
/// still queued for us, so three quick writes may give one to three
/// events: a watcher must re-read the node, not count events.
fn watch(xs: &Xenstore) -> Result<(), String> {
    let next = |what: &str| -> Result<(), String> {
        match xs.wait_event_or_timeout(2_000_000_000).map_err(s)? {
            Some(ev) if ev.token == "ev" && ev.path == "data/vmi/events" => Ok(()),
            Some(ev) => Err(format!("{what}: unexpected {ev:?}")),
            None => Err(format!("{what}: no event")),
        }
    };
    xs.write_str("data/vmi/events", "0").map_err(s)?;
    xs.watch("data/vmi/events", "ev").map_err(s)?;
    next("initial firing")?;
    for n in 1..=3u32 {
        xs.write_str("data/vmi/events", &format!("{n}"))
            .map_err(s)?;
    }
    next("after 3 writes")?;
    let mut more = 0;
    while let Some(ev) = xs.wait_event_or_timeout(300_000_000).map_err(s)? {
        if ev.token != "ev" {
            return Err(format!("unexpected {ev:?}"));
        }
        more += 1;
    }
    if more > 2 {
        return Err(format!("{} events for 3 writes", more + 1));
    }
    let v = xs.read_string("data/vmi/events").map_err(s)?;
    if v != "3" {
        return Err(format!("value {v:?}"));
    }
    xs.unwatch("data/vmi/events", "ev").map_err(s)?;
    xs.write_str("data/vmi/events", "3").map_err(s)?;
    if let Some(ev) = xs.wait_event_or_timeout(200_000_000).map_err(s)? {
        return Err(format!("event after unwatch: {ev:?}"));
    }
    println!("xskernel: watch: {} event(s) for 3 writes", more + 1);
    Ok(())
}

/// A call from vCPU 1 while the port is delivered to vCPU 0: the handler
/// must kick the caller.
fn other_vcpu(xs: &Xenstore) -> Result<(), String> {
    if boot::smp::nr_vcpus() < 2 {
        return Err("needs 2 vCPUs".into());
    }
    let result = spin::Mutex::new(None);
    boot::smp::start_all(|id| {
        if id == 1 {
            *result.lock() = Some(xs.read_string("domid"));
        }
    })
    .map_err(|(v, e)| format!("vcpu {v}: {}", e.name()))?;
    let got = result.lock().take();
    match got {
        Some(Ok(d)) if d == format!("{}", xs.domid()) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

fn latency(xs: &Xenstore) -> Result<(), String> {
    const N: u64 = 50;
    let t0 = boot::time::now_ns();
    for _ in 0..N {
        xs.read("domid").map_err(s)?;
    }
    let per = (boot::time::now_ns() - t0) / N;
    println!("xskernel: read round trip {} us", per / 1000);
    Ok(())
}

/// A short timeout must still be met (xenstored answers in well under a
/// second here) and the connection must stay usable.
fn timeout(xs: &Xenstore) -> Result<(), String> {
    let old = xs.timeout_ns();
    xs.set_timeout_ns(1_000_000_000);
    let r = xs.read_string("domid");
    xs.set_timeout_ns(old);
    r.map(drop).map_err(s)
}
