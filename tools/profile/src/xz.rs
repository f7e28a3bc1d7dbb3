//! One XZ stream, decoded in memory with xz4rust (pure Rust, with the x86
//! BCJ filter Linux's `xz_wrap.sh` compresses x86 kernels with).

use xz4rust::{XzDecoder, XzError, XzNextBlockResult};

/// Linux compresses with a 32 MiB dictionary; the decoder grows up to this.
const MAX_DICT: usize = 64 << 20;
/// A vmlinux is 50-100 MiB; more than this is not a kernel but a bomb.
const MAX_OUTPUT: usize = 1 << 30;

/// Decodes the XZ stream at the start of `input`, ignoring what follows
/// it (a bzImage appends the uncompressed size).
pub fn decode_one_stream(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut dec = XzDecoder::in_heap_with_alloc_dict_size(1 << 20, MAX_DICT);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut pos = 0;
    loop {
        // The whole input is offered at every call: "needs more input"
        // can only mean that it ends inside the stream.
        let r = dec.decode(&input[pos..], &mut chunk).map_err(|e| match e {
            XzError::NeedsLargerInputBuffer => "the XZ payload is truncated".to_string(),
            e => format!("the XZ payload does not decode: {e:?}"),
        })?;
        pos += r.input_consumed();
        out.extend_from_slice(&chunk[..r.output_produced()]);
        if out.len() > MAX_OUTPUT {
            return Err(format!(
                "the XZ payload decodes to more than {} MiB",
                MAX_OUTPUT >> 20
            ));
        }
        match r {
            XzNextBlockResult::EndOfStream(..) => return Ok(out),
            XzNextBlockResult::NeedMoreData(..) if !r.made_progress() => {
                return Err("the XZ payload is truncated".into())
            }
            XzNextBlockResult::NeedMoreData(..) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_one_stream;

    #[test]
    fn garbage_and_truncation_are_refused() {
        assert!(decode_one_stream(b"not xz at all")
            .unwrap_err()
            .starts_with("the XZ payload does not decode"));
        // A valid stream header and nothing after it.
        let header = [
            0xfd, b'7', b'z', b'X', b'Z', 0, 0, 1, 0x69, 0x22, 0xde, 0x36,
        ];
        assert_eq!(
            decode_one_stream(&header).unwrap_err(),
            "the XZ payload is truncated"
        );
        let stream = include_bytes!("../tests/data/bcj.xz");
        assert_eq!(
            decode_one_stream(&stream[..stream.len() / 2]).unwrap_err(),
            "the XZ payload is truncated"
        );
        let mut corrupt = stream.to_vec();
        corrupt[100] ^= 0x55;
        assert!(decode_one_stream(&corrupt)
            .unwrap_err()
            .starts_with("the XZ payload does not decode"));
    }
}
