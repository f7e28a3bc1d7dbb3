//! When a slot is stuck: the same request unanswered, or the same answer
//! not taken by Xen, for longer than any event takes. A consumer looks at
//! each slot now and then ([`SlotWatch::observe`]) and reports what it
//! finds once per stall, and once more when the slot moves on.
//!
//! "The same" is told by the slot's state together with the consumer's
//! count of answers for that vCPU: a new request in the same state comes
//! with a count one higher, so two looks that agree on both, a while
//! apart, saw one request (or one answer) all along.

use crate::abi::{VM_EVENT_SLOT_FINISH, VM_EVENT_SLOT_SUBMIT};

/// What a stuck slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stuck {
    /// A request the consumer has not answered.
    Unanswered,
    /// An answer Xen has not taken (its notification lost, or not sent).
    NotTaken,
}

/// What [`SlotWatch::observe`] found worth saying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Stuck for `for_ns` (said once per stall).
    Stalled { stuck: Stuck, for_ns: u64 },
    /// A stall said before is over, after `for_ns` in all.
    Resumed { for_ns: u64 },
}

/// One slot's watch: what it held at the last look, and since when.
#[derive(Clone, Copy, Debug, Default)]
pub struct SlotWatch {
    state: u32,
    answered: u64,
    since_ns: u64,
    said: bool,
}

impl SlotWatch {
    pub const fn new() -> Self {
        Self {
            state: 0,
            answered: 0,
            since_ns: 0,
            said: false,
        }
    }

    /// One look at the slot at time `now_ns`: its `state` and the
    /// consumer's `answered` count for its vCPU. A stall is found when
    /// the slot has held the same request or answer for `limit_ns`.
    pub fn observe(
        &mut self,
        state: u32,
        answered: u64,
        now_ns: u64,
        limit_ns: u64,
    ) -> Option<Finding> {
        let stuck = match state {
            VM_EVENT_SLOT_SUBMIT => Some(Stuck::Unanswered),
            VM_EVENT_SLOT_FINISH => Some(Stuck::NotTaken),
            _ => None,
        };
        let same = stuck.is_some() && state == self.state && answered == self.answered;
        if !same {
            let was = self.said.then(|| Finding::Resumed {
                for_ns: now_ns.saturating_sub(self.since_ns),
            });
            *self = Self {
                state,
                answered,
                since_ns: now_ns,
                said: false,
            };
            return was;
        }
        let for_ns = now_ns.saturating_sub(self.since_ns);
        if self.said || for_ns < limit_ns {
            return None;
        }
        self.said = true;
        stuck.map(|stuck| Finding::Stalled { stuck, for_ns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::VM_EVENT_SLOT_IDLE;

    const S: u64 = 1_000_000_000;

    #[test]
    fn one_request_held_past_the_limit_is_said_once_then_its_end() {
        let mut w = SlotWatch::new();
        assert_eq!(w.observe(VM_EVENT_SLOT_SUBMIT, 7, 0, 2 * S), None);
        assert_eq!(w.observe(VM_EVENT_SLOT_SUBMIT, 7, S, 2 * S), None);
        assert_eq!(
            w.observe(VM_EVENT_SLOT_SUBMIT, 7, 2 * S, 2 * S),
            Some(Finding::Stalled {
                stuck: Stuck::Unanswered,
                for_ns: 2 * S
            })
        );
        assert_eq!(w.observe(VM_EVENT_SLOT_SUBMIT, 7, 3 * S, 2 * S), None);
        // Answered: FINISH with one more answer counted.
        assert_eq!(
            w.observe(VM_EVENT_SLOT_FINISH, 8, 4 * S, 2 * S),
            Some(Finding::Resumed { for_ns: 4 * S })
        );
        assert_eq!(w.observe(VM_EVENT_SLOT_IDLE, 8, 5 * S, 2 * S), None);
    }

    #[test]
    fn new_requests_in_the_same_state_are_not_a_stall() {
        let mut w = SlotWatch::new();
        // Every look finds SUBMIT, but each time another request.
        for i in 0..10 {
            assert_eq!(w.observe(VM_EVENT_SLOT_SUBMIT, i, i * S, 2 * S), None);
        }
        // Idle for ever is no stall either.
        for i in 10..20 {
            assert_eq!(w.observe(VM_EVENT_SLOT_IDLE, 10, i * S, 2 * S), None);
        }
    }

    #[test]
    fn an_answer_xen_does_not_take_is_told_apart() {
        let mut w = SlotWatch::new();
        assert_eq!(w.observe(VM_EVENT_SLOT_FINISH, 3, 0, S), None);
        assert_eq!(
            w.observe(VM_EVENT_SLOT_FINISH, 3, S, S),
            Some(Finding::Stalled {
                stuck: Stuck::NotTaken,
                for_ns: S
            })
        );
        // Taken: the slot goes idle.
        assert_eq!(
            w.observe(VM_EVENT_SLOT_IDLE, 3, 2 * S, S),
            Some(Finding::Resumed { for_ns: 2 * S })
        );
    }
}
