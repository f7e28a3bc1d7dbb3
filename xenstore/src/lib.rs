//! `xenstore`: a minimal xenstore client for our PVH kernels.
//!
//! What a stub domain needs from xenstore: its own domid and home path,
//! the PV shutdown protocol (`xl shutdown` writes `poweroff` to
//! `~/control/shutdown`; we acknowledge and power off) and a place to
//! publish counters (`~/data/...`, readable from dom0 with
//! `xenstore-read`).
//!
//! Layers, bottom up; all but the last are pure and tested on the host:
//! - [`wire`]: the ABI of `xs_wire.h` (message types, header, ring page).
//! - [`ring`]: one direction of the page as a byte ring (free-running
//!   indices, corrupt indices refused).
//! - [`frame`]: bytes back into messages, whatever the pieces they arrive
//!   in; an impossible length stops the stream instead of looping.
//! - [`request`]: path checks, request payloads, reply meanings.
//! - [`conn`]: the protocol state (outgoing queue, reply matching, watch
//!   events apart), driven by whoever owns the page.
//! - [`control`]: the `control/shutdown` commands.
//! - `Xenstore` (only for `target_os = "none"`): the page and event
//!   channel from the HVM params, blocking calls with a timeout.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod conn;
pub mod control;
pub mod frame;
pub mod request;
pub mod ring;
pub mod wire;

#[cfg(target_os = "none")]
mod hw;

#[cfg(target_os = "none")]
pub use hw::{Xenstore, DEFAULT_TIMEOUT_NS, SHUTDOWN_TOKEN};

pub use conn::{Connection, Stats};
pub use control::ShutdownRequest;
pub use frame::{Message, ProtocolError};
pub use request::{validate_path, Op, PathError, WatchEvent};
pub use ring::RingError;
pub use wire::Errno;

use core::fmt;

/// Everything a xenstore call can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The daemon refused the request (`XS_ERROR`), e.g. `ENOENT`, `EACCES`.
    Xs(Errno),
    /// The path was refused before sending.
    Path(PathError),
    /// A watch token must be non-empty and free of NULs.
    BadToken,
    /// The request payload would exceed `PAYLOAD_MAX` (bytes given).
    TooLong(usize),
    /// The daemon is not taking requests: the outgoing queue is full.
    Busy,
    /// No reply within the timeout.
    Timeout,
    /// The reply had a type that does not answer the request.
    UnexpectedReply { expected: u32, got: u32 },
    /// A reply that parsed but made no sense (e.g. a domid that is not a
    /// number).
    BadReply,
    /// The response stream cannot be framed any more (permanent).
    Protocol(ProtocolError),
    /// The ring indices are corrupt (permanent).
    Ring(RingError),
    /// The daemon flagged the connection as failed in the page's `error`
    /// field (permanent).
    Server(u32),
    /// The domain has no xenstore (store PFN or event channel param is 0).
    NotAvailable,
    /// A hypercall failed (errno).
    Hypercall(i32),
    /// `connect` was called a second time.
    AlreadyConnected,
}

impl Error {
    /// True for `XS_ERROR ENOENT` (the node does not exist).
    pub fn is_enoent(&self) -> bool {
        *self == Error::Xs(Errno::ENOENT)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Xs(e) => write!(f, "xenstored: {e}"),
            Error::Path(e) => write!(f, "bad path: {e}"),
            Error::BadToken => f.write_str("bad watch token"),
            Error::TooLong(n) => write!(f, "request payload of {n} bytes is too long"),
            Error::Busy => f.write_str("xenstored is not reading requests"),
            Error::Timeout => f.write_str("xenstored did not answer in time"),
            Error::UnexpectedReply { expected, got } => {
                write!(f, "reply of type {got} to a request of type {expected}")
            }
            Error::BadReply => f.write_str("malformed reply"),
            Error::Protocol(e) => write!(f, "{e}"),
            Error::Ring(e) => write!(f, "corrupt ring indices cons={} prod={}", e.cons, e.prod),
            Error::Server(e) => write!(f, "xenstored reports connection error {e}"),
            Error::NotAvailable => f.write_str("no xenstore ring for this domain"),
            Error::Hypercall(e) => write!(f, "hypercall failed: errno {e}"),
            Error::AlreadyConnected => f.write_str("already connected"),
        }
    }
}
