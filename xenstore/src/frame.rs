//! Message framing: turns the byte stream of the response ring, delivered
//! in arbitrary pieces, back into whole messages (header + payload).
//!
//! Once a header announces more than [`PAYLOAD_MAX`] bytes the stream has
//! lost its framing for good (we cannot know where the next header starts),
//! so the decoder stops and reports [`ProtocolError`] from then on instead
//! of guessing.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use crate::wire::{Header, PAYLOAD_MAX};

/// One whole message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub payload: Vec<u8>,
}

impl Message {
    /// Header + payload as they go on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Header::SIZE + self.payload.len());
        v.extend_from_slice(&self.header.encode());
        v.extend_from_slice(&self.payload);
        v
    }
}

/// The byte stream from the daemon cannot be framed any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// A header announced a payload over `PAYLOAD_MAX`.
    PayloadTooLong { ty: u32, req_id: u32, len: u32 },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::PayloadTooLong { ty, req_id, len } => write!(
                f,
                "xenstored sent a {len}-byte payload (type {ty}, req_id {req_id}; max {PAYLOAD_MAX})"
            ),
        }
    }
}

/// Incremental decoder; whole messages queue up until taken with [`pop`].
///
/// [`pop`]: Decoder::pop
#[derive(Debug, Default)]
pub struct Decoder {
    head: [u8; Header::SIZE],
    head_len: usize,
    /// The header of the message whose payload is being collected.
    current: Option<Header>,
    payload: Vec<u8>,
    done: VecDeque<Message>,
    broken: Option<ProtocolError>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream. After an error every later call
    /// returns the same error and consumes nothing more.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), ProtocolError> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        while !bytes.is_empty() {
            match self.current {
                None => {
                    let take = (Header::SIZE - self.head_len).min(bytes.len());
                    self.head[self.head_len..self.head_len + take].copy_from_slice(&bytes[..take]);
                    self.head_len += take;
                    bytes = &bytes[take..];
                    if self.head_len == Header::SIZE {
                        self.head_len = 0;
                        let h = Header::decode(&self.head);
                        if h.len as usize > PAYLOAD_MAX {
                            let e = ProtocolError::PayloadTooLong {
                                ty: h.ty,
                                req_id: h.req_id,
                                len: h.len,
                            };
                            self.broken = Some(e);
                            return Err(e);
                        }
                        self.payload = Vec::with_capacity(h.len as usize);
                        self.current = Some(h);
                    }
                }
                Some(h) => {
                    let want = h.len as usize - self.payload.len();
                    let take = want.min(bytes.len());
                    self.payload.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                }
            }
            // A zero-length payload completes as soon as its header does.
            if let Some(h) = self.current {
                if self.payload.len() == h.len as usize {
                    self.current = None;
                    self.done.push_back(Message {
                        header: h,
                        payload: core::mem::take(&mut self.payload),
                    });
                }
            }
        }
        Ok(())
    }

    /// The oldest whole message not yet taken.
    pub fn pop(&mut self) -> Option<Message> {
        self.done.pop_front()
    }

    /// Whole messages waiting.
    pub fn queued(&self) -> usize {
        self.done.len()
    }

    /// True between messages (no partial header or payload held).
    pub fn at_boundary(&self) -> bool {
        self.head_len == 0 && self.current.is_none()
    }

    /// The error that stopped the decoder, if any.
    pub fn error(&self) -> Option<ProtocolError> {
        self.broken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn msg(ty: u32, req_id: u32, payload: &[u8]) -> Message {
        Message {
            header: Header {
                ty,
                req_id,
                tx_id: 0,
                len: payload.len() as u32,
            },
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn two_messages_byte_by_byte() {
        let a = msg(2, 1, b"value");
        let b = msg(15, 0, b"control/shutdown\0shutdown\0");
        let mut stream = a.encode();
        stream.extend(b.encode());
        let mut d = Decoder::new();
        for byte in &stream {
            d.feed(core::slice::from_ref(byte)).unwrap();
        }
        assert_eq!(d.pop(), Some(a));
        assert_eq!(d.pop(), Some(b));
        assert_eq!(d.pop(), None);
        assert!(d.at_boundary());
    }

    #[test]
    fn empty_payload_completes_with_its_header() {
        let mut d = Decoder::new();
        d.feed(&msg(11, 3, b"").encode()).unwrap();
        assert_eq!(d.pop(), Some(msg(11, 3, b"")));
    }

    #[test]
    fn oversized_length_stops_the_decoder() {
        let mut d = Decoder::new();
        let bad = Header {
            ty: 2,
            req_id: 9,
            tx_id: 0,
            len: 4097,
        };
        let e = d.feed(&bad.encode()).unwrap_err();
        assert_eq!(
            e,
            ProtocolError::PayloadTooLong {
                ty: 2,
                req_id: 9,
                len: 4097
            }
        );
        assert_eq!(d.feed(&msg(2, 1, b"x").encode()), Err(e));
        assert_eq!(d.pop(), None);
        // Exactly PAYLOAD_MAX is fine.
        let mut d = Decoder::new();
        d.feed(&msg(2, 1, &vec![b'a'; PAYLOAD_MAX]).encode())
            .unwrap();
        assert_eq!(d.pop().unwrap().payload.len(), PAYLOAD_MAX);
    }
}
