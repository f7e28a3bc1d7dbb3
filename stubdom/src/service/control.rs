//! dom0's view of the stub.

use core::sync::atomic::{AtomicU64, Ordering};

use boot::println;

use super::stats::Stats;

/// dom0's view of the stub: the PV shutdown protocol (`xl shutdown`) and
/// counters under the stub's own xenstore path (`data/vmi/*`).
pub(super) struct Control {
    pub(super) xs: Option<xenstore::Xenstore>,
}

impl Control {
    pub(super) fn connect() -> Control {
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
    pub(super) fn shutdown_requested(&self) -> bool {
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
    pub(super) fn publish(&self, stats: &Stats, dropped: u32, wait: bool) {
        let Some(xs) = &self.xs else { return };
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (key, v) in [
            ("data/vmi/served", stats.served()),
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
