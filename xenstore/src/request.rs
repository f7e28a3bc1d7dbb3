//! Requests (path checks, payload building) and the meaning of replies.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::frame::Message;
use crate::wire::{Errno, Header, MsgType, ABS_PATH_MAX, PAYLOAD_MAX, REL_PATH_MAX};
use crate::Error;

/// Why a path was refused before it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    Empty,
    /// Longer than `ABS_PATH_MAX` (absolute) or `REL_PATH_MAX` (relative).
    TooLong(usize),
    /// Outside `[A-Za-z0-9-/_@]` (xenstore.txt); the byte is given.
    BadChar(u8),
    DoubleSlash,
    /// A trailing `/` is only allowed for the root.
    TrailingSlash,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => f.write_str("empty path"),
            PathError::TooLong(n) => write!(f, "path of {n} bytes is too long"),
            PathError::BadChar(b) => write!(f, "byte {b:#04x} not allowed in a path"),
            PathError::DoubleSlash => f.write_str("'//' in path"),
            PathError::TrailingSlash => f.write_str("trailing '/' in path"),
        }
    }
}

/// Checks a path the way xenstored will (docs/misc/xenstore.txt): ASCII
/// alphanumerics and `-/_@`, no `//`, no trailing `/` except the root, not
/// empty, and within the length limit. A path not starting with `/` is
/// relative to the domain's home (`/local/domain/<id>`); `@` paths are the
/// special watch paths (`@releaseDomain`).
pub fn validate_path(path: &str) -> Result<(), PathError> {
    let b = path.as_bytes();
    if b.is_empty() {
        return Err(PathError::Empty);
    }
    let max = if b[0] == b'/' {
        ABS_PATH_MAX
    } else {
        REL_PATH_MAX
    };
    if b.len() > max {
        return Err(PathError::TooLong(b.len()));
    }
    if let Some(&c) = b
        .iter()
        .find(|&&c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@')))
    {
        return Err(PathError::BadChar(c));
    }
    if b.windows(2).any(|w| w == b"//") {
        return Err(PathError::DoubleSlash);
    }
    if b.len() > 1 && b[b.len() - 1] == b'/' {
        return Err(PathError::TrailingSlash);
    }
    Ok(())
}

/// One request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Read(&'a str),
    Write(&'a str, &'a [u8]),
    Mkdir(&'a str),
    Rm(&'a str),
    Directory(&'a str),
    Watch { path: &'a str, token: &'a str },
    Unwatch { path: &'a str, token: &'a str },
    GetDomainPath(u32),
}

impl Op<'_> {
    /// The message type of the request (and of its successful reply).
    pub fn msg_type(&self) -> MsgType {
        match self {
            Op::Read(_) => MsgType::Read,
            Op::Write(..) => MsgType::Write,
            Op::Mkdir(_) => MsgType::Mkdir,
            Op::Rm(_) => MsgType::Rm,
            Op::Directory(_) => MsgType::Directory,
            Op::Watch { .. } => MsgType::Watch,
            Op::Unwatch { .. } => MsgType::Unwatch,
            Op::GetDomainPath(_) => MsgType::GetDomainPath,
        }
    }

    /// The payload: NUL-terminated strings, except a written value, which
    /// is sent as is (its length is in the header).
    pub fn payload(&self) -> Result<Vec<u8>, Error> {
        let mut p = Vec::new();
        let mut string = |s: &str| {
            p.extend_from_slice(s.as_bytes());
            p.push(0);
        };
        match *self {
            Op::Read(path) | Op::Mkdir(path) | Op::Rm(path) | Op::Directory(path) => {
                validate_path(path).map_err(Error::Path)?;
                string(path);
            }
            Op::Write(path, value) => {
                validate_path(path).map_err(Error::Path)?;
                string(path);
                p.extend_from_slice(value);
            }
            Op::Watch { path, token } | Op::Unwatch { path, token } => {
                validate_path(path).map_err(Error::Path)?;
                if token.is_empty() || token.bytes().any(|c| c == 0) {
                    return Err(Error::BadToken);
                }
                string(path);
                string(token);
            }
            Op::GetDomainPath(domid) => string(&domid.to_string()),
        }
        if p.len() > PAYLOAD_MAX {
            return Err(Error::TooLong(p.len()));
        }
        Ok(p)
    }

    /// The whole message (header + payload) with `req_id`, outside any
    /// transaction.
    pub fn encode(&self, req_id: u32) -> Result<Vec<u8>, Error> {
        let payload = self.payload()?;
        let h = Header {
            ty: self.msg_type() as u32,
            req_id,
            tx_id: 0,
            len: payload.len() as u32,
        };
        let mut m = Vec::with_capacity(Header::SIZE + payload.len());
        m.extend_from_slice(&h.encode());
        m.extend_from_slice(&payload);
        Ok(m)
    }
}

/// The payload of a successful reply of type `expected`, or the error the
/// daemon sent, or [`Error::UnexpectedReply`].
pub fn expect_reply(reply: Message, expected: MsgType) -> Result<Vec<u8>, Error> {
    match reply.header.msg_type() {
        Some(MsgType::Error) => Err(Error::Xs(Errno::from_payload(&reply.payload))),
        Some(t) if t == expected => Ok(reply.payload),
        _ => Err(Error::UnexpectedReply {
            expected: expected as u32,
            got: reply.header.ty,
        }),
    }
}

/// Strings of a `<s>|*` payload (DIRECTORY): split at NULs, the final
/// terminator optional, invalid UTF-8 replaced.
pub fn split_strings(p: &[u8]) -> Vec<String> {
    let p = p.strip_suffix(&[0]).unwrap_or(p);
    if p.is_empty() {
        return Vec::new();
    }
    p.split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// A value as text: without a trailing NUL (some writers add one), invalid
/// UTF-8 replaced.
pub fn value_string(v: &[u8]) -> String {
    String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)).into_owned()
}

/// A fired watch: the path that changed and the token given to `watch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

impl WatchEvent {
    /// Parses an `XS_WATCH_EVENT` payload: `<path>|<token>|`. Anything
    /// else is `None`.
    pub fn parse(p: &[u8]) -> Option<WatchEvent> {
        let mut it = p.split(|&b| b == 0);
        let path = it.next()?;
        let token = it.next()?;
        // Both strings must have been NUL-terminated: the split leaves a
        // remainder (possibly empty) after the token's terminator.
        it.next()?;
        if path.is_empty() {
            return None;
        }
        Some(WatchEvent {
            path: String::from_utf8_lossy(path).into_owned(),
            token: String::from_utf8_lossy(token).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn paths() {
        for ok in [
            "/",
            "/local/domain/3",
            "data/vmi/events",
            "control/shutdown",
            "@releaseDomain",
            "a-b_c@d",
        ] {
            assert_eq!(validate_path(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_path(""), Err(PathError::Empty));
        assert_eq!(validate_path("a//b"), Err(PathError::DoubleSlash));
        assert_eq!(validate_path("/a/"), Err(PathError::TrailingSlash));
        assert_eq!(validate_path("a b"), Err(PathError::BadChar(b' ')));
        assert_eq!(validate_path("a\0b"), Err(PathError::BadChar(0)));
        assert_eq!(validate_path("a.b"), Err(PathError::BadChar(b'.')));
        let long_rel = "a".repeat(REL_PATH_MAX + 1);
        assert_eq!(validate_path(&long_rel), Err(PathError::TooLong(2049)));
        let long_abs = alloc::format!("/{}", "a".repeat(ABS_PATH_MAX - 1));
        assert_eq!(validate_path(&long_abs), Ok(()));
    }

    #[test]
    fn payloads() {
        assert_eq!(Op::Read("domid").payload().unwrap(), b"domid\0");
        assert_eq!(
            Op::Write("data/x", b"12").payload().unwrap(),
            b"data/x\x0012".to_vec()
        );
        assert_eq!(Op::Write("data/x", b"").payload().unwrap(), b"data/x\0");
        assert_eq!(
            Op::Watch {
                path: "control/shutdown",
                token: "t1"
            }
            .payload()
            .unwrap(),
            b"control/shutdown\0t1\0"
        );
        assert_eq!(Op::GetDomainPath(7).payload().unwrap(), b"7\0");
        assert_eq!(
            Op::Watch {
                path: "a",
                token: ""
            }
            .payload(),
            Err(Error::BadToken)
        );
        assert_eq!(
            Op::Read("a//b").payload(),
            Err(Error::Path(PathError::DoubleSlash))
        );
        let big = vec![b'v'; PAYLOAD_MAX];
        assert_eq!(
            Op::Write("data/x", &big).payload(),
            Err(Error::TooLong(PAYLOAD_MAX + 7))
        );
        let fits = vec![b'v'; PAYLOAD_MAX - 7];
        assert_eq!(
            Op::Write("data/x", &fits).payload().unwrap().len(),
            PAYLOAD_MAX
        );
    }

    #[test]
    fn encode_has_header() {
        let m = Op::Rm("data/x").encode(42).unwrap();
        let h = Header::decode(m[..16].try_into().unwrap());
        assert_eq!(
            h,
            Header {
                ty: 13,
                req_id: 42,
                tx_id: 0,
                len: 7
            }
        );
        assert_eq!(&m[16..], b"data/x\0");
    }

    fn reply(ty: u32, p: &[u8]) -> Message {
        Message {
            header: Header {
                ty,
                req_id: 1,
                tx_id: 0,
                len: p.len() as u32,
            },
            payload: p.to_vec(),
        }
    }

    #[test]
    fn replies() {
        assert_eq!(
            expect_reply(reply(2, b"v"), MsgType::Read),
            Ok(b"v".to_vec())
        );
        assert_eq!(
            expect_reply(reply(16, b"ENOENT\0"), MsgType::Read),
            Err(Error::Xs(Errno::ENOENT))
        );
        assert_eq!(
            expect_reply(reply(11, b"OK\0"), MsgType::Read),
            Err(Error::UnexpectedReply {
                expected: 2,
                got: 11
            })
        );
        assert_eq!(
            expect_reply(reply(0xffff, b""), MsgType::Read),
            Err(Error::UnexpectedReply {
                expected: 2,
                got: 0xffff
            })
        );
    }

    #[test]
    fn strings_and_events() {
        assert_eq!(split_strings(b""), Vec::<String>::new());
        assert_eq!(split_strings(b"a\0bc\0"), ["a", "bc"]);
        assert_eq!(split_strings(b"a\0bc"), ["a", "bc"]);
        assert_eq!(value_string(b"3\0"), "3");
        assert_eq!(
            WatchEvent::parse(b"control/shutdown\0tok\0"),
            Some(WatchEvent {
                path: "control/shutdown".into(),
                token: "tok".into()
            })
        );
        assert_eq!(WatchEvent::parse(b"control/shutdown\0tok"), None);
        assert_eq!(WatchEvent::parse(b"nopath"), None);
        assert_eq!(WatchEvent::parse(b"\0tok\0"), None);
        assert_eq!(WatchEvent::parse(b""), None);
    }
}
