//! One vCPU's workload: every planned kind, `count` times, timed.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;

use workload::{Cycles, Kind, Plan, Record};

use crate::events::*;

/// What one vCPU did for one kind: the guest-visible ground truth.
pub struct Outcome {
    pub kind: Kind,
    pub count: u32,
    pub cycles: Cycles,
    /// ` key=value` read-backs.
    pub extra: String,
}

impl Outcome {
    pub fn record(&self, vcpu: u32) -> String {
        format!(
            "{}",
            Record {
                vcpu,
                kind: self.kind,
                count: self.count,
                cycles: self.cycles,
                extra: &self.extra,
            }
        )
    }
}

/// Runs the whole plan on the calling vCPU.
pub fn vcpu_workload(
    plan: &Plan,
    vcpu: u32,
    hypercall_hvm_op: fn(u64, u64) -> i64,
) -> Vec<Outcome> {
    let mut samples = vec![0u64; plan.count as usize];
    plan.kinds
        .iter()
        .map(|kind| {
            let extra = match kind {
                Kind::Cpuid => cpuid_kind(plan, &mut samples),
                Kind::Cr => cr_kind(plan, &mut samples),
                Kind::Msr => msr_kind(plan, &mut samples),
                Kind::Int3 => int3_kind(&mut samples),
                Kind::GuestRequest => guest_request_kind(&mut samples, hypercall_hvm_op),
                Kind::Mem => {
                    for (i, s) in samples.iter_mut().enumerate() {
                        *s = timed(|| mem_write(vcpu, i as u32)).0;
                    }
                    String::new()
                }
            };
            Outcome {
                kind,
                count: plan.count,
                cycles: Cycles::of(&mut samples),
                extra,
            }
        })
        .collect()
}

fn cpuid_kind(plan: &Plan, samples: &mut [u64]) -> String {
    let leaves = plan.leaves();
    let mut seen = [[0u32; 4]; workload::MAX_LEAVES];
    let mut varied = 0u32;
    for (i, s) in samples.iter_mut().enumerate() {
        let l = i % leaves.len();
        let (c, r) = timed(|| cpuid(leaves[l]));
        *s = c;
        // The APIC id in leaf 1 differs per vCPU, not per call: a change
        // between calls on one vCPU means someone rewrote the answer.
        if i >= leaves.len() && seen[l] != r {
            varied += 1;
        }
        seen[l] = r;
    }
    let mut out = format!(" varied={varied}");
    for (l, leaf) in leaves.iter().enumerate() {
        let [a, b, c, d] = seen[l];
        let _ = write!(out, " leaf.{leaf:#x}={a:#x}:{b:#x}:{c:#x}:{d:#x}");
    }
    out
}

fn cr_kind(_plan: &Plan, samples: &mut [u64]) -> String {
    let mut stuck = 0u32;
    let mut cr4_writes = 0u32;
    let mut cr0_writes = 0u32;
    for s in samples.iter_mut() {
        let want = read_cr4() ^ CR4_TSD;
        // SAFETY: toggles TSD only, which matters at CPL > 0 and we run at 0.
        *s = timed(|| unsafe { write_cr4(want) }).0;
        cr4_writes += 1;
        if read_cr4() == want {
            stuck += 1;
        }
    }
    if read_cr4() & CR4_TSD != 0 {
        // SAFETY: as above; leaves TSD clear as we found it at boot.
        unsafe { write_cr4(read_cr4() & !CR4_TSD) };
        cr4_writes += 1;
    }
    // SMEP: turn it on (nothing of ours is user-accessible), then try to turn
    // it off, which is what an attacker disabling SMEP does.
    let smep = if cpuid(7)[1] & (1 << 7) == 0 {
        "absent"
    } else {
        if read_cr4() & CR4_SMEP == 0 {
            // SAFETY: no page of this kernel has the user bit, so SMEP
            // cannot fault on any of our fetches.
            unsafe { write_cr4(read_cr4() | CR4_SMEP) };
            cr4_writes += 1;
        }
        if read_cr4() & CR4_SMEP == 0 {
            "not-enabled"
        } else {
            // SAFETY: clearing SMEP only loosens a protection.
            unsafe { write_cr4(read_cr4() & !CR4_SMEP) };
            cr4_writes += 1;
            if read_cr4() & CR4_SMEP == 0 {
                "stuck"
            } else {
                "blocked"
            }
        }
    };
    // CR0.WP: try to clear it, read back, restore.
    let cr0 = read_cr0();
    let wp = if cr0 & CR0_WP == 0 {
        "not-enabled"
    } else {
        // SAFETY: WP only governs supervisor writes to read-only pages,
        // which this kernel does not make between the two writes.
        unsafe { write_cr0(cr0 & !CR0_WP) };
        cr0_writes += 1;
        let r = if read_cr0() & CR0_WP == 0 {
            "stuck"
        } else {
            "blocked"
        };
        if read_cr0() != cr0 {
            // SAFETY: restores the value read above.
            unsafe { write_cr0(cr0) };
            cr0_writes += 1;
        }
        r
    };
    // cpuid_probes: the CPUID above (SMEP's presence), which a CPUID monitor
    // sees too.
    format!(" stuck={stuck} cr4_writes={cr4_writes} cr0_writes={cr0_writes} smep={smep} wp={wp} cpuid_probes=1")
}

fn msr_kind(plan: &Plan, samples: &mut [u64]) -> String {
    let orig = rdmsr(MSR_LSTAR);
    let mut stuck = 0u32;
    let mut writes = 0u32;
    for s in samples.iter_mut() {
        // SAFETY: LSTAR is the syscall entry point; this kernel never
        // executes syscall, and the original value is restored.
        *s = timed(|| unsafe { wrmsr(MSR_LSTAR, plan.lstar) }).0;
        writes += 1;
        if rdmsr(MSR_LSTAR) == plan.lstar {
            stuck += 1;
            // SAFETY: as above.
            unsafe { wrmsr(MSR_LSTAR, orig) };
            writes += 1;
        }
    }
    let mut flip = |msr: u32, bit: u64| -> &'static str {
        let o = rdmsr(msr);
        // SAFETY: SYSENTER_EIP is unused here; EFER.SCE only enables an
        // instruction we never execute. Both are restored.
        unsafe { wrmsr(msr, o ^ bit) };
        writes += 1;
        if rdmsr(msr) == o ^ bit {
            // SAFETY: restores the value read above.
            unsafe { wrmsr(msr, o) };
            writes += 1;
            "stuck"
        } else {
            "blocked"
        }
    };
    let sysenter = flip(MSR_SYSENTER_EIP, 0x1000);
    let efer = flip(MSR_EFER, EFER_SCE);
    let restored = rdmsr(MSR_LSTAR) == orig;
    format!(
        " stuck={stuck} writes={writes} lstar={:#x} sysenter_eip={sysenter} efer_sce={efer} restored={}",
        plan.lstar,
        u8::from(restored)
    )
}

fn int3_kind(samples: &mut [u64]) -> String {
    let mut delivered = 0u32;
    for s in samples.iter_mut() {
        let (c, hit) = timed(int3);
        *s = c;
        delivered += u32::from(hit);
    }
    format!(" delivered={delivered}")
}

fn guest_request_kind(samples: &mut [u64], hvm_op: fn(u64, u64) -> i64) -> String {
    let mut failed = 0u32;
    let mut last = 0i64;
    for s in samples.iter_mut() {
        let (c, rc) = timed(|| hvm_op(HVMOP_GUEST_REQUEST_VM_EVENT, 0));
        *s = c;
        if rc != 0 {
            failed += 1;
            last = rc;
        }
    }
    format!(" failed={failed} last_error={last}")
}
