//! Policy text: parse anything; whatever parses must evaluate, derive its
//! monitors and render audit records without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmevent::abi::VM_EVENT_REASON_VMEXIT;
use vmevent::sim::cpuid_request;
use vmevent::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse(text) {
        Ok(p) => {
            let m = p.monitors();
            let _ = m.check_capabilities(0x155);
            assert!(m.enable_ops().count() <= 8 + m.msrs().len());
            let mut buf = [0u8; vmevent::audit::AUDIT_JSON_MAX];
            for reason in 0..=VM_EVENT_REASON_VMEXIT + 1 {
                let mut req = cpuid_request(reason % 4, reason as u64);
                req.reason = reason;
                let d = p.decide(&req);
                assert!(d.verdict.audit.write_json(&mut buf).is_some());
            }
        }
        Err(e) => {
            assert!(e.line >= 1);
            let _ = e.to_string();
        }
    }
});
