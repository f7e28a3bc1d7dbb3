//! Loom model of the slot handshake: "Xen" (one vCPU raising events) vs the
//! real `SlotConsumer`, over a slot whose payload is a loom `UnsafeCell`, so
//! any unsynchronised (torn) access between the two sides is reported.
//!
//! Run: RUSTFLAGS="--cfg loom" cargo test -p vmevent --test loom --release
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU32;
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering;
use vmevent::abi::{
    VmEventCpuid, VmEventFlags, VmEventSt, VM_EVENT_INTERFACE_VERSION, VM_EVENT_REASON_CPUID,
    VM_EVENT_SLOT_FINISH, VM_EVENT_SLOT_IDLE, VM_EVENT_SLOT_SUBMIT,
};
use vmevent::shm::SlotMem;
use vmevent::slot::{SlotConsumer, SlotPoll};
use vmevent::ResponseBuilder;

struct LoomSlot {
    state: AtomicU32,
    body: UnsafeCell<VmEventSt>,
}

impl SlotMem for LoomSlot {
    fn load_state(&self, order: Ordering) -> u32 {
        self.state.load(order)
    }
    fn store_state(&self, v: u32, order: Ordering) {
        self.state.store(v, order)
    }
    fn compare_exchange_state(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        self.state.compare_exchange(current, new, success, failure)
    }
    fn read_event(&self) -> VmEventSt {
        // SAFETY: loom checks that this read is ordered with every write.
        self.body.with(|p| unsafe { *p })
    }
    fn write_event(&self, ev: &VmEventSt) {
        // SAFETY: as above, for writes.
        self.body.with_mut(|p| unsafe { *p = *ev })
    }
}

const EVENTS: u64 = 2;

fn request(seq: u64) -> VmEventSt {
    let mut r = VmEventSt::zeroed();
    r.version = VM_EVENT_INTERFACE_VERSION;
    r.flags = VmEventFlags::VCPU_PAUSED.bits();
    r.reason = VM_EVENT_REASON_CPUID;
    r.vcpu_id = 0;
    r.set_cpuid(VmEventCpuid {
        insn_length: 2,
        leaf: seq as u32,
        subleaf: 0,
        _pad: 0,
    });
    r.regs_x86_mut().rip = 0x1000 + seq * 0x10;
    r
}

/// The consumer's answer depends on the whole request (leaf and rip), so a
/// response built from a torn or stale request is recognisable.
fn answer(req: &VmEventSt, rsp: &mut VmEventSt) {
    let leaf = req.cpuid().leaf;
    ResponseBuilder::for_request(rsp, req).cpuid(req, [Some(leaf ^ 0xabcd), None, None, None]);
}

fn expected(seq: u64) -> VmEventSt {
    let mut rsp = VmEventSt::zeroed();
    answer(&request(seq), &mut rsp);
    rsp
}

#[test]
fn slot_handshake_no_lost_duplicated_or_torn_response() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let slot = Arc::new(LoomSlot {
            state: AtomicU32::new(VM_EVENT_SLOT_IDLE),
            body: UnsafeCell::new(VmEventSt::zeroed()),
        });

        let xen = {
            let slot = slot.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                for seq in 0..EVENTS {
                    // vCPU paused for vm_event: slot must be IDLE.
                    assert_eq!(slot.load_state(Ordering::Acquire), VM_EVENT_SLOT_IDLE);
                    slot.write_event(&request(seq));
                    slot.store_state(VM_EVENT_SLOT_SUBMIT, Ordering::Release);
                    // Wait for the consumer's notification.
                    while slot.load_state(Ordering::Acquire) != VM_EVENT_SLOT_FINISH {
                        thread::yield_now();
                    }
                    let rsp = slot.read_event();
                    slot.store_state(VM_EVENT_SLOT_IDLE, Ordering::Release);
                    got.push(rsp);
                }
                got
            })
        };

        let consumer = {
            let slot = slot.clone();
            thread::spawn(move || {
                let mut c = SlotConsumer::new();
                let mut answered = 0;
                while answered < EVENTS {
                    match c.poll(&*slot, 0, answer) {
                        SlotPoll::Answered => answered += 1,
                        SlotPoll::Idle | SlotPoll::Pending => thread::yield_now(),
                        other => panic!("unexpected poll outcome {other:?}"),
                    }
                }
                c.stats
            })
        };

        let got = xen.join().unwrap();
        let stats = consumer.join().unwrap();
        assert_eq!(got.len() as u64, EVENTS, "lost response");
        for (seq, rsp) in got.iter().enumerate() {
            assert_eq!(*rsp, expected(seq as u64), "wrong/torn response {seq}");
        }
        assert_eq!(stats.answered, EVENTS, "duplicated or missing answer");
        assert_eq!(stats.lost + stats.bad_state + stats.malformed, 0);
    });
}

/// Xen tears the slot down (back to IDLE) while the consumer may be
/// answering: the consumer must not publish FINISH over it.
#[test]
fn slot_teardown_race_is_detected_not_overwritten() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let slot = Arc::new(LoomSlot {
            state: AtomicU32::new(VM_EVENT_SLOT_IDLE),
            body: UnsafeCell::new(request(0)),
        });
        slot.store_state(VM_EVENT_SLOT_SUBMIT, Ordering::Release);

        let xen = {
            let slot = slot.clone();
            thread::spawn(move || {
                // Teardown: whatever the state, force IDLE (Xen does not
                // touch the payload any more).
                slot.state.swap(VM_EVENT_SLOT_IDLE, Ordering::AcqRel)
            })
        };
        let mut c = SlotConsumer::new();
        let r = c.poll(&*slot, 0, answer);
        let before = xen.join().unwrap();
        let end = slot.load_state(Ordering::Acquire);
        match r {
            // We won the race: Xen saw our FINISH when tearing down.
            SlotPoll::Answered => assert_eq!(before, VM_EVENT_SLOT_FINISH),
            // Teardown came first: nothing published.
            SlotPoll::Idle | SlotPoll::Lost(_) => assert_eq!(before, VM_EVENT_SLOT_SUBMIT),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            end, VM_EVENT_SLOT_IDLE,
            "FINISH published over a torn-down slot"
        );
    });
}
