//! What a run returns, parsed from the consoles.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use testbed::qemu::Boot;

use crate::scenario::Scenario;

#[derive(Debug, Clone, Default)]
pub struct StepResult {
    pub label: String,
    /// The exit status; `None` when the step never ran (skipped after an
    /// earlier required step failed, or the run died).
    pub status: Option<i32>,
    pub output: String,
    /// dom0 uptime at the step's start and end, seconds.
    pub started: f64,
    pub ended: f64,
    /// A failure of this step stops the scenario (and fails `assert_ok`);
    /// `step_may_fail` steps are the test's to judge.
    pub required: bool,
}

impl StepResult {
    pub fn ok(&self) -> bool {
        self.status == Some(0)
    }
    /// busybox `timeout` ends a step with SIGTERM.
    pub fn timed_out(&self) -> bool {
        matches!(self.status, Some(124) | Some(143))
    }
    pub fn seconds(&self) -> f64 {
        self.ended - self.started
    }
}

#[derive(Debug)]
pub struct Run {
    pub name: String,
    pub log_dir: PathBuf,
    xen: String,
    data: String,
    pub steps: Vec<StepResult>,
    files: BTreeMap<String, String>,
    /// QEMU had to be killed.
    pub timed_out: bool,
    /// The scenario script reached its end.
    pub completed: bool,
    /// The first step after which dom0's rootfs (`/`, `/tmp`) had no free
    /// block: from there on, files written to it (step outputs, xl's log)
    /// come back empty or cut.
    pub rootfs_full: Option<usize>,
    /// Why the bed's watchdog stopped QEMU early (a hung boot or step).
    pub stopped: Option<String>,
    /// When dom0's script began the scenario, from QEMU's start.
    pub began: Option<Duration>,
    pub elapsed: Duration,
}

fn num(s: Option<&str>) -> f64 {
    s.and_then(|s| s.parse().ok()).unwrap_or(0.0)
}

pub(crate) fn parse(sc: &Scenario, boot: Boot) -> Run {
    let mut steps: Vec<StepResult> = sc
        .steps
        .iter()
        .map(|s| StepResult {
            label: s.label.clone(),
            required: s.required,
            ..Default::default()
        })
        .collect();
    let mut files = BTreeMap::new();
    let mut completed = false;
    let mut cur_step: Option<usize> = None;
    let mut rootfs_full = None;
    let mut cur_file: Option<(String, String)> = None;
    let data = boot.data_log.replace('\r', "");
    for line in data.lines() {
        if let Some(rest) = line.strip_prefix("@@BED ") {
            let mut w = rest.split_whitespace();
            match w.next() {
                Some("step-begin") => {
                    let i: usize = w.next().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
                    if let Some(st) = steps.get_mut(i) {
                        st.started = num(w.next());
                        cur_step = Some(i);
                    }
                }
                Some("step-end") => {
                    let i: usize = w.next().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
                    if let Some(st) = steps.get_mut(i) {
                        st.status = w
                            .next()
                            .and_then(|s| s.strip_prefix("rc="))
                            .and_then(|s| s.parse().ok());
                        st.ended = num(w.next());
                    }
                    cur_step = None;
                }
                Some("file-begin") => {
                    cur_file = Some((w.next().unwrap_or("?").to_string(), String::new()));
                }
                Some("file-end") => {
                    if let Some((n, c)) = cur_file.take() {
                        files.insert(n, c);
                    }
                }
                Some("rootfs-full") => {
                    rootfs_full = rootfs_full.or(w.next().and_then(|s| s.parse().ok()));
                }
                Some("done") => completed = true,
                _ => {}
            }
            continue;
        }
        if let Some((_, c)) = cur_file.as_mut() {
            c.push_str(line);
            c.push('\n');
        } else if let Some(i) = cur_step {
            steps[i].output.push_str(line);
            steps[i].output.push('\n');
        }
    }
    let run = Run {
        name: sc.name.clone(),
        log_dir: boot.log_dir,
        xen: boot.xen_log.replace('\r', ""),
        data,
        steps,
        files,
        timed_out: boot.timed_out,
        completed,
        rootfs_full,
        stopped: boot.stopped,
        began: None,
        elapsed: boot.elapsed,
    };
    for (name, content) in &run.files {
        let _ = std::fs::write(run.log_dir.join(name), content);
    }
    let _ = std::fs::write(run.log_dir.join("steps.txt"), run.steps_text());
    run
}

impl Run {
    /// Xen's serial console: Xen's own lines (`(XEN) ...`) and dom0's kernel
    /// and init output.
    pub fn xen(&self) -> &str {
        &self.xen
    }

    /// What the scenario script printed in dom0 (all steps, framed).
    pub fn dom0(&self) -> &str {
        &self.data
    }

    /// A guest's console, as xenconsoled logged it ("" if it never printed).
    pub fn console(&self, guest: &str) -> &str {
        self.sound()
            .files
            .get(&format!("guest-{guest}.log"))
            .map_or("", |s| s.as_str())
    }

    /// The output of `xl create -F` for a started guest.
    pub fn xl_log(&self, guest: &str) -> &str {
        self.sound()
            .files
            .get(&format!("xl-{guest}.log"))
            .map_or("", |s| s.as_str())
    }

    /// Whether the bed itself broke during the run: dom0 processes that
    /// died of memory corruption, a guest triple fault (no scenario of ours
    /// expects one: our kernels crash through `SCHEDOP_shutdown`), or Xen
    /// reporting a bug of its own. Nothing in it can be trusted then.
    pub fn bed_break(&self) -> Option<String> {
        let mut why = Vec::new();
        if let Some(d) = self.dom0_crashes() {
            why.push(d);
        }
        match self.triple_faults() {
            0 => {}
            n => why.push(format!("{n} guest triple fault(s) in Xen's log")),
        }
        if let Some(needle) = self.xen_crash() {
            why.push(format!("Xen's log has '{needle}'"));
        }
        if let Some(i) = self.rootfs_full {
            let label = self.steps.get(i).map_or("?", |s| s.label.as_str());
            why.push(format!("dom0's rootfs was full after step {i} '{label}'"));
        }
        if let Some(stopped) = &self.stopped {
            why.push(format!("QEMU stopped early: {stopped}"));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }

    /// What Xen's log says if Xen itself reported a bug or crashed: unlike
    /// the bed's other breaks, a scenario of ours may be what crashed it
    /// (the attack suite asserts there is none).
    pub fn xen_crash(&self) -> Option<&'static str> {
        [
            "Xen BUG at",
            "FATAL TRAP",
            "FATAL PAGE FAULT",
            "Assertion '",
            "Panic on CPU",
        ]
        .into_iter()
        .find(|needle| self.xen.contains(needle))
    }

    /// `self`, unless the bed broke: then every look at the run fails the
    /// test, naming why and where the logs are.
    fn sound(&self) -> &Self {
        if let Some(why) = self.bed_break() {
            panic!(
                "scenario {}: the bed broke ({why}); full logs: {}",
                self.name,
                self.log_dir.display()
            );
        }
        self
    }

    /// dom0 processes that died of memory corruption during the run (from
    /// dom0's kernel log and xl's logs), if any.
    pub fn dom0_crashes(&self) -> Option<String> {
        let segv = self
            .files
            .get("dom0-dmesg.log")
            .map_or(0, |d| d.matches("segfault at").count());
        let heap = self
            .files
            .iter()
            .filter(|(n, _)| n.starts_with("xl-"))
            .filter(|(_, c)| c.contains("malloc(): corrupted") || c.contains("double free"))
            .count();
        (segv + heap > 0).then(|| {
            format!("{segv} segfault(s) in dom0's kernel log, {heap} corrupted heap(s) in xl")
        })
    }

    /// Guests that triple-faulted (Xen's log). No scenario of ours expects
    /// one: our kernels crash through `SCHEDOP_shutdown`.
    pub fn triple_faults(&self) -> usize {
        self.xen.matches("Triple fault").count()
    }

    pub fn step(&self, label: &str) -> &StepResult {
        self.sound()
            .steps
            .iter()
            .find(|s| s.label == label)
            .unwrap_or_else(|| panic!("scenario {}: no step {label}", self.name))
    }

    /// Xen's shutdown reason code for a guest started with `start` (0
    /// poweroff, 1 reboot, 2 suspend, 3 crash, 4 watchdog), from xl.
    pub fn shutdown_reason(&self, guest: &str) -> Option<u32> {
        let log = self.xl_log(guest);
        let at = log.find("has shut down, reason code ")?;
        log[at + 27..].split_whitespace().next()?.parse().ok()
    }

    /// The first required step that failed or never ran.
    pub fn first_failure(&self) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.required && !s.ok())
    }

    /// Panics, naming the failed step and the log folder, unless every
    /// step succeeded and the scenario ran to its end.
    pub fn assert_ok(&self) {
        self.sound();
        if let Some(s) = self.first_failure() {
            let why = match s.status {
                None => "never ran".to_string(),
                Some(_) if s.timed_out() => "timed out".to_string(),
                Some(rc) => format!("exit status {rc}"),
            };
            panic!(
                "scenario {}: step '{}' failed ({why}); output:\n{}\nfull logs: {}",
                self.name,
                s.label,
                s.output.trim_end(),
                self.log_dir.display()
            );
        }
        assert!(
            self.completed && !self.timed_out,
            "scenario {}: the run did not complete{}; full logs: {}",
            self.name,
            if self.timed_out {
                " (QEMU timed out)"
            } else {
                ""
            },
            self.log_dir.display()
        );
    }

    /// Panics unless `haystack` contains `needle`, pointing at the logs.
    pub fn expect_in(&self, what: &str, haystack: &str, needle: &str) {
        self.sound();
        assert!(
            haystack.contains(needle),
            "scenario {}: {what} lacks {needle:?}; full logs: {}",
            self.name,
            self.log_dir.display()
        );
    }

    fn steps_text(&self) -> String {
        let mut s = String::new();
        for st in &self.steps {
            let _ = writeln!(
                s,
                "== {} status={:?} {:.2}s\n{}",
                st.label,
                st.status,
                st.seconds(),
                st.output
            );
        }
        s
    }

    /// What a failed run leaves in the test output, so that a CI log alone
    /// shows where it stopped (the log folder does not outlive CI): the
    /// failed step's output, the last lines of each log named in its label
    /// (a guest's console and xl output), of dom0's kernel log and of Xen's
    /// console. Empty for a run that went well.
    pub fn evidence(&self) -> String {
        let failed = self.first_failure();
        if failed.is_none() && self.completed && self.bed_break().is_none() {
            return String::new();
        }
        let mut out = String::new();
        let mut tail = |what: &str, text: &str, n: usize| {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(n);
            let _ = writeln!(
                out,
                "--- {what} (last {} of {} lines)",
                lines.len() - from,
                lines.len()
            );
            for l in &lines[from..] {
                let _ = writeln!(out, "| {l}");
            }
        };
        if let Some(s) = failed {
            tail(&format!("step '{}' output", s.label), &s.output, 20);
            for (name, text) in &self.files {
                let guest = name
                    .strip_prefix("guest-")
                    .or_else(|| name.strip_prefix("xl-"))
                    .and_then(|n| n.strip_suffix(".log"));
                if guest.is_some_and(|g| mentions(&s.label, g)) {
                    tail(name, text, 15);
                }
            }
        }
        if let Some(dmesg) = self.files.get("dom0-dmesg.log") {
            tail("dom0-dmesg.log", dmesg, 10);
        }
        tail("Xen console", &self.xen, 40);
        out
    }

    /// One line for the test output: outcome, time, where the logs are.
    pub fn summary(&self) -> String {
        let toolstack = self
            .xen
            .lines()
            .find_map(|l| l.strip_prefix("bed: toolstack up at "))
            .unwrap_or("?");
        let began = self
            .began
            .map_or("never".to_string(), |t| format!("{:.1} s", t.as_secs_f64()));
        format!(
            "bed: scenario {}: {} in {:.1} s (dom0 toolstack up at {}, scenario began at {began}); logs: {}",
            self.name,
            match (self.bed_break(), self.first_failure(), self.completed) {
                (Some(why), _, _) => format!("THE BED BROKE ({why})"),
                (None, None, true) => "ok".to_string(),
                (None, Some(s), _) => format!("step '{}' failed", s.label),
                (None, None, false) => "incomplete".to_string(),
            },
            self.elapsed.as_secs_f64(),
            toolstack,
            self.log_dir.display()
        )
    }
}

/// Whether a step label names `guest` as a whole word (`wait stub-t4s2:
/// ...` names `stub-t4s2`, not `t4s2`).
fn mentions(label: &str, guest: &str) -> bool {
    label
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .any(|w| w == guest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scenario;

    #[test]
    fn parses_steps_files_and_shutdown_reasons() {
        let sc = Scenario::new("unit")
            .step("first", "true")
            .step_may_fail("second", "sleep 9", 1)
            .step("third", "true");
        let data = "@@BED scenario-begin 9.0\r\n@@BED step-begin 0 9.10\r\nhello\r\n\
                    @@BED step-end 0 rc=0 9.50\r\n@@BED step-begin 1 9.5\r\n\
                    @@BED step-end 1 rc=143 10.5\r\n@@BED step-skip 2\r\n\
                    @@BED file-begin xl-g.log\r\nDomain 3 has shut down, reason code 3 0x3\r\n\
                    @@BED file-end\r\n@@BED file-begin guest-g.log\r\nboot\r\n@@BED file-end\r\n\
                    @@BED done\r\n";
        let dir = std::env::temp_dir().join(format!("nested-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let boot = Boot {
            xen_log: "bed: toolstack up at 8.0s\n".into(),
            data_log: data.into(),
            timed_out: false,
            stopped: None,
            elapsed: Duration::from_secs(1),
            log_dir: dir.clone(),
        };
        let run = parse(&sc, boot);
        assert!(run.completed);
        assert_eq!(run.step("first").output, "hello\n");
        assert!(run.step("first").ok());
        assert!((run.step("first").seconds() - 0.4).abs() < 1e-9);
        assert!(run.step("second").timed_out());
        assert_eq!(run.step("third").status, None);
        // "second" may fail; "third" is required and never ran.
        assert_eq!(run.first_failure().unwrap().label, "third");
        assert_eq!(run.shutdown_reason("g"), Some(3));
        assert_eq!(run.console("g"), "boot\n");
        assert_eq!(run.console("absent"), "");
        assert!(dir.join("guest-g.log").exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_full_rootfs_is_a_break_of_the_bed_naming_the_step() {
        let sc = Scenario::new("unit4")
            .step("fill", "x")
            .step("start g", "x");
        let boot = Boot {
            xen_log: String::new(),
            data_log: "@@BED step-begin 0 1\n@@BED step-end 0 rc=0 2\n@@BED rootfs-full 0\n\
                       @@BED step-begin 1 2\n@@BED step-end 1 rc=1 3\n@@BED rootfs-full 1\n\
                       @@BED done\n"
                .into(),
            timed_out: false,
            stopped: None,
            elapsed: Duration::from_secs(1),
            log_dir: std::env::temp_dir(),
        };
        let run = parse(&sc, boot);
        assert_eq!(run.rootfs_full, Some(0));
        let why = run.bed_break().unwrap_or_default();
        assert!(why.contains("rootfs was full after step 0 'fill'"), "{why}");
    }

    #[test]
    fn a_boot_the_watchdog_stopped_is_a_break_of_the_bed() {
        let sc = Scenario::new("unit5").step("first", "x");
        let boot = Boot {
            xen_log: String::new(),
            data_log: String::new(),
            timed_out: false,
            stopped: Some("dom0 did not begin the scenario within 300 s".into()),
            elapsed: Duration::from_secs(301),
            log_dir: std::env::temp_dir(),
        };
        let run = parse(&sc, boot);
        let why = run.bed_break().unwrap_or_default();
        assert!(
            why.contains("QEMU stopped early: dom0 did not begin"),
            "{why}"
        );
        assert!(run.summary().contains("scenario began at never"));
    }

    #[test]
    #[should_panic(expected = "step 'second' failed (timed out)")]
    fn assert_ok_names_the_failed_step() {
        let sc = Scenario::new("unit2")
            .step("first", "true")
            .step("second", "x");
        let boot = Boot {
            xen_log: String::new(),
            data_log: "@@BED step-begin 0 1\n@@BED step-end 0 rc=0 2\n@@BED step-begin 1 2\n\
                       @@BED step-end 1 rc=143 3\n@@BED done\n"
                .into(),
            timed_out: false,
            stopped: None,
            elapsed: Duration::from_secs(1),
            log_dir: std::env::temp_dir(),
        };
        parse(&sc, boot).assert_ok();
    }

    #[test]
    fn evidence_shows_the_failed_steps_logs() {
        let sc = Scenario::new("unit3")
            .step("start g", "true")
            .step("wait stub-g: attached", "x");
        let dir = std::env::temp_dir().join(format!("nested-unit3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let boot = Boot {
            xen_log: "(XEN) last words\n".into(),
            data_log: "@@BED step-begin 0 1\n@@BED step-end 0 rc=0 2\n@@BED step-begin 1 2\n\
                       not seen\n@@BED step-end 1 rc=1 3\n\
                       @@BED file-begin guest-stub-g.log\nboot: stub line\n@@BED file-end\n\
                       @@BED file-begin guest-g.log\ntarget line\n@@BED file-end\n@@BED done\n"
                .into(),
            timed_out: false,
            stopped: None,
            elapsed: Duration::from_secs(1),
            log_dir: dir.clone(),
        };
        let ev = parse(&sc, boot).evidence();
        assert!(ev.contains("| not seen"), "{ev}");
        assert!(ev.contains("| boot: stub line"), "{ev}");
        // `g` is not named by the failed step (only `stub-g` is).
        assert!(!ev.contains("target line"), "{ev}");
        assert!(ev.contains("| (XEN) last words"), "{ev}");
        let _ = std::fs::remove_dir_all(dir);
        assert!(mentions("wait stub-t4s2: stub: attached", "stub-t4s2"));
        assert!(!mentions("wait stub-t4s2: stub: attached", "t4s2"));
    }
}
