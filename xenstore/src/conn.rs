//! The client's protocol state, without any I/O of its own: requests wait
//! in an outgoing queue until the ring has room, the response ring is
//! drained into the decoder, replies are matched to outstanding request
//! ids and watch events are queued apart. The hardware glue only adds the
//! event channel and the waiting; tests drive the same code against a
//! simulated daemon on an ordinary page.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::frame::{Decoder, Message};
use crate::request::{Op, WatchEvent};
use crate::ring::RingView;
use crate::wire::{Interface, MsgType, PAYLOAD_MAX};
use crate::Error;

/// Requests queued but not yet in the ring, at most (bytes). Beyond this
/// the daemon is not reading and new requests fail with [`Error::Busy`].
pub const OUT_QUEUE_MAX: usize = 4 * (PAYLOAD_MAX + 16);

/// Watch events kept until taken; beyond this the oldest are dropped (and
/// counted). Watches only say "look again", so losing an old one while a
/// newer one for the same node is queued loses nothing.
pub const WATCH_QUEUE_MAX: usize = 64;

/// What one [`Connection::pump`] moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pumped {
    /// Request bytes put into the ring.
    pub sent: usize,
    /// Response bytes taken out of the ring.
    pub received: usize,
}

impl Pumped {
    /// The daemon should be notified: it has new requests or more room.
    pub fn notify(&self) -> bool {
        self.sent > 0 || self.received > 0
    }
}

/// Counters of things that went wrong but were survivable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Replies nobody waited for (their caller timed out) or unknown ids.
    pub stray_replies: u64,
    /// Watch events dropped because the queue was full.
    pub watch_overflow: u64,
    /// `XS_WATCH_EVENT` payloads that did not parse.
    pub bad_watch_events: u64,
}

/// Protocol state of one connection.
#[derive(Debug)]
pub struct Connection {
    decoder: Decoder,
    out: VecDeque<u8>,
    next_id: u32,
    outstanding: Vec<u32>,
    replies: Vec<Message>,
    watches: VecDeque<WatchEvent>,
    stats: Stats,
    broken: Option<Error>,
}

impl Default for Connection {
    fn default() -> Self {
        Self::new()
    }
}

impl Connection {
    pub fn new() -> Self {
        Connection {
            decoder: Decoder::new(),
            out: VecDeque::new(),
            next_id: 1,
            outstanding: Vec::new(),
            replies: Vec::new(),
            watches: VecDeque::new(),
            stats: Stats::default(),
            broken: None,
        }
    }

    /// Queues a request; returns its id. Nothing reaches the ring before
    /// the next [`pump`](Self::pump). A request is queued whole or not at
    /// all, so a caller giving up never leaves half a message behind.
    pub fn queue(&mut self, op: &Op<'_>) -> Result<u32, Error> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        let id = self.next_id;
        let bytes = op.encode(id)?;
        if self.out.len() + bytes.len() > OUT_QUEUE_MAX {
            return Err(Error::Busy);
        }
        // 0 is what watch events carry; never use it for a request.
        self.next_id = match self.next_id.wrapping_add(1) {
            0 => 1,
            n => n,
        };
        self.out.extend(bytes);
        self.outstanding.push(id);
        Ok(id)
    }

    /// Moves bytes: queued requests into the request ring, everything in
    /// the response ring into the decoder, and sorts what was decoded.
    /// Errors are permanent (corrupt ring indices, unframeable stream).
    pub fn pump(&mut self, page: &Interface) -> Result<Pumped, Error> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        let r = self.pump_inner(page);
        if let Err(e) = r {
            self.broken = Some(e);
        }
        r
    }

    fn pump_inner(&mut self, page: &Interface) -> Result<Pumped, Error> {
        let mut done = Pumped::default();
        let req = RingView::requests(page);
        while !self.out.is_empty() {
            let (a, _) = self.out.as_slices();
            let n = req.write(a).map_err(Error::Ring)?;
            if n == 0 {
                break;
            }
            self.out.drain(..n);
            done.sent += n;
        }
        let rsp = RingView::responses(page);
        let mut buf = [0u8; 256];
        loop {
            let n = rsp.read(&mut buf).map_err(Error::Ring)?;
            if n == 0 {
                break;
            }
            done.received += n;
            self.decoder.feed(&buf[..n]).map_err(Error::Protocol)?;
        }
        while let Some(m) = self.decoder.pop() {
            self.sort(m);
        }
        Ok(done)
    }

    fn sort(&mut self, m: Message) {
        if m.header.msg_type() == Some(MsgType::WatchEvent) {
            match WatchEvent::parse(&m.payload) {
                Some(ev) => {
                    if self.watches.len() >= WATCH_QUEUE_MAX {
                        self.watches.pop_front();
                        self.stats.watch_overflow += 1;
                    }
                    self.watches.push_back(ev);
                }
                None => self.stats.bad_watch_events += 1,
            }
            return;
        }
        if self.outstanding.contains(&m.header.req_id) {
            self.replies.push(m);
        } else {
            self.stats.stray_replies += 1;
        }
    }

    /// The reply to request `id`, once it has arrived.
    pub fn take_reply(&mut self, id: u32) -> Option<Message> {
        let i = self.replies.iter().position(|m| m.header.req_id == id)?;
        self.outstanding.retain(|&o| o != id);
        Some(self.replies.swap_remove(i))
    }

    /// Forget request `id` (its caller gave up); a late reply is dropped.
    /// The request itself still goes out if it has not yet: the stream
    /// must stay whole.
    pub fn abandon(&mut self, id: u32) {
        self.outstanding.retain(|&o| o != id);
        self.replies.retain(|m| m.header.req_id != id);
    }

    /// The oldest watch event not yet taken.
    pub fn pop_watch(&mut self) -> Option<WatchEvent> {
        self.watches.pop_front()
    }

    /// Watch events waiting.
    pub fn watches_queued(&self) -> usize {
        self.watches.len()
    }

    /// Bytes of requests not yet in the ring.
    pub fn unsent(&self) -> usize {
        self.out.len()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The permanent error, if the connection is broken.
    pub fn broken(&self) -> Option<Error> {
        self.broken
    }
}
