//! `public/trace.h`: the records Xen writes into its trace buffers, as
//! `xentrace` saves them. Only what `vmi-trace` reads: the record header,
//! the scheduler's switch and wake records, and the HVM entry/exit and
//! handler records (SVM exit codes are the AMD manual's).
//!
//! A record is one `u32` header — event (bits 0–27), the count of extra
//! `u32`s (bits 28–30), "a TSC follows" (bit 31) — then the TSC as two
//! `u32`s (low first) if flagged, then the extras. `xentrace` puts a
//! [`TRC_TRACE_CPU_CHANGE`] record (extras: pCPU, bytes that follow)
//! before each run of one pCPU's records.

pub const TRC_GEN: u32 = 0x0001_f000;
pub const TRC_SCHED: u32 = 0x0002_f000;
pub const TRC_HVM: u32 = 0x0008_f000;
pub const TRC_PV: u32 = 0x0020_f000;

pub const TRC_LOST_RECORDS: u32 = TRC_GEN + 1;
pub const TRC_TRACE_CPU_CHANGE: u32 = TRC_GEN + 3;

const TRC_SCHED_MIN: u32 = 0x0002_1000;
const TRC_SCHED_VERBOSE: u32 = 0x0002_8000;
/// Runstate changes; the old and new state are in bits 4–9 of the event.
pub const TRC_SCHED_RUNSTATE_CHANGE: u32 = TRC_SCHED_MIN + 1;
/// Extras: domain, vCPU.
pub const TRC_SCHED_WAKE: u32 = TRC_SCHED_VERBOSE + 4;
/// Extras: domain, vCPU.
pub const TRC_SCHED_BLOCK: u32 = TRC_SCHED_VERBOSE + 6;
/// Extras: previous domain, its unit (= vCPU with per-CPU scheduling),
/// next domain, its unit.
pub const TRC_SCHED_SWITCH: u32 = TRC_SCHED_VERBOSE + 10;

const TRC_HVM_ENTRYEXIT: u32 = 0x0008_1000;
const TRC_HVM_HANDLER: u32 = 0x0008_2000;
/// Set in the event of records written in 64-bit mode (a 64-bit RIP).
pub const TRC_64_FLAG: u32 = 0x100;
/// Set in the event of records about a nested guest.
pub const TRC_HVM_NESTEDFLAG: u32 = 0x400;
/// No extras, always with a TSC.
pub const TRC_HVM_VMENTRY: u32 = TRC_HVM_ENTRYEXIT + 0x01;
/// Extras: exit code, RIP (one `u32`, or two with [`TRC_64_FLAG`]); with
/// a TSC.
pub const TRC_HVM_VMEXIT: u32 = TRC_HVM_ENTRYEXIT + 0x02;
pub const TRC_HVM_VMEXIT64: u32 = TRC_HVM_ENTRYEXIT + TRC_64_FLAG + 0x02;
/// Extras: leaf, subleaf, eax, ebx, ecx, edx of the answer Xen computed.
pub const TRC_HVM_CPUID: u32 = TRC_HVM_HANDLER + 0x0E;
/// Extras: the hypercall number (the guest's eax).
pub const TRC_HVM_VMMCALL: u32 = TRC_HVM_HANDLER + 0x12;
/// A PV guest's hypercall: extra 0 is the number in bits 0–19.
pub const TRC_PV_HYPERCALL_V2: u32 = 0x0020_1000 + 13;

/// `TRC_HD_*`: the header's fields.
pub const TRC_HD_CYCLE_FLAG: u32 = 1 << 31;
pub const TRACE_EXTRA_SHIFT: u32 = 28;
pub const TRACE_EXTRA_MAX: u32 = 7;

/// The idle domain's id in scheduler records.
pub const DOMID_IDLE: u32 = 0x7fff;

/// SVM exit codes (AMD APM vol. 2, appendix C) Xen puts in VMEXIT records.
pub const SVM_EXIT_INTR: u32 = 0x60;
pub const SVM_EXIT_CPUID: u32 = 0x72;
pub const SVM_EXIT_HLT: u32 = 0x78;
pub const SVM_EXIT_MSR: u32 = 0x7c;
pub const SVM_EXIT_VMMCALL: u32 = 0x81;
pub const SVM_EXIT_NPF: u32 = 0x400;
