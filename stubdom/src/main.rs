//! The introspection stub domain.
//!
//! With `target=<domid>` on its command line it is the introspection
//! service (`service`): it attaches to that domain with its own hypercalls,
//! serves every vCPU's vm_event slot on one of its own vCPUs under the
//! policy it was given, and detaches leaving the target running. Without
//! it, it runs the runtime self-test (`selftest`).
//!
//! Shutdown codes: poweroff (0) after a clean detach or a refused attach
//! (no such domain, already monitored, not permitted, a monitor the host
//! lacks: one `stubdom: cannot attach: ...` line); crash (3) for a bad
//! command line or policy (one line naming the field or policy line),
//! panics and faults.

#![no_std]
#![no_main]

extern crate alloc;

mod selftest;
mod service;

use alloc::boxed::Box;

use boot::cmdline::Cmdline;
use boot::{println, BootInfo};
use vmevent::Policy;

boot::entry!(main);

fn main(info: &'static BootInfo<'static>) {
    let cmdline = match Cmdline::from_bytes(info.cmdline) {
        Ok(c) => c,
        Err(e) => boot::config_error(format_args!("stubdom: bad command line: {e}")),
    };
    if cmdline.find("target").is_none() {
        return selftest::main(info);
    }
    let cfg = match service::Config::parse(&cmdline, info) {
        Ok(c) => c,
        Err(e) => boot::config_error(format_args!("stubdom: bad command line: {e}")),
    };
    // Boxed: a parsed policy is ~11 KiB, too much for a boot stack frame.
    let policy = match Policy::parse(&cfg.policy_text) {
        Ok(p) => Box::new(p),
        Err(e) => boot::config_error(format_args!(
            "stubdom: bad policy ({}): {e}",
            cfg.policy_source
        )),
    };
    let profile = cfg
        .profile_text
        .as_deref()
        .map(|t| match linux_profile::Profile::parse(t) {
            Ok(p) => p,
            Err(e) => {
                boot::config_error(format_args!("stubdom: bad profile (the PVH module): {e}"))
            }
        });
    println!(
        "stubdom: monitoring domain {} with {} rule(s) from {}",
        cfg.target,
        policy.rules().len(),
        cfg.policy_source
    );
    if let Some(p) = &profile {
        println!(
            "stubdom: Linux profile for {}: current task at per-CPU offset {:#x} ({}), pid at {:#x}, comm at {:#x}",
            p.release.as_str(),
            p.current_task.percpu_offset,
            p.current_task.via.name(),
            p.task_struct.pid,
            p.task_struct.comm
        );
    }
    if let Err(e) = service::run(&cfg, &policy, profile.as_ref()) {
        println!("stubdom: cannot attach: {e}");
    }
}
