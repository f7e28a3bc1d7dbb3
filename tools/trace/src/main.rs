//! `vmi-trace FILE --target DOMID [--consumer DOMID] [--leaf N] [--label TEXT]`
//!
//! Reads a file `xentrace` wrote (record classes HVM, scheduler and PV:
//! `xentrace -e 0x002af000`) and prints what each of the target's CPUIDs
//! of leaf N (default 0x6, the bench's) cost: cycles from its exit to its
//! entry, the phases of the answer, and the exits, hypercalls and context
//! switches of every domain meanwhile, per event. `--consumer` names the
//! monitor's domain (0 for a dom0 consumer); without it the target runs
//! unmonitored and the report is the ceiling.

use std::process::ExitCode;

use vmi_trace::{analyze, records, report, Subject};

const USAGE: &str =
    "usage: vmi-trace FILE --target DOMID [--consumer DOMID] [--leaf N] [--label TEXT]";

fn number(flag: &str, v: Option<&String>) -> Result<u32, String> {
    let v = v.ok_or_else(|| format!("vmi-trace: {flag} needs a value; {USAGE}"))?;
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.map_err(|_| format!("vmi-trace: {flag}: '{v}' is not a number"))
}

fn run(args: &[String]) -> Result<(), String> {
    let mut file = None;
    let (mut target, mut consumer, mut leaf, mut label) = (None, None, 6, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--target" => target = Some(number(a, it.next())?),
            "--consumer" => consumer = Some(number(a, it.next())?),
            "--leaf" => leaf = number(a, it.next())?,
            "--label" => label = it.next().cloned(),
            f if !f.starts_with("--") && file.is_none() => file = Some(f.to_string()),
            other => return Err(format!("vmi-trace: unknown argument '{other}'; {USAGE}")),
        }
    }
    let file = file.ok_or_else(|| format!("vmi-trace: no FILE; {USAGE}"))?;
    let target = target.ok_or_else(|| format!("vmi-trace: no --target; {USAGE}"))?;
    let bytes = std::fs::read(&file).map_err(|e| format!("vmi-trace: {file}: {e}"))?;
    let recs = records(&bytes).map_err(|e| format!("vmi-trace: {file}: {e}"))?;
    let subject = Subject {
        target,
        consumer,
        leaf,
    };
    let a = analyze(&recs, &subject);
    print!(
        "{}",
        report(&a, &subject, label.as_deref().unwrap_or(&file))
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
