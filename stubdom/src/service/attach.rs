//! Attaching to the target with our own hypercalls, and detaching leaving
//! it running.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use xenctl as xenops;

use boot::xen::{Port, XenError};
use boot::{evtchn, println, smp};
use vmevent::abi::domctl::{check_release, Release, XenDomctlMonitorOp};
use vmevent::shm::{AsyncRingPtr, SlotArea};
use vmevent::{AuditSource, Policy};

use super::{on_port, Config};

/// What failed while attaching, as one line for the console.
pub(super) struct AttachError(pub(super) String);

fn named(e: XenError, what: &str, target: u16) -> AttachError {
    let why = match e {
        XenError::ESRCH => alloc::format!("no such domain {target}"),
        XenError::EBUSY => alloc::format!("domain {target} is already monitored (EBUSY)"),
        e if e.is_denial() => alloc::format!(
            "not permitted to {what} domain {target} ({}: check the FLASK labels and policy)",
            e.name()
        ),
        e => alloc::format!("{what} domain {target} failed: {}", e.name()),
    };
    AttachError(why)
}

/// Attached state: what must be undone at detach.
pub(super) struct Attachment {
    pub(super) target: u16,
    gfns: Vec<u64>,
    pub(super) local_ports: Vec<Port>,
    monitors: Vec<XenDomctlMonitorOp>,
    pub(super) slots: SlotArea,
    pub(super) ring: AsyncRingPtr,
    pub(super) nr_target_vcpus: u32,
    /// Named in every audit record: the domid and UUID at attach.
    pub(super) source: AuditSource,
}

/// Refuses a hypervisor whose domctls we cannot speak, before issuing any:
/// Xen would answer each with EACCES, which reads like a FLASK denial.
fn check_hypervisor(cfg: &Config) -> Result<(), AttachError> {
    let (major, minor) = boot::hypercall::xen_version();
    let extra = boot::hypercall::xen_extraversion();
    check_release(
        Release::new(major, minor),
        extra.as_str(),
        cfg.release,
        "this stub",
    )
    .map_err(|m| AttachError(alloc::format!("{m}: not attached")))
}

pub(super) fn attach(cfg: &Config, policy: &Policy) -> Result<Attachment, AttachError> {
    check_hypervisor(cfg)?;
    let t = cfg.target;
    // Xen answers getdomaininfo with the next domain at or above the id, so
    // for a target that is gone it may check our rights on another one.
    let info = xenops::getdomaininfo(t).map_err(|e| match e {
        e if e.is_denial() => AttachError(alloc::format!(
            "no such domain {t}, or not permitted to inspect it ({}: check the FLASK labels and policy)",
            e.name()
        )),
        _ => named(e, "inspect", t),
    })?;
    if let Some(why) = not_running(&info) {
        return Err(AttachError(alloc::format!(
            "domain {t} {why}: not attached"
        )));
    }
    let monitors = policy.monitors();
    let caps = xenops::monitor_capabilities(t)
        .map_err(|e| named(e, "query monitor capabilities of", t))?;
    if let Err(u) = monitors.check_capabilities(caps) {
        return Err(AttachError(alloc::format!("policy {u}")));
    }
    xenops::pause(t).map_err(|e| named(e, "pause", t))?;
    let mut undo = Undo {
        target: t,
        paused: true,
        channels: false,
        gfns: Vec::new(),
    };

    let ch = xenops::enable_channels(t, cfg.ring_frames).map_err(|e| match e {
        // Stock Xen answers a vm_event op it does not know with ENOSYS.
        XenError::ENOSYS => {
            let (major, minor) = boot::hypercall::xen_version();
            AttachError(alloc::format!(
                "this Xen {major}.{minor} has no vm_event channels (ENOSYS: our patch \
                 series, xen/patches/4.17/, is not applied): not attached"
            ))
        }
        _ => named(e, "enable vm_event channels on", t),
    })?;
    undo.channels = true;
    let n = ch.nr_vcpus;
    if n != info.max_vcpu_id + 1 {
        // Xen 4.17 answers ENABLE on a domain that started to die with
        // success and no slots: say what happened, not what it looks like.
        let now = xenops::getdomaininfo(t);
        if let Some(why) = now.as_ref().ok().and_then(not_running) {
            return Err(AttachError(alloc::format!(
                "domain {t} {why}: not attached"
            )));
        }
        if now.is_err() {
            return Err(AttachError(alloc::format!(
                "domain {t} went away while attaching: not attached"
            )));
        }
        return Err(AttachError(alloc::format!(
            "Xen reports {n} slots for a domain with {} vCPUs",
            info.max_vcpu_id + 1
        )));
    }
    let mut ports = vec![0u32; n as usize];
    let async_port =
        xenops::get_ports(t, &mut ports).map_err(|e| named(e, "get the ports of", t))?;

    let frames = (cfg.ring_frames + ch.slot_frames) as u64;
    let base = boot::alloc_gfns(frames)
        .ok_or_else(|| AttachError("no free guest frames for the channel pages".into()))?;
    let mut gfns: Vec<u64> = (base..base + frames).collect();
    xenops::acquire_channels(t, &mut gfns).map_err(|e| named(e, "map the channels of", t))?;
    undo.gfns = gfns.clone();
    let va = (base << 12) as *mut u8;
    // SAFETY: Xen just mapped R ring frames then S slot frames at these
    // identity-mapped GFNs; they stay mapped until detach removes them.
    let (ring, slots) = unsafe {
        (
            AsyncRingPtr::new(va, cfg.ring_frames),
            SlotArea::new(va.add(cfg.ring_frames as usize * 4096), n),
        )
    };

    let stub_vcpus = smp::nr_vcpus();
    let mut local_ports = Vec::new();
    for (i, &p) in ports
        .iter()
        .chain(core::iter::once(&async_port))
        .enumerate()
    {
        let local =
            evtchn::bind_interdomain(t, p).map_err(|e| named(e, "bind an event channel of", t))?;
        local_ports.push(local);
        let owner = if i < n as usize {
            i as u32 % stub_vcpus
        } else {
            0
        };
        evtchn::bind_vcpu(local, owner).map_err(|e| named(e, "move a port of", t))?;
        // Left masked: each serving vCPU chooses how it waits for its
        // ports (run: `sched::poll` on masked ports, or upcalls).
        evtchn::set_handler(local, Some(on_port)).map_err(|e| named(e, "handle a port of", t))?;
    }
    let ops: Vec<_> = monitors.enable_ops().collect();
    let writes = monitors.cr0.is_some()
        || monitors.cr3.is_some()
        || monitors.cr4.is_some()
        || monitors.nr_msrs > 0;
    if writes {
        // Monitored CR/MSR writes must wait for our answer, or a deny
        // would come too late.
        xenops::monitor(t, XenDomctlMonitorOp::control_registers())
            .map_err(|e| named(e, "hold back monitored writes of", t))?;
    }
    for (k, op) in ops.iter().enumerate() {
        if let Err(e) = xenops::monitor(t, *op) {
            for done in &ops[..k] {
                let _ = xenops::monitor_off(t, *done);
            }
            return Err(named(e, "enable a monitor on", t));
        }
    }
    // Still paused: `run` lets the target go once every stub vCPU serves.
    undo.forget();
    println!(
        "stub: attached to domain {t}: {n} vCPU slot(s) on {stub_vcpus} stub vCPU(s), {} monitor(s), ring {} frame(s), async port {async_port}",
        ops.len(),
        cfg.ring_frames
    );
    Ok(Attachment {
        target: t,
        gfns,
        local_ports,
        monitors: ops,
        slots,
        ring,
        nr_target_vcpus: n,
        source: AuditSource {
            domid: t,
            uuid: info.handle,
        },
    })
}

/// Rolls back a half-done attach so the target is never left paused or
/// with channels nobody serves.
struct Undo {
    target: u16,
    paused: bool,
    channels: bool,
    gfns: Vec<u64>,
}

impl Undo {
    fn forget(&mut self) {
        self.paused = false;
        self.channels = false;
        self.gfns.clear();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for g in &self.gfns {
            let _ = xenops::remove_from_physmap(*g);
        }
        if self.channels {
            let _ = xenops::disable_channels(self.target);
        }
        if self.paused {
            let _ = xenops::unpause(self.target);
        }
    }
}

pub(super) fn detach(a: &Attachment) {
    for op in &a.monitors {
        let _ = xenops::monitor_off(a.target, *op);
    }
    for p in &a.local_ports {
        let _ = evtchn::close(*p);
    }
    for g in &a.gfns {
        let _ = xenops::remove_from_physmap(*g);
    }
    match xenops::disable_channels(a.target) {
        Ok(()) => println!(
            "stub: detached from domain {}: monitors off, channels disabled",
            a.target
        ),
        // Xen freed the channels with the domain.
        Err(XenError::ESRCH) => println!(
            "stub: detached from domain {}: it is gone, nothing left to disable",
            a.target
        ),
        Err(e) => println!(
            "stub: detaching from domain {}: disable failed: {}",
            a.target,
            e.name()
        ),
    }
    if let Some(g) = a.gfns.first() {
        boot::free_gfns(*g, a.gfns.len() as u64);
    }
}

/// Why a domain cannot be (or stay) monitored: it is dying, or it has shut
/// down and waits for the toolstack to destroy or restart it.
fn not_running(i: &vmevent::abi::domctl::XenDomctlGetdomaininfo) -> Option<String> {
    use vmevent::abi::domctl::{
        XEN_DOMINF_DYING, XEN_DOMINF_SHUTDOWN, XEN_DOMINF_SHUTDOWNMASK, XEN_DOMINF_SHUTDOWNSHIFT,
    };
    if i.flags & XEN_DOMINF_DYING != 0 {
        return Some("is dying".into());
    }
    if i.flags & XEN_DOMINF_SHUTDOWN != 0 {
        let code = (i.flags >> XEN_DOMINF_SHUTDOWNSHIFT) & XEN_DOMINF_SHUTDOWNMASK;
        return Some(alloc::format!("has shut down (reason code {code})"));
    }
    None
}

/// The target died, or shut down and waits to be destroyed.
pub(super) fn target_gone(t: u16) -> bool {
    xenops::getdomaininfo(t).map_or(true, |i| not_running(&i).is_some())
}
