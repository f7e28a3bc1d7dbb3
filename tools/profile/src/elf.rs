//! The uncompressed kernel (vmlinux ELF): its `.BTF` section, its release
//! from the `Linux version ` banner in `.rodata`, and the address of its
//! per-CPU section. A stripped vmlinux has all three: stripping removes the
//! symbol table, not these sections.

use object::{Architecture, BinaryFormat, Object, ObjectSection};

pub const ELF_MAGIC: &[u8] = b"\x7fELF";
pub const PERCPU_SECTION: &str = ".data..percpu";
const BANNER: &[u8] = b"Linux version ";

pub struct Kernel<'a> {
    pub btf: &'a [u8],
    /// `uname -r`, e.g. `6.1.0-57-amd64`.
    pub release: String,
}

pub fn read(data: &[u8]) -> Result<Kernel<'_>, String> {
    let file = object::File::parse(data).map_err(|e| format!("not a valid ELF file: {e}"))?;
    if file.format() != BinaryFormat::Elf
        || file.architecture() != Architecture::X86_64
        || !file.is_64()
    {
        return Err(format!(
            "not an x86-64 kernel (an ELF for {:?})",
            file.architecture()
        ));
    }
    let section = |name: &str| -> Result<Option<&[u8]>, String> {
        match file.section_by_name(name) {
            None => Ok(None),
            Some(s) => s
                .data()
                .map(Some)
                .map_err(|e| format!("cannot read section {name}: {e}")),
        }
    };
    // A module's .BTF is split BTF, types numbered on top of vmlinux's:
    // it has no task_struct of its own to offer.
    if file.section_by_name(".gnu.linkonce.this_module").is_some()
        || file.section_by_name(".modinfo").is_some()
    {
        return Err("a kernel module, not the kernel: give its vmlinux or bzImage".into());
    }
    let btf = match section(".BTF")? {
        Some(b) if !b.is_empty() => b,
        _ => return Err("no BTF: the kernel was built without CONFIG_DEBUG_INFO_BTF".into()),
    };
    // Per-CPU variables are addressed from each CPU's per-CPU base; the
    // BTF offsets are from the section start. They agree only where the
    // section is linked at 0, as x86-64 SMP kernels do.
    let percpu = file.section_by_name(PERCPU_SECTION).ok_or(format!(
        "no {PERCPU_SECTION} section (a kernel without SMP?)"
    ))?;
    if percpu.address() != 0 {
        return Err(format!(
            "{PERCPU_SECTION} is linked at {:#x}, not 0: its offsets are not per-CPU offsets",
            percpu.address()
        ));
    }
    let rodata = section(".rodata")?.ok_or("no .rodata section")?;
    Ok(Kernel {
        btf,
        release: banner_release(rodata)?,
    })
}

/// The release named by the `Linux version <release> (...` banner. The
/// kernel holds it twice (`linux_banner` and the build's uts version); a
/// format string like `%s version %s` is no banner. Two different releases
/// are refused: that file is not one kernel.
pub fn banner_release(rodata: &[u8]) -> Result<String, String> {
    let mut found: Option<&[u8]> = None;
    let mut rest = rodata;
    while let Some(i) = rest.windows(BANNER.len()).position(|w| w == BANNER) {
        let after = &rest[i + BANNER.len()..];
        let end = after
            .iter()
            .position(|&b| !b.is_ascii_graphic())
            .unwrap_or(after.len());
        let word = &after[..end];
        rest = after;
        if !word.first().is_some_and(u8::is_ascii_digit) {
            continue;
        }
        match found {
            Some(f) if f != word => {
                return Err(format!(
                    "two different releases in the banners: {} and {}",
                    String::from_utf8_lossy(f),
                    String::from_utf8_lossy(word)
                ))
            }
            _ => found = Some(word),
        }
    }
    found
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .ok_or_else(|| "no \"Linux version\" banner in .rodata".into())
}

#[cfg(test)]
mod tests {
    use super::banner_release;

    #[test]
    fn the_banner_gives_the_release() {
        let rodata = b"\0\0%s version %s (%s)\0Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) \
            (gcc-12) # SMP PREEMPT_DYNAMIC Debian 6.1.192-3\n\0Linux version 6.1.0-57-amd64 (x) #1 SMP\n\0";
        assert_eq!(banner_release(rodata).unwrap(), "6.1.0-57-amd64");
    }

    #[test]
    fn no_banner_or_two_releases_are_refused() {
        assert_eq!(
            banner_release(b"Linux version %s\0nothing").unwrap_err(),
            "no \"Linux version\" banner in .rodata"
        );
        assert_eq!(
            banner_release(b"Linux version 6.1.0 (a)\0Linux version 6.2.0 (b)\0").unwrap_err(),
            "two different releases in the banners: 6.1.0 and 6.2.0"
        );
    }
}
