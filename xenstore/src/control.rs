//! The PV control protocol of `~/control/shutdown`
//! (docs/misc/xenstore-paths.pandoc): the toolstack writes a command,
//! the guest acknowledges by writing the empty string back, then acts.
//! `xl shutdown` writes `poweroff` and waits (60 s) for the node to read
//! empty or vanish.

use alloc::string::String;
use core::fmt;

/// The node the toolstack writes commands to (relative to the home path).
pub const SHUTDOWN_PATH: &str = "control/shutdown";

/// `~/control/feature-poweroff`: "1" tells a toolstack we answer
/// `poweroff` (libxl creates it writable for the guest; `control/` itself
/// is read-only to us, so the write may fail on other toolstacks).
pub const FEATURE_POWEROFF: &str = "control/feature-poweroff";

/// A command found in `control/shutdown`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShutdownRequest {
    Poweroff,
    Halt,
    Reboot,
    Suspend,
    /// Anything else, as written.
    Other(String),
}

impl ShutdownRequest {
    /// Parses the node's value; the empty value (no request, or one
    /// already acknowledged) is `None`.
    pub fn parse(value: &[u8]) -> Option<ShutdownRequest> {
        let v = value.strip_suffix(&[0]).unwrap_or(value);
        Some(match v {
            b"" => return None,
            b"poweroff" => ShutdownRequest::Poweroff,
            b"halt" => ShutdownRequest::Halt,
            b"reboot" => ShutdownRequest::Reboot,
            b"suspend" => ShutdownRequest::Suspend,
            other => ShutdownRequest::Other(String::from_utf8_lossy(other).into_owned()),
        })
    }

    /// What the command asks for, as written.
    pub fn as_str(&self) -> &str {
        match self {
            ShutdownRequest::Poweroff => "poweroff",
            ShutdownRequest::Halt => "halt",
            ShutdownRequest::Reboot => "reboot",
            ShutdownRequest::Suspend => "suspend",
            ShutdownRequest::Other(s) => s,
        }
    }
}

impl fmt::Display for ShutdownRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn commands() {
        assert_eq!(ShutdownRequest::parse(b""), None);
        assert_eq!(ShutdownRequest::parse(b"\0"), None);
        assert_eq!(
            ShutdownRequest::parse(b"poweroff"),
            Some(ShutdownRequest::Poweroff)
        );
        assert_eq!(
            ShutdownRequest::parse(b"reboot\0"),
            Some(ShutdownRequest::Reboot)
        );
        assert_eq!(
            ShutdownRequest::parse(b"s3"),
            Some(ShutdownRequest::Other("s3".into()))
        );
        assert_eq!(ShutdownRequest::Poweroff.to_string(), "poweroff");
    }
}
