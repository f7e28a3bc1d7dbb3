//! `vmi-launch`: starts the introspection stub domain for one target.
//!
//! ```text
//! vmi-launch --target <name|domid> --kernel <stubdom ELF>
//!            (--policy <file> | --rules '<inline rules>')
//!            [--name <stub name>] [--vcpus N] [--memory MiB]
//!            [--log all|violations|none] [--mode block|poll] [--spin US]
//!            [--ring-frames R] [--seconds N] [--seclabel <label>] [--tsc-native]
//!            [--config-out <path>] [--foreground | --follow [--follow-timeout S]]
//!            [--dry-run]
//! vmi-launch --pair <stub name|domid> --target <name|domid>
//! ```
//!
//! It resolves the target to its domid (`xl domid`), writes the stub's xl
//! config (PVH, FLASK label `system_u:system_r:vmi_stub_t` unless told
//! otherwise, the policy file as the PVH module), creates the stub paused
//! (`xl create -p`), pairs it with the target (`XEN_DOMCTL_set_target`: the
//! FLASK policy grants the stub its rights over its paired target only) and
//! unpauses it. After that dom0 has nothing to do with the events: the
//! stub attaches by itself. `--pair` does the pairing and unpausing alone,
//! for a domain created paused some other way (the attack tests).
//! `--follow` stays and follows the target across reboots and restores
//! (same UUID, new domid), holding each new domain paused until a new stub
//! is attached to it ([`follow`]).
//!
//! Every key of the stub's command line ([`vmevent::stub_cmdline::KEYS`])
//! has an option here (a test checks it).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use vmevent::abi::domctl::{check_release, Release, XEN_RELEASE};
use vmevent::stub_cmdline as key;

mod follow;
mod placement;
mod xc;

const USAGE: &str = "usage: vmi-launch --target <name|domid> --kernel <stubdom> (--policy <file> | --rules '<rules>') \
[--name N] [--vcpus N] [--memory MiB] [--log all|violations|none] [--mode block|poll] [--spin US] [--ring-frames R] \
[--seconds N] [--seclabel L] [--tsc-native] [--profile FILE] [--cpus auto|none|LIST] [--config-out PATH] [--foreground | --follow [--follow-timeout S]] [--dry-run]
       [--test-release MAJOR.MINOR]
       vmi-launch --pair <stub> --target <name|domid>";

pub const DEFAULT_SECLABEL: &str = "system_u:system_r:vmi_stub_t";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Launch {
    target: String,
    kernel: PathBuf,
    policy: Option<PathBuf>,
    rules: Option<String>,
    /// `--profile`: a Linux profile (`vmi-profile`), given to the stub
    /// after the policy in its one PVH module.
    profile: Option<PathBuf>,
    /// `--cpus`: where the stub's vCPUs run.
    cpus: placement::Cpus,
    name: Option<String>,
    vcpus: u32,
    memory: u32,
    log: String,
    mode: String,
    /// Block mode: µs a stub vCPU keeps looking after an answer (0: none).
    spin: u64,
    ring_frames: u32,
    /// Detach after this many seconds (0: never).
    seconds: u64,
    seclabel: String,
    tsc_native: bool,
    config_out: Option<PathBuf>,
    foreground: bool,
    /// `--follow`: follow the target across reboots and restores.
    follow: bool,
    /// How long `--follow` waits for each step (the new domain, its build,
    /// the stub's attach).
    follow_timeout: u64,
    dry_run: bool,
    /// `--pair`: only pair this existing (paused) domain and unpause it.
    pair: Option<String>,
    /// `--test-release` (tests only): the Xen release the stub believes it
    /// speaks, checked here and passed on.
    release: Release,
}

fn parse(args: &[String]) -> Result<Launch, String> {
    let mut l = Launch {
        target: String::new(),
        kernel: PathBuf::new(),
        policy: None,
        rules: None,
        profile: None,
        cpus: placement::Cpus::Auto,
        name: None,
        vcpus: 1,
        memory: 32,
        log: "all".into(),
        mode: "block".into(),
        spin: 0,
        ring_frames: 1,
        seconds: 0,
        seclabel: DEFAULT_SECLABEL.into(),
        tsc_native: false,
        config_out: None,
        foreground: false,
        follow: false,
        follow_timeout: 120,
        dry_run: false,
        pair: None,
        release: XEN_RELEASE,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |what: &str| it.next().cloned().ok_or(format!("{a} needs {what}"));
        let num = |v: String, lo: u64, hi: u64| -> Result<u64, String> {
            v.parse()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or(format!("{a}: '{v}' is not a number in {lo}..={hi}"))
        };
        match a.as_str() {
            "--target" => l.target = val("a domain name or id")?,
            "--kernel" => l.kernel = val("the stubdom ELF")?.into(),
            "--policy" => l.policy = Some(val("a policy file")?.into()),
            "--rules" => l.rules = Some(val("policy rules")?),
            "--profile" => l.profile = Some(val("a profile file")?.into()),
            "--cpus" => l.cpus = placement::Cpus::parse(&val("auto, none or a pCPU list")?)?,
            "--name" => l.name = Some(val("a name")?),
            "--vcpus" => l.vcpus = num(val("a count")?, 1, 128)? as u32,
            "--memory" => l.memory = num(val("MiB")?, 8, 4096)? as u32,
            "--log" => l.log = one_of(val("a level")?, key::LOG_LEVELS, a)?,
            "--mode" => l.mode = one_of(val("a mode")?, key::MODES, a)?,
            "--spin" => l.spin = num(val("microseconds")?, 0, key::MAX_SPIN_US)?,
            "--ring-frames" => {
                l.ring_frames = num(val("frames")?, 1, key::MAX_RING_FRAMES.into())? as u32
            }
            "--seconds" => l.seconds = num(val("seconds")?, 0, key::MAX_SECONDS)?,
            "--seclabel" => l.seclabel = val("a FLASK label")?,
            "--tsc-native" => l.tsc_native = true,
            "--config-out" => l.config_out = Some(val("a path")?.into()),
            "--foreground" => l.foreground = true,
            "--follow" => l.follow = true,
            "--follow-timeout" => l.follow_timeout = num(val("seconds")?, 1, 86_400)?,
            "--dry-run" => l.dry_run = true,
            "--pair" => l.pair = Some(val("the stub domain")?),
            "--test-release" => {
                let v = val("MAJOR.MINOR")?;
                l.release = Release::parse(&v)
                    .ok_or(format!("--test-release: '{v}' is not MAJOR.MINOR"))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    if l.target.is_empty() {
        return Err(format!("--target is required\n{USAGE}"));
    }
    if l.pair.is_some() {
        return Ok(l);
    }
    if l.kernel.as_os_str().is_empty() {
        return Err(format!("--kernel is required\n{USAGE}"));
    }
    if l.follow && (l.foreground || l.dry_run) {
        return Err(
            "--follow stays in the foreground itself; it excludes --foreground and --dry-run"
                .into(),
        );
    }
    if l.spin > 0 && l.mode != "block" {
        return Err("--spin: only for --mode block (poll never blocks)".into());
    }
    match (&l.policy, &l.rules) {
        (None, None) => {
            return Err(format!(
                "give the policy: --policy <file> or --rules '<rules>'\n{USAGE}"
            ))
        }
        (Some(_), Some(_)) => return Err("--policy and --rules exclude each other".into()),
        (_, Some(r)) if r.contains(['"', '\\', ' ']) => {
            return Err(
                "--rules: separate rules with ';' and words with ',' (no spaces or quotes)".into(),
            )
        }
        _ => {}
    }
    Ok(l)
}

fn one_of(v: String, choices: &[&str], opt: &str) -> Result<String, String> {
    if choices.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(format!("{opt}: '{v}' is not one of {}", choices.join(", ")))
    }
}

/// `xl domid` for a name; a number is taken as it is (and checked).
fn resolve(target: &str) -> Result<u32, String> {
    let out = Command::new("xl")
        .args(["domid", target])
        .output()
        .map_err(|e| format!("cannot run xl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse::<u32>() {
        Ok(id) if out.status.success() => return Ok(id),
        _ => {}
    }
    if let Ok(id) = target.parse::<u32>() {
        let listed = Command::new("xl")
            .args(["list", &id.to_string()])
            .status()
            .map_err(|e| format!("cannot run xl: {e}"))?;
        if listed.success() {
            return Ok(id);
        }
    }
    Err(format!("no domain named or numbered '{target}'"))
}

/// Passes xl's output on, line by line, and says when xl reports the
/// domain built.
fn forward(
    from: impl std::io::Read + Send + 'static,
    to_stderr: bool,
    built: std::sync::mpsc::Sender<()>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if line.contains("Waiting for domain") {
                let _ = built.send(());
            }
            if to_stderr {
                let _ = writeln!(std::io::stderr(), "{line}");
            } else {
                println!("{line}");
            }
        }
    })
}

fn stub_name(l: &Launch) -> String {
    l.name
        .clone()
        .unwrap_or_else(|| format!("vmi-stub-{}", l.target))
}

/// Pairs the (paused) stub with the target and lets it run; a stub that
/// cannot be paired is destroyed, never left running unpaired.
fn pair_and_unpause(stub: &str, target: u32) -> Result<u32, String> {
    let id = resolve(stub)?;
    if let Err(e) = xc::Xc::open().and_then(|xc| xc.set_target(id, target)) {
        let _ = Command::new("xl")
            .args(["destroy", &id.to_string()])
            .status();
        return Err(e);
    }
    let st = Command::new("xl")
        .args(["unpause", &id.to_string()])
        .status()
        .map_err(|e| format!("cannot run xl: {e}"))?;
    if !st.success() {
        return Err(format!("xl unpause {id} failed ({st})"));
    }
    println!("vmi-launch: stub {stub} is domain {id}, paired with domain {target}");
    Ok(id)
}

/// Refuses, before any stub exists, a hypervisor whose domctls the stub
/// cannot speak (Xen would refuse each with EACCES, which the stub could
/// only report as a FLASK denial).
fn check_hypervisor(l: &Launch) -> Result<(), String> {
    let (running, extra) = xc::Xc::open()?.release()?;
    check_release(running, &extra, l.release, "the stub")
        .map_err(|m| format!("{m}: no stub started"))
}

/// The config without querying the host (tests): an explicit `--cpus`
/// list only.
#[cfg(test)]
fn config(l: &Launch, domid: u32) -> String {
    let cpus = match &l.cpus {
        placement::Cpus::List(c) => Some(c.as_str()),
        _ => None,
    };
    config_with(l, domid, l.policy.as_deref(), cpus)
}

/// The stub's xl config; `module` is the PVH module to give it (the policy
/// file, or the file [`write_module`] made), if any; `cpus` its pCPUs.
fn config_with(
    l: &Launch,
    domid: u32,
    module: Option<&std::path::Path>,
    cpus: Option<&str>,
) -> String {
    let name = stub_name(l);
    let mut extra = format!(
        "{}={domid} {}={} {}={} {}={}",
        key::TARGET,
        key::LOG,
        l.log,
        key::MODE,
        l.mode,
        key::RING_FRAMES,
        l.ring_frames
    );
    if l.spin > 0 {
        let _ = write!(extra, " {}={}", key::SPIN, l.spin);
    }
    if l.seconds > 0 {
        let _ = write!(extra, " {}={}", key::SECONDS, l.seconds);
    }
    if l.release != XEN_RELEASE {
        let _ = write!(extra, " {}={}", key::TEST_RELEASE, l.release);
    }
    if let Some(r) = &l.rules {
        let _ = write!(extra, " {}={r}", key::POLICY);
    }
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# Written by vmi-launch for target {} (domain {domid}).",
        l.target
    );
    let _ = writeln!(c, "name = \"{name}\"");
    let _ = writeln!(c, "type = \"pvh\"");
    let _ = writeln!(c, "kernel = \"{}\"", l.kernel.display());
    if let Some(p) = module {
        let _ = writeln!(c, "ramdisk = \"{}\"", p.display());
    }
    let _ = writeln!(c, "extra = \"{extra}\"");
    let _ = writeln!(c, "vcpus = {}", l.vcpus);
    if let Some(cpus) = cpus {
        let _ = writeln!(c, "cpus = \"{cpus}\"");
    }
    let _ = writeln!(c, "memory = {}", l.memory);
    let _ = writeln!(c, "seclabel = \"{}\"", l.seclabel);
    // The stub detaches on shutdown and must never be restarted behind the
    // operator's back; a crash leaves Xen's own cleanup to unpause the target.
    for ev in ["on_poweroff", "on_reboot", "on_crash", "on_watchdog"] {
        let _ = writeln!(c, "{ev} = \"destroy\"");
    }
    if l.tsc_native {
        let _ = writeln!(c, "tsc_mode = \"native\"");
    }
    c
}

/// Writes the stub's xl config for target `domid`; returns its path and
/// the config.
fn write_config(l: &Launch, domid: u32) -> Result<(PathBuf, String), String> {
    let path = l
        .config_out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/vmi-stub-{}.cfg", l.target)));
    let module = match &l.profile {
        Some(profile) => {
            let module = path.with_extension("module");
            write_module(l.policy.as_deref(), profile, &module)?;
            Some(module)
        }
        None => l.policy.clone(),
    };
    let (pcpus, target_vcpus) = match l.cpus {
        placement::Cpus::Auto => placement::host_and_target(domid)?,
        _ => (0, 0),
    };
    let (cpus, why) = placement::choose(&l.cpus, pcpus, target_vcpus, l.vcpus);
    println!("vmi-launch: {why}");
    let cfg = config_with(l, domid, module.as_deref(), cpus.as_deref());
    std::fs::write(&path, &cfg).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!(
        "vmi-launch: target {} is domain {domid}; config {}",
        l.target,
        path.display()
    );
    Ok((path, cfg))
}

/// xl gives a PVH guest one module: the policy file (if any) followed by
/// the profile, which the stub finds by its first line (`vmi-profile N`).
/// The profile is checked here first, so a bad one is refused in dom0
/// with its line, before any domain exists.
fn write_module(
    policy: Option<&std::path::Path>,
    profile: &std::path::Path,
    out: &std::path::Path,
) -> Result<(), String> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
    };
    let prof = read(profile)?;
    linux_profile::Profile::parse(&prof)
        .map_err(|e| format!("--profile {}: {e}", profile.display()))?;
    let mut text = match policy {
        Some(p) => read(p)?,
        None => String::new(),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&prof);
    std::fs::write(out, text).map_err(|e| format!("writing {}: {e}", out.display()))
}

/// Writes the config for target `domid`, creates the stub with `xl create
/// -p` (xl's daemon keeps watching it), pairs it with `domid` and unpauses
/// it; returns the stub's domid.
fn launch_paired(l: &Launch, domid: u32) -> Result<u32, String> {
    let (path, _) = write_config(l, domid)?;
    let st = Command::new("xl")
        .args(["create", "-p"])
        .arg(&path)
        .status()
        .map_err(|e| format!("cannot run xl: {e}"))?;
    if !st.success() {
        return Err(format!("xl create {} failed ({st})", path.display()));
    }
    pair_and_unpause(&stub_name(l), domid)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = || -> Result<(), String> {
        let l = parse(&args)?;
        if let Some(stub) = &l.pair {
            return pair_and_unpause(stub, resolve(&l.target)?).map(drop);
        }
        if !l.kernel.exists() {
            return Err(format!("no stub kernel at {}", l.kernel.display()));
        }
        if let Some(p) = &l.policy {
            if !p.exists() {
                return Err(format!("no policy file at {}", p.display()));
            }
        }
        let domid = resolve(&l.target)?;
        check_hypervisor(&l)?;
        if l.dry_run {
            print!("{}", write_config(&l, domid)?.1);
            return Ok(());
        }
        if !l.foreground {
            let stub = launch_paired(&l, domid)?;
            if l.follow {
                let timeout = std::time::Duration::from_secs(l.follow_timeout);
                return follow::run(domid, stub, timeout, |new| launch_paired(&l, new));
            }
            return Ok(());
        }
        let (path, _) = write_config(&l, domid)?;
        // Created paused, paired, then unpaused: the stub never runs
        // unpaired. In the foreground xl stays until the stub is gone.
        let mut xl = Command::new("xl");
        xl.args(["create", "-p", "-F"]).arg(&path);
        let name = stub_name(&l);
        // xl -F says "Waiting for domain ..." once the domain is complete
        // (built and paused); only then may it be paired and unpaused. Its
        // output is passed on as it comes.
        let mut child = xl
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run xl: {e}"))?;
        let (built_tx, built) = std::sync::mpsc::channel();
        let out = child
            .stdout
            .take()
            .map(|o| forward(o, false, built_tx.clone()));
        let err = child.stderr.take().map(|e| forward(e, true, built_tx));
        if built
            .recv_timeout(std::time::Duration::from_secs(120))
            .is_err()
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "xl create {}: the domain was not built",
                path.display()
            ));
        }
        if let Err(e) = pair_and_unpause(&name, domid) {
            let _ = child.wait();
            return Err(e);
        }
        let st = child.wait().map_err(|e| e.to_string())?;
        for t in [out, err].into_iter().flatten() {
            let _ = t.join();
        }
        if !st.success() {
            return Err(format!("xl create {} ended with {st}", path.display()));
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmi-launch: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_follows_the_policy_in_one_module_and_a_bad_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("vmi-launch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (policy, profile, out) = (dir.join("p"), dir.join("prof"), dir.join("m"));
        std::fs::write(&policy, "any allow").unwrap();
        let good = "vmi-profile 1\nrelease 6.1.0-57-amd64\ntask_struct.size 9792\n\
            task_struct.pid 2416\ntask_struct.tgid 2420\ntask_struct.comm 2976\n\
            task_struct.comm_len 16\ntask_struct.real_parent 2432\ntask_struct.mm 2272\n\
            task_struct.tasks 2192\ntask_struct.flags 44\nmm_struct.pgd 72\n\
            percpu.current_task 129920\npercpu.current_task.via current_task\n";
        std::fs::write(&profile, good).unwrap();
        write_module(Some(&policy), &profile, &out).unwrap();
        let m = std::fs::read_to_string(&out).unwrap();
        assert_eq!(m, format!("any allow\n{good}"));
        assert_eq!(linux_profile::split_module(&m).0, Some("any allow\n"));
        std::fs::write(&profile, good.replace("task_struct.pid 2416\n", "")).unwrap();
        let e = write_module(Some(&policy), &profile, &out).unwrap_err();
        assert!(
            e.starts_with("--profile ") && e.contains("task_struct.pid"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn config_carries_target_label_and_policy() {
        let l = parse(&args(
            "--target web --kernel /k --policy /p.policy --vcpus 2 --tsc-native",
        ))
        .unwrap();
        let c = config(&l, 7);
        assert!(
            c.contains("extra = \"target=7 log=all mode=block ring_frames=1\""),
            "{c}"
        );
        assert!(c.contains("ramdisk = \"/p.policy\""));
        assert!(c.contains("seclabel = \"system_u:system_r:vmi_stub_t\""));
        assert!(c.contains("type = \"pvh\""));
        assert!(c.contains("vcpus = 2"));
        assert!(c.contains("tsc_mode = \"native\""));
        assert!(c.contains("on_crash = \"destroy\""));
        let l = parse(&args(
            "--target 3 --kernel /k --rules msr,msr=0xc0000082,deny;any,allow --name s",
        ))
        .unwrap();
        let c = config(&l, 3);
        assert!(
            c.contains("policy=msr,msr=0xc0000082,deny;any,allow\""),
            "{c}"
        );
        assert!(c.contains("name = \"s\""));
    }

    /// The keys of `extra = "..."` in a config.
    fn extra_keys(c: &str) -> Vec<String> {
        let line = c.lines().find(|l| l.starts_with("extra = ")).unwrap();
        line["extra = ".len()..]
            .trim_matches('"')
            .split_whitespace()
            .map(|t| t.split_once('=').unwrap().0.to_string())
            .collect()
    }

    #[test]
    fn every_stub_key_has_an_option_and_is_written_once() {
        // Every option that feeds the stub's command line, set.
        let l = parse(&args(
            "--target 3 --kernel /k --rules any,allow --log none --mode block --spin 50 \
             --ring-frames 4 --seconds 30 --test-release 4.19",
        ))
        .unwrap();
        let mut keys = extra_keys(&config(&l, 3));
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key written twice: {keys:?}");
        let mut stub: Vec<String> = key::KEYS.iter().map(|k| k.to_string()).collect();
        stub.sort();
        assert_eq!(keys, stub, "the launcher and the stub disagree on the keys");
        let c = config(&l, 3);
        assert!(
            c.contains(
                "target=3 log=none mode=block ring_frames=4 spin=50 seconds=30 test_release=4.19 policy=any,allow"
            ),
            "{c}"
        );
        // Defaults leave out what the stub defaults itself.
        let l = parse(&args("--target 3 --kernel /k --policy /p")).unwrap();
        assert_eq!(
            extra_keys(&config(&l, 3)),
            ["target", "log", "mode", "ring_frames"]
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        let e = |s: &str| parse(&args(s)).unwrap_err();
        assert!(e("--kernel /k --policy /p").starts_with("--target is required"));
        assert!(e("--target t --policy /p").starts_with("--kernel is required"));
        assert!(e("--target t --kernel /k").starts_with("give the policy"));
        assert!(e("--target t --kernel /k --policy /p --test-release 4")
            .contains("'4' is not MAJOR.MINOR"));
        assert!(
            e("--target t --kernel /k --policy /p --vcpus 0").contains("not a number in 1..=128")
        );
        assert!(e("--target t --kernel /k --policy /p --mode poll --spin 5")
            .starts_with("--spin: only for --mode block"));
        assert!(e("--target t --kernel /k --policy /p --spin 10001")
            .contains("not a number in 0..=10000"));
        assert!(e("--target t --kernel /k --policy /p --log loud")
            .contains("not one of all, violations, none"));
        assert!(e("--target t --kernel /k --policy /p --colour red")
            .starts_with("unknown option '--colour'"));
        assert!(e("--target t --kernel /k --policy /p --rules any,allow")
            .contains("exclude each other"));
        assert!(e("--target t --kernel /k --policy /p --seconds -1")
            .contains("not a number in 0..=31536000"));
        assert!(
            e("--target t --kernel /k --policy /p --follow --foreground")
                .contains("excludes --foreground")
        );
        assert!(e("--target t --kernel /k --policy /p --follow-timeout 0")
            .contains("not a number in 1..=86400"));
        let l = parse(&args("--target t --kernel /k --policy /p --follow")).unwrap();
        assert!(l.follow && l.follow_timeout == 120);
    }
}
