//! `--follow`: the target cannot shed its monitor by rebooting.
//!
//! When the target reboots (guest-initiated or `xl reboot`) or is
//! suspended for a save or migration, xl builds a new domain with the same
//! UUID and a new domid, and lets it run. The stub cannot follow it by
//! itself: `XEN_DOMCTL_set_target` pairs a domain once and keeps the old
//! target until the stub is destroyed, and under the policy a stub has no
//! rights over (cannot even see) a domain it is not paired with. So the
//! launcher follows, in the control path only:
//! 1. it watches the target; a shutdown for reboot, suspend or soft reset
//!    means a new domain will come, any other end (poweroff, crash,
//!    `xl destroy`) ends the following;
//! 2. it looks for the new domain every millisecond and pauses it the
//!    moment it exists (a nested controller pause: xl's unpause at the end
//!    of the build does not let it run), and reads how long it had run;
//! 3. once the domain is built (its vCPU 0 is up) and the old stub is gone,
//!    it starts a new stub paired with the new domain, waits until the stub
//!    reports itself attached (`data/vmi/target` in its xenstore path), and
//!    only then releases its pause.
//!
//! A stub that cannot be started or attached leaves the new domain paused
//! (fail closed): the operator decides. Each step prints one line.

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use vmevent::abi::domctl::{
    XenDomctlGetdomaininfo, XEN_DOMINF_DYING, XEN_DOMINF_SHUTDOWN, XEN_DOMINF_SHUTDOWNMASK,
    XEN_DOMINF_SHUTDOWNSHIFT,
};

use crate::xc::Xc;
use vmevent::abi::ShutdownReason;

/// `SHUTDOWN_*` codes after which xl (or a restore) brings the domain back.
const SHUTDOWN_REBOOT: u32 = ShutdownReason::Reboot as u32;
const SHUTDOWN_SUSPEND: u32 = ShutdownReason::Suspend as u32;
const SHUTDOWN_SOFT_RESET: u32 = ShutdownReason::SoftReset as u32;

/// How the watched pair ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The target shut down with a code after which it comes back.
    Restarting(u32),
    /// The target ended for good (the reason, for the message).
    Ended(String),
    /// The stub ended while the target runs on.
    StubGone,
}

/// What a target's state means for the follower.
pub fn classify(target: Option<&XenDomctlGetdomaininfo>) -> Option<End> {
    let Some(i) = target else {
        return Some(End::Ended("was destroyed".into()));
    };
    if i.flags & XEN_DOMINF_SHUTDOWN != 0 {
        let code = (i.flags >> XEN_DOMINF_SHUTDOWNSHIFT) & XEN_DOMINF_SHUTDOWNMASK;
        return Some(match code {
            SHUTDOWN_REBOOT | SHUTDOWN_SUSPEND | SHUTDOWN_SOFT_RESET => End::Restarting(code),
            c => End::Ended(format!("shut down with reason code {c}")),
        });
    }
    if i.flags & XEN_DOMINF_DYING != 0 {
        return Some(End::Ended("was destroyed".into()));
    }
    None
}

/// The domain other than `old` that carries `uuid`, if Xen has one that is
/// neither dying nor shut down (the old domain waits in that state, with
/// the same UUID, until xl destroys it).
pub fn successor(domains: &[XenDomctlGetdomaininfo], uuid: &[u8; 16], old: u32) -> Option<u32> {
    domains
        .iter()
        .find(|i| {
            i.handle == *uuid
                && u32::from(i.domain) != old
                && i.flags & (XEN_DOMINF_DYING | XEN_DOMINF_SHUTDOWN) == 0
        })
        .map(|i| u32::from(i.domain))
}

/// The domain exists and is not dying.
fn alive(xc: &Xc, domid: u32) -> bool {
    matches!(xc.domain(domid), Some(i) if i.flags & XEN_DOMINF_DYING == 0)
}

/// Polls until the target or the stub ends.
fn watch(xc: &Xc, target: u32, stub: u32) -> End {
    loop {
        if let Some(end) = classify(xc.domain(target).as_ref()) {
            return end;
        }
        if !alive(xc, stub) {
            return End::StubGone;
        }
        sleep(Duration::from_millis(5));
    }
}

/// Polls `done` every `every` until it holds, or fails after `timeout`.
fn wait(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let t0 = Instant::now();
    while !done() {
        if t0.elapsed() > timeout {
            return Err(format!("{what}: not within {} s", timeout.as_secs()));
        }
        sleep(every);
    }
    Ok(())
}

/// How often the follower looks for the new domain: it runs unmonitored
/// from xl's unpause until the follower's pause, if it gets that far.
const LOOK: Duration = Duration::from_millis(1);
/// How often it checks on the build and the stubs (each check of the
/// stub's attach runs `xenstore-read`).
const CHECK: Duration = Duration::from_millis(20);

/// The domid the stub `stub` reports attached to, from its xenstore path.
fn attached_to(stub: u32) -> Option<u32> {
    let out = Command::new("xenstore-read")
        .arg(format!("/local/domain/{stub}/data/vmi/target"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Follows the target `target` (monitored by `stub`) across reboots and
/// restores until it ends for good, the stub ends on its own, or no new
/// domain comes within `timeout`. `launch(domid)` starts a paired stub for
/// a new target domain and returns the stub's domid.
pub fn run(
    target: u32,
    stub: u32,
    timeout: Duration,
    mut launch: impl FnMut(u32) -> Result<u32, String>,
) -> Result<(), String> {
    let xc = Xc::open()?;
    let first = xc
        .domain(target)
        .ok_or(format!("target domain {target} is gone"))?;
    let uuid = first.handle;
    let (mut target, mut stub) = (target, stub);
    let mut buf = Vec::new();
    loop {
        let code = match watch(&xc, target, stub) {
            End::Restarting(code) => code,
            End::Ended(why) => {
                println!("vmi-launch: follow: target domain {target} {why}; following ends");
                return Ok(());
            }
            End::StubGone => {
                println!(
                    "vmi-launch: follow: stub domain {stub} ended while target domain {target} runs; following ends"
                );
                return Ok(());
            }
        };
        let ended = Instant::now();
        println!(
            "vmi-launch: follow: target domain {target} shut down with reason code {code}; waiting for its UUID to come back"
        );
        let mut new = None;
        wait("a domain with the target's UUID", timeout, LOOK, || {
            new = xc
                .domains(&mut buf)
                .ok()
                .and_then(|d| successor(d, &uuid, target));
            new.is_some()
        })?;
        let new = new.unwrap();
        // Pause first, look afterwards: every millisecond counts.
        xc.pause(new)?;
        let held = Instant::now();
        let ran_ns = xc.domain(new).map_or(0, |i| i.cpu_time);
        println!(
            "vmi-launch: follow: domain {new} has the target's UUID ({} ms after the old one shut down); held paused; it had run {ran_ns} ns unmonitored",
            ended.elapsed().as_millis()
        );
        // Built: vCPU 0 is up, so XEN_DOMCTL_max_vcpus has made every vCPU
        // (a stub attached earlier would see too few). The old stub must be
        // gone before its name can be used again.
        let built = || xc.domain(new).is_some_and(|i| i.nr_online_vcpus > 0);
        let held_fail = |e: String| {
            format!("{e}; domain {new} stays paused (xl unpause {new} runs it unmonitored)")
        };
        wait(&format!("domain {new} built"), timeout, CHECK, built).map_err(held_fail)?;
        wait(&format!("stub domain {stub} gone"), timeout, CHECK, || {
            xc.domain(stub).is_none()
        })
        .map_err(held_fail)?;
        let next = launch(new).map_err(held_fail)?;
        // Attached, or dead before it could say so.
        let mut attached = false;
        wait(
            &format!("stub domain {next} attached to {new}"),
            timeout,
            CHECK,
            || {
                attached = attached_to(next) == Some(new);
                attached || !alive(&xc, next)
            },
        )
        .map_err(held_fail)?;
        if !attached {
            return Err(held_fail(format!(
                "stub domain {next} ended before it attached to {new} (its console says why)"
            )));
        }
        xc.unpause(new)?;
        println!(
            "vmi-launch: follow: stub domain {next} attached to domain {new}; released after {} ms held paused; unmonitored run {ran_ns} ns",
            held.elapsed().as_millis()
        );
        (target, stub) = (new, next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmevent::abi::domctl::XEN_DOMINF_PAUSED;

    fn dom(id: u16, flags: u32, uuid: u8) -> XenDomctlGetdomaininfo {
        XenDomctlGetdomaininfo {
            domain: id,
            flags,
            handle: [uuid; 16],
            ..Default::default()
        }
    }

    fn shutdown(code: u32) -> u32 {
        XEN_DOMINF_SHUTDOWN | (code << XEN_DOMINF_SHUTDOWNSHIFT)
    }

    #[test]
    fn reboot_suspend_and_soft_reset_are_followed_the_rest_ends() {
        assert_eq!(classify(Some(&dom(3, 0, 1))), None);
        for code in [1, 2, 5] {
            assert_eq!(
                classify(Some(&dom(3, shutdown(code), 1))),
                Some(End::Restarting(code))
            );
        }
        for code in [0, 3, 4] {
            assert!(matches!(
                classify(Some(&dom(3, shutdown(code), 1))),
                Some(End::Ended(_))
            ));
        }
        // Dying with a reboot code still comes back (xl destroys, then
        // builds); dying without one was `xl destroy`.
        assert_eq!(
            classify(Some(&dom(3, shutdown(1) | XEN_DOMINF_DYING, 1))),
            Some(End::Restarting(1))
        );
        assert!(matches!(
            classify(Some(&dom(3, XEN_DOMINF_DYING, 1))),
            Some(End::Ended(_))
        ));
        assert!(matches!(classify(None), Some(End::Ended(_))));
    }

    #[test]
    fn the_successor_has_the_uuid_another_domid_and_is_alive() {
        let uuid = [7u8; 16];
        let doms = [
            dom(0, 0, 0),
            dom(3, shutdown(1), 7),
            dom(4, XEN_DOMINF_DYING, 7),
            dom(5, 0, 9),
        ];
        assert_eq!(successor(&doms, &uuid, 3), None);
        let mut more = doms.to_vec();
        more.push(dom(6, XEN_DOMINF_PAUSED, 7));
        assert_eq!(successor(&more, &uuid, 3), Some(6));
        assert_eq!(successor(&more, &uuid, 6), None);
    }
}
