//! A bzImage: the x86 boot protocol's setup header locates the compressed
//! kernel (`payload_offset`, `payload_length`, boot protocol 2.08+) and
//! names the kernel (`kernel_version`). Debian compresses with XZ
//! (CONFIG_KERNEL_XZ); other compressions are refused by name.

/// "HdrS" at 0x202 marks a setup header (boot protocol 2.00+).
const HDRS: (usize, &[u8]) = (0x202, b"HdrS");
const SETUP_SECTS: usize = 0x1f1;
const PROTOCOL: usize = 0x206;
const KERNEL_VERSION: usize = 0x20e;
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;
/// The header ends before 0x268 in every protocol version we read.
const HEADER_END: usize = 0x268;

pub const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

pub struct BzImage<'a> {
    /// The first word of the header's version string, e.g.
    /// `6.1.0-57-amd64` (`None` if the header has none).
    pub release: Option<String>,
    /// The XZ stream (followed by the 4-byte size the kernel's build
    /// appends; the decoder stops at the stream's end).
    pub payload: &'a [u8],
}

pub fn looks_like(data: &[u8]) -> bool {
    data.get(HDRS.0..HDRS.0 + 4) == Some(HDRS.1)
}

fn u16_at(d: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([d[at], d[at + 1]])
}

fn u32_at(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

/// What a compressed payload is, by its magic, for the refusal.
fn compression(p: &[u8]) -> &'static str {
    match p {
        [0x1f, 0x8b, ..] => "gzip",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        [b'B', b'Z', b'h', ..] => "bzip2",
        [0x02, 0x21, 0x4c, 0x18, ..] => "lz4",
        [0x89, b'L', b'Z', b'O', ..] => "lzo",
        [0x5d, 0, 0, ..] => "lzma",
        _ => "unknown",
    }
}

pub fn parse(data: &[u8]) -> Result<BzImage<'_>, String> {
    if data.len() < HEADER_END || !looks_like(data) {
        return Err("not a bzImage (no setup header)".into());
    }
    let protocol = u16_at(data, PROTOCOL);
    if protocol < 0x208 {
        return Err(format!(
            "boot protocol {}.{:02} predates payload_offset (2.08): too old",
            protocol >> 8,
            protocol & 0xff
        ));
    }
    // 0 setup sectors means 4 (boot protocol).
    let setup_sects = match data[SETUP_SECTS] {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512;
    let off = start + u32_at(data, PAYLOAD_OFFSET) as usize;
    let len = u32_at(data, PAYLOAD_LENGTH) as usize;
    let payload = off
        .checked_add(len)
        .and_then(|end| data.get(off..end))
        .ok_or("the bzImage payload lies past the end of the file")?;
    if !payload.starts_with(XZ_MAGIC) {
        return Err(format!(
            "the bzImage payload is {}-compressed, not XZ (only XZ kernels are supported)",
            compression(payload)
        ));
    }
    Ok(BzImage {
        release: header_release(data),
        payload,
    })
}

/// The header's `kernel_version` points (from 0x200) to a NUL-terminated
/// string `<release> (<builder>) #<n> ...`.
fn header_release(data: &[u8]) -> Option<String> {
    let at = usize::from(u16_at(data, KERNEL_VERSION));
    if at == 0 {
        return None;
    }
    let s = data.get(0x200 + at..)?;
    let end = s.iter().position(|&b| b == 0 || b == b' ')?;
    let word = &s[..end];
    (!word.is_empty() && word.iter().all(u8::is_ascii_graphic))
        .then(|| String::from_utf8_lossy(word).into_owned())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A bzImage-shaped file: a setup header (1 setup sector) naming
    /// `release`, and `payload` where the header says.
    pub fn image(release: &str, payload: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 0x400 + 0x100];
        d[SETUP_SECTS] = 1;
        d[HDRS.0..HDRS.0 + 4].copy_from_slice(HDRS.1);
        d[PROTOCOL..PROTOCOL + 2].copy_from_slice(&0x20fu16.to_le_bytes());
        let version = format!("{release} (builder@example) #1 SMP\0");
        d[0x300..0x300 + version.len()].copy_from_slice(version.as_bytes());
        d[KERNEL_VERSION..KERNEL_VERSION + 2].copy_from_slice(&0x100u16.to_le_bytes());
        // The payload 0x80 bytes into the protected-mode code at 0x400.
        d[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&0x80u32.to_le_bytes());
        d[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4]
            .copy_from_slice(&(payload.len() as u32).to_le_bytes());
        d.truncate(0x480);
        d.extend_from_slice(payload);
        d.extend_from_slice(b"trailer");
        d
    }

    #[test]
    fn the_header_locates_the_payload_and_names_the_release() {
        let payload = [XZ_MAGIC, b"rest of stream"].concat();
        let d = image("6.1.0-57-amd64", &payload);
        let bz = parse(&d).unwrap();
        assert_eq!(bz.release.as_deref(), Some("6.1.0-57-amd64"));
        assert_eq!(bz.payload, &payload[..]);
    }

    #[test]
    fn other_compressions_and_bad_headers_are_refused() {
        let d = image("6.1.0", &[0x1f, 0x8b, 8, 0]);
        assert_eq!(
            parse(&d).err().unwrap(),
            "the bzImage payload is gzip-compressed, not XZ (only XZ kernels are supported)"
        );
        let mut d = image("6.1.0", XZ_MAGIC);
        d[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&0x10_0000u32.to_le_bytes());
        assert_eq!(
            parse(&d).err().unwrap(),
            "the bzImage payload lies past the end of the file"
        );
        let mut d = image("6.1.0", XZ_MAGIC);
        d[PROTOCOL..PROTOCOL + 2].copy_from_slice(&0x204u16.to_le_bytes());
        assert!(parse(&d).err().unwrap().contains("too old"));
        assert!(!looks_like(b"\x7fELF"));
    }
}
