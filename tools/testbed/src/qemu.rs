//! Boots Xen + dom0 under QEMU (TCG: the KVM here cannot run Xen), one QEMU
//! at a time, always under a timeout.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::{Artifacts, Layout};

/// Xen's command line. `smap=0 smep=0`: under TCG the PV dom0 crashes early
/// without them. `spec-ctrl=eager-fpu`: with Xen's lazy FPU switching (its
/// default on AMD) dom0's processes under this emulator see other contexts'
/// SSE data while HVM guests run on the other pCPU (docs/bed.md); eager
/// switching is also what Xen does on hosts exposed to LazyFP.
pub const XEN_CMDLINE: &str = "console=com1 com1=115200,8n1 dom0_mem=768M,max:768M \
     loglvl=all guest_loglvl=all smap=0 smep=0 flask=enforcing noreboot spec-ctrl=eager-fpu";
pub const DOM0_CMDLINE: &str = "console=hvc0 earlyprintk=xen loglevel=6 print-fatal-signals=1";

#[derive(Debug)]
pub struct Boot {
    /// Xen's serial console (com1): Xen, and dom0's kernel and init through hvc0.
    pub xen_log: String,
    /// The second serial port: the scenario script's output.
    pub data_log: String,
    pub timed_out: bool,
    /// Why the caller's watchdog stopped QEMU, if it did.
    pub stopped: Option<String>,
    pub elapsed: Duration,
    pub log_dir: PathBuf,
}

/// Looks at a boot while it runs: called about once a second with what
/// the scenario port (the second serial line) printed since the last call
/// (lines may be cut anywhere) and the time since QEMU started. A
/// `Some(why)` stops QEMU there: a dom0 that hangs would otherwise hold
/// the bed, one QEMU at a time, until the scenario's whole timeout.
pub type Watchdog<'a> = &'a mut dyn FnMut(&str, Duration) -> Option<String>;

/// Boots with `payload` (a cpio appended to dom0's initramfs) and waits for
/// QEMU to exit (dom0 powers off), `timeout`, or `watchdog` to stop it.
///
/// Knobs for bisecting the bed (`cargo xtask soak`), read from the
/// environment: `BED_QEMU_ACCEL` (default `tcg`; e.g. `tcg,thread=single`),
/// `BED_QEMU_CPU` (`max`; e.g. `max,phys-bits=46`), `BED_QEMU_SMP` (`2`),
/// `BED_XEN_EXTRA` (appended to Xen's command line, e.g. `asid=0`).
pub fn boot(
    layout: &Layout,
    art: &Artifacts,
    payload: &[u8],
    timeout: Duration,
    watchdog: Watchdog<'_>,
    log_dir: PathBuf,
) -> anyhow::Result<Boot> {
    let _lock = layout.lock("qemu")?;
    let initrd = log_dir.join("initrd.cpio");
    let mut image = fs::read(&art.dom0.initrd)?;
    image.extend_from_slice(payload);
    fs::write(&initrd, image)?;
    let xen_log = log_dir.join("xen.log");
    let data_log = log_dir.join("dom0-scenario.log");
    // QEMU splits -initrd at commas: module command lines must not hold any.
    let modules = format!(
        "{} {},{},{}",
        art.dom0.kernel.display(),
        DOM0_CMDLINE,
        initrd.display(),
        art.policy.display()
    );
    let knob = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let xen_cmdline = match std::env::var("BED_XEN_EXTRA") {
        Ok(extra) => format!("{XEN_CMDLINE} {extra}"),
        Err(_) => XEN_CMDLINE.to_string(),
    };
    let mut cmd = Command::new(&art.qemu.binary);
    cmd.args(art.qemu.firmware_args())
        .args(["-machine", "q35", "-accel"])
        .arg(knob("BED_QEMU_ACCEL", "tcg"))
        .arg("-cpu")
        .arg(knob("BED_QEMU_CPU", "max"))
        .arg("-smp")
        .arg(knob("BED_QEMU_SMP", "2"))
        .args(["-m", "2048", "-nographic", "-no-reboot", "-monitor", "none"])
        .arg("-serial")
        .arg(format!("file:{}", xen_log.display()))
        .arg("-serial")
        .arg(format!("file:{}", data_log.display()))
        .arg("-kernel")
        .arg(&art.xen.image)
        .arg("-append")
        .arg(&xen_cmdline)
        .arg("-initrd")
        .arg(modules)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log_dir.join("qemu.stderr"))?);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", art.qemu.binary.display()))?;
    let mut timed_out = false;
    let mut stopped = None;
    let mut polls = 0u64;
    let mut data_seen = 0u64;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        polls += 1;
        // A Xen that panicked (booted with `noreboot`) waits for ever: stop
        // there rather than at the scenario's timeout.
        if polls.is_multiple_of(10) && xen_halted(&xen_log) {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        if polls.is_multiple_of(10) {
            let new = read_from(&data_log, &mut data_seen);
            if let Some(why) = watchdog(&new, start.elapsed()) {
                stopped = Some(why);
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = start.elapsed();
    let _ = fs::remove_file(&initrd);
    let read = |p: &PathBuf| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    Ok(Boot {
        xen_log: read(&xen_log),
        data_log: read(&data_log),
        timed_out,
        stopped,
        elapsed,
        log_dir,
    })
}

/// What `path` holds past `*seen` (advanced to its end), as text.
fn read_from(path: &std::path::Path, seen: &mut u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut new = Vec::new();
    if let Ok(mut f) = fs::File::open(path) {
        if f.seek(SeekFrom::Start(*seen)).is_ok() && f.read_to_end(&mut new).is_ok() {
            *seen += new.len() as u64;
        }
    }
    String::from_utf8_lossy(&new).into_owned()
}

/// Whether the end of Xen's console says it stopped after a panic.
fn xen_halted(xen_log: &std::path::Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = fs::File::open(xen_log) else {
        return false;
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let mut tail = Vec::new();
    if f.seek(SeekFrom::Start(len.saturating_sub(4096))).is_err()
        || f.read_to_end(&mut tail).is_err()
    {
        return false;
    }
    String::from_utf8_lossy(&tail).contains("Manual reset required")
}
