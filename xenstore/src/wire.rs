//! The xenstore wire format (`xen/include/public/io/xs_wire.h`): message
//! types, the 16-byte message header, the shared ring page and the errno
//! names carried by `XS_ERROR`.

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU8};

/// Bytes in each of the two rings of the shared page.
pub const RING_SIZE: u32 = 1024;

/// Largest payload either side may send. A bigger `len` from the daemon
/// means the stream is corrupt; a bigger request would get our connection
/// killed by xenstored.
pub const PAYLOAD_MAX: usize = 4096;

/// Longest absolute path xenstored accepts.
pub const ABS_PATH_MAX: usize = 3072;

/// Longest relative path (it is prefixed with `/local/domain/<id>/`).
pub const REL_PATH_MAX: usize = 2048;

/// `server_features` bit: the ring can be reset (`connection` field).
pub const SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `server_features` bit: the daemon reports fatal errors in `error`.
pub const SERVER_FEATURE_ERROR: u32 = 2;

/// `connection` value of a ring in use.
pub const CONNECTED: u32 = 0;

/// Message types (`enum xsd_sockmsg_type`). Only the ones a guest client
/// uses or may receive are named; the numbers are the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MsgType {
    Control = 0,
    Directory = 1,
    Read = 2,
    GetPerms = 3,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    GetDomainPath = 10,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    WatchEvent = 15,
    Error = 16,
    ResetWatches = 21,
    DirectoryPart = 22,
}

impl MsgType {
    /// The type for a raw header value, if it is one we know.
    pub fn from_u32(v: u32) -> Option<MsgType> {
        use MsgType::*;
        Some(match v {
            0 => Control,
            1 => Directory,
            2 => Read,
            3 => GetPerms,
            4 => Watch,
            5 => Unwatch,
            6 => TransactionStart,
            7 => TransactionEnd,
            10 => GetDomainPath,
            11 => Write,
            12 => Mkdir,
            13 => Rm,
            14 => SetPerms,
            15 => WatchEvent,
            16 => Error,
            21 => ResetWatches,
            22 => DirectoryPart,
            _ => return None,
        })
    }
}

/// `struct xsd_sockmsg`: the header in front of every message, both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Raw message type (kept raw: the daemon may send types we do not know).
    pub ty: u32,
    /// Echoed by the daemon in its reply; 0 in watch events.
    pub req_id: u32,
    /// Transaction id, 0 outside transactions.
    pub tx_id: u32,
    /// Payload bytes that follow the header.
    pub len: u32,
}

impl Header {
    /// Encoded size.
    pub const SIZE: usize = 16;

    /// Native-endian encoding (both ends run on the same machine).
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..4].copy_from_slice(&self.ty.to_ne_bytes());
        b[4..8].copy_from_slice(&self.req_id.to_ne_bytes());
        b[8..12].copy_from_slice(&self.tx_id.to_ne_bytes());
        b[12..16].copy_from_slice(&self.len.to_ne_bytes());
        b
    }

    /// Decodes a header (no validation: see [`crate::frame::Decoder`]).
    pub fn decode(b: &[u8; Self::SIZE]) -> Header {
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Header {
            ty: word(0),
            req_id: word(4),
            tx_id: word(8),
            len: word(12),
        }
    }

    /// The known message type, if any.
    pub fn msg_type(&self) -> Option<MsgType> {
        MsgType::from_u32(self.ty)
    }
}

/// `struct xenstore_domain_interface`, the shared page. Every field is
/// written by the other domain at any time, so every field is an atomic:
/// the ring code never forms a plain reference to shared bytes.
#[repr(C)]
pub struct Interface {
    /// Requests to the daemon (we produce).
    pub req: [AtomicU8; RING_SIZE as usize],
    /// Replies and watch events (the daemon produces).
    pub rsp: [AtomicU8; RING_SIZE as usize],
    pub req_cons: AtomicU32,
    pub req_prod: AtomicU32,
    pub rsp_cons: AtomicU32,
    pub rsp_prod: AtomicU32,
    pub server_features: AtomicU32,
    pub connection: AtomicU32,
    pub error: AtomicU32,
}

impl Interface {
    /// A zeroed page image, for tests and simulators.
    pub fn new() -> Interface {
        Interface {
            req: [const { AtomicU8::new(0) }; RING_SIZE as usize],
            rsp: [const { AtomicU8::new(0) }; RING_SIZE as usize],
            req_cons: AtomicU32::new(0),
            req_prod: AtomicU32::new(0),
            rsp_cons: AtomicU32::new(0),
            rsp_prod: AtomicU32::new(0),
            server_features: AtomicU32::new(0),
            connection: AtomicU32::new(0),
            error: AtomicU32::new(0),
        }
    }
}

impl Default for Interface {
    fn default() -> Self {
        Self::new()
    }
}

/// An errno value as xenstored names it in `XS_ERROR` replies (the list of
/// `xs_wire.h`; Linux numbers). Unknown names map to [`Errno::UNKNOWN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const UNKNOWN: Errno = Errno(0);
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const EIO: Errno = Errno(5);
    pub const E2BIG: Errno = Errno(7);
    pub const EAGAIN: Errno = Errno(11);
    pub const ENOMEM: Errno = Errno(12);
    pub const EACCES: Errno = Errno(13);
    pub const EBUSY: Errno = Errno(16);
    pub const EEXIST: Errno = Errno(17);
    pub const EISDIR: Errno = Errno(21);
    pub const EINVAL: Errno = Errno(22);
    pub const ENOSPC: Errno = Errno(28);
    pub const EROFS: Errno = Errno(30);
    pub const ENOSYS: Errno = Errno(38);
    pub const ENOTEMPTY: Errno = Errno(39);
    pub const EISCONN: Errno = Errno(106);

    const NAMES: [(Errno, &'static str); 16] = [
        (Errno::EINVAL, "EINVAL"),
        (Errno::EACCES, "EACCES"),
        (Errno::EEXIST, "EEXIST"),
        (Errno::EISDIR, "EISDIR"),
        (Errno::ENOENT, "ENOENT"),
        (Errno::ENOMEM, "ENOMEM"),
        (Errno::ENOSPC, "ENOSPC"),
        (Errno::EIO, "EIO"),
        (Errno::ENOTEMPTY, "ENOTEMPTY"),
        (Errno::ENOSYS, "ENOSYS"),
        (Errno::EROFS, "EROFS"),
        (Errno::EBUSY, "EBUSY"),
        (Errno::EAGAIN, "EAGAIN"),
        (Errno::EISCONN, "EISCONN"),
        (Errno::E2BIG, "E2BIG"),
        (Errno::EPERM, "EPERM"),
    ];

    /// Parses an `XS_ERROR` payload (`"ENOENT\0"`; the NUL is optional).
    pub fn from_payload(p: &[u8]) -> Errno {
        let name = p.split(|&b| b == 0).next().unwrap_or(&[]);
        Self::NAMES
            .iter()
            .find(|(_, n)| n.as_bytes() == name)
            .map_or(Errno::UNKNOWN, |(e, _)| *e)
    }

    /// The symbolic name (`"ENOENT"`), or `"E?"` for an unknown one.
    pub fn name(&self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(e, _)| e == self)
            .map_or("E?", |(_, n)| n)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn interface_layout_matches_xs_wire_h() {
        assert_eq!(offset_of!(Interface, req), 0);
        assert_eq!(offset_of!(Interface, rsp), 1024);
        assert_eq!(offset_of!(Interface, req_cons), 2048);
        assert_eq!(offset_of!(Interface, req_prod), 2052);
        assert_eq!(offset_of!(Interface, rsp_cons), 2056);
        assert_eq!(offset_of!(Interface, rsp_prod), 2060);
        assert_eq!(offset_of!(Interface, server_features), 2064);
        assert_eq!(offset_of!(Interface, connection), 2068);
        assert_eq!(offset_of!(Interface, error), 2072);
        assert_eq!(size_of::<Interface>(), 2076);
        assert!(size_of::<Interface>() <= 4096);
    }

    #[test]
    fn message_numbers_match_the_enum_in_xs_wire_h() {
        assert_eq!(MsgType::Directory as u32, 1);
        assert_eq!(MsgType::GetDomainPath as u32, 10);
        assert_eq!(MsgType::Write as u32, 11);
        assert_eq!(MsgType::WatchEvent as u32, 15);
        assert_eq!(MsgType::Error as u32, 16);
        // XS_RESET_WATCHES = XS_SET_TARGET (19) + 2.
        assert_eq!(MsgType::ResetWatches as u32, 21);
        for v in 0..64 {
            if let Some(t) = MsgType::from_u32(v) {
                assert_eq!(t as u32, v);
            }
        }
    }

    #[test]
    fn header_round_trip() {
        let h = Header {
            ty: 2,
            req_id: 0xdead_beef,
            tx_id: 7,
            len: 4096,
        };
        assert_eq!(Header::decode(&h.encode()), h);
    }

    #[test]
    fn errno_names() {
        assert_eq!(Errno::from_payload(b"ENOENT\0"), Errno::ENOENT);
        assert_eq!(Errno::from_payload(b"EACCES"), Errno::EACCES);
        assert_eq!(Errno::from_payload(b"EWHAT\0"), Errno::UNKNOWN);
        assert_eq!(Errno::from_payload(b""), Errno::UNKNOWN);
        assert_eq!(Errno::ENOENT.name(), "ENOENT");
        assert_eq!(Errno(999).name(), "E?");
    }
}
