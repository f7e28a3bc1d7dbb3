//! The target test guest. It reads a workload plan from its command line
//! (see the `workload` crate), runs it on every vCPU in parallel — CPUID,
//! CR and MSR writes, INT3, guest requests, memory writes, each a real
//! trapping instruction timed with `rdtsc` — and prints one `WORKLOAD` line
//! per vCPU and kind with what it saw (read-backs: did a write stick, did a
//! breakpoint arrive, what CPUID answered), then a summary, then powers off
//! (or reboots, `then=reboot`, or waits for `xl reboot`/`xl shutdown`,
//! `then=xl`).
//! Run unmonitored, its figures are the ceiling monitored runs compare with.
#![no_std]
#![no_main]

extern crate alloc;

mod events;
mod peek;
mod run;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use boot::{println, smp, BootInfo};
use spin::Mutex;
use workload::{Plan, Then, SUMMARY_TAG};

boot::entry!(main);

use boot::xen::HYPERVISOR_HVM_OP as HVM_OP;

fn hvm_op(op: u64, arg: u64) -> i64 {
    // SAFETY: HVMOP_guest_request_vm_event takes no argument (NULL); Xen
    // reads nothing from our memory for it.
    unsafe { boot::hypercall::hypercall(HVM_OP, op, arg, 0, 0, 0) }
}

fn main(info: &'static BootInfo<'static>) {
    let cmdline = info.cmdline_str().unwrap_or("");
    let plan = match Plan::parse(cmdline) {
        Ok(p) => p,
        Err(e) => boot::config_error(format_args!("guest: bad command line: {e}")),
    };
    let have = smp::nr_vcpus();
    let vcpus = plan.vcpus.unwrap_or(have);
    if vcpus > have {
        boot::config_error(format_args!(
            "guest: bad command line: vcpus={vcpus} but the domain has {have}"
        ));
    }
    events::install_breakpoint_handler();
    let names: Vec<&str> = plan.kinds.iter().map(|k| k.name()).collect();
    println!(
        "WORKLOAD-START vcpus={vcpus} kinds={} count={}",
        names.join(","),
        plan.count
    );

    let results: Mutex<BTreeMap<u32, Vec<String>>> = Mutex::new(BTreeMap::new());
    let ready = AtomicU32::new(0);
    // The workload's wall time, from the first vCPU past the start line
    // to the last one done (Xen system time): what throughput is made of.
    let (first_start, last_end) = (AtomicU64::new(u64::MAX), AtomicU64::new(0));
    let ran = smp::start_all(|id| {
        if id >= vcpus {
            return;
        }
        if id == 0 && plan.wait_ms() > 0 {
            // Everything of ours is up: from here on, every trapping
            // instruction is the workload's.
            if plan.go {
                wait_for_go(plan.wait_ms());
            } else {
                println!("WORKLOAD-WAIT delay_ms={}", plan.delay_ms);
                boot::time::sleep_ns(u64::from(plan.delay_ms) * 1_000_000);
            }
        }
        if id == 0 && plan.peek {
            peek::run();
        }
        // Start together, so the vCPUs really contend.
        ready.fetch_add(1, Ordering::AcqRel);
        while ready.load(Ordering::Acquire) < vcpus {
            // Yield rather than spin: the vCPUs outnumber the host's CPUs
            // and dom0 must keep running (to start a monitor, say).
            boot::sched::yield_now();
        }
        first_start.fetch_min(boot::time::now_ns(), Ordering::AcqRel);
        let outcomes = run::vcpu_workload(&plan, id, hvm_op);
        last_end.fetch_max(boot::time::now_ns(), Ordering::AcqRel);
        let lines = outcomes.iter().map(|o| o.record(id)).collect();
        results.lock().insert(id, lines);
    });
    if let Err((id, e)) = ran {
        panic!("vCPU {id} did not come up: {e:?}");
    }
    let results = results.into_inner();
    let mut events = 0u64;
    for lines in results.values() {
        for l in lines {
            println!("{l}");
        }
        events += lines.len() as u64 * u64::from(plan.count);
    }
    println!(
        "{SUMMARY_TAG} vcpus={} kinds={} count={} events={events} elapsed_ns={} status={}",
        results.len(),
        names.join(","),
        plan.count,
        last_end
            .into_inner()
            .saturating_sub(first_start.into_inner()),
        if results.len() as u32 == vcpus {
            "ok"
        } else {
            "incomplete"
        }
    );
    match plan.then {
        Then::Poweroff => {}
        Then::Reboot => reboot(),
        Then::Xl => obey_xl(),
    }
}

/// `go=xenstore`: waits until dom0 writes `data/go` (the test does so once
/// the monitor says it is attached). A go that never comes ends the guest
/// before its workload, so no event can happen unmonitored. Xenstore calls
/// are hypercalls and event-channel sends, none of them a monitored event.
fn wait_for_go(max_ms: u32) {
    const GO: &str = "data/go";
    let xs = xenstore_for("go=xenstore");
    println!("WORKLOAD-WAIT go={GO} max_ms={max_ms}");
    let deadline = boot::time::now_ns().saturating_add(u64::from(max_ms) * 1_000_000);
    while xs.read(GO).is_err() {
        if boot::time::now_ns() >= deadline {
            println!("WORKLOAD-NO-GO after {max_ms} ms");
            boot::sched::shutdown(boot::xen::ShutdownReason::Poweroff);
        }
        boot::time::sleep_ns(20_000_000);
    }
    println!("WORKLOAD-GO");
    *XENSTORE.lock() = Some(xs);
}

/// The xenstore connection, kept for the next user: a domain connects
/// once (`go=xenstore` and `then=xl` both need it).
static XENSTORE: Mutex<Option<xenstore::Xenstore>> = Mutex::new(None);

/// The connection, made now if no earlier step made it; `what` names the
/// option that needs it in the error.
fn xenstore_for(what: &str) -> xenstore::Xenstore {
    if let Some(xs) = XENSTORE.lock().take() {
        return xs;
    }
    match xenstore::Xenstore::connect() {
        Ok(xs) => xs,
        Err(e) => boot::config_error(format_args!("guest: {what}: no xenstore: {e:?}")),
    }
}

/// The end of this boot: the tests split the console here.
fn reboot() -> ! {
    println!("WORKLOAD-REBOOT");
    boot::sched::shutdown(boot::xen::ShutdownReason::Reboot)
}

/// Waits for dom0's `xl reboot` / `xl shutdown` (the PV control protocol:
/// the request is acknowledged, then carried out).
fn obey_xl() {
    let xs = xenstore_for("then=xl");
    let _ = xs.advertise_poweroff();
    if let Err(e) = xs.watch_shutdown() {
        boot::config_error(format_args!(
            "guest: then=xl: cannot watch control/shutdown: {e:?}"
        ));
    }
    println!("WORKLOAD-WAIT-XL");
    loop {
        match xs.wait_event_or_timeout(1_000_000_000) {
            Ok(Some(ev)) if ev.token == xenstore::SHUTDOWN_TOKEN => {}
            _ => continue,
        }
        match xs.take_shutdown_request() {
            Ok(Some(xenstore::ShutdownRequest::Reboot)) => reboot(),
            Ok(Some(req)) => {
                println!("WORKLOAD-XL {}", req.as_str());
                return;
            }
            _ => {}
        }
    }
}
