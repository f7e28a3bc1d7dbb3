//! Command-line parsing: whitespace-separated `key=value` tokens and bare
//! `flag` tokens. Pure logic, unit-tested on the host.
//!
//! Rules: tokens are split on ASCII whitespace; the first `=` splits key from
//! value; keys must be non-empty and made of `[A-Za-z0-9_.-]`; [`Cmdline::validate`]
//! refuses a key given twice (one copy would silently win, and someone
//! editing an xl `extra=` line would not know which). Numbers are decimal or `0x` hexadecimal, with an
//! optional `k`/`m`/`g` binary suffix (`64k`).

use core::fmt;

/// One token of the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// `key` without `=`.
    Flag(&'a str),
    /// `key=value` (the value may be empty).
    KeyValue(&'a str, &'a str),
}

impl<'a> Token<'a> {
    /// The key (or flag name) of this token.
    pub fn key(&self) -> &'a str {
        match *self {
            Token::Flag(k) | Token::KeyValue(k, _) => k,
        }
    }
}

/// What is wrong with a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The key is not one the kernel knows.
    Unknown,
    /// The key is empty or has characters outside `[A-Za-z0-9_.-]`.
    BadKey,
    /// The value does not parse (or a value is missing / given to a flag).
    BadValue,
    /// The value parses but is outside the accepted range.
    OutOfRange,
    /// The key appears more than once.
    Duplicate,
    /// The command line is not valid UTF-8 or is too long.
    Encoding,
}

/// A command-line error naming the offending field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdlineError<'a> {
    /// The field (key) that is wrong; `"cmdline"` for encoding problems.
    pub field: &'a str,
    /// The offending value, if any.
    pub value: Option<&'a str>,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for CmdlineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::Unknown => "unknown field",
            ErrorKind::BadKey => "malformed field name",
            ErrorKind::BadValue => "bad value",
            ErrorKind::OutOfRange => "value out of range",
            ErrorKind::Duplicate => "given more than once",
            ErrorKind::Encoding => "not valid UTF-8 or too long",
        };
        write!(f, "field '{}': {}", self.field, what)?;
        if let Some(v) = self.value {
            write!(f, " ('{v}')")?;
        }
        Ok(())
    }
}

/// Longest command line accepted, in bytes.
pub const MAX_CMDLINE: usize = 4096;

/// A parsed view of a command line (borrows the original text).
#[derive(Clone, Copy, Debug)]
pub struct Cmdline<'a> {
    raw: &'a str,
}

impl<'a> Cmdline<'a> {
    /// Wraps a command line.
    pub const fn new(raw: &'a str) -> Self {
        Cmdline { raw }
    }

    /// Wraps raw bytes, refusing non-UTF-8 or over-long input.
    pub fn from_bytes(raw: &'a [u8]) -> Result<Self, CmdlineError<'static>> {
        let err = CmdlineError {
            field: "cmdline",
            value: None,
            kind: ErrorKind::Encoding,
        };
        if raw.len() > MAX_CMDLINE {
            return Err(err);
        }
        core::str::from_utf8(raw).map(Cmdline::new).map_err(|_| err)
    }

    /// The raw text.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Iterates over the tokens in order.
    pub fn tokens(&self) -> impl Iterator<Item = Token<'a>> + 'a {
        self.raw
            .split_ascii_whitespace()
            .map(|t| match t.split_once('=') {
                Some((k, v)) => Token::KeyValue(k, v),
                None => Token::Flag(t),
            })
    }

    /// Checks every key is well formed, one of `known`, and given once.
    pub fn validate(&self, known: &[&str]) -> Result<(), CmdlineError<'a>> {
        for (i, t) in self.tokens().enumerate() {
            let k = t.key();
            let value = match t {
                Token::KeyValue(_, v) => Some(v),
                Token::Flag(_) => None,
            };
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            {
                return Err(CmdlineError {
                    field: if k.is_empty() { "(empty)" } else { k },
                    value,
                    kind: ErrorKind::BadKey,
                });
            }
            if !known.contains(&k) {
                return Err(CmdlineError {
                    field: k,
                    value,
                    kind: ErrorKind::Unknown,
                });
            }
            if self.tokens().take(i).any(|earlier| earlier.key() == k) {
                return Err(CmdlineError {
                    field: k,
                    value,
                    kind: ErrorKind::Duplicate,
                });
            }
        }
        Ok(())
    }

    /// The last token with this key (after [`Cmdline::validate`], the only one).
    pub fn find(&self, key: &str) -> Option<Token<'a>> {
        self.tokens().filter(|t| t.key() == key).last()
    }

    /// The value of `key=value` (last one wins); `None` if absent or a flag.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        match self.find(key) {
            Some(Token::KeyValue(_, v)) => Some(v),
            _ => None,
        }
    }

    /// Whether the bare flag `key` (or `key=1|yes|on|true`) is present.
    /// `key=<anything else>` is an error.
    pub fn flag(&self, key: &'a str) -> Result<bool, CmdlineError<'a>> {
        match self.find(key) {
            None => Ok(false),
            Some(Token::Flag(_)) => Ok(true),
            Some(Token::KeyValue(_, v)) => match v {
                "1" | "yes" | "on" | "true" => Ok(true),
                "0" | "no" | "off" | "false" => Ok(false),
                _ => Err(CmdlineError {
                    field: key,
                    value: Some(v),
                    kind: ErrorKind::BadValue,
                }),
            },
        }
    }

    /// The numeric value of `key`, checked against `min..=max`; `default` if
    /// the key is absent. A bare flag (no value) is an error.
    pub fn number(
        &self,
        key: &'a str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, CmdlineError<'a>> {
        let v = match self.find(key) {
            None => return Ok(default),
            Some(Token::Flag(_)) => {
                return Err(CmdlineError {
                    field: key,
                    value: None,
                    kind: ErrorKind::BadValue,
                })
            }
            Some(Token::KeyValue(_, v)) => v,
        };
        let n = parse_number(v).ok_or(CmdlineError {
            field: key,
            value: Some(v),
            kind: ErrorKind::BadValue,
        })?;
        if n < min || n > max {
            return Err(CmdlineError {
                field: key,
                value: Some(v),
                kind: ErrorKind::OutOfRange,
            });
        }
        Ok(n)
    }

    /// The value of `key` if it is one of `choices`; `default` if absent.
    pub fn choice(
        &self,
        key: &'a str,
        default: &'a str,
        choices: &[&str],
    ) -> Result<&'a str, CmdlineError<'a>> {
        match self.find(key) {
            None => Ok(default),
            Some(Token::KeyValue(_, v)) if choices.contains(&v) => Ok(v),
            Some(Token::KeyValue(_, v)) => Err(CmdlineError {
                field: key,
                value: Some(v),
                kind: ErrorKind::BadValue,
            }),
            Some(Token::Flag(_)) => Err(CmdlineError {
                field: key,
                value: None,
                kind: ErrorKind::BadValue,
            }),
        }
    }
}

/// Parses `123`, `0x7b`, `64k`, `2m`, `1g` (binary suffixes). `None` on any
/// garbage or overflow.
pub fn parse_number(s: &str) -> Option<u64> {
    let (body, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        if hex.is_empty() || hex.starts_with('+') {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()?
    } else {
        if body.is_empty() || body.starts_with('+') {
            return None;
        }
        body.parse::<u64>().ok()?
    };
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_lookup() {
        let c = Cmdline::new("  selftest ipi_rounds=10 name= t=0x10  t=5 ");
        let toks: Vec<_> = c.tokens().collect();
        assert_eq!(toks.len(), 5);
        assert_eq!(toks[0], Token::Flag("selftest"));
        assert_eq!(c.get("ipi_rounds"), Some("10"));
        assert_eq!(c.get("name"), Some(""));
        assert_eq!(c.get("selftest"), None);
        assert_eq!(c.number("t", 0, 0, 100), Ok(5), "last one wins");
        assert!(c.flag("selftest").unwrap());
        assert!(!c.flag("absent").unwrap());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0"), Some(0));
        assert_eq!(parse_number("0x1F"), Some(31));
        assert_eq!(parse_number("64k"), Some(65536));
        assert_eq!(parse_number("2M"), Some(2 << 20));
        assert_eq!(parse_number("1g"), Some(1 << 30));
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("k"), None);
        assert_eq!(parse_number("0x"), None);
        assert_eq!(parse_number("-1"), None);
        assert_eq!(parse_number("+1"), None);
        assert_eq!(parse_number("12a"), None);
        assert_eq!(parse_number("99999999999999999999"), None);
        assert_eq!(parse_number("17179869184g"), None, "overflow");
    }

    #[test]
    fn errors_name_the_field() {
        let c = Cmdline::new("ipi_rounds=ten timer_ms=0 bogus=1");
        let e = c.number("ipi_rounds", 1, 1, 100).unwrap_err();
        assert_eq!(e.field, "ipi_rounds");
        assert_eq!(e.kind, ErrorKind::BadValue);
        let e = c.number("timer_ms", 1, 1, 100).unwrap_err();
        assert_eq!(e.kind, ErrorKind::OutOfRange);
        let e = c.validate(&["ipi_rounds", "timer_ms"]).unwrap_err();
        assert_eq!((e.field, e.kind), ("bogus", ErrorKind::Unknown));
        let s = format!("{e}");
        assert_eq!(s, "field 'bogus': unknown field ('1')");
        let e = Cmdline::new("mode=spin ring_frames=17 mode=block")
            .validate(&["mode", "ring_frames"])
            .unwrap_err();
        assert_eq!((e.field, e.kind), ("mode", ErrorKind::Duplicate));
        assert_eq!(
            format!("{e}"),
            "field 'mode': given more than once ('block')"
        );
        let e = Cmdline::new("selftest t=1 selftest").validate(&["selftest", "t"]);
        assert_eq!(e.unwrap_err().kind, ErrorKind::Duplicate, "flags too");
        let e = Cmdline::new("=5").validate(&[]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadKey);
        let e = Cmdline::new("a$b").validate(&["a$b"]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadKey);
        let e = Cmdline::new("x").number("x", 1, 0, 9).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadValue);
        let e = Cmdline::new("x=maybe").flag("x").unwrap_err();
        assert_eq!(e.field, "x");
    }

    #[test]
    fn choices_and_encoding() {
        let c = Cmdline::new("crash=panic");
        assert_eq!(c.choice("crash", "none", &["panic", "fault"]), Ok("panic"));
        assert_eq!(c.choice("other", "none", &["a"]), Ok("none"));
        assert!(Cmdline::new("crash=x")
            .choice("crash", "n", &["a"])
            .is_err());
        assert!(Cmdline::from_bytes(b"ok=1").is_ok());
        assert_eq!(
            Cmdline::from_bytes(&[0xff, 0xfe]).unwrap_err().kind,
            ErrorKind::Encoding
        );
        assert!(Cmdline::from_bytes(&[b'a'; MAX_CMDLINE + 1]).is_err());
        assert_eq!(Cmdline::new("").tokens().count(), 0);
        assert!(Cmdline::new("").validate(&[]).is_ok());
    }
}
