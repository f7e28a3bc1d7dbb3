//! Consumer side of one per-vCPU slot (docs/abi.md, "Slots").
//!
//! `IDLE -> SUBMIT` is Xen's, `SUBMIT -> FINISH` ours, `FINISH -> IDLE` Xen's.
//! We only ever write the payload while the state is `SUBMIT` and publish
//! `FINISH` with a release compare-exchange from `SUBMIT`, so a state that
//! changed under us (teardown, a buggy peer) is detected instead of being
//! overwritten.

use crate::abi::{
    VmEventFlags, VmEventRequest, VmEventResponse, VM_EVENT_INTERFACE_VERSION,
    VM_EVENT_SLOT_FINISH, VM_EVENT_SLOT_IDLE, VM_EVENT_SLOT_SUBMIT,
};
use crate::response::ResponseBuilder;
use crate::shm::SlotMem;
use core::sync::atomic::Ordering;

/// Why a submitted request was not handed to the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// `version != VM_EVENT_INTERFACE_VERSION`.
    Version(u32),
    /// `vcpu_id` differs from the slot's vCPU.
    Vcpu(u32),
    /// A slot request without `VCPU_PAUSED` (slots are for sync events).
    NotPaused,
}

/// Result of one [`SlotConsumer::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotPoll {
    /// Nothing submitted.
    Idle,
    /// Our FINISH is still waiting for Xen (e.g. a spurious notification).
    Pending,
    /// Answered through the handler; notify the vCPU's port.
    Answered,
    /// Answered with a bare unpause because the request was malformed;
    /// notify the vCPU's port.
    AnsweredMalformed(Malformed),
    /// The state word held something that is not a state; left alone.
    BadState(u32),
    /// The state left SUBMIT while we were answering; response not
    /// published.
    Lost(u32),
}

impl SlotPoll {
    /// Whether the caller must notify the slot's event channel.
    pub fn must_notify(self) -> bool {
        matches!(self, Self::Answered | Self::AnsweredMalformed(_))
    }
}

/// Counters kept by the consumer of one or many slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotStats {
    pub answered: u64,
    pub malformed: u64,
    pub bad_state: u64,
    pub lost: u64,
    pub spurious: u64,
}

/// Consumer of a slot. Holds no per-slot state (the slot word is the state),
/// so one value can serve any number of slots.
#[derive(Clone, Copy, Debug, Default)]
pub struct SlotConsumer {
    pub stats: SlotStats,
}

/// Validate a request copied out of vCPU `vcpu`'s slot.
#[inline]
pub fn validate(req: &VmEventRequest, vcpu: u32) -> Result<(), Malformed> {
    if req.version != VM_EVENT_INTERFACE_VERSION {
        return Err(Malformed::Version(req.version));
    }
    if req.vcpu_id != vcpu {
        return Err(Malformed::Vcpu(req.vcpu_id));
    }
    if req.flags & VmEventFlags::VCPU_PAUSED.bits() == 0 {
        return Err(Malformed::NotPaused);
    }
    Ok(())
}

impl SlotConsumer {
    pub const fn new() -> Self {
        Self {
            stats: SlotStats {
                answered: 0,
                malformed: 0,
                bad_state: 0,
                lost: 0,
                spurious: 0,
            },
        }
    }

    /// Serve vCPU `vcpu`'s slot once: if a request is submitted, copy it,
    /// validate it, let `handler` fill the (zeroed) response (only for
    /// valid requests), fix up the fields Xen relies on, and publish `FINISH`.
    ///
    /// Bounded work, no panics, whatever the slot holds. A malformed request
    /// still gets a bare unpause: Xen takes the vCPU from the slot index,
    /// so leaving it unanswered would keep the vCPU paused forever.
    #[inline]
    pub fn poll<M: SlotMem, F>(&mut self, slot: &M, vcpu: u32, handler: F) -> SlotPoll
    where
        F: FnOnce(&VmEventRequest, &mut VmEventResponse),
    {
        match slot.load_state(Ordering::Acquire) {
            VM_EVENT_SLOT_SUBMIT => {}
            VM_EVENT_SLOT_IDLE => return SlotPoll::Idle,
            VM_EVENT_SLOT_FINISH => {
                self.stats.spurious += 1;
                return SlotPoll::Pending;
            }
            other => {
                self.stats.bad_state += 1;
                return SlotPoll::BadState(other);
            }
        }

        let req = slot.read_event();
        let mut rsp = VmEventResponse::zeroed();
        let outcome = match validate(&req, vcpu) {
            Ok(()) => {
                handler(&req, &mut rsp);
                SlotPoll::Answered
            }
            Err(m) => {
                ResponseBuilder::unpause_only(&mut rsp, vcpu, req.reason);
                SlotPoll::AnsweredMalformed(m)
            }
        };
        // Whatever the handler did, these are what Xen checks.
        rsp.version = VM_EVENT_INTERFACE_VERSION;
        rsp.vcpu_id = vcpu;
        rsp.flags |= VmEventFlags::VCPU_PAUSED.bits();

        slot.write_event(&rsp);
        // Release: the response bytes are visible before FINISH is.
        match slot.compare_exchange_state(
            VM_EVENT_SLOT_SUBMIT,
            VM_EVENT_SLOT_FINISH,
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => {
                match outcome {
                    SlotPoll::Answered => self.stats.answered += 1,
                    _ => self.stats.malformed += 1,
                }
                outcome
            }
            Err(now) => {
                self.stats.lost += 1;
                SlotPoll::Lost(now)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::VmEventSt;

    #[test]
    fn validate_checks_version_vcpu_and_pause() {
        let mut r = VmEventSt::zeroed();
        r.version = VM_EVENT_INTERFACE_VERSION;
        r.vcpu_id = 3;
        r.flags = VmEventFlags::VCPU_PAUSED.bits();
        assert_eq!(validate(&r, 3), Ok(()));
        assert_eq!(validate(&r, 2), Err(Malformed::Vcpu(3)));
        r.flags = 0;
        assert_eq!(validate(&r, 3), Err(Malformed::NotPaused));
        r.version = 8;
        assert_eq!(validate(&r, 3), Err(Malformed::Version(8)));
    }
}
