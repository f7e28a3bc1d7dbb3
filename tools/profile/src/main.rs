//! `vmi-profile`: the stub's Linux profile, out of a kernel's BTF.
//!
//! ```text
//! vmi-profile <vmlinuz|vmlinux> [-o <profile>]
//! ```
//!
//! It reads a bzImage ([`bzimage`], its XZ payload decoded in memory by
//! [`xz`]) or a vmlinux ELF ([`elf`]), finds `.BTF`, and looks up what the
//! stub needs to name the process behind an event ([`extract`]): the
//! `task_struct` fields, `mm_struct.pgd` and the per-CPU offset of the
//! current task. The profile (format: the `linux-profile` crate,
//! `tools/profile/README.md`) goes to stdout or to `-o`. A kernel it cannot
//! profile is refused with one line on stderr naming the file and what is
//! missing, and nothing is written.

use std::path::PathBuf;
use std::process::ExitCode;

use linux_profile::Profile;

mod btf;
mod bzimage;
mod elf;
mod extract;
#[cfg(test)]
mod testbtf;
mod xz;

const USAGE: &str = "usage: vmi-profile <vmlinuz|vmlinux> [-o <profile>]";

#[derive(Debug, PartialEq, Eq)]
struct Args {
    input: PathBuf,
    output: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut input = None;
    let mut output = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" | "--output" => {
                let v = it.next().ok_or(format!("{a} needs a path\n{USAGE}"))?;
                if output.replace(PathBuf::from(v)).is_some() {
                    return Err(format!("{a} given twice"));
                }
            }
            "-h" | "--help" => return Err(USAGE.into()),
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(format!("unknown option '{s}'\n{USAGE}"))
            }
            s => {
                if input.replace(PathBuf::from(s)).is_some() {
                    return Err(format!("one kernel at a time\n{USAGE}"));
                }
            }
        }
    }
    Ok(Args {
        input: input.ok_or(format!("give the kernel\n{USAGE}"))?,
        output,
    })
}

/// The profile of the kernel in `data`: a vmlinux ELF, or a bzImage whose
/// payload is one. The release comes from the ELF's banner either way, so
/// both give the same profile; a bzImage header naming another release is
/// refused.
fn profile_of(data: &[u8]) -> Result<Profile, String> {
    if data.starts_with(elf::ELF_MAGIC) {
        let k = elf::read(data)?;
        return extract::profile(k.btf, &k.release);
    }
    if bzimage::looks_like(data) {
        let bz = bzimage::parse(data)?;
        let vmlinux = xz::decode_one_stream(bz.payload)?;
        if !vmlinux.starts_with(elf::ELF_MAGIC) {
            return Err("the bzImage payload is not an ELF vmlinux".into());
        }
        let k = elf::read(&vmlinux)?;
        if let Some(r) = bz.release.as_deref().filter(|&r| r != k.release) {
            return Err(format!(
                "the bzImage header names release {r}, its kernel's banner {}",
                k.release
            ));
        }
        return extract::profile(k.btf, &k.release);
    }
    Err("neither an ELF vmlinux nor a bzImage".into())
}

fn run(args: &Args) -> Result<(), String> {
    let file = args.input.display();
    let data = std::fs::read(&args.input).map_err(|e| format!("{file}: {e}"))?;
    let p = profile_of(&data).map_err(|e| format!("{file}: {e}"))?;
    match &args.output {
        None => print!("{p}"),
        Some(out) => std::fs::write(out, p.to_string())
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args).and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the usage text follows a usage error only.
            eprintln!("vmi-profile: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse_args(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn arguments() {
        assert_eq!(
            args("vmlinuz -o out").unwrap(),
            Args {
                input: "vmlinuz".into(),
                output: Some("out".into())
            }
        );
        assert_eq!(
            args("-o out vmlinux").unwrap().input,
            PathBuf::from("vmlinux")
        );
        assert_eq!(args("vmlinux").unwrap().output, None);
        assert!(args("").unwrap_err().starts_with("give the kernel"));
        assert!(args("a b").unwrap_err().starts_with("one kernel at a time"));
        assert!(args("a -o").unwrap_err().starts_with("-o needs a path"));
        assert!(args("a -x").unwrap_err().starts_with("unknown option '-x'"));
        assert!(args("a -o x -o y")
            .unwrap_err()
            .starts_with("-o given twice"));
    }

    #[test]
    fn neither_elf_nor_bzimage_is_refused() {
        assert_eq!(
            profile_of(b"hello").unwrap_err(),
            "neither an ELF vmlinux nor a bzImage"
        );
    }

    #[test]
    fn a_bzimage_whose_payload_is_not_an_elf_is_refused() {
        let d = bzimage::tests::image("6.1.0", &xz_fixture());
        assert_eq!(
            profile_of(&d).unwrap_err(),
            "the bzImage payload is not an ELF vmlinux"
        );
    }

    /// `tests/data/bcj.xz` decodes (through the x86 BCJ filter) to the
    /// bytes of [`bcj_plain`].
    fn xz_fixture() -> Vec<u8> {
        include_bytes!("../tests/data/bcj.xz").to_vec()
    }

    /// 16 KiB of fake x86 code: a `call rel32` (E8) every 16 bytes, which
    /// the BCJ filter rewrites to absolute targets and back.
    pub fn bcj_plain() -> Vec<u8> {
        (0..1024u32)
            .flat_map(|i| {
                let mut b = [0x90u8; 16];
                b[3] = 0xe8;
                b[4..8].copy_from_slice(&(i.wrapping_mul(0x9e37) & 0xffff).to_le_bytes());
                b
            })
            .collect()
    }

    #[test]
    fn xz_with_the_x86_bcj_filter_decodes() {
        let out = xz::decode_one_stream(&[xz_fixture(), b"trailer".to_vec()].concat()).unwrap();
        assert_eq!(out, bcj_plain());
    }
}
