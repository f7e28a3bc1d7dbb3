//! The counters, printed at the end.

use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

use boot::{println, MAX_VCPUS};

/// One target vCPU's counters, a cache line (or two) of their own: each
/// is written by the one stub vCPU that serves that target vCPU, so no
/// two serving vCPUs write the same line.
#[repr(align(64))]
pub(super) struct VcpuCounts {
    /// By `VM_EVENT_REASON_*`, sync and async.
    pub(super) by_reason: [AtomicU64; NR_REASONS],
    /// Sync events served.
    pub(super) served: AtomicU64,
}

/// Counters, printed at the end (and what the tests compare with the
/// target's own counts).
pub(super) struct Stats {
    /// Sync events served for target vCPUs past `MAX_VCPUS` (not counted
    /// per vCPU).
    pub(super) served_beyond: AtomicU64,
    pub(super) denied: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) async_events: AtomicU64,
    pub(super) inject_failed: AtomicU64,
    /// Failed `EVTCHNOP_send`s of an answered slot (each retried).
    pub(super) notify_failed: AtomicU64,
    pub(super) by_vcpu: [VcpuCounts; MAX_VCPUS],
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
            served_beyond: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            async_events: AtomicU64::new(0),
            inject_failed: AtomicU64::new(0),
            notify_failed: AtomicU64::new(0),
            by_vcpu: [const {
                VcpuCounts {
                    by_reason: [const { AtomicU64::new(0) }; NR_REASONS],
                    served: AtomicU64::new(0),
                }
            }; MAX_VCPUS],
            denied_by_reason: [const { AtomicU64::new(0) }; NR_REASONS],
        }
    }

    /// Counts one served sync event of target vCPU `vcpu`.
    pub(super) fn count_served(&self, vcpu: u32) {
        match self.by_vcpu.get(vcpu as usize) {
            Some(c) => c.served.fetch_add(1, Ordering::Relaxed),
            None => self.served_beyond.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Sync events served, all target vCPUs.
    pub(super) fn served(&self) -> u64 {
        self.by_vcpu
            .iter()
            .map(|c| c.served.load(Ordering::Relaxed))
            .sum::<u64>()
            + self.served_beyond.load(Ordering::Relaxed)
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
                    counts.by_reason[r as usize].load(Ordering::Relaxed)
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
