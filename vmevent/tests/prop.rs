//! Property tests: the parser and the state machines on arbitrary input.

use proptest::prelude::*;
use std::sync::atomic::Ordering;
use vmevent::abi::*;
use vmevent::async_ring::AsyncRingConsumer;
use vmevent::audit::AUDIT_JSON_MAX;
use vmevent::ring::StockRingConsumer;
use vmevent::shm::{AsyncRingPtr, SlotMem, SlotPtr, StockRingPtr};
use vmevent::sim::Pages;
use vmevent::slot::{SlotConsumer, SlotPoll};
use vmevent::Policy;

const DEMO: &str = include_str!("../examples/demo.policy");

fn any_request() -> impl Strategy<Value = VmEventRequest> {
    // Bias towards plausible headers so evaluation goes deep, but keep the
    // union payloads fully arbitrary.
    (
        proptest::collection::vec(any::<u8>(), 400),
        prop_oneof![Just(VM_EVENT_INTERFACE_VERSION), any::<u32>()],
        prop_oneof![0u32..16, any::<u32>()],
        prop_oneof![0u32..4, any::<u32>()],
        any::<u32>(),
        prop_oneof![0u64..4, 0xc000_0080u64..0xc000_0084, any::<u64>()],
    )
        .prop_map(|(bytes, version, reason, index, flags, msr)| {
            let mut r = VmEventSt::from_bytes(bytes.as_slice().try_into().unwrap());
            r.version = version;
            r.reason = reason;
            r.flags = flags;
            if reason == VM_EVENT_REASON_WRITE_CTRLREG {
                let mut w = r.write_ctrlreg();
                w.index = index;
                r.set_write_ctrlreg(w);
            }
            if reason == VM_EVENT_REASON_MOV_TO_MSR {
                let mut m = r.mov_to_msr();
                m.msr = msr;
                r.set_mov_to_msr(m);
            }
            r
        })
}

/// Tokens that make up policy lines, valid and not.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "cr0",
            "cr3",
            "cr4",
            "msr",
            "cpuid",
            "int3",
            "guest-request",
            "debug",
            "desc",
            "any",
            "allow",
            "deny",
            "log",
            "spoof",
            "swallow",
            "reinject",
            "#",
            "=",
            "log=warn",
            "log=off",
            "log=",
            "msr=0xc0000082",
            "msr=1,2",
            "leaf=0",
            "leaf=0x40000000",
            "subleaf=1",
            "set=0x100000",
            "clear=0x1",
            "new=1/1",
            "eax=1",
            "ebx=0x2",
            "vcpu=3",
            "rip=0x1000",
            "table=idtr",
            "access=write",
        ])
        .prop_map(String::from),
        "[a-z=0-9x/,_#-]{0,12}",
        ".{0,6}",
    ]
}

fn policy_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::collection::vec(token(), 0..7), 0..12).prop_map(|lines| {
        lines
            .iter()
            .map(|l| l.join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// A valid rule line from its parts.
fn valid_rule() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            0u32..3,
            any::<u64>(),
            prop::sample::select(vec!["allow", "deny", "log"])
        )
            .prop_map(|(cr, bits, a)| format!("cr{} clear={bits:#x} {a}", [0, 3, 4][cr as usize])),
        (
            0u32..0x2000,
            prop::sample::select(vec!["allow", "deny", "log"])
        )
            .prop_map(|(m, a)| format!("msr msr={m:#x} {a} log=info")),
        (0u32..0x4000_0000, any::<u32>())
            .prop_map(|(l, v)| format!("cpuid leaf={l:#x} spoof eax={v}")),
        prop::sample::select(vec!["swallow", "reinject", "allow", "log"])
            .prop_map(|a| format!("int3 {a}")),
        Just("guest-request log log=debug".to_string()),
        Just("any allow".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_and_reports_a_real_line(text in policy_text()) {
        let nlines = text.lines().count() as u32;
        match Policy::parse(&text) {
            Ok(p) => prop_assert!(p.rules().len() as u32 <= nlines),
            Err(e) => {
                prop_assert!(e.line >= 1 && e.line <= nlines.max(1));
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn parser_accepts_every_valid_rule(rules in proptest::collection::vec(valid_rule(), 0..30)) {
        let text = rules.join("\n");
        let p = Policy::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(p.rules().len(), rules.len());
        for (i, r) in p.rules().iter().enumerate() {
            prop_assert_eq!(r.line as usize, i + 1);
        }
    }

    #[test]
    fn evaluation_is_total_and_keeps_xen_invariants(req in any_request()) {
        let p = Policy::parse(DEMO).unwrap();
        let d = p.decide(&req);
        let paused = req.flags & VmEventFlags::VCPU_PAUSED.bits();
        prop_assert_eq!(d.rsp.version, VM_EVENT_INTERFACE_VERSION);
        prop_assert_eq!(d.rsp.vcpu_id, req.vcpu_id);
        prop_assert_eq!(d.rsp.flags & VmEventFlags::VCPU_PAUSED.bits(), paused);
        if d.rsp.flags().contains(VmEventFlags::DENY) {
            prop_assert!(matches!(req.reason, VM_EVENT_REASON_WRITE_CTRLREG | VM_EVENT_REASON_MOV_TO_MSR));
        }
        if d.rsp.flags().contains(VmEventFlags::SET_REGISTERS) {
            let delta = d.rsp.regs_x86().rip.wrapping_sub(req.regs_x86().rip);
            prop_assert!((1..=15).contains(&delta));
        }
        if let Some(i) = d.verdict.inject {
            prop_assert!(i.insn_len <= 15);
            prop_assert_eq!(i.vcpuid, req.vcpu_id);
        }
        let mut buf = [0u8; AUDIT_JSON_MAX];
        let s = d.verdict.audit.write_json(&mut buf);
        prop_assert!(s.is_some(), "audit JSON longer than {}", AUDIT_JSON_MAX);
        let s = s.unwrap();
        let well_formed = s.starts_with('{') && s.ends_with('}') && !s.contains('\n');
        prop_assert!(well_formed, "not one JSON object line: {}", s);
        prop_assert_eq!(s.matches('"').count() % 2, 0);
    }

    /// Slot state machine on an arbitrary page: bounded, no panic, and the
    /// only transition we ever make is SUBMIT -> FINISH with a sane answer.
    #[test]
    fn slot_consumer_on_garbage(
        state in prop_oneof![0u32..4, any::<u32>()],
        req in any_request(),
        vcpu in 0u32..8,
    ) {
        let pages = Pages::new(1);
        // SAFETY: `pages` outlives `s`.
        let s = unsafe { SlotPtr::new(pages.as_ptr()) };
        s.write_event(&req);
        s.store_state(state, Ordering::Release);
        let p = Policy::parse(DEMO).unwrap();
        let mut c = SlotConsumer::new();
        let r = c.poll(&s, vcpu, |q, rsp| { p.evaluate(q, rsp); });
        let after = s.load_state(Ordering::Acquire);
        if state == VM_EVENT_SLOT_SUBMIT {
            prop_assert!(r.must_notify());
            prop_assert_eq!(after, VM_EVENT_SLOT_FINISH);
            let rsp = s.read_event();
            prop_assert_eq!(rsp.vcpu_id, vcpu);
            prop_assert_eq!(rsp.version, VM_EVENT_INTERFACE_VERSION);
            prop_assert!(rsp.flags().contains(VmEventFlags::VCPU_PAUSED));
            let valid = req.version == VM_EVENT_INTERFACE_VERSION
                && req.vcpu_id == vcpu
                && req.flags & 1 == 1;
            prop_assert_eq!(r == SlotPoll::Answered, valid);
        } else {
            prop_assert!(!r.must_notify());
            prop_assert_eq!(after, state);
            prop_assert_eq!(s.read_event(), req);
        }
    }

    /// Stock ring with an arbitrary header and entries: bounded work.
    #[test]
    fn stock_ring_consumer_on_garbage(
        hdr in proptest::collection::vec(any::<u32>(), 4),
        start in any::<u32>(),
        fill in any::<u8>(),
    ) {
        let pages = Pages::new(1);
        pages.scribble(64, &[fill; 3200]);
        // SAFETY: `pages` outlives `ring`.
        let ring = unsafe { StockRingPtr::new(pages.as_ptr()) };
        ring.rsp_prod().store(start, Ordering::Relaxed);
        let mut c = StockRingConsumer::new(ring);
        ring.req_prod().store(hdr[0], Ordering::Relaxed);
        ring.req_event().store(hdr[1], Ordering::Relaxed);
        ring.rsp_event().store(hdr[3], Ordering::Relaxed);
        let p = c.poll(|q, rsp| { vmevent::ResponseBuilder::for_request(rsp, q); });
        prop_assert!(p.consumed <= VM_EVENT_RING_SIZE);
        prop_assert_eq!(p.bad_prod, hdr[0].wrapping_sub(start) > VM_EVENT_RING_SIZE);
    }

    /// Async ring: any sequence of prod/dropped values keeps cons within
    /// one ring of prod and never reads more than the capacity per poll.
    #[test]
    fn async_consumer_on_garbage(
        steps in proptest::collection::vec((any::<u32>(), 0u32..40, any::<u32>(), 0u32..64), 1..20),
        frames in 1u32..4,
    ) {
        let pages = Pages::new(frames as usize);
        // SAFETY: `pages` outlives `ring`.
        let ring = unsafe { AsyncRingPtr::new(pages.as_ptr(), frames) };
        let mut c = AsyncRingConsumer::new(ring);
        let mut cons = 0u32;
        for (jump, small, dropped, max) in steps {
            let prod = if jump % 3 == 0 { jump } else { cons.wrapping_add(small) };
            ring.prod().store(prod, Ordering::Release);
            ring.dropped().store(dropped, Ordering::Relaxed);
            let p = c.poll(max, |_| {});
            prop_assert!(p.consumed <= max.min(ring.nr_entries()));
            cons = ring.cons().load(Ordering::Acquire);
            if p.consumed > 0 || p.resynced {
                prop_assert!(prod.wrapping_sub(cons) <= ring.nr_entries());
            }
        }
    }
}
