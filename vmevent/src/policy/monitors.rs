//! Which Xen monitors a policy needs, and whether the host offers them.

use super::{EventKind, Policy};
use crate::abi::domctl::XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP;
use crate::abi::{
    XenDomctlMonitorOp, VM_EVENT_X86_CR0, VM_EVENT_X86_CR3, VM_EVENT_X86_CR4,
    XEN_DOMCTL_MONITOR_EVENT_CPUID, XEN_DOMCTL_MONITOR_EVENT_DEBUG_EXCEPTION,
    XEN_DOMCTL_MONITOR_EVENT_DESC_ACCESS, XEN_DOMCTL_MONITOR_EVENT_GUEST_REQUEST,
    XEN_DOMCTL_MONITOR_EVENT_MOV_TO_MSR, XEN_DOMCTL_MONITOR_EVENT_SOFTWARE_BREAKPOINT,
    XEN_DOMCTL_MONITOR_EVENT_WRITE_CTRLREG,
};
use core::fmt;

/// Distinct MSRs one policy may monitor.
pub const MAX_MONITORED_MSRS: usize = 32;

/// Xen 4.17 keeps MSR-write monitor bits for three 8K ranges only
/// (`monitor_bitmap_for_msr`); other MSRs cannot be monitored.
pub const fn msr_monitorable(msr: u32) -> bool {
    matches!(msr, 0..=0x1fff | 0x4000_0000..=0x4000_1fff | 0xc000_0000..=0xc000_1fff)
}

/// The monitors a policy needs; each `Some(line)` / MSR entry names the
/// first rule that asked for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorSet {
    pub cr0: Option<u32>,
    pub cr3: Option<u32>,
    pub cr4: Option<u32>,
    /// `(msr, line)`.
    pub msrs: [(u32, u32); MAX_MONITORED_MSRS],
    pub nr_msrs: usize,
    pub cpuid: Option<u32>,
    pub int3: Option<u32>,
    pub guest_request: Option<u32>,
    pub debug_exception: Option<u32>,
    pub desc_access: Option<u32>,
    pub singlestep: Option<u32>,
}

/// A rule the host cannot enforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unenforceable {
    pub line: u32,
    pub monitor: &'static str,
    /// `XEN_DOMCTL_MONITOR_EVENT_*`.
    pub event: u32,
}

impl fmt::Display for Unenforceable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: the host cannot monitor {} (monitor event {})",
            self.line, self.monitor, self.event
        )
    }
}

impl MonitorSet {
    pub fn msrs(&self) -> &[(u32, u32)] {
        &self.msrs[..self.nr_msrs]
    }

    /// `(monitor event, first line, name)` for every monitor in the set
    /// (MSRs folded into one entry).
    fn needed(&self) -> impl Iterator<Item = (u32, u32, &'static str)> + '_ {
        let cr = self.cr0.or(self.cr3).or(self.cr4).map(|l| {
            let l = [self.cr0, self.cr3, self.cr4]
                .iter()
                .flatten()
                .min()
                .copied()
                .unwrap_or(l);
            (
                XEN_DOMCTL_MONITOR_EVENT_WRITE_CTRLREG,
                l,
                "control register writes",
            )
        });
        let msr = self
            .msrs()
            .iter()
            .map(|m| m.1)
            .min()
            .map(|l| (XEN_DOMCTL_MONITOR_EVENT_MOV_TO_MSR, l, "MSR writes"));
        let simple = [
            (self.cpuid, XEN_DOMCTL_MONITOR_EVENT_CPUID, "CPUID"),
            (
                self.int3,
                XEN_DOMCTL_MONITOR_EVENT_SOFTWARE_BREAKPOINT,
                "software breakpoints",
            ),
            (
                self.guest_request,
                XEN_DOMCTL_MONITOR_EVENT_GUEST_REQUEST,
                "guest requests",
            ),
            (
                self.debug_exception,
                XEN_DOMCTL_MONITOR_EVENT_DEBUG_EXCEPTION,
                "debug exceptions",
            ),
            (
                self.desc_access,
                XEN_DOMCTL_MONITOR_EVENT_DESC_ACCESS,
                "descriptor access",
            ),
            (
                self.singlestep,
                XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP,
                "single-step",
            ),
        ];
        cr.into_iter().chain(msr).chain(
            simple
                .into_iter()
                .filter_map(|(l, e, n)| l.map(|l| (e, l, n))),
        )
    }

    /// Check against the `XEN_DOMCTL_MONITOR_OP_GET_CAPABILITIES` bitmap
    /// (`1 << XEN_DOMCTL_MONITOR_EVENT_*`); the error names the first rule
    /// that needs a missing monitor.
    pub fn check_capabilities(&self, caps: u32) -> Result<(), Unenforceable> {
        let mut worst: Option<Unenforceable> = None;
        for (event, line, monitor) in self.needed() {
            if event >= 32 || caps & (1 << event) == 0 {
                let u = Unenforceable {
                    line,
                    monitor,
                    event,
                };
                if worst.map_or(true, |w| u.line < w.line) {
                    worst = Some(u);
                }
            }
        }
        worst.map_or(Ok(()), Err)
    }

    /// The `monitor_op`s that enable exactly this set, in a fixed order.
    /// `cr_bitmask` is 0 (every change is reported; rules filter).
    pub fn enable_ops(&self) -> impl Iterator<Item = XenDomctlMonitorOp> + '_ {
        let crs = [
            (self.cr0, VM_EVENT_X86_CR0),
            (self.cr3, VM_EVENT_X86_CR3),
            (self.cr4, VM_EVENT_X86_CR4),
        ]
        .into_iter()
        .filter_map(|(l, i)| l.map(|_| XenDomctlMonitorOp::mov_to_cr(i, true, 0)));
        let msrs = self
            .msrs()
            .iter()
            .map(|&(m, _)| XenDomctlMonitorOp::mov_to_msr(m, true));
        let simple = [
            (self.cpuid, XEN_DOMCTL_MONITOR_EVENT_CPUID),
            (self.int3, XEN_DOMCTL_MONITOR_EVENT_SOFTWARE_BREAKPOINT),
            (self.desc_access, XEN_DOMCTL_MONITOR_EVENT_DESC_ACCESS),
            (self.singlestep, XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP),
        ]
        .into_iter()
        .filter_map(|(l, e)| l.map(|_| XenDomctlMonitorOp::simple(e, true)));
        let gr = self
            .guest_request
            .map(|_| XenDomctlMonitorOp::guest_request(true, true));
        let db = self
            .debug_exception
            .map(|_| XenDomctlMonitorOp::debug_exception(true));
        crs.chain(msrs).chain(simple).chain(gr).chain(db)
    }
}

impl Policy {
    /// The monitors this policy needs. `any` rules need none: they only see
    /// what other rules caused to be monitored.
    pub fn monitors(&self) -> MonitorSet {
        let mut s = MonitorSet::default();
        for r in self.rules() {
            let slot = match r.kind {
                EventKind::Cr0 => &mut s.cr0,
                EventKind::Cr3 => &mut s.cr3,
                EventKind::Cr4 => &mut s.cr4,
                EventKind::Cpuid => &mut s.cpuid,
                EventKind::Int3 => &mut s.int3,
                EventKind::GuestRequest => &mut s.guest_request,
                EventKind::Debug => &mut s.debug_exception,
                EventKind::Desc => &mut s.desc_access,
                EventKind::Singlestep => &mut s.singlestep,
                EventKind::Any => continue,
                EventKind::Msr => {
                    for &m in r.matches.msrs() {
                        if s.msrs().iter().any(|x| x.0 == m) {
                            continue;
                        }
                        if s.nr_msrs < MAX_MONITORED_MSRS {
                            s.msrs[s.nr_msrs] = (m, r.line);
                            s.nr_msrs += 1;
                        }
                    }
                    continue;
                }
            };
            slot.get_or_insert(r.line);
        }
        s
    }
}
