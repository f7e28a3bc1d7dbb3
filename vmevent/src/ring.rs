//! Back-end (consumer) of Xen's stock vm_event ring: `public/io/ring.h`
//! with 8 entries of `vm_event_st` on one page. Xen is the front end: it
//! produces requests and consumes responses.
//!
//! Responses are written in place of consumed requests, as ring.h allows
//! (`rsp_prod_pvt <= req_cons`). Note that Xen never moves `rsp_event` after
//! `SHARED_RING_INIT`, so `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY` would stop
//! signalling after the first batch; like xen-access we notify after every
//! batch that pushed a response.

use crate::abi::{VmEventRequest, VmEventResponse, VM_EVENT_RING_SIZE};
use crate::shm::StockRingPtr;
use core::sync::atomic::{fence, Ordering};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    pub consumed: u64,
    /// `req_prod` ran more than a ring ahead of us.
    pub bad_prod: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingPoll {
    pub consumed: u32,
    /// Responses were pushed: notify Xen's port.
    pub notify: bool,
    pub bad_prod: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct StockRingConsumer {
    ring: StockRingPtr,
    req_cons: u32,
    rsp_prod_pvt: u32,
    pub stats: RingStats,
}

/// Rounds of "drain, push, final check" per poll; bounds the work a peer
/// that keeps producing can make us do in one call.
const MAX_ROUNDS: u32 = 4;

impl StockRingConsumer {
    /// `BACK_RING_ATTACH` at the ring's current response producer.
    pub fn new(ring: StockRingPtr) -> Self {
        let rsp_prod = ring.rsp_prod().load(Ordering::Acquire);
        Self {
            ring,
            req_cons: rsp_prod,
            rsp_prod_pvt: rsp_prod,
            stats: RingStats::default(),
        }
    }

    pub fn ring(&self) -> &StockRingPtr {
        &self.ring
    }

    /// Drain requests, answering each through `handler`, publish the
    /// responses and re-arm `req_event`.
    pub fn poll<F>(&mut self, mut handler: F) -> RingPoll
    where
        F: FnMut(&VmEventRequest, &mut VmEventResponse),
    {
        let mut out = RingPoll::default();
        for _ in 0..MAX_ROUNDS {
            let prod = self.ring.req_prod().load(Ordering::Acquire);
            let unconsumed = prod.wrapping_sub(self.req_cons);
            if unconsumed > VM_EVENT_RING_SIZE {
                // Impossible for an honest front end (it can never be more
                // than a ring ahead of our responses). Do not chase it.
                self.stats.bad_prod += 1;
                out.bad_prod = true;
                break;
            }
            for _ in 0..unconsumed {
                let req = self.ring.read_entry(self.req_cons);
                self.req_cons = self.req_cons.wrapping_add(1);
                let mut rsp = VmEventResponse::zeroed();
                handler(&req, &mut rsp);
                self.ring.write_entry(self.rsp_prod_pvt, &rsp);
                self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
            }
            if unconsumed > 0 {
                // RING_PUSH_RESPONSES: entries visible before the index.
                self.ring
                    .rsp_prod()
                    .store(self.rsp_prod_pvt, Ordering::Release);
                out.notify = true;
                out.consumed += unconsumed;
                self.stats.consumed += unconsumed as u64;
            }
            // RING_FINAL_CHECK_FOR_REQUESTS: ask for a notification on the
            // next request, then look again in case one raced in.
            self.ring
                .req_event()
                .store(self.req_cons.wrapping_add(1), Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if self.ring.req_prod().load(Ordering::Acquire) == self.req_cons {
                break;
            }
        }
        out
    }
}

/// Front-end helpers (what Xen does), for the simulator and tests.
pub mod front {
    use super::*;

    /// Free request slots seen from Xen's side (`RING_FREE_REQUESTS`).
    pub fn free_requests(ring: &StockRingPtr, req_prod_pvt: u32, rsp_cons: u32) -> u32 {
        let _ = ring;
        VM_EVENT_RING_SIZE - req_prod_pvt.wrapping_sub(rsp_cons)
    }

    /// Put one request and publish `req_prod` (`RING_PUSH_REQUESTS`).
    pub fn put_request(ring: &StockRingPtr, req_prod_pvt: &mut u32, req: &VmEventRequest) {
        ring.write_entry(*req_prod_pvt, req);
        *req_prod_pvt = req_prod_pvt.wrapping_add(1);
        ring.req_prod().store(*req_prod_pvt, Ordering::Release);
    }

    /// Take one response if available (`vm_event_get_response`).
    pub fn get_response(ring: &StockRingPtr, rsp_cons: &mut u32) -> Option<VmEventResponse> {
        let prod = ring.rsp_prod().load(Ordering::Acquire);
        if prod == *rsp_cons {
            return None;
        }
        let rsp = ring.read_entry(*rsp_cons);
        *rsp_cons = rsp_cons.wrapping_add(1);
        Some(rsp)
    }
}
