//! Policy text parser. Grammar in vmevent/POLICY.md.

use super::{
    Action, Comm, EventKind, LogLevel, Match, Peek, PeekReg, Policy, Rule, MAX_MSRS_PER_RULE,
    MAX_PEEK,
};
use crate::abi::{VM_EVENT_DESC_GDTR, VM_EVENT_DESC_IDTR, VM_EVENT_DESC_LDTR, VM_EVENT_DESC_TR};
use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    UnknownKind,
    UnknownAction,
    MissingAction,
    SecondAction,
    /// `key=value` key unknown, or not valid for this event kind.
    BadMatch,
    /// Action not enforceable for this kind (e.g. `deny` on `cpuid`).
    ActionNotForKind,
    BadNumber,
    BadLogLevel,
    BadValue,
    DuplicateKey,
    /// An `msr` rule must list its MSRs (the stub enables them one by one).
    MsrRuleWithoutMsr,
    TooManyMsrs,
    /// Xen cannot monitor writes to this MSR (outside its bitmap ranges).
    MsrNotMonitorable,
    /// `spoof` needs at least one of eax/ebx/ecx/edx.
    SpoofWithoutValues,
    /// CPUID leaves 0x40000000-0x400000ff are Xen's; it answers them before
    /// the monitor sees them.
    XenCpuidLeaf,
    TooManyRules,
    /// A bare word after the action, or `key=value` where none is allowed.
    UnexpectedToken,
    /// `peek=` is not `REG:LEN` with a general register or rip and 1..=64.
    BadPeek,
}

impl ParseErrorKind {
    pub const fn message(self) -> &'static str {
        match self {
            Self::UnknownKind => "unknown event kind",
            Self::UnknownAction => "unknown action",
            Self::MissingAction => "rule has no action",
            Self::SecondAction => "rule has two actions",
            Self::BadMatch => "match key not valid for this event kind",
            Self::ActionNotForKind => "action cannot be enforced on this event kind",
            Self::BadNumber => "bad number",
            Self::BadLogLevel => "bad log level (off, debug, info, warn, alert)",
            Self::BadValue => "bad value",
            Self::BadPeek => "bad peek (REG:LEN, REG one of rax..r15 or rip, LEN 1..64)",
            Self::DuplicateKey => "key given twice",
            Self::MsrRuleWithoutMsr => "msr rule must name its MSRs (msr=...)",
            Self::TooManyMsrs => "too many MSRs in one rule",
            Self::MsrNotMonitorable => "Xen cannot monitor writes to this MSR",
            Self::SpoofWithoutValues => "spoof needs eax=, ebx=, ecx= or edx=",
            Self::XenCpuidLeaf => {
                "CPUID leaves 0x40000000-0x400000ff are answered by Xen before the monitor"
            }
            Self::TooManyRules => "too many rules",
            Self::UnexpectedToken => "unexpected token",
        }
    }
}

/// A parse error at a 1-based line, with the offending token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError<'a> {
    pub line: u32,
    pub kind: ParseErrorKind,
    pub token: &'a str,
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind.message())?;
        if !self.token.is_empty() {
            write!(f, ": `{}`", self.token)?;
        }
        Ok(())
    }
}

/// Decimal or `0x` hexadecimal, `_` allowed as a separator.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() || digits.starts_with('_') {
        return None;
    }
    let mut v: u64 = 0;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(radix)? as u64;
        v = v.checked_mul(radix as u64)?.checked_add(d)?;
    }
    Some(v)
}

fn parse_u32(s: &str) -> Option<u32> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

fn err(line: u32, kind: ParseErrorKind, token: &str) -> ParseError<'_> {
    ParseError { line, kind, token }
}

fn action_allowed(kind: EventKind, a: &Action) -> bool {
    match a {
        Action::Allow | Action::Log => true,
        Action::Deny => kind.is_cr() || kind == EventKind::Msr,
        Action::Spoof(_) => kind == EventKind::Cpuid,
        Action::Swallow | Action::Reinject => matches!(kind, EventKind::Int3 | EventKind::Debug),
    }
}

fn parse_action(word: &str) -> Option<Action> {
    Some(match word {
        "allow" => Action::Allow,
        "deny" => Action::Deny,
        "log" => Action::Log,
        "spoof" => Action::Spoof([None; 4]),
        "swallow" => Action::Swallow,
        "reinject" => Action::Reinject,
        _ => return None,
    })
}

/// Apply one `key=value` condition to `m`.
fn parse_match<'a>(
    line: u32,
    kind: EventKind,
    key: &'a str,
    val: &'a str,
    tok: &'a str,
    m: &mut Match,
) -> Result<(), ParseError<'a>> {
    use EventKind as K;
    let num64 = |s: &'a str| parse_u64(s).ok_or(err(line, ParseErrorKind::BadNumber, s));
    let num32 = |s: &'a str| parse_u32(s).ok_or(err(line, ParseErrorKind::BadNumber, s));
    let dup = err(line, ParseErrorKind::DuplicateKey, tok);
    let cr = kind.is_cr();
    if key == "comm" {
        let c = Comm::new(val).ok_or(err(line, ParseErrorKind::BadValue, val))?;
        if m.comm.replace(c).is_some() {
            return Err(dup);
        }
        return Ok(());
    }
    match key {
        "vcpu" => {
            if m.vcpu.replace(num32(val)?).is_some() {
                return Err(dup);
            }
        }
        "set" if cr => {
            if m.set.replace(num64(val)?).is_some() {
                return Err(dup);
            }
        }
        "clear" if cr => {
            if m.clear.replace(num64(val)?).is_some() {
                return Err(dup);
            }
        }
        "new" if cr || kind == K::Msr => {
            let (v, mask) = match val.split_once('/') {
                Some((v, mask)) => (num64(v)?, num64(mask)?),
                None => (num64(val)?, u64::MAX),
            };
            if m.new.replace((v & mask, mask)).is_some() {
                return Err(dup);
            }
        }
        "msr" if kind == K::Msr => {
            if m.nr_msrs != 0 {
                return Err(dup);
            }
            for part in val.split(',') {
                let msr = num32(part)?;
                if !super::msr_monitorable(msr) {
                    return Err(err(line, ParseErrorKind::MsrNotMonitorable, part));
                }
                if m.nr_msrs as usize == MAX_MSRS_PER_RULE {
                    return Err(err(line, ParseErrorKind::TooManyMsrs, val));
                }
                m.msrs[m.nr_msrs as usize] = msr;
                m.nr_msrs += 1;
            }
        }
        "leaf" if kind == K::Cpuid => {
            if m.leaf.replace(num32(val)?).is_some() {
                return Err(dup);
            }
        }
        "subleaf" if kind == K::Cpuid => {
            if m.subleaf.replace(num32(val)?).is_some() {
                return Err(dup);
            }
        }
        "rip" if matches!(kind, K::Int3 | K::Debug | K::Cpuid | K::GuestRequest) => {
            if m.rip.replace(num64(val)?).is_some() {
                return Err(dup);
            }
        }
        "table" if kind == K::Desc => {
            let d = match val {
                "idtr" => VM_EVENT_DESC_IDTR,
                "gdtr" => VM_EVENT_DESC_GDTR,
                "ldtr" => VM_EVENT_DESC_LDTR,
                "tr" => VM_EVENT_DESC_TR,
                _ => return Err(err(line, ParseErrorKind::BadValue, val)),
            };
            if m.desc.replace(d).is_some() {
                return Err(dup);
            }
        }
        "access" if kind == K::Desc => {
            let w = match val {
                "read" => false,
                "write" => true,
                _ => return Err(err(line, ParseErrorKind::BadValue, val)),
            };
            if m.is_write.replace(w).is_some() {
                return Err(dup);
            }
        }
        _ => return Err(err(line, ParseErrorKind::BadMatch, tok)),
    }
    Ok(())
}

fn parse_line(line: u32, text: &str) -> Result<Option<Rule>, ParseError<'_>> {
    let text = match text.find('#') {
        Some(i) => &text[..i],
        None => text,
    };
    let mut toks = text.split_ascii_whitespace();
    let Some(kind_tok) = toks.next() else {
        return Ok(None);
    };
    let kind =
        EventKind::from_name(kind_tok).ok_or(err(line, ParseErrorKind::UnknownKind, kind_tok))?;
    let mut m = Match::default();
    let mut action: Option<Action> = None;
    let mut level: Option<LogLevel> = None;
    let mut peek: Option<Peek> = None;

    for tok in toks {
        if let Some((key, val)) = tok.split_once('=') {
            if key == "log" {
                let l =
                    LogLevel::from_name(val).ok_or(err(line, ParseErrorKind::BadLogLevel, val))?;
                if level.replace(l).is_some() {
                    return Err(err(line, ParseErrorKind::DuplicateKey, tok));
                }
                continue;
            }
            if key == "peek" {
                let p = val
                    .split_once(':')
                    .and_then(|(r, n)| {
                        let len = parse_u32(n).filter(|n| (1..=u32::from(MAX_PEEK)).contains(n))?;
                        Some(Peek {
                            reg: PeekReg::from_name(r)?,
                            len: len as u8,
                        })
                    })
                    .ok_or(err(line, ParseErrorKind::BadPeek, val))?;
                if peek.replace(p).is_some() {
                    return Err(err(line, ParseErrorKind::DuplicateKey, tok));
                }
                continue;
            }
            match &mut action {
                None => parse_match(line, kind, key, val, tok, &mut m)?,
                Some(Action::Spoof(vals)) => {
                    let i = match key {
                        "eax" => 0,
                        "ebx" => 1,
                        "ecx" => 2,
                        "edx" => 3,
                        _ => return Err(err(line, ParseErrorKind::UnexpectedToken, tok)),
                    };
                    let v = parse_u32(val).ok_or(err(line, ParseErrorKind::BadNumber, val))?;
                    if vals[i].replace(v).is_some() {
                        return Err(err(line, ParseErrorKind::DuplicateKey, tok));
                    }
                }
                Some(_) => return Err(err(line, ParseErrorKind::UnexpectedToken, tok)),
            }
        } else {
            if action.is_some() {
                let k = if parse_action(tok).is_some() {
                    ParseErrorKind::SecondAction
                } else {
                    ParseErrorKind::UnexpectedToken
                };
                return Err(err(line, k, tok));
            }
            let a = parse_action(tok).ok_or(err(line, ParseErrorKind::UnknownAction, tok))?;
            if !action_allowed(kind, &a) {
                return Err(err(line, ParseErrorKind::ActionNotForKind, tok));
            }
            action = Some(a);
        }
    }

    let action = action.ok_or(err(line, ParseErrorKind::MissingAction, kind_tok))?;
    if kind == EventKind::Msr && m.nr_msrs == 0 {
        return Err(err(line, ParseErrorKind::MsrRuleWithoutMsr, kind_tok));
    }
    if let Action::Spoof(vals) = action {
        if vals.iter().all(Option::is_none) {
            return Err(err(line, ParseErrorKind::SpoofWithoutValues, "spoof"));
        }
        // A spoof without a leaf would hit Xen's leaves too; those never
        // reach us, but any other leaf would, and that is surely a mistake.
        match m.leaf {
            Some(l) if (0x4000_0000..=0x4000_00ff).contains(&l) => {
                return Err(err(line, ParseErrorKind::XenCpuidLeaf, "leaf"));
            }
            None => return Err(err(line, ParseErrorKind::BadMatch, "spoof needs leaf=")),
            _ => {}
        }
    }
    let level = level.unwrap_or(action.default_level());
    Ok(Some(Rule {
        line,
        kind,
        matches: m,
        action,
        level,
        peek,
    }))
}

fn distinct_msrs(p: &Policy) -> usize {
    let all = || {
        p.rules()
            .iter()
            .flat_map(|r| r.matches.msrs().iter().copied())
    };
    all()
        .enumerate()
        .filter(|&(i, m)| all().take(i).all(|x| x != m))
        .count()
}

pub(super) fn parse(text: &str) -> Result<Policy, ParseError<'_>> {
    let mut p = Policy::empty();
    for (i, l) in text.lines().enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if let Some(rule) = parse_line(line, l)? {
            if !p.push(rule) {
                return Err(err(line, ParseErrorKind::TooManyRules, ""));
            }
            if rule.kind == EventKind::Msr && distinct_msrs(&p) > super::MAX_MONITORED_MSRS {
                return Err(err(line, ParseErrorKind::TooManyMsrs, ""));
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::parse_u64;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("0x10"), Some(16));
        assert_eq!(parse_u64("0XfF"), Some(255));
        assert_eq!(parse_u64("1_000"), Some(1000));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "0x",
            "_1",
            "0x_1",
            "1a",
            "-1",
            "18446744073709551616",
            "0x1g",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad}");
        }
    }
}
