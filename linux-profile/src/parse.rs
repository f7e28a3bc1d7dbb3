//! The profile parser. Grammar in `tools/profile/README.md`.

use core::fmt;

use crate::{
    CurrentTask, CurrentTaskVia, Key, MmStruct, Profile, Release, TaskStruct, MAGIC, VERSION,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The first line is not `vmi-profile N`.
    NotAProfile,
    /// `vmi-profile N` with N other than [`VERSION`].
    WrongVersion,
    UnknownKey,
    DuplicateKey,
    /// The profile ends without this key.
    MissingKey,
    /// A key alone on its line.
    MissingValue,
    /// A second word after the value.
    UnexpectedToken,
    BadNumber,
    /// A word that is not a release or not a `percpu.current_task.via`.
    BadValue,
    /// A number outside the key's range ([`Key::range`]).
    OutOfRange,
    /// A `task_struct` field that ends past `task_struct.size`.
    OutsideTaskStruct,
}

impl ParseErrorKind {
    pub const fn message(self) -> &'static str {
        match self {
            Self::NotAProfile => "not a vmi-profile: the first line must be `vmi-profile 1`",
            Self::WrongVersion => "this parser reads profile version 1 only",
            Self::UnknownKey => "unknown key",
            Self::DuplicateKey => "key given twice",
            Self::MissingKey => "the profile ends without key",
            Self::MissingValue => "key has no value",
            Self::UnexpectedToken => "unexpected word after the value",
            Self::BadNumber => "bad number",
            Self::BadValue => "bad value",
            Self::OutOfRange => "number out of range",
            Self::OutsideTaskStruct => "field ends past task_struct.size",
        }
    }
}

/// A parse error at a 1-based line, naming the key (empty on the version
/// line) and the offending word (empty where there is none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError<'a> {
    pub line: u32,
    pub kind: ParseErrorKind,
    pub key: &'a str,
    pub value: &'a str,
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind.message())?;
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        if !self.value.is_empty() {
            write!(f, " `{}`", self.value)?;
        }
        match (self.kind, Key::from_name(self.key)) {
            (ParseErrorKind::OutOfRange, Some(k)) => {
                if let Some((lo, hi)) = k.range() {
                    write!(f, " (allowed: {lo}..={hi})")?;
                }
            }
            (ParseErrorKind::BadValue, Some(Key::CurrentTaskVia)) => {
                f.write_str(" (current_task or pcpu_hot)")?
            }
            (ParseErrorKind::BadValue, Some(Key::Release)) => {
                f.write_str(" (1-64 printable characters, no `#`)")?
            }
            _ => {}
        }
        Ok(())
    }
}

/// Decimal or `0x` hexadecimal, `_` allowed between digits (as in the
/// policy language).
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() || digits.starts_with('_') {
        return None;
    }
    let mut v: u32 = 0;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        v = v.checked_mul(radix)?.checked_add(c.to_digit(radix)?)?;
    }
    Some(v)
}

fn err<'a>(line: u32, kind: ParseErrorKind, key: &'a str, value: &'a str) -> ParseError<'a> {
    ParseError {
        line,
        kind,
        key,
        value,
    }
}

/// The words of a line, its comment cut off.
fn words(line: &str) -> core::str::SplitAsciiWhitespace<'_> {
    let body = match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    };
    body.split_ascii_whitespace()
}

fn header(line: &str) -> Result<(), ParseError<'_>> {
    let mut w = words(line);
    let not = err(1, ParseErrorKind::NotAProfile, "", "");
    if w.next() != Some(MAGIC) {
        return Err(not);
    }
    let (Some(v), None) = (w.next(), w.next()) else {
        return Err(not);
    };
    match parse_u32(v) {
        Some(VERSION) => Ok(()),
        Some(_) => Err(err(1, ParseErrorKind::WrongVersion, "", v)),
        None => Err(err(1, ParseErrorKind::BadNumber, MAGIC, v)),
    }
}

/// Placeholder values, each overwritten by its key before the profile is
/// returned (every key is required).
const BLANK: Profile = Profile {
    release: Release {
        bytes: [0; crate::MAX_RELEASE_LEN],
        len: 0,
    },
    task_struct: TaskStruct {
        size: 0,
        pid: 0,
        tgid: 0,
        comm: 0,
        comm_len: 0,
        real_parent: 0,
        mm: 0,
        tasks: 0,
        flags: 0,
    },
    mm_struct: MmStruct { pgd: 0 },
    current_task: CurrentTask {
        percpu_offset: 0,
        via: CurrentTaskVia::CurrentTask,
    },
};

fn set<'a>(p: &mut Profile, key: Key, v: &'a str, line: u32) -> Result<(), ParseError<'a>> {
    let bad = |kind| err(line, kind, key.name(), v);
    match key {
        Key::Release => p.release = Release::new(v).ok_or(bad(ParseErrorKind::BadValue))?,
        Key::CurrentTaskVia => {
            p.current_task.via =
                CurrentTaskVia::from_name(v).ok_or(bad(ParseErrorKind::BadValue))?
        }
        _ => {
            let n = parse_u32(v).ok_or(bad(ParseErrorKind::BadNumber))?;
            if let Some((lo, hi)) = key.range() {
                if !(lo..=hi).contains(&n) {
                    return Err(bad(ParseErrorKind::OutOfRange));
                }
            }
            if let Some(slot) = key.number_mut(p) {
                *slot = n;
            }
        }
    }
    Ok(())
}

pub(crate) fn parse(text: &str) -> Result<Profile, ParseError<'_>> {
    let mut lines = text.lines();
    header(lines.next().unwrap_or(""))?;
    let mut p = BLANK;
    // Where each key was given (0: not yet) and its value, for the checks
    // across keys at the end.
    let mut given = [(0u32, ""); Key::ALL.len()];
    let mut last = 1;
    for (i, l) in lines.enumerate() {
        let line = u32::try_from(i + 2).unwrap_or(u32::MAX);
        last = line;
        let mut w = words(l);
        let Some(name) = w.next() else {
            continue;
        };
        let key = Key::from_name(name).ok_or(err(line, ParseErrorKind::UnknownKey, name, ""))?;
        let v = w
            .next()
            .ok_or(err(line, ParseErrorKind::MissingValue, name, ""))?;
        if let Some(extra) = w.next() {
            return Err(err(line, ParseErrorKind::UnexpectedToken, name, extra));
        }
        let slot = &mut given[key as usize];
        if slot.0 != 0 {
            return Err(err(line, ParseErrorKind::DuplicateKey, name, ""));
        }
        *slot = (line, v);
        set(&mut p, key, v, line)?;
    }
    if let Some(key) = Key::ALL.into_iter().find(|&k| given[k as usize].0 == 0) {
        return Err(err(last, ParseErrorKind::MissingKey, key.name(), ""));
    }
    p.check().map_err(|(key, kind)| {
        let (line, v) = given[key as usize];
        err(line, kind, key.name(), v)
    })?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::parse_u32;

    #[test]
    fn numbers() {
        assert_eq!(parse_u32("0"), Some(0));
        assert_eq!(parse_u32("0x1fb80"), Some(129_920));
        assert_eq!(parse_u32("0XfF"), Some(255));
        assert_eq!(parse_u32("9_792"), Some(9792));
        assert_eq!(parse_u32("4294967295"), Some(u32::MAX));
        for bad in [
            "",
            "0x",
            "_1",
            "0x_1",
            "1a",
            "-1",
            "+1",
            "4294967296",
            "0x1g",
        ] {
            assert_eq!(parse_u32(bad), None, "{bad}");
        }
    }
}
