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
//!
//! - `attach.rs`: attaching to the target and detaching from it;
//! - `serve.rs`: one stub vCPU's serving loop;
//! - `audit.rs`: answering a request with the policy, and its audit record;
//! - `introspect.rs`: guest memory and the task behind each event;
//! - `control.rs`: dom0's view of the stub (xl shutdown, xenstore counters);
//! - `stats.rs`: the counters and the summary;
//! - `stall.rs`: vCPU 0's watch for a slot stuck on one request or answer;
//! - `config.rs`: the command line.

mod attach;
mod audit;
mod config;
mod control;
mod introspect;
mod serve;
mod stall;
mod stats;
use xenctl as xenops;

pub use config::{Config, LogMode, WaitMode};

use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};

use boot::xen::Port;
use boot::{println, smp, time, PerVcpu, MAX_VCPUS};
use vmevent::Policy;

use attach::{attach, detach};
use control::Control;
use stats::STATS;

/// Set by a port's handler for the stub vCPU it is bound to.
pub(super) static WORK: PerVcpu<AtomicBool> =
    PerVcpu::new([const { AtomicBool::new(false) }; MAX_VCPUS]);

fn on_port(_port: Port) {
    WORK.get().store(true, Ordering::Release);
}

/// Runs the service; returns when the target is gone or the stub is asked
/// to stop. `Err` is a one-line reason the attach failed.
pub fn run(
    cfg: &Config,
    policy: &Policy,
    profile: Option<&linux_profile::Profile>,
) -> Result<(), String> {
    let control = Control::connect();
    let a = attach(cfg, policy).map_err(|e| e.0)?;
    if let Some(xs) = &control.xs {
        let _ = xs.write_str("data/vmi/target", &alloc::format!("{}", a.target));
    }
    let stats = &STATS;
    let stub_vcpus = smp::nr_vcpus();
    let started = time::now_ns();
    let ctx = serve::Context {
        cfg,
        policy,
        a: &a,
        control: &control,
        stats,
        stub_vcpus,
        profile,
    };
    let res = smp::start_all(|me| serve::serve(&ctx, me));
    if let Err((id, e)) = res {
        // Nothing served: the target is still paused by us.
        println!("stub: vCPU {id} did not come up: {}", e.name());
        let _ = xenops::unpause(a.target);
    }
    // Every audit line before the summary.
    audit::AUDIT.flush();
    // The pages go with the detach: read what we report first.
    let dropped = a.ring.dropped().load(Ordering::Relaxed);
    detach(&a);
    control.publish(stats, dropped, true);
    let secs = (time::now_ns() - started) as f64 / 1e9;
    println!(
        "stub: served {} sync event(s) ({} denied, {} malformed) and {} async event(s) in {secs:.1} s; async ring dropped {dropped}",
        stats.served(),
        stats.denied.load(Ordering::Relaxed),
        stats.malformed.load(Ordering::Relaxed),
        stats.async_events.load(Ordering::Relaxed),
    );
    stats.print(a.nr_target_vcpus);
    Ok(())
}
