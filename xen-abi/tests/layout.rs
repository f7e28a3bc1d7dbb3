//! Layout proof against the C headers.
//!
//! Builds a C program that prints `sizeof`/`offsetof`/constant values for
//! every struct field and constant we mirror, and compares each number with
//! the Rust side. Any drift fails.
//!
//! - Stock part: always runs, against Debian's Xen 4.17 headers
//!   (`/usr/include/xen`, package `libxen-dev`), or `VMEVENT_XEN_INCLUDE`
//!   (a dir holding `xen/domctl.h`, or a Xen tree's `include/public`).
//! - New-struct part (our channel ABI): runs against
//!   `VMEVENT_PATCHED_XEN_INCLUDE` (same two layouts accepted), and re-runs
//!   the stock list there to prove the patch moved nothing. Skipped with a
//!   printed reason when the variable is unset.

use core::mem::{offset_of, size_of};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use xen_abi::*;

struct Checks {
    items: Vec<(String, u64)>,
}

impl Checks {
    fn new() -> Self {
        Self { items: Vec::new() }
    }
    fn add(&mut self, c_expr: String, rust: u64) {
        self.items.push((c_expr, rust));
    }
}

/// Rust field path -> C field path (`type_` is `type` in C).
fn c_path(rust: &str) -> String {
    rust.replace(' ', "")
        .split('.')
        .map(|s| if s == "type_" { "type" } else { s })
        .collect::<Vec<_>>()
        .join(".")
}

macro_rules! size {
    ($c:expr, $t:ty, $ct:literal) => {
        $c.add(format!("sizeof({})", $ct), size_of::<$t>() as u64)
    };
}
macro_rules! off {
    ($c:expr, $t:ty, $ct:literal, $($f:tt).+) => {
        $c.add(
            format!("offsetof({}, {})", $ct, c_path(stringify!($($f).+))),
            offset_of!($t, $($f).+) as u64,
        )
    };
}
macro_rules! offs {
    ($c:expr, $t:ty, $ct:literal, [$($f:ident),+ $(,)?]) => {
        $( off!($c, $t, $ct, $f); )+
    };
}
macro_rules! konst {
    ($c:expr, $($r:expr => $m:literal),+ $(,)?) => {
        $( $c.add(format!("(unsigned long long)({})", $m), ($r) as u64); )+
    };
}

fn stock_checks() -> Checks {
    let mut c = Checks::new();
    // ---- vm_event.h
    konst!(c,
        VM_EVENT_INTERFACE_VERSION => "VM_EVENT_INTERFACE_VERSION",
        VmEventFlags::VCPU_PAUSED.bits() => "VM_EVENT_FLAG_VCPU_PAUSED",
        VmEventFlags::FOREIGN.bits() => "VM_EVENT_FLAG_FOREIGN",
        VmEventFlags::EMULATE.bits() => "VM_EVENT_FLAG_EMULATE",
        VmEventFlags::EMULATE_NOWRITE.bits() => "VM_EVENT_FLAG_EMULATE_NOWRITE",
        VmEventFlags::TOGGLE_SINGLESTEP.bits() => "VM_EVENT_FLAG_TOGGLE_SINGLESTEP",
        VmEventFlags::SET_EMUL_READ_DATA.bits() => "VM_EVENT_FLAG_SET_EMUL_READ_DATA",
        VmEventFlags::DENY.bits() => "VM_EVENT_FLAG_DENY",
        VmEventFlags::ALTERNATE_P2M.bits() => "VM_EVENT_FLAG_ALTERNATE_P2M",
        VmEventFlags::SET_REGISTERS.bits() => "VM_EVENT_FLAG_SET_REGISTERS",
        VmEventFlags::SET_EMUL_INSN_DATA.bits() => "VM_EVENT_FLAG_SET_EMUL_INSN_DATA",
        VmEventFlags::GET_NEXT_INTERRUPT.bits() => "VM_EVENT_FLAG_GET_NEXT_INTERRUPT",
        VmEventFlags::FAST_SINGLESTEP.bits() => "VM_EVENT_FLAG_FAST_SINGLESTEP",
        VmEventFlags::NESTED_P2M.bits() => "VM_EVENT_FLAG_NESTED_P2M",
        VmEventFlags::RESET_VMTRACE.bits() => "VM_EVENT_FLAG_RESET_VMTRACE",
        VmEventFlags::RESET_FORK_STATE.bits() => "VM_EVENT_FLAG_RESET_FORK_STATE",
        VmEventFlags::RESET_FORK_MEMORY.bits() => "VM_EVENT_FLAG_RESET_FORK_MEMORY",
        VM_EVENT_REASON_UNKNOWN => "VM_EVENT_REASON_UNKNOWN",
        VM_EVENT_REASON_MEM_ACCESS => "VM_EVENT_REASON_MEM_ACCESS",
        VM_EVENT_REASON_MEM_SHARING => "VM_EVENT_REASON_MEM_SHARING",
        VM_EVENT_REASON_MEM_PAGING => "VM_EVENT_REASON_MEM_PAGING",
        VM_EVENT_REASON_WRITE_CTRLREG => "VM_EVENT_REASON_WRITE_CTRLREG",
        VM_EVENT_REASON_MOV_TO_MSR => "VM_EVENT_REASON_MOV_TO_MSR",
        VM_EVENT_REASON_SOFTWARE_BREAKPOINT => "VM_EVENT_REASON_SOFTWARE_BREAKPOINT",
        VM_EVENT_REASON_SINGLESTEP => "VM_EVENT_REASON_SINGLESTEP",
        VM_EVENT_REASON_GUEST_REQUEST => "VM_EVENT_REASON_GUEST_REQUEST",
        VM_EVENT_REASON_DEBUG_EXCEPTION => "VM_EVENT_REASON_DEBUG_EXCEPTION",
        VM_EVENT_REASON_CPUID => "VM_EVENT_REASON_CPUID",
        VM_EVENT_REASON_PRIVILEGED_CALL => "VM_EVENT_REASON_PRIVILEGED_CALL",
        VM_EVENT_REASON_INTERRUPT => "VM_EVENT_REASON_INTERRUPT",
        VM_EVENT_REASON_DESCRIPTOR_ACCESS => "VM_EVENT_REASON_DESCRIPTOR_ACCESS",
        VM_EVENT_REASON_EMUL_UNIMPLEMENTED => "VM_EVENT_REASON_EMUL_UNIMPLEMENTED",
        VM_EVENT_REASON_VMEXIT => "VM_EVENT_REASON_VMEXIT",
        VM_EVENT_X86_CR0 => "VM_EVENT_X86_CR0",
        VM_EVENT_X86_CR3 => "VM_EVENT_X86_CR3",
        VM_EVENT_X86_CR4 => "VM_EVENT_X86_CR4",
        VM_EVENT_X86_XCR0 => "VM_EVENT_X86_XCR0",
        MEM_ACCESS_R => "MEM_ACCESS_R",
        MEM_ACCESS_W => "MEM_ACCESS_W",
        MEM_ACCESS_X => "MEM_ACCESS_X",
        MEM_ACCESS_RWX => "MEM_ACCESS_RWX",
        MEM_ACCESS_RW => "MEM_ACCESS_RW",
        MEM_ACCESS_RX => "MEM_ACCESS_RX",
        MEM_ACCESS_WX => "MEM_ACCESS_WX",
        MEM_ACCESS_GLA_VALID => "MEM_ACCESS_GLA_VALID",
        MEM_ACCESS_FAULT_WITH_GLA => "MEM_ACCESS_FAULT_WITH_GLA",
        MEM_ACCESS_FAULT_IN_GPT => "MEM_ACCESS_FAULT_IN_GPT",
        MEM_PAGING_DROP_PAGE => "MEM_PAGING_DROP_PAGE",
        MEM_PAGING_EVICT_FAIL => "MEM_PAGING_EVICT_FAIL",
        VM_EVENT_DESC_IDTR => "VM_EVENT_DESC_IDTR",
        VM_EVENT_DESC_GDTR => "VM_EVENT_DESC_GDTR",
        VM_EVENT_DESC_LDTR => "VM_EVENT_DESC_LDTR",
        VM_EVENT_DESC_TR => "VM_EVENT_DESC_TR",
    );
    size!(c, VmEventX86SelectorReg, "struct vm_event_x86_selector_reg");
    size!(c, VmEventRegsX86, "struct vm_event_regs_x86");
    offs!(
        c,
        VmEventRegsX86,
        "struct vm_event_regs_x86",
        [
            rax,
            rcx,
            rdx,
            rbx,
            rsp,
            rbp,
            rsi,
            rdi,
            r8,
            r9,
            r10,
            r11,
            r12,
            r13,
            r14,
            r15,
            rflags,
            dr6,
            dr7,
            rip,
            cr0,
            cr2,
            cr3,
            cr4,
            sysenter_cs,
            sysenter_esp,
            sysenter_eip,
            msr_efer,
            msr_star,
            msr_lstar,
            gdtr_base,
            npt_base,
            vmtrace_pos,
            cs_base,
            ss_base,
            ds_base,
            es_base,
            fs_base,
            gs_base,
            cs,
            ss,
            ds,
            es,
            fs,
            gs,
            shadow_gs,
            gdtr_limit,
            cs_sel,
            ss_sel,
            ds_sel,
            es_sel,
            fs_sel,
            gs_sel,
            _pad,
        ]
    );
    size!(c, VmEventRegsArm, "struct vm_event_regs_arm");
    offs!(
        c,
        VmEventRegsArm,
        "struct vm_event_regs_arm",
        [ttbr0, ttbr1, ttbcr, pc, cpsr]
    );
    size!(c, VmEventMemAccess, "struct vm_event_mem_access");
    offs!(
        c,
        VmEventMemAccess,
        "struct vm_event_mem_access",
        [gfn, offset, gla, flags, _pad]
    );
    size!(c, VmEventWriteCtrlreg, "struct vm_event_write_ctrlreg");
    offs!(
        c,
        VmEventWriteCtrlreg,
        "struct vm_event_write_ctrlreg",
        [index, _pad, new_value, old_value]
    );
    size!(c, VmEventSinglestep, "struct vm_event_singlestep");
    size!(c, VmEventFastSinglestep, "struct vm_event_fast_singlestep");
    size!(c, VmEventDebug, "struct vm_event_debug");
    offs!(
        c,
        VmEventDebug,
        "struct vm_event_debug",
        [gfn, pending_dbg, insn_length, type_, _pad]
    );
    size!(c, VmEventMovToMsr, "struct vm_event_mov_to_msr");
    offs!(
        c,
        VmEventMovToMsr,
        "struct vm_event_mov_to_msr",
        [msr, new_value, old_value]
    );
    size!(c, VmEventDescAccess, "struct vm_event_desc_access");
    off!(
        c,
        VmEventDescAccess,
        "struct vm_event_desc_access",
        arch.vmx.instr_info
    );
    off!(
        c,
        VmEventDescAccess,
        "struct vm_event_desc_access",
        arch.vmx._pad1
    );
    off!(
        c,
        VmEventDescAccess,
        "struct vm_event_desc_access",
        arch.vmx.exit_qualification
    );
    offs!(
        c,
        VmEventDescAccess,
        "struct vm_event_desc_access",
        [descriptor, is_write, _pad]
    );
    size!(c, VmEventCpuid, "struct vm_event_cpuid");
    offs!(
        c,
        VmEventCpuid,
        "struct vm_event_cpuid",
        [insn_length, leaf, subleaf, _pad]
    );
    size!(c, VmEventInterruptX86, "struct vm_event_interrupt_x86");
    offs!(
        c,
        VmEventInterruptX86,
        "struct vm_event_interrupt_x86",
        [vector, type_, error_code, _pad, cr2]
    );
    size!(c, VmEventPaging, "struct vm_event_paging");
    offs!(
        c,
        VmEventPaging,
        "struct vm_event_paging",
        [gfn, p2mt, flags]
    );
    size!(c, VmEventSharing, "struct vm_event_sharing");
    offs!(
        c,
        VmEventSharing,
        "struct vm_event_sharing",
        [gfn, p2mt, _pad]
    );
    size!(c, VmEventEmulReadData, "struct vm_event_emul_read_data");
    offs!(
        c,
        VmEventEmulReadData,
        "struct vm_event_emul_read_data",
        [size, data]
    );
    size!(c, VmEventEmulInsnData, "struct vm_event_emul_insn_data");
    size!(c, VmEventVmexit, "struct vm_event_vmexit");
    off!(c, VmEventVmexit, "struct vm_event_vmexit", arch.vmx.reason);
    off!(
        c,
        VmEventVmexit,
        "struct vm_event_vmexit",
        arch.vmx.qualification
    );
    size!(c, VmEventSt, "vm_event_request_t");
    size!(c, VmEventSt, "vm_event_response_t");
    offs!(
        c,
        VmEventSt,
        "vm_event_request_t",
        [version, flags, reason, vcpu_id, altp2m_idx, _pad, u, data]
    );
    off!(c, VmEventSt, "vm_event_request_t", u.mem_paging);
    off!(c, VmEventSt, "vm_event_request_t", u.mem_sharing);
    off!(c, VmEventSt, "vm_event_request_t", u.mem_access);
    off!(
        c,
        VmEventSt,
        "vm_event_request_t",
        u.write_ctrlreg.new_value
    );
    off!(c, VmEventSt, "vm_event_request_t", u.mov_to_msr.old_value);
    off!(c, VmEventSt, "vm_event_request_t", u.desc_access.descriptor);
    off!(c, VmEventSt, "vm_event_request_t", u.singlestep.gfn);
    off!(c, VmEventSt, "vm_event_request_t", u.fast_singlestep.p2midx);
    off!(
        c,
        VmEventSt,
        "vm_event_request_t",
        u.software_breakpoint.insn_length
    );
    off!(
        c,
        VmEventSt,
        "vm_event_request_t",
        u.debug_exception.pending_dbg
    );
    off!(c, VmEventSt, "vm_event_request_t", u.cpuid.leaf);
    off!(
        c,
        VmEventSt,
        "vm_event_request_t",
        u.vmexit.arch.vmx.qualification
    );
    off!(c, VmEventSt, "vm_event_request_t", u.interrupt.x86.cr2);
    off!(c, VmEventSt, "vm_event_request_t", data.regs.x86.rip);
    off!(c, VmEventSt, "vm_event_request_t", data.regs.arm.cpsr);
    off!(c, VmEventSt, "vm_event_request_t", data.emul.read.data);
    off!(c, VmEventSt, "vm_event_request_t", data.emul.insn.data);
    c.add(
        "sizeof(((vm_event_request_t *)0)->u)".into(),
        size_of::<VmEventU>() as u64,
    );
    c.add(
        "sizeof(((vm_event_request_t *)0)->data)".into(),
        size_of::<VmEventData>() as u64,
    );
    // io/ring.h instantiated for vm_event: header size and entries per page.
    c.add(
        "offsetof(struct vm_event_sring, ring)".into(),
        VM_EVENT_SRING_HDR_SIZE as u64,
    );
    c.add(
        "__CONST_RING_SIZE(vm_event, 4096)".into(),
        VM_EVENT_RING_SIZE as u64,
    );
    off!(c, VmEventSringHdr, "struct vm_event_sring", req_prod);
    off!(c, VmEventSringHdr, "struct vm_event_sring", req_event);
    off!(c, VmEventSringHdr, "struct vm_event_sring", rsp_prod);
    off!(c, VmEventSringHdr, "struct vm_event_sring", rsp_event);
    off!(c, VmEventSringHdr, "struct vm_event_sring", pvt);
    off!(c, VmEventSringHdr, "struct vm_event_sring", __pad);

    // ---- domctl.h
    konst!(c,
        XEN_DOMCTL_INTERFACE_VERSION => "XEN_DOMCTL_INTERFACE_VERSION",
        XEN_DOMCTL_PAUSEDOMAIN => "XEN_DOMCTL_pausedomain",
        XEN_DOMCTL_UNPAUSEDOMAIN => "XEN_DOMCTL_unpausedomain",
        XEN_DOMCTL_GETDOMAININFO => "XEN_DOMCTL_getdomaininfo",
        XEN_DOMCTL_GETHVMCONTEXT => "XEN_DOMCTL_gethvmcontext",
        XEN_DOMCTL_SET_ACCESS_REQUIRED => "XEN_DOMCTL_set_access_required",
        XEN_DOMCTL_VM_EVENT_OP => "XEN_DOMCTL_vm_event_op",
        XEN_DOMCTL_MONITOR_OP => "XEN_DOMCTL_monitor_op",
        XEN_DOMINF_DYING => "XEN_DOMINF_dying",
        XEN_DOMINF_HVM_GUEST => "XEN_DOMINF_hvm_guest",
        XEN_DOMINF_SHUTDOWN => "XEN_DOMINF_shutdown",
        XEN_DOMINF_PAUSED => "XEN_DOMINF_paused",
        XEN_DOMINF_BLOCKED => "XEN_DOMINF_blocked",
        XEN_DOMINF_RUNNING => "XEN_DOMINF_running",
        XEN_DOMINF_DEBUGGED => "XEN_DOMINF_debugged",
        XEN_DOMINF_XS_DOMAIN => "XEN_DOMINF_xs_domain",
        XEN_DOMINF_HAP => "XEN_DOMINF_hap",
        XEN_DOMINF_SHUTDOWNMASK => "XEN_DOMINF_shutdownmask",
        XEN_DOMINF_SHUTDOWNSHIFT => "XEN_DOMINF_shutdownshift",
        XEN_INVALID_MAX_VCPU_ID => "XEN_INVALID_MAX_VCPU_ID",
        XEN_VM_EVENT_ENABLE => "XEN_VM_EVENT_ENABLE",
        XEN_VM_EVENT_DISABLE => "XEN_VM_EVENT_DISABLE",
        XEN_VM_EVENT_RESUME => "XEN_VM_EVENT_RESUME",
        XEN_VM_EVENT_GET_VERSION => "XEN_VM_EVENT_GET_VERSION",
        XEN_DOMCTL_VM_EVENT_OP_PAGING => "XEN_DOMCTL_VM_EVENT_OP_PAGING",
        XEN_DOMCTL_VM_EVENT_OP_MONITOR => "XEN_DOMCTL_VM_EVENT_OP_MONITOR",
        XEN_DOMCTL_VM_EVENT_OP_SHARING => "XEN_DOMCTL_VM_EVENT_OP_SHARING",
        XEN_DOMCTL_MONITOR_OP_ENABLE => "XEN_DOMCTL_MONITOR_OP_ENABLE",
        XEN_DOMCTL_MONITOR_OP_DISABLE => "XEN_DOMCTL_MONITOR_OP_DISABLE",
        XEN_DOMCTL_MONITOR_OP_GET_CAPABILITIES => "XEN_DOMCTL_MONITOR_OP_GET_CAPABILITIES",
        XEN_DOMCTL_MONITOR_OP_EMULATE_EACH_REP => "XEN_DOMCTL_MONITOR_OP_EMULATE_EACH_REP",
        XEN_DOMCTL_MONITOR_OP_CONTROL_REGISTERS => "XEN_DOMCTL_MONITOR_OP_CONTROL_REGISTERS",
        XEN_DOMCTL_MONITOR_EVENT_WRITE_CTRLREG => "XEN_DOMCTL_MONITOR_EVENT_WRITE_CTRLREG",
        XEN_DOMCTL_MONITOR_EVENT_MOV_TO_MSR => "XEN_DOMCTL_MONITOR_EVENT_MOV_TO_MSR",
        XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP => "XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP",
        XEN_DOMCTL_MONITOR_EVENT_SOFTWARE_BREAKPOINT => "XEN_DOMCTL_MONITOR_EVENT_SOFTWARE_BREAKPOINT",
        XEN_DOMCTL_MONITOR_EVENT_GUEST_REQUEST => "XEN_DOMCTL_MONITOR_EVENT_GUEST_REQUEST",
        XEN_DOMCTL_MONITOR_EVENT_DEBUG_EXCEPTION => "XEN_DOMCTL_MONITOR_EVENT_DEBUG_EXCEPTION",
        XEN_DOMCTL_MONITOR_EVENT_CPUID => "XEN_DOMCTL_MONITOR_EVENT_CPUID",
        XEN_DOMCTL_MONITOR_EVENT_PRIVILEGED_CALL => "XEN_DOMCTL_MONITOR_EVENT_PRIVILEGED_CALL",
        XEN_DOMCTL_MONITOR_EVENT_INTERRUPT => "XEN_DOMCTL_MONITOR_EVENT_INTERRUPT",
        XEN_DOMCTL_MONITOR_EVENT_DESC_ACCESS => "XEN_DOMCTL_MONITOR_EVENT_DESC_ACCESS",
        XEN_DOMCTL_MONITOR_EVENT_EMUL_UNIMPLEMENTED => "XEN_DOMCTL_MONITOR_EVENT_EMUL_UNIMPLEMENTED",
        XEN_DOMCTL_MONITOR_EVENT_INGUEST_PAGEFAULT => "XEN_DOMCTL_MONITOR_EVENT_INGUEST_PAGEFAULT",
        XEN_DOMCTL_MONITOR_EVENT_VMEXIT => "XEN_DOMCTL_MONITOR_EVENT_VMEXIT",
    );
    size!(c, XenDomctl, "struct xen_domctl");
    offs!(
        c,
        XenDomctl,
        "struct xen_domctl",
        [cmd, interface_version, domain, _pad, u]
    );
    off!(c, XenDomctl, "struct xen_domctl", u.getdomaininfo);
    off!(c, XenDomctl, "struct xen_domctl", u.vm_event_op);
    off!(c, XenDomctl, "struct xen_domctl", u.monitor_op);
    off!(c, XenDomctl, "struct xen_domctl", u.pad);
    c.add(
        "sizeof(((struct xen_domctl *)0)->u)".into(),
        size_of::<XenDomctlU>() as u64,
    );
    size!(c, XenArchDomainconfig, "struct xen_arch_domainconfig");
    size!(c, XenDomctlGetdomaininfo, "struct xen_domctl_getdomaininfo");
    offs!(
        c,
        XenDomctlGetdomaininfo,
        "struct xen_domctl_getdomaininfo",
        [
            domain,
            pad1,
            flags,
            tot_pages,
            max_pages,
            outstanding_pages,
            shr_pages,
            paged_pages,
            shared_info_frame,
            cpu_time,
            nr_online_vcpus,
            max_vcpu_id,
            ssidref,
            handle,
            cpupool,
            gpaddr_bits,
            pad2,
            arch_config,
        ]
    );
    offs!(
        c,
        XenDomctlVmEventOp,
        "struct xen_domctl_vm_event_op",
        [op, mode, u]
    );
    off!(
        c,
        XenDomctlVmEventOp,
        "struct xen_domctl_vm_event_op",
        u.enable.port
    );
    off!(
        c,
        XenDomctlVmEventOp,
        "struct xen_domctl_vm_event_op",
        u.version
    );
    size!(c, XenDomctlMonitorOp, "struct xen_domctl_monitor_op");
    offs!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        [op, event, u]
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.mov_to_cr.index
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.mov_to_cr.sync
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.mov_to_cr.onchangeonly
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.mov_to_cr.pad1
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.mov_to_cr.pad2
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.mov_to_cr.bitmask
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.mov_to_msr.msr
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.mov_to_msr.onchangeonly
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.guest_request.sync
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.guest_request.allow_userspace
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.debug_exception.sync
    );
    off!(
        c,
        XenDomctlMonitorOp,
        "struct xen_domctl_monitor_op",
        u.vmexit.sync
    );
    c.add(
        "sizeof(((struct xen_domctl_monitor_op *)0)->u)".into(),
        size_of::<XenMonitorOpU>() as u64,
    );

    // ---- memory.h
    konst!(c,
        XENMEM_ACCESS_OP => "XENMEM_access_op",
        XENMEM_ACQUIRE_RESOURCE => "XENMEM_acquire_resource",
        XENMEM_ADD_TO_PHYSMAP => "XENMEM_add_to_physmap",
        XENMEM_DECREASE_RESERVATION => "XENMEM_decrease_reservation",
        XENMEM_POPULATE_PHYSMAP => "XENMEM_populate_physmap",
        XENMEM_REMOVE_FROM_PHYSMAP => "XENMEM_remove_from_physmap",
        XENMAPSPACE_SHARED_INFO => "XENMAPSPACE_shared_info",
        XENMEM_ADD_TO_PHYSMAP_BATCH => "XENMEM_add_to_physmap_batch",
        XENMAPSPACE_GMFN_FOREIGN => "XENMAPSPACE_gmfn_foreign",
        XENMEM_RESOURCE_IOREQ_SERVER => "XENMEM_resource_ioreq_server",
        XENMEM_RESOURCE_GRANT_TABLE => "XENMEM_resource_grant_table",
        XENMEM_RESOURCE_VMTRACE_BUF => "XENMEM_resource_vmtrace_buf",
        XENMEM_ACCESS_OP_SET_ACCESS => "XENMEM_access_op_set_access",
        XENMEM_ACCESS_OP_GET_ACCESS => "XENMEM_access_op_get_access",
        XENMEM_ACCESS_OP_SET_ACCESS_MULTI => "XENMEM_access_op_set_access_multi",
        XenmemAccess::N as u8 => "XENMEM_access_n",
        XenmemAccess::Rwx as u8 => "XENMEM_access_rwx",
        XenmemAccess::Rx2rw as u8 => "XENMEM_access_rx2rw",
        XenmemAccess::N2rwx as u8 => "XENMEM_access_n2rwx",
        XenmemAccess::Default as u8 => "XENMEM_access_default",
    );
    size!(c, XenMemAcquireResource, "struct xen_mem_acquire_resource");
    offs!(
        c,
        XenMemAcquireResource,
        "struct xen_mem_acquire_resource",
        [domid, type_, id, nr_frames, pad, frame, frame_list]
    );
    size!(c, XenMemoryReservation, "struct xen_memory_reservation");
    offs!(
        c,
        XenMemoryReservation,
        "struct xen_memory_reservation",
        [extent_start, nr_extents, extent_order, mem_flags, domid]
    );
    size!(c, XenAddToPhysmap, "struct xen_add_to_physmap");
    offs!(
        c,
        XenAddToPhysmap,
        "struct xen_add_to_physmap",
        [domid, size, space, idx, gpfn]
    );
    size!(c, XenAddToPhysmapBatch, "struct xen_add_to_physmap_batch");
    offs!(
        c,
        XenAddToPhysmapBatch,
        "struct xen_add_to_physmap_batch",
        [domid, space, size, idxs, gpfns, errs]
    );
    c.add(
        "offsetof(struct xen_add_to_physmap_batch, u.foreign_domid)".into(),
        offset_of!(XenAddToPhysmapBatch, foreign_domid) as u64,
    );
    size!(c, XenRemoveFromPhysmap, "struct xen_remove_from_physmap");
    offs!(
        c,
        XenRemoveFromPhysmap,
        "struct xen_remove_from_physmap",
        [domid, gpfn]
    );
    size!(c, XenMemAccessOp, "struct xen_mem_access_op");
    offs!(
        c,
        XenMemAccessOp,
        "struct xen_mem_access_op",
        [op, access, domid, nr, pfn, pfn_list, access_list]
    );

    // ---- hvm
    konst!(c,
        HVMOP_SET_PARAM => "HVMOP_set_param",
        HVMOP_GET_PARAM => "HVMOP_get_param",
        HVMOP_GUEST_REQUEST_VM_EVENT => "HVMOP_guest_request_vm_event",
        HVM_PARAM_CALLBACK_IRQ => "HVM_PARAM_CALLBACK_IRQ",
        HVM_PARAM_CALLBACK_TYPE_VECTOR => "((uint64_t)HVM_PARAM_CALLBACK_TYPE_VECTOR << 56)",
        HVM_PARAM_STORE_PFN => "HVM_PARAM_STORE_PFN",
        HVM_PARAM_STORE_EVTCHN => "HVM_PARAM_STORE_EVTCHN",
        HVM_PARAM_CONSOLE_PFN => "HVM_PARAM_CONSOLE_PFN",
        HVM_PARAM_CONSOLE_EVTCHN => "HVM_PARAM_CONSOLE_EVTCHN",
        HVM_PARAM_MONITOR_RING_PFN => "HVM_PARAM_MONITOR_RING_PFN",
        XEN_DMOP_INJECT_EVENT => "XEN_DMOP_inject_event",
        XEN_DMOP_NR_VCPUS => "XEN_DMOP_nr_vcpus",
        XEN_DMOP_EVENT_EXT_INT => "XEN_DMOP_EVENT_ext_int",
        XEN_DMOP_EVENT_NMI => "XEN_DMOP_EVENT_nmi",
        XEN_DMOP_EVENT_HW_EXC => "XEN_DMOP_EVENT_hw_exc",
        XEN_DMOP_EVENT_SW_INT => "XEN_DMOP_EVENT_sw_int",
        XEN_DMOP_EVENT_PRI_SW_EXC => "XEN_DMOP_EVENT_pri_sw_exc",
        XEN_DMOP_EVENT_SW_EXC => "XEN_DMOP_EVENT_sw_exc",
    );
    size!(c, XenHvmParam, "struct xen_hvm_param");
    offs!(
        c,
        XenHvmParam,
        "struct xen_hvm_param",
        [domid, pad, index, value]
    );
    size!(c, XenDmOpInjectEvent, "struct xen_dm_op_inject_event");
    offs!(
        c,
        XenDmOpInjectEvent,
        "struct xen_dm_op_inject_event",
        [vcpuid, vector, type_, insn_len, pad0, error_code, pad1, cr2]
    );
    off!(c, XenDmOpInject, "struct xen_dm_op", op);
    off!(c, XenDmOpInject, "struct xen_dm_op", pad);
    c.add(
        "offsetof(struct xen_dm_op, u.inject_event)".into(),
        offset_of!(XenDmOpInject, inject_event) as u64,
    );
    size!(c, XenDmOpBuf, "struct xen_dm_op_buf");
    offs!(c, XenDmOpBuf, "struct xen_dm_op_buf", [h, size]);

    // ---- event_channel.h
    konst!(c,
        EVTCHNOP_BIND_INTERDOMAIN => "EVTCHNOP_bind_interdomain",
        EVTCHNOP_CLOSE => "EVTCHNOP_close",
        EVTCHNOP_SEND => "EVTCHNOP_send",
        EVTCHNOP_STATUS => "EVTCHNOP_status",
        EVTCHNOP_ALLOC_UNBOUND => "EVTCHNOP_alloc_unbound",
        EVTCHNOP_BIND_VCPU => "EVTCHNOP_bind_vcpu",
        EVTCHNOP_UNMASK => "EVTCHNOP_unmask",
        EVTCHNOP_BIND_VIRQ => "EVTCHNOP_bind_virq",
        EVTCHNOP_BIND_IPI => "EVTCHNOP_bind_ipi",
        EVTCHNSTAT_CLOSED => "EVTCHNSTAT_closed",
        EVTCHNSTAT_UNBOUND => "EVTCHNSTAT_unbound",
        EVTCHNSTAT_INTERDOMAIN => "EVTCHNSTAT_interdomain",
        EVTCHNSTAT_PIRQ => "EVTCHNSTAT_pirq",
        EVTCHNSTAT_VIRQ => "EVTCHNSTAT_virq",
        EVTCHNSTAT_IPI => "EVTCHNSTAT_ipi",
    );
    size!(c, EvtchnAllocUnbound, "struct evtchn_alloc_unbound");
    offs!(
        c,
        EvtchnAllocUnbound,
        "struct evtchn_alloc_unbound",
        [dom, remote_dom, port]
    );
    size!(c, EvtchnBindInterdomain, "struct evtchn_bind_interdomain");
    offs!(
        c,
        EvtchnBindInterdomain,
        "struct evtchn_bind_interdomain",
        [remote_dom, remote_port, local_port]
    );
    size!(c, EvtchnBindVirq, "struct evtchn_bind_virq");
    offs!(
        c,
        EvtchnBindVirq,
        "struct evtchn_bind_virq",
        [virq, vcpu, port]
    );
    size!(c, EvtchnBindIpi, "struct evtchn_bind_ipi");
    offs!(c, EvtchnBindIpi, "struct evtchn_bind_ipi", [vcpu, port]);
    size!(c, EvtchnClose, "struct evtchn_close");
    size!(c, EvtchnSend, "struct evtchn_send");
    size!(c, EvtchnBindVcpu, "struct evtchn_bind_vcpu");
    offs!(c, EvtchnBindVcpu, "struct evtchn_bind_vcpu", [port, vcpu]);
    size!(c, EvtchnUnmask, "struct evtchn_unmask");
    size!(c, EvtchnStatus, "struct evtchn_status");
    offs!(
        c,
        EvtchnStatus,
        "struct evtchn_status",
        [dom, port, status, vcpu, u]
    );
    off!(c, EvtchnStatus, "struct evtchn_status", u.interdomain.port);

    // ---- xen.h
    konst!(c,
        HYPERVISOR_MEMORY_OP => "__HYPERVISOR_memory_op",
        HYPERVISOR_SCHED_OP => "__HYPERVISOR_sched_op",
        HYPERVISOR_EVENT_CHANNEL_OP => "__HYPERVISOR_event_channel_op",
        HYPERVISOR_HVM_OP => "__HYPERVISOR_hvm_op",
        HYPERVISOR_DOMCTL => "__HYPERVISOR_domctl",
        HYPERVISOR_DM_OP => "__HYPERVISOR_dm_op",
        HYPERVISOR_VCPU_OP => "__HYPERVISOR_vcpu_op",
        HYPERVISOR_XEN_VERSION => "__HYPERVISOR_xen_version",
        DOMID_SELF => "DOMID_SELF",
        SCHEDOP_YIELD => "SCHEDOP_yield",
        SCHEDOP_BLOCK => "SCHEDOP_block",
        SCHEDOP_SHUTDOWN => "SCHEDOP_shutdown",
        SCHEDOP_POLL => "SCHEDOP_poll",
        VIRQ_TIMER => "VIRQ_TIMER",
        ShutdownReason::Poweroff as u32 => "SHUTDOWN_poweroff",
        ShutdownReason::Reboot as u32 => "SHUTDOWN_reboot",
        ShutdownReason::Suspend as u32 => "SHUTDOWN_suspend",
        ShutdownReason::Crash as u32 => "SHUTDOWN_crash",
        ShutdownReason::Watchdog as u32 => "SHUTDOWN_watchdog",
        ShutdownReason::SoftReset as u32 => "SHUTDOWN_soft_reset",
    );

    size!(c, SchedPoll, "struct sched_poll");
    offs!(
        c,
        SchedPoll,
        "struct sched_poll",
        [ports, nr_ports, timeout]
    );

    // ---- errno.h (Xen's values; XEN_ prefixed in the header)
    konst!(c,
        XenError::EPERM.0 => "XEN_EPERM",
        XenError::ENOENT.0 => "XEN_ENOENT",
        XenError::ESRCH.0 => "XEN_ESRCH",
        XenError::EIO.0 => "XEN_EIO",
        XenError::E2BIG.0 => "XEN_E2BIG",
        XenError::EAGAIN.0 => "XEN_EAGAIN",
        XenError::ENOMEM.0 => "XEN_ENOMEM",
        XenError::EACCES.0 => "XEN_EACCES",
        XenError::EFAULT.0 => "XEN_EFAULT",
        XenError::EBUSY.0 => "XEN_EBUSY",
        XenError::EEXIST.0 => "XEN_EEXIST",
        XenError::EXDEV.0 => "XEN_EXDEV",
        XenError::ENODEV.0 => "XEN_ENODEV",
        XenError::EINVAL.0 => "XEN_EINVAL",
        XenError::ENOSPC.0 => "XEN_ENOSPC",
        XenError::ENOSYS.0 => "XEN_ENOSYS",
        XenError::ETIME.0 => "XEN_ETIME",
        XenError::EOPNOTSUPP.0 => "XEN_EOPNOTSUPP",
    );

    // ---- vcpu.h, hvm/hvm_vcpu.h
    konst!(c,
        VCPUOP_INITIALISE => "VCPUOP_initialise",
        VCPUOP_UP => "VCPUOP_up",
        VCPUOP_IS_UP => "VCPUOP_is_up",
        VCPUOP_STOP_PERIODIC_TIMER => "VCPUOP_stop_periodic_timer",
        VCPUOP_SET_SINGLESHOT_TIMER => "VCPUOP_set_singleshot_timer",
        VCPUOP_STOP_SINGLESHOT_TIMER => "VCPUOP_stop_singleshot_timer",
        VCPUOP_REGISTER_VCPU_INFO => "VCPUOP_register_vcpu_info",
        VCPU_HVM_MODE_64B => "VCPU_HVM_MODE_64B",
    );
    size!(c, VcpuRegisterVcpuInfo, "struct vcpu_register_vcpu_info");
    offs!(
        c,
        VcpuRegisterVcpuInfo,
        "struct vcpu_register_vcpu_info",
        [mfn, offset, rsvd]
    );
    size!(
        c,
        VcpuSetSingleshotTimer,
        "struct vcpu_set_singleshot_timer"
    );
    offs!(
        c,
        VcpuSetSingleshotTimer,
        "struct vcpu_set_singleshot_timer",
        [timeout_abs_ns, flags]
    );
    size!(c, VcpuHvmX86_64, "struct vcpu_hvm_x86_64");
    offs!(
        c,
        VcpuHvmX86_64,
        "struct vcpu_hvm_x86_64",
        [rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, rip, rflags, cr0, cr3, cr4, efer]
    );
    size!(c, VcpuHvmContext, "struct vcpu_hvm_context");
    off!(c, VcpuHvmContext, "struct vcpu_hvm_context", mode);
    c.add(
        "offsetof(struct vcpu_hvm_context, cpu_regs.x86_64)".into(),
        offset_of!(VcpuHvmContext, regs) as u64,
    );

    // ---- trace.h
    {
        use xen_abi::trace::*;
        konst!(c,
            TRC_GEN => "TRC_GEN",
            TRC_SCHED => "TRC_SCHED",
            TRC_HVM => "TRC_HVM",
            TRC_PV => "TRC_PV",
            TRC_LOST_RECORDS => "TRC_LOST_RECORDS",
            TRC_TRACE_CPU_CHANGE => "TRC_TRACE_CPU_CHANGE",
            TRC_SCHED_RUNSTATE_CHANGE => "TRC_SCHED_RUNSTATE_CHANGE",
            TRC_SCHED_WAKE => "TRC_SCHED_WAKE",
            TRC_SCHED_BLOCK => "TRC_SCHED_BLOCK",
            TRC_SCHED_SWITCH => "TRC_SCHED_SWITCH",
            TRC_64_FLAG => "TRC_64_FLAG",
            TRC_HVM_NESTEDFLAG => "TRC_HVM_NESTEDFLAG",
            TRC_HVM_VMENTRY => "TRC_HVM_VMENTRY",
            TRC_HVM_VMEXIT => "TRC_HVM_VMEXIT",
            TRC_HVM_VMEXIT64 => "TRC_HVM_VMEXIT64",
            TRC_HVM_CPUID => "TRC_HVM_CPUID",
            TRC_HVM_VMMCALL => "TRC_HVM_VMMCALL",
            TRC_PV_HYPERCALL_V2 => "TRC_PV_HYPERCALL_V2",
            TRC_HD_CYCLE_FLAG => "TRC_HD_CYCLE_FLAG",
            TRACE_EXTRA_SHIFT => "TRACE_EXTRA_SHIFT",
            TRACE_EXTRA_MAX => "TRACE_EXTRA_MAX",
        );
    }

    // ---- version.h, io/console.h
    konst!(c,
        XENVER_VERSION => "XENVER_version",
        XENVER_EXTRAVERSION => "XENVER_extraversion",
    );
    size!(c, XenconsInterface, "struct xencons_interface");
    // `in` and `out` are Rust keywords.
    c.add(
        "offsetof(struct xencons_interface, in)".into(),
        offset_of!(XenconsInterface, input) as u64,
    );
    c.add(
        "offsetof(struct xencons_interface, out)".into(),
        offset_of!(XenconsInterface, output) as u64,
    );
    offs!(
        c,
        XenconsInterface,
        "struct xencons_interface",
        [in_cons, in_prod, out_cons, out_prod]
    );
    c
}

/// Our channel extension (docs/abi.md); only in the patched headers.
fn new_checks() -> Checks {
    let mut c = Checks::new();
    konst!(c,
        XEN_VM_EVENT_ENABLE_CHANNELS => "XEN_VM_EVENT_ENABLE_CHANNELS",
        XEN_VM_EVENT_GET_PORTS => "XEN_VM_EVENT_GET_PORTS",
        XEN_VM_EVENT_MAX_RING_FRAMES => "XEN_VM_EVENT_MAX_RING_FRAMES",
        XENMEM_RESOURCE_VM_EVENT => "XENMEM_resource_vm_event",
        VM_EVENT_SLOT_SIZE => "VM_EVENT_SLOT_SIZE",
        VM_EVENT_SLOTS_PER_PAGE => "VM_EVENT_SLOTS_PER_PAGE",
        VM_EVENT_SLOT_IDLE => "VM_EVENT_SLOT_IDLE",
        VM_EVENT_SLOT_SUBMIT => "VM_EVENT_SLOT_SUBMIT",
        VM_EVENT_SLOT_FINISH => "VM_EVENT_SLOT_FINISH",
    );
    size!(c, XenDomctlVmEventOp, "struct xen_domctl_vm_event_op");
    off!(
        c,
        XenDomctlVmEventOp,
        "struct xen_domctl_vm_event_op",
        u.channels.ring_frames
    );
    off!(
        c,
        XenDomctlVmEventOp,
        "struct xen_domctl_vm_event_op",
        u.channels.nr_vcpus
    );
    off!(
        c,
        XenDomctlVmEventOp,
        "struct xen_domctl_vm_event_op",
        u.channels.slot_frames
    );
    off!(
        c,
        XenDomctlVmEventOp,
        "struct xen_domctl_vm_event_op",
        u.channels.async_port
    );
    off!(
        c,
        XenDomctlVmEventOp,
        "struct xen_domctl_vm_event_op",
        u.ports.async_port
    );
    off!(
        c,
        XenDomctlVmEventOp,
        "struct xen_domctl_vm_event_op",
        u.ports.nr_ports
    );
    off!(
        c,
        XenDomctlVmEventOp,
        "struct xen_domctl_vm_event_op",
        u.ports.ports
    );
    size!(c, VmEventSlot, "struct vm_event_slot");
    offs!(c, VmEventSlot, "struct vm_event_slot", [state, pad, u]);
    off!(c, VmEventSlot, "struct vm_event_slot", u.req);
    c.add(
        "offsetof(struct vm_event_slot, u.rsp)".into(),
        offset_of!(VmEventSlot, u.req) as u64,
    );
    offs!(
        c,
        VmEventAsyncRing,
        "struct vm_event_async_ring",
        [prod, cons, nr_entries, dropped, pad]
    );
    c.add(
        "offsetof(struct vm_event_async_ring, entries)".into(),
        VM_EVENT_ASYNC_RING_HDR_SIZE as u64,
    );
    c.add(
        "sizeof(struct vm_event_async_ring)".into(),
        size_of::<VmEventAsyncRing>() as u64,
    );
    c
}

/// Resolve an include dir to one where `<xen/domctl.h>` works.
fn include_root(dir: &Path, scratch: &Path) -> PathBuf {
    if dir.join("xen/domctl.h").is_file() {
        return dir.to_path_buf();
    }
    if dir.join("domctl.h").is_file() {
        // A Xen tree's include/public: give it the `xen/` prefix.
        let root = scratch.join("inc");
        let _ = std::fs::create_dir_all(&root);
        let link = root.join("xen");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(dir, &link).expect("symlink include dir");
        return root;
    }
    panic!("{}: neither xen/domctl.h nor domctl.h found", dir.display());
}

/// Compile and run the probe; returns expr -> value.
fn probe(include: Option<&Path>, checks: &Checks, tag: &str) -> BTreeMap<String, u64> {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("layout-{tag}"));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut src = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <stdint.h>\n\
         #include <xen/xen.h>\n#include <xen/vm_event.h>\n#include <xen/domctl.h>\n\
         #include <xen/memory.h>\n#include <xen/event_channel.h>\n\
         #include <xen/hvm/hvm_op.h>\n#include <xen/hvm/params.h>\n#include <xen/hvm/dm_op.h>\n\
         #include <xen/vcpu.h>\n#include <xen/hvm/hvm_vcpu.h>\n#include <xen/version.h>\n\
         #include <xen/io/console.h>\n#include <xen/trace.h>\n#include <xen/errno.h>\n#include <xen/sched.h>\n\
         int main(void) {\n",
    );
    for (i, (expr, _)) in checks.items.iter().enumerate() {
        src.push_str(&format!(
            "  printf(\"{i} %llu\\n\", (unsigned long long)({expr}));\n"
        ));
    }
    src.push_str("  return 0;\n}\n");
    let c_file = scratch.join("probe.c");
    let exe = scratch.join("probe");
    std::fs::write(&c_file, src).unwrap();
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.arg("-D__XEN_TOOLS__")
        .arg("-Wall")
        .arg("-o")
        .arg(&exe)
        .arg(&c_file);
    if let Some(dir) = include {
        cc.arg("-I").arg(include_root(dir, &scratch));
    }
    let out = cc.output().expect("run cc (install gcc)");
    assert!(
        out.status.success(),
        "[{tag}] compiling the C layout probe failed (stock part needs libxen-dev):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("run probe");
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).unwrap();
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let (i, v) = line.split_once(' ').unwrap();
        let i: usize = i.parse().unwrap();
        map.insert(checks.items[i].0.clone(), v.parse().unwrap());
    }
    map
}

fn compare(include: Option<&Path>, checks: &Checks, tag: &str) {
    let bad = drift(include, checks, tag);
    assert!(bad.is_empty(), "[{tag}] layout drift:\n{}", bad.join("\n"));
}

fn drift(include: Option<&Path>, checks: &Checks, tag: &str) -> Vec<String> {
    let c = probe(include, checks, tag);
    let mut bad = Vec::new();
    for (expr, rust) in &checks.items {
        let cv = c[expr];
        if cv != *rust {
            bad.push(format!("  {expr}: C {cv}, Rust {rust}"));
        }
    }
    println!("[{tag}] {} values compared", checks.items.len());
    bad
}

#[test]
fn stock_headers_match() {
    let dir = std::env::var_os("VMEVENT_XEN_INCLUDE").map(PathBuf::from);
    compare(dir.as_deref(), &stock_checks(), "stock");
}

#[test]
fn patched_headers_match() {
    let Some(dir) = std::env::var_os("VMEVENT_PATCHED_XEN_INCLUDE").map(PathBuf::from) else {
        println!(
            "SKIP new-struct layout check: VMEVENT_PATCHED_XEN_INCLUDE is not set \
             (point it at the patched xen/include/public or a dir with xen/domctl.h)"
        );
        return;
    };
    // The patch must not move any stock field...
    compare(Some(&dir), &stock_checks(), "patched-stock");
    // ...and must define our new structs exactly as mirrored.
    compare(Some(&dir), &new_checks(), "patched-new");
}

#[test]
fn self_test_catches_drift() {
    // The comparison must actually fail on a wrong value.
    let mut c = Checks::new();
    c.add("sizeof(vm_event_request_t)".into(), 401);
    assert_eq!(
        drift(None, &c, "drift").len(),
        1,
        "a 1-byte drift went unnoticed"
    );
}
