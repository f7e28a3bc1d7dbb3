//! The parts of `public/domctl.h` (Xen 4.17) we issue: pause/unpause,
//! getdomaininfo, vm_event_op (with our channel ops) and monitor_op.

use core::mem::{offset_of, size_of};

/// Xen refuses every domctl whose `interface_version` differs from its own
/// with `-EACCES`, so this must be exactly 4.17's value.
pub const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x0000_0015;

/// The Xen release line this ABI is written for: the only one whose domctls
/// Xen accepts from us (the interface version changes with each release).
pub const XEN_RELEASE: Release = Release {
    major: 4,
    minor: 17,
};

/// A Xen release line, `major.minor` (`XENVER_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
}

/// `XEN_DOMCTL_INTERFACE_VERSION` in the `public/domctl.h` of each release
/// we know of, to name what a hypervisor speaks when it is not ours.
const DOMCTL_INTERFACE_OF: [(Release, u32); 4] = [
    (XEN_RELEASE, XEN_DOMCTL_INTERFACE_VERSION),
    (Release::new(4, 18), 0x16),
    (Release::new(4, 19), 0x17),
    (Release::new(4, 20), 0x17),
];

impl Release {
    pub const fn new(major: u32, minor: u32) -> Release {
        Release { major, minor }
    }

    /// From `XENVER_version`'s result, `major << 16 | minor`.
    pub const fn from_xenver(v: u32) -> Release {
        Release::new(v >> 16, v & 0xffff)
    }

    /// `"4.19"`.
    pub fn parse(s: &str) -> Option<Release> {
        let (major, minor) = s.split_once('.')?;
        let num = |t: &str| {
            (!t.is_empty() && t.len() <= 5 && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
        };
        Some(Release::new(num(major)?, num(minor)?))
    }

    /// The release's domctl interface version, if we know it.
    pub fn domctl_interface(self) -> Option<u32> {
        DOMCTL_INTERFACE_OF
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, v)| *v)
    }
}

impl core::fmt::Display for Release {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The hypervisor runs a release whose domctls we cannot speak. Its
/// `Display` is the refusal: what was found, what `who` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseMismatch<'a> {
    pub running: Release,
    /// `XENVER_extraversion` (`".5"`, `"-rc"`).
    pub extraversion: &'a str,
    pub ours: Release,
    /// Who refuses: `"this stub"`, `"this launcher"`.
    pub who: &'static str,
}

impl core::fmt::Display for ReleaseMismatch<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "hypervisor is Xen {}{} ",
            self.running, self.extraversion
        )?;
        match self.running.domctl_interface() {
            Some(v) => write!(f, "(domctl {v:#x})")?,
            None => write!(f, "(a domctl interface unknown here)")?,
        }
        let ours = self.ours.domctl_interface().unwrap_or(0);
        write!(
            f,
            "; {} speaks domctl {ours:#x} (Xen {})",
            self.who, self.ours
        )
    }
}

/// `Ok` when the running hypervisor (`XENVER_version`, `XENVER_extraversion`)
/// accepts the domctls of release `ours` (every point release of a line
/// shares its interface version).
pub fn check_release<'a>(
    running: Release,
    extraversion: &'a str,
    ours: Release,
    who: &'static str,
) -> Result<(), ReleaseMismatch<'a>> {
    let same = running == ours
        || matches!(
            (running.domctl_interface(), ours.domctl_interface()),
            (Some(a), Some(b)) if a == b
        );
    if same {
        Ok(())
    } else {
        Err(ReleaseMismatch {
            running,
            extraversion,
            ours,
            who,
        })
    }
}

pub const XEN_DOMCTL_PAUSEDOMAIN: u32 = 3;
pub const XEN_DOMCTL_UNPAUSEDOMAIN: u32 = 4;
pub const XEN_DOMCTL_GETDOMAININFO: u32 = 5;
/// With a NULL buffer, answers the size of the domain's HVM context.
pub const XEN_DOMCTL_GETHVMCONTEXT: u32 = 33;
/// Payload: one `uint8_t access_required`.
pub const XEN_DOMCTL_SET_ACCESS_REQUIRED: u32 = 64;
pub const XEN_DOMCTL_VM_EVENT_OP: u32 = 56;
pub const XEN_DOMCTL_MONITOR_OP: u32 = 77;

pub const XEN_DOMINF_DYING: u32 = 1 << 0;
pub const XEN_DOMINF_HVM_GUEST: u32 = 1 << 1;
pub const XEN_DOMINF_SHUTDOWN: u32 = 1 << 2;
pub const XEN_DOMINF_PAUSED: u32 = 1 << 3;
pub const XEN_DOMINF_BLOCKED: u32 = 1 << 4;
pub const XEN_DOMINF_RUNNING: u32 = 1 << 5;
pub const XEN_DOMINF_DEBUGGED: u32 = 1 << 6;
pub const XEN_DOMINF_XS_DOMAIN: u32 = 1 << 7;
pub const XEN_DOMINF_HAP: u32 = 1 << 8;
pub const XEN_DOMINF_SHUTDOWNMASK: u32 = 255;
pub const XEN_DOMINF_SHUTDOWNSHIFT: u32 = 16;
pub const XEN_INVALID_MAX_VCPU_ID: u32 = !0;

/// `struct xen_arch_domainconfig` (x86).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenArchDomainconfig {
    pub emulation_flags: u32,
    pub misc_flags: u32,
}

/// `struct xen_domctl_getdomaininfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenDomctlGetdomaininfo {
    pub domain: u16,
    pub pad1: u16,
    pub flags: u32,
    pub tot_pages: u64,
    pub max_pages: u64,
    pub outstanding_pages: u64,
    pub shr_pages: u64,
    pub paged_pages: u64,
    pub shared_info_frame: u64,
    pub cpu_time: u64,
    pub nr_online_vcpus: u32,
    pub max_vcpu_id: u32,
    pub ssidref: u32,
    pub handle: [u8; 16],
    pub cpupool: u32,
    pub gpaddr_bits: u8,
    pub pad2: [u8; 7],
    pub arch_config: XenArchDomainconfig,
}

// `struct xen_domctl_vm_event_op` -------------------------------------------

pub const XEN_VM_EVENT_ENABLE: u32 = 0;
pub const XEN_VM_EVENT_DISABLE: u32 = 1;
pub const XEN_VM_EVENT_RESUME: u32 = 2;
pub const XEN_VM_EVENT_GET_VERSION: u32 = 3;
/// Ours (docs/abi.md): allocate the async ring and the per-vCPU slots.
pub const XEN_VM_EVENT_ENABLE_CHANNELS: u32 = 4;
/// Ours (docs/abi.md): read back the async port and the per-vCPU ports.
pub const XEN_VM_EVENT_GET_PORTS: u32 = 5;

pub const XEN_DOMCTL_VM_EVENT_OP_PAGING: u32 = 1;
pub const XEN_DOMCTL_VM_EVENT_OP_MONITOR: u32 = 2;
pub const XEN_DOMCTL_VM_EVENT_OP_SHARING: u32 = 3;

/// Upper bound on `channels.ring_frames` (docs/abi.md).
pub const XEN_VM_EVENT_MAX_RING_FRAMES: u32 = 16;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenVmEventOpEnable {
    /// OUT: event channel of the stock ring.
    pub port: u32,
}

/// Ours: `u.channels` of `XEN_VM_EVENT_ENABLE_CHANNELS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenVmEventOpChannels {
    /// IN: R, `1..=XEN_VM_EVENT_MAX_RING_FRAMES`.
    pub ring_frames: u32,
    /// OUT: number of slots = target `max_vcpus`.
    pub nr_vcpus: u32,
    /// OUT: S = ceil(nr_vcpus / 8).
    pub slot_frames: u32,
    /// OUT: Xen-side unbound port (in the target) for the async ring.
    pub async_port: u32,
}

/// Ours: `u.ports` of `XEN_VM_EVENT_GET_PORTS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenVmEventOpPorts {
    pub async_port: u32,
    /// IN: room in `ports`; OUT: number of target vCPUs.
    pub nr_ports: u32,
    /// `XEN_GUEST_HANDLE_64(uint32)`: guest address of a `u32` array.
    pub ports: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union XenVmEventOpU {
    pub enable: XenVmEventOpEnable,
    pub version: u32,
    pub channels: XenVmEventOpChannels,
    pub ports: XenVmEventOpPorts,
}

/// `struct xen_domctl_vm_event_op`, grown by our channel ops: 12 bytes in
/// stock 4.17, 24 with the patch; `op`, `mode`, `u.enable.port` and
/// `u.version` keep their stock offsets.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct XenDomctlVmEventOp {
    pub op: u32,
    pub mode: u32,
    pub u: XenVmEventOpU,
}

// `struct xen_domctl_monitor_op` --------------------------------------------

pub const XEN_DOMCTL_MONITOR_OP_ENABLE: u32 = 0;
pub const XEN_DOMCTL_MONITOR_OP_DISABLE: u32 = 1;
pub const XEN_DOMCTL_MONITOR_OP_GET_CAPABILITIES: u32 = 2;
pub const XEN_DOMCTL_MONITOR_OP_EMULATE_EACH_REP: u32 = 3;
pub const XEN_DOMCTL_MONITOR_OP_CONTROL_REGISTERS: u32 = 4;

pub const XEN_DOMCTL_MONITOR_EVENT_WRITE_CTRLREG: u32 = 0;
pub const XEN_DOMCTL_MONITOR_EVENT_MOV_TO_MSR: u32 = 1;
pub const XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP: u32 = 2;
pub const XEN_DOMCTL_MONITOR_EVENT_SOFTWARE_BREAKPOINT: u32 = 3;
pub const XEN_DOMCTL_MONITOR_EVENT_GUEST_REQUEST: u32 = 4;
pub const XEN_DOMCTL_MONITOR_EVENT_DEBUG_EXCEPTION: u32 = 5;
pub const XEN_DOMCTL_MONITOR_EVENT_CPUID: u32 = 6;
pub const XEN_DOMCTL_MONITOR_EVENT_PRIVILEGED_CALL: u32 = 7;
pub const XEN_DOMCTL_MONITOR_EVENT_INTERRUPT: u32 = 8;
pub const XEN_DOMCTL_MONITOR_EVENT_DESC_ACCESS: u32 = 9;
pub const XEN_DOMCTL_MONITOR_EVENT_EMUL_UNIMPLEMENTED: u32 = 10;
pub const XEN_DOMCTL_MONITOR_EVENT_INGUEST_PAGEFAULT: u32 = 11;
pub const XEN_DOMCTL_MONITOR_EVENT_VMEXIT: u32 = 12;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMonitorMovToCr {
    /// `VM_EVENT_X86_CR*`.
    pub index: u8,
    pub sync: u8,
    pub onchangeonly: u8,
    pub pad1: u8,
    pub pad2: u32,
    pub bitmask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMonitorMovToMsr {
    pub msr: u32,
    pub onchangeonly: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMonitorGuestRequest {
    pub sync: u8,
    pub allow_userspace: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMonitorSync {
    pub sync: u8,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union XenMonitorOpU {
    pub mov_to_cr: XenMonitorMovToCr,
    pub mov_to_msr: XenMonitorMovToMsr,
    pub guest_request: XenMonitorGuestRequest,
    pub debug_exception: XenMonitorSync,
    pub vmexit: XenMonitorSync,
    /// Not in C: lets us zero the union.
    pub raw: [u64; 2],
}

/// `struct xen_domctl_monitor_op`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct XenDomctlMonitorOp {
    pub op: u32,
    pub event: u32,
    pub u: XenMonitorOpU,
}

// `struct xen_domctl` -------------------------------------------------------

/// Size of the domctl payload union; every sub-op must fit.
pub const XEN_DOMCTL_PAYLOAD_SIZE: usize = 128;

#[repr(C)]
#[derive(Clone, Copy)]
pub union XenDomctlU {
    pub getdomaininfo: XenDomctlGetdomaininfo,
    pub vm_event_op: XenDomctlVmEventOp,
    pub monitor_op: XenDomctlMonitorOp,
    pub pad: [u8; XEN_DOMCTL_PAYLOAD_SIZE],
}

/// `struct xen_domctl`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct XenDomctl {
    pub cmd: u32,
    pub interface_version: u32,
    pub domain: u16,
    pub _pad: [u16; 3],
    pub u: XenDomctlU,
}

const _: () = {
    assert!(size_of::<XenDomctlGetdomaininfo>() == 112);
    assert!(offset_of!(XenDomctlGetdomaininfo, tot_pages) == 8);
    assert!(offset_of!(XenDomctlGetdomaininfo, nr_online_vcpus) == 64);
    assert!(offset_of!(XenDomctlGetdomaininfo, handle) == 76);
    assert!(offset_of!(XenDomctlGetdomaininfo, cpupool) == 92);
    assert!(offset_of!(XenDomctlGetdomaininfo, gpaddr_bits) == 96);
    assert!(offset_of!(XenDomctlGetdomaininfo, arch_config) == 104);
    assert!(offset_of!(XenDomctlVmEventOp, op) == 0);
    assert!(offset_of!(XenDomctlVmEventOp, mode) == 4);
    assert!(offset_of!(XenDomctlVmEventOp, u) == 8);
    assert!(size_of::<XenVmEventOpChannels>() == 16);
    assert!(size_of::<XenVmEventOpPorts>() == 16);
    assert!(offset_of!(XenVmEventOpPorts, ports) == 8);
    assert!(size_of::<XenDomctlVmEventOp>() == 24);
    assert!(size_of::<XenMonitorMovToCr>() == 16);
    assert!(offset_of!(XenMonitorMovToCr, bitmask) == 8);
    assert!(size_of::<XenMonitorMovToMsr>() == 8);
    assert!(size_of::<XenDomctlMonitorOp>() == 24);
    assert!(offset_of!(XenDomctlMonitorOp, u) == 8);
    assert!(size_of::<XenDomctlU>() == XEN_DOMCTL_PAYLOAD_SIZE);
    assert!(offset_of!(XenDomctl, domain) == 8);
    assert!(offset_of!(XenDomctl, u) == 16);
    assert!(size_of::<XenDomctl>() == 144);
};

impl XenDomctl {
    /// A domctl with the 4.17 interface version and a zeroed payload.
    pub const fn new(cmd: u32, domain: u16) -> Self {
        Self {
            cmd,
            interface_version: XEN_DOMCTL_INTERFACE_VERSION,
            domain,
            _pad: [0; 3],
            u: XenDomctlU {
                pad: [0; XEN_DOMCTL_PAYLOAD_SIZE],
            },
        }
    }

    pub const fn pausedomain(domain: u16) -> Self {
        Self::new(XEN_DOMCTL_PAUSEDOMAIN, domain)
    }

    pub const fn unpausedomain(domain: u16) -> Self {
        Self::new(XEN_DOMCTL_UNPAUSEDOMAIN, domain)
    }

    pub const fn getdomaininfo(domain: u16) -> Self {
        Self::new(XEN_DOMCTL_GETDOMAININFO, domain)
    }

    /// `XEN_DOMCTL_vm_event_op` in monitor mode with a zeroed union.
    pub fn vm_event_op(domain: u16, op: u32) -> Self {
        let mut d = Self::new(XEN_DOMCTL_VM_EVENT_OP, domain);
        d.u.vm_event_op = XenDomctlVmEventOp {
            op,
            mode: XEN_DOMCTL_VM_EVENT_OP_MONITOR,
            u: XenVmEventOpU {
                ports: XenVmEventOpPorts::default(),
            },
        };
        d
    }

    pub fn enable_channels(domain: u16, ring_frames: u32) -> Self {
        let mut d = Self::vm_event_op(domain, XEN_VM_EVENT_ENABLE_CHANNELS);
        d.u.vm_event_op.u.channels = XenVmEventOpChannels {
            ring_frames,
            ..Default::default()
        };
        d
    }

    /// `ports_gaddr` is the guest address of a `u32` array of `nr_ports`.
    pub fn get_ports(domain: u16, ports_gaddr: u64, nr_ports: u32) -> Self {
        let mut d = Self::vm_event_op(domain, XEN_VM_EVENT_GET_PORTS);
        d.u.vm_event_op.u.ports = XenVmEventOpPorts {
            async_port: 0,
            nr_ports,
            ports: ports_gaddr,
        };
        d
    }

    pub fn monitor_op(domain: u16, op: XenDomctlMonitorOp) -> Self {
        let mut d = Self::new(XEN_DOMCTL_MONITOR_OP, domain);
        d.u.monitor_op = op;
        d
    }

    pub fn getdomaininfo_out(&self) -> XenDomctlGetdomaininfo {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.getdomaininfo }
    }

    pub fn vm_event_op_out(&self) -> XenDomctlVmEventOp {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.vm_event_op }
    }

    pub fn monitor_op_out(&self) -> XenDomctlMonitorOp {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.monitor_op }
    }
}

impl XenDomctlVmEventOp {
    pub fn channels(&self) -> XenVmEventOpChannels {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.channels }
    }
    pub fn ports(&self) -> XenVmEventOpPorts {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.ports }
    }
    pub fn port(&self) -> u32 {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.enable.port }
    }
    pub fn version(&self) -> u32 {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.version }
    }
}

impl XenDomctlMonitorOp {
    fn base(op: u32, event: u32) -> Self {
        Self {
            op,
            event,
            u: XenMonitorOpU { raw: [0; 2] },
        }
    }

    pub fn get_capabilities() -> Self {
        Self::base(XEN_DOMCTL_MONITOR_OP_GET_CAPABILITIES, 0)
    }

    /// `XEN_DOMCTL_MONITOR_OP_CONTROL_REGISTERS`: without it Xen performs a
    /// monitored CR or MSR write at once and only reports it, so
    /// `VM_EVENT_FLAG_DENY` has nothing left to deny. One way only: Xen has
    /// no op to turn it off again.
    pub fn control_registers() -> Self {
        Self::base(XEN_DOMCTL_MONITOR_OP_CONTROL_REGISTERS, 0)
    }

    /// Enable (`enable = true`) or disable a monitor that takes no options
    /// beyond `sync` (CPUID, breakpoints and descriptor access are always
    /// synchronous in 4.17 and ignore `u`).
    pub fn simple(event: u32, enable: bool) -> Self {
        let op = if enable {
            XEN_DOMCTL_MONITOR_OP_ENABLE
        } else {
            XEN_DOMCTL_MONITOR_OP_DISABLE
        };
        Self::base(op, event)
    }

    /// Synchronous CR write monitor; `onchangeonly` so unchanged writes
    /// (very common for CR3) do not cost an event.
    pub fn mov_to_cr(index: u32, enable: bool, bitmask: u64) -> Self {
        let mut m = Self::simple(XEN_DOMCTL_MONITOR_EVENT_WRITE_CTRLREG, enable);
        m.u.mov_to_cr = XenMonitorMovToCr {
            index: index as u8,
            sync: 1,
            onchangeonly: 1,
            bitmask,
            ..Default::default()
        };
        m
    }

    pub fn mov_to_msr(msr: u32, enable: bool) -> Self {
        let mut m = Self::simple(XEN_DOMCTL_MONITOR_EVENT_MOV_TO_MSR, enable);
        m.u.mov_to_msr = XenMonitorMovToMsr {
            msr,
            onchangeonly: 0,
        };
        m
    }

    pub fn guest_request(enable: bool, sync: bool) -> Self {
        let mut m = Self::simple(XEN_DOMCTL_MONITOR_EVENT_GUEST_REQUEST, enable);
        m.u.guest_request = XenMonitorGuestRequest {
            sync: sync as u8,
            allow_userspace: 0,
        };
        m
    }

    pub fn debug_exception(enable: bool) -> Self {
        let mut m = Self::simple(XEN_DOMCTL_MONITOR_EVENT_DEBUG_EXCEPTION, enable);
        m.u.debug_exception = XenMonitorSync { sync: 1 };
        m
    }

    pub fn mov_to_cr_opts(&self) -> XenMonitorMovToCr {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.mov_to_cr }
    }
    pub fn mov_to_msr_opts(&self) -> XenMonitorMovToMsr {
        // SAFETY: POD union member; any bit pattern is a valid value.
        unsafe { self.u.mov_to_msr }
    }
}

#[cfg(test)]
mod release_tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn only_a_release_with_our_interface_is_accepted() {
        let r = |s| Release::parse(s).unwrap();
        assert_eq!(Release::from_xenver(0x0004_0011), XEN_RELEASE);
        assert!(check_release(r("4.17"), ".5", XEN_RELEASE, "this stub").is_ok());
        // 4.19 and 4.20 share 0x17, so each accepts the other's domctls.
        assert!(check_release(r("4.20"), ".4", r("4.19"), "this stub").is_ok());
        let e = check_release(r("4.20"), ".4", XEN_RELEASE, "this stub").unwrap_err();
        assert_eq!(
            e.to_string(),
            "hypervisor is Xen 4.20.4 (domctl 0x17); this stub speaks domctl 0x15 (Xen 4.17)"
        );
        let e = check_release(r("4.22"), "-rc", XEN_RELEASE, "this launcher").unwrap_err();
        assert_eq!(
            e.to_string(),
            "hypervisor is Xen 4.22-rc (a domctl interface unknown here); \
             this launcher speaks domctl 0x15 (Xen 4.17)"
        );
        for bad in ["", "4", "4.", ".17", "4.17.5", "a.b", "4.-1", "99999999.1"] {
            assert_eq!(Release::parse(bad), None, "{bad:?}");
        }
    }
}
