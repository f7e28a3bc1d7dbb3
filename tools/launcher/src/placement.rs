//! Where the stub's vCPUs run (`--cpus`): the launcher's job, since only
//! dom0 sees the host. A stub vCPU that shares a pCPU with the target vCPUs
//! it serves waits for them to be descheduled before it can answer; given
//! pCPUs to spare, the stub gets its own.

use std::process::Command;

/// `--cpus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cpus {
    /// Pin the stub to pCPUs of its own if the host has them to spare.
    Auto,
    /// Leave placement to Xen's scheduler.
    None,
    /// An xl `cpus=` list, as given (e.g. `2-3` or `2,5`).
    List(String),
}

impl Cpus {
    pub fn parse(v: &str) -> Result<Self, String> {
        match v {
            "auto" => Ok(Self::Auto),
            "none" => Ok(Self::None),
            l if !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
                && l.bytes().next().is_some_and(|b| b.is_ascii_digit()) =>
            {
                Ok(Self::List(l.into()))
            }
            _ => Err(format!(
                "--cpus: '{v}' is not auto, none or a pCPU list like 2-3 or 2,5"
            )),
        }
    }
}

/// The `cpus=` list for the stub (if any) and the line that says why.
/// `Auto`: dom0 keeps pCPU 0, the target's vCPUs need one pCPU each, and
/// the stub gets the highest pCPUs if what is left is enough for all of
/// its vCPUs; otherwise nothing is pinned.
pub fn choose(
    cpus: &Cpus,
    pcpus: u32,
    target_vcpus: u32,
    stub_vcpus: u32,
) -> (Option<String>, String) {
    match cpus {
        Cpus::None => (None, "stub vCPUs not pinned (--cpus none)".into()),
        Cpus::List(l) => (Some(l.clone()), format!("stub vCPUs pinned to pCPUs {l} (--cpus)")),
        Cpus::Auto if pcpus >= 1 + target_vcpus + stub_vcpus => {
            let first = pcpus - stub_vcpus;
            let list = if stub_vcpus == 1 {
                first.to_string()
            } else {
                format!("{first}-{}", pcpus - 1)
            };
            let why = format!(
                "stub vCPUs pinned to pCPUs {list} of {pcpus}: dom0 and the target's {target_vcpus} vCPU(s) have pCPUs 0-{} (pin the target there to keep it off the stub's)",
                first - 1
            );
            (Some(list), why)
        }
        Cpus::Auto => (
            None,
            format!(
                "stub vCPUs not pinned: {pcpus} pCPU(s) cannot give dom0 one, the target's {target_vcpus} vCPU(s) one each and the stub's {stub_vcpus} their own"
            ),
        ),
    }
}

/// pCPUs of the host (`xl info`'s `nr_cpus`) and vCPUs of `domid` (`xl
/// list`), for [`choose`].
pub fn host_and_target(domid: u32) -> Result<(u32, u32), String> {
    let run = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("xl")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run xl: {e}"))?;
        if !out.status.success() {
            return Err(format!("xl {} failed ({})", args.join(" "), out.status));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let info = run(&["info"])?;
    let pcpus = info
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "nr_cpus").then(|| v.trim().parse().ok())?
        })
        .ok_or("xl info shows no nr_cpus")?;
    let list = run(&["list", &domid.to_string()])?;
    // Name ID Mem VCPUs State Time(s): the name may not contain spaces.
    let vcpus = list
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .ok_or(format!("xl list {domid} shows no vCPU count"))?;
    Ok((pcpus, vcpus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_pins_only_with_pcpus_to_spare() {
        // This bed: 2 pCPUs, a 1-vCPU target, a 1-vCPU stub: nothing spare.
        let (c, why) = choose(&Cpus::Auto, 2, 1, 1);
        assert_eq!(c, None);
        assert!(why.starts_with("stub vCPUs not pinned: 2 pCPU(s)"), "{why}");
        assert_eq!(choose(&Cpus::Auto, 3, 1, 1).0.as_deref(), Some("2"));
        assert_eq!(choose(&Cpus::Auto, 8, 4, 2).0.as_deref(), Some("6-7"));
        assert_eq!(choose(&Cpus::Auto, 8, 4, 4).0, None);
        let (c, why) = choose(&Cpus::Auto, 16, 8, 4);
        assert_eq!(c.as_deref(), Some("12-15"));
        assert!(why.contains("pCPUs 0-11"), "{why}");
        assert_eq!(choose(&Cpus::None, 64, 1, 1).0, None);
        assert_eq!(
            choose(&Cpus::List("3,5".into()), 2, 1, 1).0.as_deref(),
            Some("3,5")
        );
    }

    #[test]
    fn lists_are_checked() {
        assert_eq!(Cpus::parse("auto"), Ok(Cpus::Auto));
        assert_eq!(Cpus::parse("2-3,6"), Ok(Cpus::List("2-3,6".into())));
        for bad in ["", "-1", "all", "2 3", "x"] {
            assert!(
                Cpus::parse(bad).unwrap_err().starts_with("--cpus: "),
                "{bad}"
            );
        }
    }
}
