//! Request decoding from hostile shared memory: the bytes become a slot
//! (state + payload), a stock ring page and an async ring page, and every
//! consumer must stay bounded and panic-free.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::atomic::Ordering;
use vmevent::async_ring::AsyncRingConsumer;
use vmevent::ring::StockRingConsumer;
use vmevent::shm::{AsyncRingPtr, SlotMem, SlotPtr, StockRingPtr};
use vmevent::sim::Pages;
use vmevent::{Policy, SlotConsumer};

const DEMO: &str = include_str!("../../examples/demo.policy");

fuzz_target!(|data: &[u8]| {
    let policy = Policy::parse(DEMO).unwrap();
    let page = Pages::new(1);
    let n = data.len().min(4096);
    page.scribble(0, &data[..n]);

    // As a slot (state word + request).
    // SAFETY: `page` outlives every pointer below.
    let slot = unsafe { SlotPtr::new(page.as_ptr()) };
    let vcpu = data.first().copied().unwrap_or(0) as u32 % 8;
    let before = slot.load_state(Ordering::Acquire);
    let r = SlotConsumer::new().poll(&slot, vcpu, |q, rsp| {
        policy.evaluate(q, rsp);
    });
    if r.must_notify() {
        assert_eq!(slot.read_event().vcpu_id, vcpu);
    } else {
        assert_eq!(slot.load_state(Ordering::Acquire), before);
    }

    // As a stock ring page.
    page.scribble(0, &data[..n]);
    // SAFETY: as above.
    let ring = unsafe { StockRingPtr::new(page.as_ptr()) };
    let mut c = StockRingConsumer::new(ring);
    let p = c.poll(|q, rsp| {
        policy.evaluate(q, rsp);
    });
    assert!(p.consumed <= 8);

    // As an async ring page.
    page.scribble(0, &data[..n]);
    // SAFETY: as above.
    let ar = unsafe { AsyncRingPtr::new(page.as_ptr(), 1) };
    let mut a = AsyncRingConsumer::new(ar);
    let mut buf = [0u8; vmevent::audit::AUDIT_JSON_MAX];
    let p = a.poll(u32::MAX, |q| {
        let mut rsp = vmevent::VmEventResponse::zeroed();
        let v = policy.evaluate(q, &mut rsp);
        assert!(v.audit.write_json(&mut buf).is_some());
    });
    assert!(p.consumed <= ar.nr_entries());
});
