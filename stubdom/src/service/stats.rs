//! The counters, printed at the end.

use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

use boot::{println, MAX_VCPUS};

/// Counters, printed at the end (and what the tests compare with the
/// target's own counts).
pub(super) struct Stats {
    pub(super) served: AtomicU64,
    pub(super) denied: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) async_events: AtomicU64,
    pub(super) inject_failed: AtomicU64,
    /// Failed `EVTCHNOP_send`s of an answered slot (each retried).
    pub(super) notify_failed: AtomicU64,
    /// `[target vCPU][VM_EVENT_REASON_*]`.
    pub(super) by_vcpu: [[AtomicU64; NR_REASONS]; MAX_VCPUS],
    pub(super) denied_by_reason: [AtomicU64; NR_REASONS],
}

pub(super) const NR_REASONS: usize = 16;

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

    pub(super) fn print(&self, nr_target_vcpus: u32) {
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

pub(super) static STATS: Stats = Stats::new();
