//! Policy language: parsing, evaluation, monitors, audit records.

use vmevent::abi::*;
use vmevent::policy::{Action, EventKind, LogLevel, ParseErrorKind, MAX_RULES};
use vmevent::Policy;

const DEMO: &str = include_str!("../examples/demo.policy");

fn base(reason: u32, vcpu: u32) -> VmEventRequest {
    let mut r = VmEventSt::zeroed();
    r.version = VM_EVENT_INTERFACE_VERSION;
    r.flags = VmEventFlags::VCPU_PAUSED.bits();
    r.reason = reason;
    r.vcpu_id = vcpu;
    r.regs_x86_mut().rip = 0xffff_8000_0000_1000;
    r
}

fn cr(index: u32, old: u64, new: u64) -> VmEventRequest {
    let mut r = base(VM_EVENT_REASON_WRITE_CTRLREG, 1);
    r.set_write_ctrlreg(VmEventWriteCtrlreg {
        index,
        _pad: 0,
        new_value: new,
        old_value: old,
    });
    r
}

fn msr(msr: u64, new: u64) -> VmEventRequest {
    let mut r = base(VM_EVENT_REASON_MOV_TO_MSR, 0);
    r.set_mov_to_msr(VmEventMovToMsr {
        msr,
        new_value: new,
        old_value: 0,
    });
    r
}

fn cpuid(leaf: u32, insn_length: u32) -> VmEventRequest {
    let mut r = base(VM_EVENT_REASON_CPUID, 2);
    r.set_cpuid(VmEventCpuid {
        insn_length,
        leaf,
        subleaf: 0,
        _pad: 0,
    });
    let g = r.regs_x86_mut();
    g.rax = 0xd;
    g.rbx = 0x756e_6547;
    g.rcx = 0x6c65_746e;
    g.rdx = 0x4965_6e69;
    r
}

fn int3(insn_length: u32) -> VmEventRequest {
    let mut r = base(VM_EVENT_REASON_SOFTWARE_BREAKPOINT, 3);
    r.set_debug(VmEventDebug {
        gfn: 0x1234,
        pending_dbg: 0,
        insn_length,
        type_: XEN_DMOP_EVENT_SW_EXC,
        _pad: [0; 3],
    });
    r
}

const SMEP: u64 = 1 << 20;

#[test]
fn demo_policy_parses_and_needs_the_right_monitors() {
    let p = Policy::parse(DEMO).unwrap();
    assert_eq!(p.rules().len(), 6);
    let m = p.monitors();
    assert_eq!(m.cr4, Some(5));
    assert_eq!((m.cr0, m.cr3), (None, None));
    assert_eq!(m.msrs(), &[(0xc000_0082, 8)]);
    assert_eq!(m.cpuid, Some(14));
    assert_eq!(m.guest_request, Some(17));
    assert_eq!(m.int3, Some(20));
    assert_eq!((m.debug_exception, m.desc_access), (None, None));
    let ops: Vec<_> = m.enable_ops().collect();
    assert_eq!(ops.len(), 5);
    assert_eq!(ops[0].event, XEN_DOMCTL_MONITOR_EVENT_WRITE_CTRLREG);
    assert_eq!(ops[0].mov_to_cr_opts().index as u32, VM_EVENT_X86_CR4);
    assert_eq!(ops[0].mov_to_cr_opts().sync, 1);
    assert_eq!(ops[1].event, XEN_DOMCTL_MONITOR_EVENT_MOV_TO_MSR);
    assert_eq!(ops[1].mov_to_msr_opts().msr, 0xc000_0082);
    assert!(ops.iter().all(|o| o.op == XEN_DOMCTL_MONITOR_OP_ENABLE));
}

#[test]
fn capabilities_check_names_the_rule_line() {
    let p = Policy::parse(DEMO).unwrap();
    let all = 0x1fff;
    assert_eq!(p.monitors().check_capabilities(all), Ok(()));
    let no_cpuid = all & !(1 << XEN_DOMCTL_MONITOR_EVENT_CPUID);
    let e = p.monitors().check_capabilities(no_cpuid).unwrap_err();
    assert_eq!(e.line, 14);
    assert_eq!(e.event, XEN_DOMCTL_MONITOR_EVENT_CPUID);
    assert!(e.to_string().starts_with("line 14: "));
    // Several missing: the earliest rule is named.
    let e = p.monitors().check_capabilities(0).unwrap_err();
    assert_eq!(e.line, 5);
}

#[test]
fn cr4_smep_clear_is_denied_other_cr4_writes_are_not() {
    let p = Policy::parse(DEMO).unwrap();
    let d = p.decide(&cr(VM_EVENT_X86_CR4, SMEP | 0x20, 0x20));
    assert!(d
        .rsp
        .flags()
        .contains(VmEventFlags::DENY | VmEventFlags::VCPU_PAUSED));
    assert_eq!(d.verdict.audit.action, "deny");
    assert_eq!(d.verdict.audit.level, LogLevel::Alert);
    assert_eq!(d.verdict.audit.rule_line, 5);
    // Setting SMEP, or touching other bits with SMEP kept: allowed.
    for (old, new) in [(0x20, 0x20 | SMEP), (SMEP, SMEP | 0x80)] {
        let d = p.decide(&cr(VM_EVENT_X86_CR4, old, new));
        assert!(!d.rsp.flags().contains(VmEventFlags::DENY));
        assert_eq!(d.verdict.audit.rule_line, 23);
    }
    // CR0 clearing bit 20 is not CR4.
    let d = p.decide(&cr(VM_EVENT_X86_CR0, SMEP, 0));
    assert!(!d.rsp.flags().contains(VmEventFlags::DENY));
}

#[test]
fn lstar_write_is_denied() {
    let p = Policy::parse(DEMO).unwrap();
    let d = p.decide(&msr(0xc000_0082, 0xdead_beef));
    assert!(d.rsp.flags().contains(VmEventFlags::DENY));
    assert_eq!(d.verdict.audit.rule_line, 8);
    let d = p.decide(&msr(0xc000_0081, 1));
    assert!(!d.rsp.flags().contains(VmEventFlags::DENY));
}

#[test]
fn cpuid_spoof_and_plain_cpuid_both_skip_the_instruction() {
    let p = Policy::parse(DEMO).unwrap();
    let req = cpuid(0, 2);
    let d = p.decide(&req);
    let r = d.rsp.regs_x86();
    assert!(d.rsp.flags().contains(VmEventFlags::SET_REGISTERS));
    assert_eq!(r.rip, req.regs_x86().rip + 2);
    assert_eq!(r.rax, 0xd, "eax not spoofed: Xen's value kept");
    let vendor: Vec<u8> = [r.rbx, r.rdx, r.rcx]
        .iter()
        .flat_map(|v| (*v as u32).to_le_bytes())
        .collect();
    assert_eq!(&vendor, b"XenIntrospct");
    assert_eq!(d.verdict.audit.spoof[1], Some(0x496e_6558));
    // Another leaf: Xen's values, rip advanced.
    let req = cpuid(1, 2);
    let d = p.decide(&req);
    assert_eq!(d.rsp.regs_x86().rbx, 0x756e_6547);
    assert_eq!(d.rsp.regs_x86().rip, req.regs_x86().rip + 2);
    // Garbage instruction length: never move rip.
    for len in [0, 16, u32::MAX] {
        let d = p.decide(&cpuid(0, len));
        assert!(!d.rsp.flags().contains(VmEventFlags::SET_REGISTERS));
    }
}

#[test]
fn int3_swallow_skips_reinject_injects() {
    let p = Policy::parse(DEMO).unwrap();
    let req = int3(1);
    let d = p.decide(&req);
    assert_eq!(d.rsp.regs_x86().rip, req.regs_x86().rip + 1);
    assert!(d.verdict.inject.is_none());
    assert_eq!(d.verdict.audit.action, "swallow");

    let p = Policy::parse("int3 reinject\n").unwrap();
    let d = p.decide(&req);
    assert!(!d.rsp.flags().contains(VmEventFlags::SET_REGISTERS));
    let inj = d.verdict.inject.unwrap();
    assert_eq!(
        (inj.vector, inj.type_, inj.insn_len),
        (3, XEN_DMOP_EVENT_SW_EXC, 1)
    );
    assert_eq!(inj.vcpuid, 3);
    assert_eq!(inj.error_code, !0);
}

#[test]
fn guest_request_is_logged_and_unmatched_events_allowed_silently() {
    let p = Policy::parse(DEMO).unwrap();
    let d = p.decide(&base(VM_EVENT_REASON_GUEST_REQUEST, 0));
    assert_eq!(d.verdict.audit.action, "log");
    assert_eq!(d.verdict.audit.level, LogLevel::Info);
    assert_eq!(d.rsp.flags, VmEventFlags::VCPU_PAUSED.bits());

    let p = Policy::empty();
    let d = p.decide(&base(VM_EVENT_REASON_MEM_ACCESS, 0));
    assert_eq!(d.verdict.audit.rule_line, 0);
    assert_eq!(d.verdict.audit.level, LogLevel::Off);
    assert_eq!(d.rsp.flags, VmEventFlags::VCPU_PAUSED.bits());
    // Async (not paused) requests: nothing to echo.
    let mut r = base(VM_EVENT_REASON_GUEST_REQUEST, 0);
    r.flags = 0;
    assert_eq!(p.decide(&r).rsp.flags, 0);
}

#[test]
fn first_match_wins_and_matches_combine() {
    let p = Policy::parse(
        "cr0 vcpu=1 set=0x1 log log=warn\n\
         cr0 new=0x80000000/0x80000000 deny\n\
         cr0 allow log=debug\n",
    )
    .unwrap();
    assert_eq!(
        p.decide(&cr(VM_EVENT_X86_CR0, 0, 1))
            .verdict
            .audit
            .rule_line,
        1
    );
    let d = p.decide(&cr(VM_EVENT_X86_CR0, 0, 0x8000_0000));
    assert_eq!(d.verdict.audit.rule_line, 2);
    assert!(d.rsp.flags().contains(VmEventFlags::DENY));
    assert_eq!(
        p.decide(&cr(VM_EVENT_X86_CR0, 1, 0))
            .verdict
            .audit
            .rule_line,
        3
    );
    let r = &p.rules()[0];
    assert_eq!(
        (r.kind, r.action, r.level),
        (EventKind::Cr0, Action::Log, LogLevel::Warn)
    );
}

#[test]
fn descriptor_rules() {
    let p = Policy::parse("desc table=idtr access=write deny_not_allowed_here\n");
    assert_eq!(p.unwrap_err().kind, ParseErrorKind::UnknownAction);
    let p = Policy::parse("desc table=idtr access=write log log=alert\n").unwrap();
    let mut r = base(VM_EVENT_REASON_DESCRIPTOR_ACCESS, 0);
    let mut d = VmEventDescAccess {
        arch: VmEventDescAccessArch {
            vmx: VmEventDescAccessVmx::default(),
        },
        descriptor: VM_EVENT_DESC_IDTR,
        is_write: 1,
        _pad: [0; 6],
    };
    r.set_desc_access(d);
    assert_eq!(p.decide(&r).verdict.audit.rule_line, 1);
    d.is_write = 0;
    r.set_desc_access(d);
    assert_eq!(p.decide(&r).verdict.audit.rule_line, 0);
    assert_eq!(p.monitors().desc_access, Some(1));
}

#[test]
fn parse_errors_carry_line_and_token() {
    let cases: &[(&str, u32, ParseErrorKind)] = &[
        ("cr4 deny\nfoo allow\n", 2, ParseErrorKind::UnknownKind),
        (
            "\n\n# c\ncr4 frobnicate\n",
            4,
            ParseErrorKind::UnknownAction,
        ),
        ("cr4 set=0x1\n", 1, ParseErrorKind::MissingAction),
        ("cr4 deny allow\n", 1, ParseErrorKind::SecondAction),
        ("cr4 deny frob\n", 1, ParseErrorKind::UnexpectedToken),
        ("cr4 deny set=1\n", 1, ParseErrorKind::UnexpectedToken),
        ("cpuid leaf=1 deny\n", 1, ParseErrorKind::ActionNotForKind),
        ("any deny\n", 1, ParseErrorKind::ActionNotForKind),
        ("cr4 swallow\n", 1, ParseErrorKind::ActionNotForKind),
        ("cr4 leaf=1 allow\n", 1, ParseErrorKind::BadMatch),
        ("cpuid set=1 allow\n", 1, ParseErrorKind::BadMatch),
        ("cr4 set=zz deny\n", 1, ParseErrorKind::BadNumber),
        (
            "cr4 set=0x1ffffffffffffffff deny\n",
            1,
            ParseErrorKind::BadNumber,
        ),
        ("cr4 set=1 set=2 deny\n", 1, ParseErrorKind::DuplicateKey),
        ("cr4 deny log=loud\n", 1, ParseErrorKind::BadLogLevel),
        ("desc table=xdtr allow\n", 1, ParseErrorKind::BadValue),
        ("msr deny\n", 1, ParseErrorKind::MsrRuleWithoutMsr),
        (
            "msr msr=0x12345678 deny\n",
            1,
            ParseErrorKind::MsrNotMonitorable,
        ),
        (
            "msr msr=1,2,3,4,5,6,7,8,9 deny\n",
            1,
            ParseErrorKind::TooManyMsrs,
        ),
        (
            "cpuid leaf=0 spoof\n",
            1,
            ParseErrorKind::SpoofWithoutValues,
        ),
        (
            "cpuid leaf=0 spoof esi=1\n",
            1,
            ParseErrorKind::UnexpectedToken,
        ),
        ("cpuid spoof eax=1\n", 1, ParseErrorKind::BadMatch),
        (
            "cpuid leaf=0x40000001 spoof eax=1\n",
            1,
            ParseErrorKind::XenCpuidLeaf,
        ),
    ];
    for (text, line, kind) in cases {
        let e = Policy::parse(text).unwrap_err();
        assert_eq!((e.line, e.kind), (*line, *kind), "for {text:?}: {e}");
    }
    let e = Policy::parse("cr4 deny\nfoo allow\n").unwrap_err();
    assert_eq!(e.to_string(), "line 2: unknown event kind: `foo`");
}

#[test]
fn rule_and_msr_limits() {
    let many: String = (0..=MAX_RULES).map(|_| "cr0 allow\n").collect();
    let e = Policy::parse(&many).unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (MAX_RULES as u32 + 1, ParseErrorKind::TooManyRules)
    );
    let msrs: String = (0..5)
        .map(|i| {
            let list: Vec<String> = (0..8).map(|j| format!("{}", i * 8 + j)).collect();
            format!("msr msr={} deny\n", list.join(","))
        })
        .collect();
    let e = Policy::parse(&msrs).unwrap_err();
    assert_eq!((e.line, e.kind), (5, ParseErrorKind::TooManyMsrs));
}

#[test]
fn comments_blank_lines_and_numbers() {
    let p = Policy::parse(
        "  # full comment\n\n\tcr4   clear=1_048_576   deny # trailing\r\nmsr msr=0XC0000082 deny\n",
    )
    .unwrap();
    assert_eq!(p.rules().len(), 2);
    assert_eq!(p.rules()[0].line, 3);
    assert_eq!(p.rules()[0].matches.clear, Some(SMEP));
    assert_eq!(p.rules()[1].matches.msrs(), &[0xc000_0082]);
}

#[test]
fn audit_record_renders_one_json_line() {
    let p = Policy::parse(DEMO).unwrap();
    let mut buf = [0u8; vmevent::audit::AUDIT_JSON_MAX];
    let d = p.decide(&cr(VM_EVENT_X86_CR4, SMEP, 0));
    let s = d.verdict.audit.write_json(&mut buf).unwrap();
    assert_eq!(
        s,
        "{\"vcpu\":1,\"event\":\"write_ctrlreg\",\"kind\":\"cr4\",\"rip\":\"0xffff800000001000\",\
         \"index\":2,\"old\":\"0x100000\",\"new\":\"0x0\",\"action\":\"deny\",\"rule\":5,\
         \"level\":\"alert\",\"mode\":\"kernel\"}"
    );
    // With what the stub adds: the process, sequence, time and domain.
    let mut rec = d.verdict.audit;
    rec.process = vmevent::Attribution::Process(vmevent::Process {
        pid: 412,
        tgid: 410,
        comm: *b"d\"d\n\0\0\0\0\0\0\0\0\0\0\0\0",
    });
    rec.seq = Some(7);
    rec.time_ns = Some(1_796_158_267_000_000_001);
    let src = vmevent::AuditSource {
        domid: 3,
        uuid: [0x5e, 0x1f, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1],
    };
    let s = rec.write_json_from(&src, &mut buf).unwrap();
    assert!(
        s.ends_with(
            "\"mode\":\"kernel\",\"process\":{\"pid\":412,\"tgid\":410,\"comm\":\"d\\\"d\\u000a\"},\
             \"seq\":7,\"time\":\"2026-12-01T20:51:07.000000001Z\",\"domid\":3,\
             \"uuid\":\"5e1f0000-0000-4000-8000-000000000001\"}"
        ),
        "{s}"
    );
    rec.process = vmevent::Attribution::Failed("page table: not present at level 4");
    let s = rec.write_json(&mut buf).unwrap();
    assert!(
        s.contains("\"process\":{\"error\":\"page table: not present at level 4\"}"),
        "{s}"
    );
    let d = p.decide(&cpuid(0, 2));
    let s = d.verdict.audit.write_json(&mut buf).unwrap();
    assert!(
        s.contains("\"action\":\"spoof\",\"ebx\":\"0x496e6558\""),
        "{s}"
    );
    // An unknown reason still renders, without trusting anything as text.
    let d = p.decide(&base(9999, 7));
    let s = d.verdict.audit.write_json(&mut buf).unwrap();
    assert!(
        s.starts_with("{\"vcpu\":7,\"event\":\"invalid\",\"reason\":9999"),
        "{s}"
    );
    assert!(!s.contains('\n'));
    // Too small a buffer: None, no panic.
    assert!(d.verdict.audit.write_json(&mut [0u8; 10]).is_none());
}

#[test]
fn policy_md_examples_parse() {
    let doc = include_str!("../POLICY.md");
    let ex = doc.split("## Examples").nth(1).unwrap();
    let block = ex.split("```").nth(1).unwrap();
    let p = Policy::parse(block).unwrap_or_else(|e| panic!("POLICY.md example: {e}"));
    assert_eq!(p.rules().len(), 9);
}

#[test]
fn sizes_for_the_stub() {
    // The stub keeps a Policy in a static and Decisions on its stacks.
    println!(
        "Policy {} B, Rule {} B, Verdict {} B, AuditRecord {} B",
        core::mem::size_of::<Policy>(),
        core::mem::size_of::<vmevent::policy::Rule>(),
        core::mem::size_of::<vmevent::Verdict>(),
        core::mem::size_of::<vmevent::AuditRecord>()
    );
    assert!(core::mem::size_of::<Policy>() <= 16 * 1024);
}

#[test]
fn singlestep_rules_are_refused_where_the_host_lacks_it() {
    use vmevent::abi::domctl::{
        XEN_DOMCTL_MONITOR_EVENT_CPUID, XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP,
    };
    let p = vmevent::Policy::parse("cpuid allow\nsinglestep log\nany allow\n").unwrap();
    let svm_caps = 1 << XEN_DOMCTL_MONITOR_EVENT_CPUID;
    let e = p.monitors().check_capabilities(svm_caps).unwrap_err();
    assert_eq!((e.line, e.event), (2, XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP));
    assert_eq!(
        e.to_string(),
        "line 2: the host cannot monitor single-step (monitor event 2)"
    );
    assert!(p
        .monitors()
        .check_capabilities(svm_caps | 1 << XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP)
        .is_ok());
}

#[test]
fn peek_reads_the_register_it_names_into_the_record() {
    use vmevent::PeekRecord;
    let p = Policy::parse("cpuid leaf=0x12345678 log peek=rsi:16 log=warn\nany allow\n").unwrap();
    assert_eq!(
        p.rules()[0].peek,
        Some(vmevent::policy::Peek {
            reg: vmevent::policy::PeekReg::Rsi,
            len: 16
        })
    );
    let mut req = cpuid(0x1234_5678, 0);
    req.regs_x86_mut().rsi = 0x40_0000;
    let d = p.decide(&req);
    assert_eq!(
        d.verdict.audit.peek,
        PeekRecord::Wanted {
            gva: 0x40_0000,
            len: 16
        }
    );
    let mut buf = [0u8; vmevent::audit::AUDIT_JSON_MAX];
    let mut rec = d.verdict.audit;
    let mut bytes = [0u8; 64];
    bytes[..4].copy_from_slice(b"\x7fELF");
    rec.peek = PeekRecord::Bytes {
        gva: 0x40_0000,
        len: 4,
        bytes,
    };
    let s = rec.write_json(&mut buf).unwrap();
    assert!(
        s.contains("\"peek\":{\"gva\":\"0x400000\",\"bytes\":\"7f454c46\"}"),
        "{s}"
    );
    // Rules without peek= ask for nothing.
    assert_eq!(p.decide(&cpuid(1, 0)).verdict.audit.peek, PeekRecord::None);
    for bad in [
        "peek=rsi",
        "peek=xmm0:8",
        "peek=rsi:0",
        "peek=rsi:65",
        "peek=rsi:x",
    ] {
        let text = format!("cpuid log {bad}");
        let e = Policy::parse(&text).unwrap_err();
        assert_eq!(e.kind, vmevent::policy::ParseErrorKind::BadPeek, "{bad}");
    }
    let e = Policy::parse("cpuid log peek=rsi:8 peek=rdi:8").unwrap_err();
    assert_eq!(e.kind, vmevent::policy::ParseErrorKind::DuplicateKey);
}

#[test]
fn comm_rules_match_only_the_named_task() {
    use vmevent::{Attribution, Process};
    let p = Policy::parse("cpuid leaf=1 comm=dd log log=warn\ncpuid allow\n").unwrap();
    let dd = Process {
        pid: 7,
        tgid: 7,
        comm: *b"dd\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    };
    let sh = Process {
        comm: *b"dd-not\0\0\0\0\0\0\0\0\0\0",
        ..dd
    };
    let req = cpuid(1, 2);
    let mut rsp = vmevent::VmEventResponse::zeroed();
    let v = p.evaluate_for(&req, Some(&dd), &mut rsp);
    assert_eq!((v.audit.rule_line, v.audit.action), (1, "log"));
    assert_eq!(v.audit.process, Attribution::Process(dd));
    // Another task, or none known (no profile, unreadable memory): no match.
    assert_eq!(p.evaluate_for(&req, Some(&sh), &mut rsp).audit.rule_line, 2);
    assert_eq!(p.evaluate_for(&req, None, &mut rsp).audit.rule_line, 2);
    assert_eq!(p.decide(&req).verdict.audit.rule_line, 2);
    for bad in ["comm=", "comm=a-name-of-16-chr", "comm=a\u{7f}b"] {
        let text = format!("cpuid {bad} log");
        let e = Policy::parse(&text).unwrap_err();
        assert_eq!(e.kind, vmevent::policy::ParseErrorKind::BadValue, "{bad}");
    }
}
