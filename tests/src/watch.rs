//! The scenario's watchdog over a running boot ([`testbed::qemu::Watchdog`]).
//!
//! A QEMU is killed only at the scenario's whole timeout (boot allowance
//! plus every step's timeout: over half an hour for the attack suite), and
//! the bed runs one QEMU at a time. A dom0 that hangs while it boots, or
//! stops answering in a step, held the bed that long once (its kernel's
//! last line at 3.5 s of uptime, nothing for 39 minutes). The watchdog
//! stops such a boot early and says why: a break of the bed, since nothing
//! after it ran.

use std::time::Duration;

/// From QEMU's start until dom0's script says `scenario-begin`: Xen's boot,
/// dom0's kernel and its toolstack took 16–21 s in the bench boots of
/// 2026-12-07 (dom0's uptime there is 6–9 s; Xen's own boot is the rest).
pub(crate) const BOOT_DEADLINE: Duration = Duration::from_secs(300);
/// How long past a step's own timeout its end may come: dom0's `timeout`
/// kills the step at its timeout, and the step-end line follows at once
/// unless dom0 (or Xen under it) has stopped.
pub(crate) const STEP_GRACE: Duration = Duration::from_secs(60);

pub(crate) struct BootWatch<'a> {
    /// Each step's label and timeout, in script order.
    steps: Vec<(&'a str, u32)>,
    /// The scenario port's text not yet ended by a newline.
    partial: String,
    /// When the script said `scenario-begin`.
    pub(crate) began: Option<Duration>,
    /// The step running, and when its `step-begin` was seen.
    current: Option<(usize, Duration)>,
}

impl<'a> BootWatch<'a> {
    pub(crate) fn new(steps: Vec<(&'a str, u32)>) -> Self {
        BootWatch {
            steps,
            partial: String::new(),
            began: None,
            current: None,
        }
    }

    /// Takes what the port printed since the last look; `Some(why)` stops
    /// the boot.
    pub(crate) fn look(&mut self, new: &str, now: Duration) -> Option<String> {
        self.partial.push_str(new);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            let mut w = line.split_whitespace();
            if w.next() != Some("@@BED") {
                continue;
            }
            let event = w.next();
            let step = w.next().and_then(|i| i.parse::<usize>().ok());
            match (event, step) {
                (Some("scenario-begin"), _) => self.began = Some(now),
                (Some("step-begin"), Some(i)) => self.current = Some((i, now)),
                (Some("step-end" | "step-skip"), _) => self.current = None,
                _ => {}
            }
        }
        if self.began.is_none() && now > BOOT_DEADLINE {
            return Some(format!(
                "dom0 did not begin the scenario within {} s of QEMU's start",
                BOOT_DEADLINE.as_secs()
            ));
        }
        let (i, since) = self.current?;
        let (label, timeout_s) = self.steps.get(i).copied().unwrap_or(("?", 0));
        let limit = Duration::from_secs(u64::from(timeout_s)) + STEP_GRACE;
        (now.saturating_sub(since) > limit).then(|| {
            format!(
                "step {i} '{label}' had not ended {} s after it began ({timeout_s} s its timeout): dom0 stopped answering",
                limit.as_secs()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn a_boot_that_never_begins_the_scenario_is_stopped_at_the_deadline() {
        let mut w = BootWatch::new(vec![("a", 60)]);
        assert_eq!(w.look("", s(10)), None);
        assert_eq!(w.look("dom0 kernel noise\n", BOOT_DEADLINE), None);
        let why = w.look("", BOOT_DEADLINE + s(1)).unwrap();
        assert!(
            why.contains("did not begin the scenario within 300 s"),
            "{why}"
        );
    }

    #[test]
    fn markers_cut_across_looks_are_read_whole() {
        let mut w = BootWatch::new(vec![("a", 60)]);
        assert_eq!(w.look("@@BED scenario-be", s(50)), None);
        assert_eq!(w.began, None);
        assert_eq!(w.look("gin 7.38\r\n@@BED step-begin 0 7.4\n", s(51)), None);
        assert_eq!(w.began, Some(s(51)));
        // Long past the boot deadline, the step within its timeout + grace.
        assert_eq!(w.look("", s(51) + s(120)), None);
    }

    #[test]
    fn a_step_that_never_ends_is_stopped_past_its_timeout_and_named() {
        let mut w = BootWatch::new(vec![("first", 60), ("serve t", 200)]);
        w.look("@@BED scenario-begin 7\n@@BED step-begin 0 7\n", s(40));
        w.look("@@BED step-end 0 rc=0 8\n@@BED step-begin 1 8\n", s(41));
        assert_eq!(w.look("output\n", s(41 + 260)), None);
        let why = w.look("", s(41 + 261)).unwrap();
        assert!(
            why.contains("step 1 'serve t' had not ended 260 s"),
            "{why}"
        );
    }

    #[test]
    fn the_log_dump_after_the_last_step_is_not_watched() {
        let mut w = BootWatch::new(vec![("a", 1)]);
        w.look("@@BED scenario-begin 7\n@@BED step-begin 0 7\n", s(40));
        w.look("@@BED step-end 0 rc=0 8\n@@BED scenario-end 8\n", s(41));
        assert_eq!(w.look("@@BED file-begin big\n", s(41 + 3600)), None);
    }
}
