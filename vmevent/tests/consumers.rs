//! Slot, stock ring and async ring consumers on honest and hostile pages.

use std::sync::atomic::Ordering;
use vmevent::abi::*;
use vmevent::async_ring::{async_produce, AsyncRingConsumer};
use vmevent::ring::{front, StockRingConsumer};
use vmevent::shm::{AsyncRingPtr, SlotArea, SlotMem, StockRingPtr};
use vmevent::sim::{cpuid_request, expected_rip, Pages};
use vmevent::slot::{Malformed, SlotConsumer, SlotPoll};
use vmevent::{respond, Policy, ResponseBuilder};

fn echo(req: &VmEventRequest, rsp: &mut VmEventResponse) {
    ResponseBuilder::for_request(rsp, req).cpuid(req, [None; 4]);
}

fn area(pages: &Pages, n: u32) -> SlotArea {
    // SAFETY: `pages` has slot_frames(n) pages and outlives the area in
    // every test.
    unsafe { SlotArea::new(pages.as_ptr(), n) }
}

#[test]
fn slot_answers_a_valid_request() {
    let pages = Pages::new(2);
    let a = area(&pages, 9);
    assert!(a.slot(9).is_none());
    let s = a.slot(8).unwrap(); // second page
    assert_eq!(s.as_ptr() as usize - pages.as_ptr() as usize, 4096);
    s.write_event(&cpuid_request(8, 5));
    s.store_state(VM_EVENT_SLOT_SUBMIT, Ordering::Release);
    let mut c = SlotConsumer::new();
    assert_eq!(c.poll(&s, 8, echo), SlotPoll::Answered);
    assert_eq!(s.load_state(Ordering::Acquire), VM_EVENT_SLOT_FINISH);
    let rsp = s.read_event();
    assert_eq!(rsp.regs_x86().rip, expected_rip(8, 5));
    assert_eq!(rsp.vcpu_id, 8);
    // A second notification before Xen consumed it: nothing happens.
    assert_eq!(c.poll(&s, 8, echo), SlotPoll::Pending);
    assert_eq!(c.stats.answered, 1);
    assert_eq!(c.stats.spurious, 1);
    // Slot 7 (other vCPU) is untouched and idle.
    assert_eq!(c.poll(&a.slot(7).unwrap(), 7, echo), SlotPoll::Idle);
}

#[test]
fn slot_malformed_requests_still_unpause_without_calling_the_handler() {
    let pages = Pages::new(1);
    let s = area(&pages, 1).slot(0).unwrap();
    let mut c = SlotConsumer::new();
    let mut wrong_version = cpuid_request(0, 0);
    wrong_version.version = 6;
    let mut wrong_vcpu = cpuid_request(0, 0);
    wrong_vcpu.vcpu_id = 5;
    let mut not_paused = cpuid_request(0, 0);
    not_paused.flags = 0;
    for (req, why) in [
        (wrong_version, Malformed::Version(6)),
        (wrong_vcpu, Malformed::Vcpu(5)),
        (not_paused, Malformed::NotPaused),
    ] {
        s.write_event(&req);
        s.store_state(VM_EVENT_SLOT_SUBMIT, Ordering::Release);
        let r = c.poll(&s, 0, |_, _| panic!("handler must not see it"));
        assert_eq!(r, SlotPoll::AnsweredMalformed(why));
        assert!(r.must_notify());
        let rsp = s.read_event();
        assert_eq!(rsp.version, VM_EVENT_INTERFACE_VERSION);
        assert_eq!(rsp.vcpu_id, 0);
        assert_eq!(rsp.flags, VmEventFlags::VCPU_PAUSED.bits());
    }
    assert_eq!(c.stats.malformed, 3);
}

#[test]
fn slot_bad_state_is_left_alone() {
    let pages = Pages::new(1);
    let s = area(&pages, 1).slot(0).unwrap();
    let junk = [0xa5u8; 400];
    pages.scribble(8, &junk);
    for st in [3, 0xdead_beef, u32::MAX] {
        s.store_state(st, Ordering::Relaxed);
        let mut c = SlotConsumer::new();
        assert_eq!(c.poll(&s, 0, echo), SlotPoll::BadState(st));
        assert!(!c.poll(&s, 0, echo).must_notify());
        assert_eq!(s.load_state(Ordering::Relaxed), st);
        assert_eq!(s.read_event().as_bytes(), &junk);
    }
}

#[test]
fn handler_cannot_forge_vcpu_or_drop_the_pause_echo() {
    let pages = Pages::new(1);
    let s = area(&pages, 3).slot(2).unwrap();
    s.write_event(&cpuid_request(2, 0));
    s.store_state(VM_EVENT_SLOT_SUBMIT, Ordering::Release);
    let mut c = SlotConsumer::new();
    c.poll(&s, 2, |_, rsp| {
        rsp.vcpu_id = 77;
        rsp.flags = 0;
        rsp.version = 1;
    });
    let rsp = s.read_event();
    assert_eq!((rsp.vcpu_id, rsp.version), (2, VM_EVENT_INTERFACE_VERSION));
    assert!(rsp.flags().contains(VmEventFlags::VCPU_PAUSED));
}

fn stock() -> (Pages, StockRingPtr) {
    let pages = Pages::new(1);
    // SAFETY: the returned Pages keeps the mapping alive alongside the ptr.
    let ring = unsafe { StockRingPtr::new(pages.as_ptr()) };
    ring.init();
    (pages, ring)
}

#[test]
fn stock_ring_round_trip_with_wraparound() {
    let (_pages, ring) = stock();
    let mut c = StockRingConsumer::new(ring);
    let (mut prod, mut rsp_cons) = (0u32, 0u32);
    let mut seq = 0;
    for batch in [3u64, 8, 5, 8, 1] {
        assert!(front::free_requests(&ring, prod, rsp_cons) as u64 >= batch);
        for _ in 0..batch {
            front::put_request(&ring, &mut prod, &cpuid_request(0, seq));
            seq += 1;
        }
        let p = c.poll(echo);
        assert_eq!(p.consumed as u64, batch);
        assert!(p.notify);
        assert_eq!(
            ring.req_event().load(Ordering::Relaxed),
            prod.wrapping_add(1)
        );
        let first = seq - batch;
        for k in 0..batch {
            let rsp = front::get_response(&ring, &mut rsp_cons).unwrap();
            assert_eq!(rsp.regs_x86().rip, expected_rip(0, first + k));
        }
        assert!(front::get_response(&ring, &mut rsp_cons).is_none());
    }
    assert!(!c.poll(echo).notify, "nothing new, nothing to notify");
}

#[test]
fn stock_ring_hostile_req_prod_is_not_chased() {
    let (_pages, ring) = stock();
    let mut c = StockRingConsumer::new(ring);
    for bad in [9u32, 1000, u32::MAX] {
        ring.req_prod().store(bad, Ordering::Release);
        let p = c.poll(|_, _| panic!("no entry may be read"));
        assert!(p.bad_prod);
        assert_eq!(p.consumed, 0);
    }
    // Within range: garbage entries are just copied and answered.
    ring.req_prod().store(8, Ordering::Release);
    let p = c.poll(|req, rsp| {
        ResponseBuilder::for_request(rsp, req);
    });
    assert_eq!(p.consumed, 8);
}

#[test]
fn async_ring_consumes_in_order_and_counts_drops() {
    let pages = Pages::new(1);
    // SAFETY: pages outlives ring within this test.
    let ring = unsafe { AsyncRingPtr::new(pages.as_ptr(), 1) };
    assert_eq!(ring.nr_entries(), 8);
    let mut c = AsyncRingConsumer::new(ring);
    let mut ok = 0;
    for seq in 0..15 {
        ok += async_produce(&ring, &cpuid_request(0, seq)) as u32;
    }
    assert_eq!(ok, 8);
    let mut got = Vec::new();
    let p = c.poll(4, |r| got.push(r.regs_x86().rip));
    assert_eq!((p.consumed, p.new_drops), (4, 7));
    let p = c.poll(100, |r| got.push(r.regs_x86().rip));
    assert_eq!((p.consumed, p.new_drops), (4, 0));
    let want: Vec<u64> = (0..8).map(|s| expected_rip(0, s) - 2).collect();
    assert_eq!(got, want);
    assert_eq!(ring.cons().load(Ordering::Relaxed), 8);
    assert_eq!(c.stats.dropped, 7);
}

/// Issue 12, finding 7: `prod` and `cons` run free and wrap at 2^32; an
/// entry's index is the counter modulo the capacity, which must therefore
/// divide 2^32. With the old capacity of one frame (10 entries) the
/// entries written after the wrap landed on live ones and this read back
/// other requests than were written.
#[test]
fn async_ring_entries_survive_the_counter_wrap() {
    for frames in 1..=XEN_VM_EVENT_MAX_RING_FRAMES {
        let pages = Pages::new(frames as usize);
        // SAFETY: pages outlives ring within this iteration.
        let ring = unsafe { AsyncRingPtr::new(pages.as_ptr(), frames) };
        let cap = ring.nr_entries();
        assert!(cap.is_power_of_two(), "{frames} frames: capacity {cap}");
        // Start a few entries before the wrap, as after 2^32 events.
        let start = u32::MAX - 3;
        ring.prod().store(start, Ordering::Relaxed);
        ring.cons().store(start, Ordering::Relaxed);
        let mut c = AsyncRingConsumer::new(ring);
        let mut seq = 0u64;
        let mut got = Vec::new();
        for _ in 0..3 {
            // Fill it completely, then drain it: every live entry intact.
            for _ in 0..cap {
                assert!(async_produce(&ring, &cpuid_request(0, seq)));
                seq += 1;
            }
            while c.poll(u32::MAX, |r| got.push(r.regs_x86().rip)).consumed > 0 {}
        }
        let want: Vec<u64> = (0..seq).map(|s| expected_rip(0, s) - 2).collect();
        assert_eq!(got, want, "{frames} frames");
        assert_eq!(c.stats.bad_prod, 0);
    }
}

#[test]
fn async_ring_hostile_prod_resyncs() {
    let pages = Pages::new(1);
    // SAFETY: pages outlives ring within this test.
    let ring = unsafe { AsyncRingPtr::new(pages.as_ptr(), 1) };
    let mut c = AsyncRingConsumer::new(ring);
    ring.prod().store(500, Ordering::Release);
    let p = c.poll(u32::MAX, |_| panic!("no entry may be read"));
    assert!(p.resynced);
    assert_eq!(ring.cons().load(Ordering::Relaxed), 500);
    // Dropped counter wrapping is a plain delta.
    ring.dropped().store(u32::MAX, Ordering::Relaxed);
    let _ = c.poll(0, |_| {});
    ring.dropped().store(2, Ordering::Relaxed);
    assert_eq!(c.poll(0, |_| {}).new_drops, 3);
}

#[test]
fn response_builder_variants() {
    let req = cpuid_request(1, 0);
    let rsp = respond(&req, |b| b.emulate());
    assert_eq!(
        rsp.flags(),
        VmEventFlags::VCPU_PAUSED | VmEventFlags::EMULATE
    );
    let rsp = respond(&req, |b| b.emulate_nowrite());
    assert!(rsp.flags().contains(VmEventFlags::EMULATE_NOWRITE));
    let rsp = respond(&req, |b| b.emulate_read_data(&[1, 2, 3]));
    assert!(rsp.flags().contains(VmEventFlags::SET_EMUL_READ_DATA));
    assert_eq!(rsp.emul_read_data().size, 3);
    assert_eq!(&rsp.emul_read_data().data[..3], &[1, 2, 3]);
    let big = [7u8; 1000];
    let rsp = respond(&req, |b| b.emulate_read_data(&big));
    assert_eq!(
        rsp.emul_read_data().size as usize,
        VM_EVENT_EMUL_READ_DATA_LEN
    );
    let rsp = respond(&req, |b| b.emulate_insn_data([0x90; 16]));
    assert!(rsp.flags().contains(VmEventFlags::SET_EMUL_INSN_DATA));
    assert_eq!(rsp.emul_insn_data(), [0x90; 16]);
    let rsp = respond(&req, |b| b.alternate_p2m(3).toggle_singlestep());
    assert_eq!(rsp.altp2m_idx, 3);
    assert!(rsp
        .flags()
        .contains(VmEventFlags::ALTERNATE_P2M | VmEventFlags::TOGGLE_SINGLESTEP));
    let mut regs = *req.regs_x86();
    regs.rax = 42;
    let rsp = respond(&req, |b| b.set_registers(&regs).deny());
    assert_eq!(rsp.regs_x86().rax, 42);
    assert!(rsp
        .flags()
        .contains(VmEventFlags::SET_REGISTERS | VmEventFlags::DENY));
    let _ = Policy::empty();
}

#[test]
fn domctl_builders() {
    let d = XenDomctl::enable_channels(7, 2);
    assert_eq!(d.cmd, XEN_DOMCTL_VM_EVENT_OP);
    assert_eq!(d.interface_version, 0x15);
    assert_eq!(d.domain, 7);
    let op = d.vm_event_op_out();
    assert_eq!(
        (op.op, op.mode),
        (XEN_VM_EVENT_ENABLE_CHANNELS, XEN_DOMCTL_VM_EVENT_OP_MONITOR)
    );
    assert_eq!(op.channels().ring_frames, 2);
    let d = XenDomctl::get_ports(7, 0x1000, 4);
    let p = d.vm_event_op_out().ports();
    assert_eq!((p.nr_ports, p.ports), (4, 0x1000));
    assert_eq!(XenDomctl::pausedomain(3).cmd, XEN_DOMCTL_PAUSEDOMAIN);
    assert_eq!(slot_frames(8), 1);
    assert_eq!(slot_frames(9), 2);
    assert_eq!(async_ring_entries(16), 128);
}
