//! The service's command line (xl `extra=`):
//!
//! | key | meaning | default |
//! |-----|---------|---------|
//! | `target=<domid>` | the domain to monitor (required) | — |
//! | `policy=<rules>` | an inline policy: rules separated by `;`, words by `,` (`msr,msr=0xc0000082,deny;any,allow`) | the first PVH module (xl `ramdisk=`) |
//! | `log=all\|violations\|none` | which audit records go to the console | `all` |
//! | `mode=block\|poll` | how a stub vCPU waits for its ports | `block` |
//! | `spin=<µs>` | block mode: after an answer, keep looking at the slots this long before blocking (0..=10000) | `0` |
//! | `ring_frames=R` | async ring size in 4 KiB frames (1..=16) | `1` |
//! | `seconds=N` | detach after N seconds (0 = never) | `0` |
//! | `test_release=M.m` | tests only: the Xen release the stub believes it speaks | 4.17 |
//!
//! Policy text: vmevent/POLICY.md.

use alloc::string::String;

use boot::cmdline::{Cmdline, CmdlineError};
use boot::BootInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogMode {
    All,
    Violations,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitMode {
    Block,
    Poll,
}

pub struct Config {
    pub target: u16,
    pub policy_text: String,
    /// Where the policy came from, for error messages.
    pub policy_source: &'static str,
    /// A Linux profile (`vmi-profile 1` ...) from the PVH module.
    pub profile_text: Option<String>,
    pub log: LogMode,
    pub wait: WaitMode,
    /// Block mode: how long a vCPU keeps looking after an answer (`spin=`).
    pub spin_ns: u64,
    pub ring_frames: u32,
    pub deadline_ns: Option<u64>,
    /// The Xen release whose domctls the stub issues (`test_release=`).
    pub release: Release,
}

use vmevent::abi::{Release, XEN_RELEASE};
use vmevent::stub_cmdline as key;

impl Config {
    /// `Err` is one line naming the bad field.
    pub fn parse(c: &Cmdline<'static>, info: &'static BootInfo<'static>) -> Result<Config, String> {
        let e = |e: CmdlineError<'_>| alloc::format!("{e}");
        c.validate(key::KEYS).map_err(e)?;
        let target = c.number(key::TARGET, u64::MAX, 1, 0x7fef).map_err(e)?;
        if target == u64::MAX {
            return Err("field 'target': missing (target=<domid> of the domain to monitor)".into());
        }
        let module = match info.modules().next() {
            Some(m) => Some(
                core::str::from_utf8(m.data)
                    .map_err(|_| String::from("the PVH module is not UTF-8 text"))?,
            ),
            None => None,
        };
        let (module_policy, profile_text) =
            module.map_or((None, None), linux_profile::split_module);
        let (policy_text, policy_source) = match (c.get(key::POLICY), module_policy) {
            (Some(_), Some(_)) => {
                return Err(
                    "field 'policy': given twice (policy= and a policy in the PVH module)".into(),
                )
            }
            (Some(inline), None) => (inline.replace(';', "\n").replace(',', " "), "policy="),
            (None, Some(text)) => (text.into(), "the policy module"),
            (None, None) => {
                return Err(
                    "field 'policy': missing (policy=<rules> or a policy file as the PVH module)"
                        .into(),
                )
            }
        };
        let log = match c.choice(key::LOG, "all", key::LOG_LEVELS).map_err(e)? {
            "violations" => LogMode::Violations,
            "none" => LogMode::None,
            _ => LogMode::All,
        };
        let wait = match c.choice(key::MODE, "block", key::MODES).map_err(e)? {
            "poll" => WaitMode::Poll,
            _ => WaitMode::Block,
        };
        let spin_us = c.number(key::SPIN, 0, 0, key::MAX_SPIN_US).map_err(e)?;
        if spin_us > 0 && wait == WaitMode::Poll {
            return Err(alloc::format!(
                "field '{}': only for mode=block (mode=poll never blocks)",
                key::SPIN
            ));
        }
        let ring_frames = c
            .number(key::RING_FRAMES, 1, 1, key::MAX_RING_FRAMES.into())
            .map_err(e)? as u32;
        let seconds = c.number(key::SECONDS, 0, 0, key::MAX_SECONDS).map_err(e)?;
        let release = match c.get(key::TEST_RELEASE) {
            None => XEN_RELEASE,
            Some(v) => Release::parse(v).ok_or_else(|| {
                alloc::format!(
                    "field '{}': expected MAJOR.MINOR, got '{v}'",
                    key::TEST_RELEASE
                )
            })?,
        };
        Ok(Config {
            target: target as u16,
            policy_text,
            policy_source,
            profile_text: profile_text.map(String::from),
            log,
            wait,
            spin_ns: spin_us * 1000,
            ring_frames,
            deadline_ns: (seconds > 0).then(|| boot::time::now_ns() + seconds * 1_000_000_000),
            release,
        })
    }

    /// Time to detach (a deadline passed; later also `xl shutdown`).
    pub fn stop_requested(&self) -> bool {
        self.deadline_ns.is_some_and(|d| boot::time::now_ns() >= d)
    }
}
