//! Describing a scenario and turning it into dom0's script.

use std::path::{Path, PathBuf};
use std::time::Duration;

use testbed::cpio;

use crate::report::{self, Run};

/// A guest domain: its xl config and the files it boots from.
#[derive(Debug, Clone)]
pub struct Guest {
    pub name: String,
    kernel: PathBuf,
    ramdisk: Option<PathBuf>,
    vcpus: u32,
    memory_mb: u32,
    cmdline: Option<String>,
    seclabel: Option<String>,
    /// xl builds the domain again when it reboots (`on_reboot="restart"`).
    restart_on_reboot: bool,
    extra: Vec<String>,
}

impl Guest {
    /// A PVH guest booting `kernel` (an ELF with the PVH note).
    pub fn pvh(name: &str, kernel: &Path) -> Self {
        Guest {
            name: name.into(),
            kernel: kernel.into(),
            ramdisk: None,
            vcpus: 1,
            memory_mb: 32,
            cmdline: None,
            seclabel: None,
            restart_on_reboot: false,
            extra: Vec::new(),
        }
    }
    /// A reboot restarts the domain (same UUID, new domid; `xl create -F`
    /// keeps running across it) instead of ending it.
    pub fn restart_on_reboot(mut self) -> Self {
        self.restart_on_reboot = true;
        self
    }
    pub fn vcpus(mut self, n: u32) -> Self {
        self.vcpus = n;
        self
    }
    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = mb;
        self
    }
    /// The kernel command line (`extra=` in xl).
    pub fn cmdline(mut self, s: &str) -> Self {
        self.cmdline = Some(s.into());
        self
    }
    pub fn ramdisk(mut self, p: &Path) -> Self {
        self.ramdisk = Some(p.into());
        self
    }
    /// The FLASK label, e.g. `system_u:system_r:domU_t`.
    pub fn seclabel(mut self, s: &str) -> Self {
        self.seclabel = Some(s.into());
        self
    }
    /// Any other xl config line, verbatim.
    pub fn cfg(mut self, line: &str) -> Self {
        self.extra.push(line.into());
        self
    }

    /// Where dom0 finds the kernel: [`image_file`], one copy per source
    /// file however many guests boot it.
    pub fn kernel_file(&self) -> String {
        image_file(&self.kernel)
    }
    fn ramdisk_file(&self) -> Option<String> {
        self.ramdisk.as_deref().map(image_file)
    }

    /// The xl config. Every exit destroys the domain (a reboot too, unless
    /// [`restart_on_reboot`](Self::restart_on_reboot)) so `xl create -F`
    /// returns and reports the shutdown reason; `tsc_mode="native"` because
    /// under QEMU's emulated SVM, Xen cannot emulate RDTSCP.
    pub fn xl_config(&self) -> String {
        let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut c = format!(
            "name = \"{}\"\ntype = \"pvh\"\nkernel = \"{}\"\nmemory = {}\nvcpus = {}\n\
             on_poweroff = \"destroy\"\non_reboot = \"{}\"\non_crash = \"destroy\"\n\
             on_watchdog = \"destroy\"\ntsc_mode = \"native\"\n",
            q(&self.name),
            self.kernel_file(),
            self.memory_mb,
            self.vcpus,
            if self.restart_on_reboot {
                "restart"
            } else {
                "destroy"
            }
        );
        if let Some(r) = self.ramdisk_file() {
            c.push_str(&format!("ramdisk = \"{r}\"\n"));
        }
        if let Some(s) = &self.cmdline {
            c.push_str(&format!("extra = \"{}\"\n", q(s)));
        }
        if let Some(s) = &self.seclabel {
            c.push_str(&format!("seclabel = \"{}\"\n", q(s)));
        }
        for l in &self.extra {
            c.push_str(l);
            c.push('\n');
        }
        c
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Action {
    Shell(String),
    Start { guest: String, paused: bool },
    WaitConsole { guest: String, pattern: String },
    WaitShutdown { guest: String },
}

#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub label: String,
    pub action: Action,
    pub timeout_s: u32,
    /// When it fails, the remaining steps are skipped.
    pub required: bool,
}

/// A set of guests and dom0 steps run in one boot of Xen.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    guests: Vec<Guest>,
    pub(crate) steps: Vec<Step>,
    files: Vec<(String, PathBuf)>,
}

/// Boot, toolstack start and log dump come on top of the steps' own timeouts.
const BOOT_ALLOWANCE_S: u64 = 180;

impl Scenario {
    pub fn new(name: &str) -> Self {
        Scenario {
            name: name.into(),
            guests: Vec::new(),
            steps: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn guest(mut self, g: Guest) -> Self {
        assert!(
            !g.name.is_empty()
                && g.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "guest name {:?}: letters, digits, - and _ only (it is used in shell and file names)",
            g.name
        );
        self.guests.push(g);
        self
    }

    /// Puts a host file into dom0 at `dest` (an absolute path under /scenario).
    pub fn file(mut self, dest: &str, src: &Path) -> Self {
        self.files.push((dest.into(), src.into()));
        self
    }

    fn push(mut self, label: &str, action: Action, timeout_s: u32, required: bool) -> Self {
        // Labels the bed makes up (`start g`, `shutdown g`, ...) repeat when
        // a guest is started twice: the later ones get ` (2)`, ` (3)`, ...
        // Labels a test chose must be unique.
        let mut label = label.to_string();
        if self.steps.iter().any(|s| s.label == label) {
            assert!(
                !matches!(action, Action::Shell(_)),
                "step label {label} used twice"
            );
            let base = label.clone();
            let mut n = 2;
            while self.steps.iter().any(|s| s.label == label) {
                label = format!("{base} ({n})");
                n += 1;
            }
        }
        self.steps.push(Step {
            label,
            action,
            timeout_s,
            required,
        });
        self
    }

    /// A dom0 shell step (busybox sh) that must exit 0 within 60 s.
    pub fn step(self, label: &str, shell: &str) -> Self {
        self.push(label, Action::Shell(shell.into()), 60, true)
    }

    /// A dom0 shell step that must exit 0 within `timeout_s` seconds.
    pub fn step_within(self, label: &str, shell: &str, timeout_s: u32) -> Self {
        self.push(label, Action::Shell(shell.into()), timeout_s, true)
    }

    /// A dom0 shell step whose exit status the test checks itself.
    pub fn step_may_fail(self, label: &str, shell: &str, timeout_s: u32) -> Self {
        self.push(label, Action::Shell(shell.into()), timeout_s, false)
    }

    /// `xl create -F` in the background; the step ends when the domain
    /// exists and prints `domid=N`.
    pub fn start(self, guest: &str) -> Self {
        let label = format!("start {guest}");
        self.push(
            &label,
            Action::Start {
                guest: guest.into(),
                paused: false,
            },
            60,
            true,
        )
    }

    /// As [`Scenario::start`], but the domain stays paused (`xl create -p`).
    pub fn start_paused(self, guest: &str) -> Self {
        let label = format!("start {guest}");
        self.push(
            &label,
            Action::Start {
                guest: guest.into(),
                paused: true,
            },
            60,
            true,
        )
    }

    /// Lets a guest started with `go=xenstore` run its workload: writes
    /// its `data/go` key (dom0 may write anywhere; the guest reads its own
    /// directory).
    pub fn go(self, guest: &str) -> Self {
        self.step(
            &format!("go {guest}"),
            &format!("xenstore-write /local/domain/$(xl domid {guest})/data/go 1"),
        )
    }

    /// Waits until the guest's console log holds `pattern` (a fixed string).
    pub fn wait_for(self, guest: &str, pattern: &str, timeout_s: u32) -> Self {
        let label = format!("wait {guest}: {pattern}");
        self.push(
            &label,
            Action::WaitConsole {
                guest: guest.into(),
                pattern: pattern.into(),
            },
            timeout_s,
            true,
        )
    }

    /// Waits until the guest is gone; its shutdown reason code is recorded.
    pub fn wait_shutdown(self, guest: &str, timeout_s: u32) -> Self {
        let label = format!("shutdown {guest}");
        self.push(
            &label,
            Action::WaitShutdown {
                guest: guest.into(),
            },
            timeout_s,
            true,
        )
    }

    fn guest_named(&self, name: &str) -> &Guest {
        self.guests
            .iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("scenario {}: no guest named {name}", self.name))
    }

    /// The script dom0 runs. Step outputs are framed by `@@BED` lines that
    /// [`report`] parses back.
    pub(crate) fn script(&self) -> String {
        let mut s = String::from(SCRIPT_HEAD);
        for (i, st) in self.steps.iter().enumerate() {
            let body = match &st.action {
                Action::Shell(_) => format!(". /scenario/steps/{i}.sh"),
                Action::Start { guest, paused } => {
                    self.guest_named(guest);
                    format!("bed_start {guest} {}", if *paused { "-p" } else { "" })
                }
                Action::WaitConsole { guest, .. } => {
                    format!("bed_wait_console {guest} /scenario/steps/{i}.pat")
                }
                Action::WaitShutdown { guest } => format!("bed_wait_shutdown {guest}"),
            };
            s.push_str(&format!(
                "bed_step {i} {} {} '{}'\n",
                st.timeout_s,
                u8::from(st.required),
                body,
            ));
        }
        s.push_str(SCRIPT_TAIL);
        s
    }

    /// The cpio appended to dom0's initramfs: script, step bodies, xl
    /// configs, kernels, ramdisks and extra files.
    fn payload(&self) -> anyhow::Result<Vec<u8>> {
        let mut w = cpio::Writer::new(Vec::new());
        w.dir("scenario")?;
        w.dir("scenario/steps")?;
        w.dir("scenario/images")?;
        w.file("scenario/run.sh", 0o755, self.script().as_bytes())?;
        w.file("scenario/lib.sh", 0o644, SCRIPT_LIB.as_bytes())?;
        for (i, st) in self.steps.iter().enumerate() {
            match &st.action {
                Action::Shell(cmd) => {
                    w.file(&format!("scenario/steps/{i}.sh"), 0o755, cmd.as_bytes())?
                }
                Action::WaitConsole { pattern, .. } => w.file(
                    &format!("scenario/steps/{i}.pat"),
                    0o644,
                    pattern.as_bytes(),
                )?,
                _ => {}
            }
        }
        let mut images = std::collections::BTreeSet::new();
        for g in &self.guests {
            w.file(
                &format!("scenario/{}.cfg", g.name),
                0o644,
                g.xl_config().as_bytes(),
            )?;
            for src in std::iter::once(&g.kernel).chain(&g.ramdisk) {
                if images.insert(src) {
                    testbed::kernels::add_file(&mut w, &image_file(src), src)?;
                }
            }
        }
        for (dest, src) in &self.files {
            testbed::kernels::add_file(&mut w, dest, src)?;
        }
        Ok(w.finish()?)
    }

    fn timeout(&self) -> Duration {
        let steps: u64 = self.steps.iter().map(|s| u64::from(s.timeout_s)).sum();
        Duration::from_secs(BOOT_ALLOWANCE_S + steps)
    }

    /// Boots Xen under QEMU, runs every step, and returns what happened.
    /// Panics only when the bed itself cannot be built or started; the
    /// outcome of the scenario is in the [`Run`].
    pub fn run(&self) -> Run {
        // One boot, never retried: a break of the bed (docs/bed.md) fails
        // every test that looks at the run (Run::bed_break), naming why
        // and the log folder.
        let run = self.run_once();
        if let Some(why) = run.bed_break() {
            eprintln!(
                "bed: scenario {}: THE BED BROKE ({why}); logs: {}",
                self.name,
                run.log_dir.display()
            );
        }
        run
    }

    /// One boot, whatever happens in it (`cargo xtask soak` counts these).
    pub fn run_once(&self) -> Run {
        let art = crate::artifacts();
        let layout = crate::layout();
        let go = || -> anyhow::Result<Run> {
            let dir = layout.run_dir(&self.name)?;
            let payload = self.payload()?;
            let mut watch = crate::watch::BootWatch::new(
                self.steps
                    .iter()
                    .map(|s| (s.label.as_str(), s.timeout_s))
                    .collect(),
            );
            let boot = testbed::qemu::boot(
                &layout,
                art,
                &payload,
                self.timeout(),
                &mut |new, now| watch.look(new, now),
                dir,
            )?;
            let mut run = report::parse(self, boot);
            run.began = watch.began;
            Ok(run)
        };
        let run = go().unwrap_or_else(|e| panic!("scenario {}: {e:#}", self.name));
        eprintln!("{}", run.summary());
        eprint!("{}", run.evidence());
        run
    }
}

/// The payload path of a guest's kernel or ramdisk, named after its
/// source file: a scenario boots a hundred guests from the same two or
/// three files, and a copy per guest (2 MB each) filled dom0's rootfs
/// (~310 MB, half its RAM) in the bench's traced round, where `xl create`
/// then failed with an empty log.
fn image_file(src: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    src.hash(&mut h);
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    format!("/scenario/images/{:016x}-{name}", h.finish())
}

/// Helpers every step can use (each step runs in its own `sh`).
const SCRIPT_LIB: &str = r#"now() { cut -d' ' -f1 /proc/uptime; }
bed_start() { # name [-p]
    xl create -F $2 /scenario/$1.cfg > /tmp/xl-$1.log 2>&1 &
    echo $! > /tmp/xl-$1.pid
    # The domain is listed while xl still builds it; xl -F says
    # "Waiting for domain ..." once it is complete (params set, paused or
    # running), which is what the next step may rely on.
    while ! grep -q "Waiting for domain" /tmp/xl-$1.log 2>/dev/null; do
        if ! kill -0 $(cat /tmp/xl-$1.pid) 2>/dev/null; then
            grep -q "Waiting for domain" /tmp/xl-$1.log && break
            cat /tmp/xl-$1.log; return 1
        fi
        sleep 0.1
    done
    echo "domid=$(xl domid $1 2>/dev/null || echo gone) at $(now)"
}
bed_wait_console() { # name pattern-file
    while ! grep -qF -f $2 /var/log/xen/console/guest-$1.log 2>/dev/null; do sleep 0.1; done
    echo "seen at $(now)"
}
bed_wait_shutdown() { # name
    pid=$(cat /tmp/xl-$1.pid)
    while kill -0 $pid 2>/dev/null; do sleep 0.1; done
    # The log is dumped again at the end; showing it here is a courtesy.
    cat /tmp/xl-$1.log || true
}
"#;

const SCRIPT_HEAD: &str = r#"# Generated by the nested test bed: one scenario.
. /scenario/lib.sh
skip=0
bed_step() { # index timeout required body
    i=$1; t=$2; req=$3; body=$4
    if [ $skip = 1 ]; then echo "@@BED step-skip $i"; return; fi
    echo "@@BED step-begin $i $(now)"
    # /run is a tmpfs of its own: a step that fills the rootfs (/tmp)
    # keeps its output.
    timeout $t sh -c ". /scenario/lib.sh; $body" > /run/step.out 2>&1
    rc=$?
    cat /run/step.out
    echo "@@BED step-end $i rc=$rc $(now)"
    if [ "$(stat -f -c %a /)" = 0 ]; then echo "@@BED rootfs-full $i"; fi
    if [ $rc != 0 ] && [ $req = 1 ]; then skip=1; fi
}
echo "@@BED scenario-begin $(now)"
"#;

const SCRIPT_TAIL: &str = r#"echo "@@BED scenario-end $(now)"
dmesg > /tmp/dom0-dmesg.log 2>&1
for f in /var/log/xen/console/*.log /tmp/xl-*.log /var/log/xen/*.log /tmp/dom0-dmesg.log; do
    [ -f "$f" ] || continue
    echo "@@BED file-begin $(basename $f)"
    cat $f
    echo
    echo "@@BED file-end"
done
echo "@@BED done"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_booting_one_kernel_share_one_copy_of_it() {
        let dir = std::env::temp_dir().join(format!("nested-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (k, r) = (dir.join("kernel"), dir.join("initrd"));
        std::fs::write(&k, b"KERNEL-IMAGE-BYTES").unwrap();
        std::fs::write(&r, b"RAMDISK-IMAGE-BYTES").unwrap();
        let sc = (0..3).fold(Scenario::new("images"), |sc, i| {
            sc.guest(Guest::pvh(&format!("g{i}"), &k).ramdisk(&r))
        });
        let payload = sc.payload().unwrap();
        let copies = |needle: &[u8]| {
            payload
                .windows(needle.len())
                .filter(|w| *w == needle)
                .count()
        };
        assert_eq!(copies(b"KERNEL-IMAGE-BYTES"), 1);
        assert_eq!(copies(b"RAMDISK-IMAGE-BYTES"), 1);
        let kernel = sc.guests[0].kernel_file();
        for g in &sc.guests {
            assert!(g.xl_config().contains(&format!("kernel = \"{kernel}\"")));
            assert!(g.xl_config().contains("ramdisk = \"/scenario/images/"));
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
