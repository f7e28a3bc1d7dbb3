//! Guest-physical reads and writes over the cache, frame by frame.

use crate::{FrameWindow, MapCache, PhysError, PhysFault, GPA_LIMIT, PAGE_SHIFT, PAGE_SIZE};

/// Splits `len` bytes from `gpa` into per-frame pieces:
/// `(gpa of the piece, offset in the buffer, length)`. Stops at `GPA_LIMIT`
/// and reports the first GPA it refuses; pieces never exceed a frame.
fn pieces(gpa: u64, len: usize) -> impl Iterator<Item = Result<(u64, usize, usize), u64>> {
    let mut done = 0usize;
    core::iter::from_fn(move || {
        if done == len {
            return None;
        }
        // `done <= len <= isize::MAX`, so this cannot overflow below the
        // limit check; above it we stop (and a wrap past 2^64 is refused
        // by the same check as a saturated value).
        let cur = gpa.saturating_add(done as u64);
        if cur >= GPA_LIMIT {
            done = len;
            return Some(Err(cur));
        }
        let in_frame = PAGE_SIZE - (cur as usize & (PAGE_SIZE - 1));
        let n = in_frame.min(len - done);
        let start = done;
        done += n;
        Some(Ok((cur, start, n)))
    })
}

impl<W: FrameWindow, const N: usize> MapCache<W, N> {
    /// Fill `buf` from guest-physical `gpa` on, crossing frames. On error
    /// the first `err.done` bytes of `buf` hold target data and `err.gpa`
    /// is the first GPA that could not be read; no partial read is ever
    /// reported as success.
    pub fn read_phys(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), PhysError> {
        for p in pieces(gpa, buf.len()) {
            let (cur, start, n) = p.map_err(|bad| above(bad, gpa))?;
            let off = cur as usize & (PAGE_SIZE - 1);
            self.read_frame(cur >> PAGE_SHIFT, off, &mut buf[start..start + n])
                .map_err(|e| PhysError {
                    gpa: cur,
                    done: start,
                    cause: PhysFault::Map(e),
                })?;
        }
        Ok(())
    }

    /// Write `buf` to guest-physical `gpa` on, crossing frames. On error
    /// the first `err.done` bytes were written and nothing after them.
    pub fn write_phys(&mut self, gpa: u64, buf: &[u8]) -> Result<(), PhysError> {
        for p in pieces(gpa, buf.len()) {
            let (cur, start, n) = p.map_err(|bad| above(bad, gpa))?;
            let off = cur as usize & (PAGE_SIZE - 1);
            self.write_frame(cur >> PAGE_SHIFT, off, &buf[start..start + n])
                .map_err(|e| PhysError {
                    gpa: cur,
                    done: start,
                    cause: PhysFault::Map(e),
                })?;
        }
        Ok(())
    }
}

fn above(bad: u64, gpa: u64) -> PhysError {
    PhysError {
        gpa: bad,
        // Every byte from `gpa` up to `bad` was transferred.
        done: (bad - gpa) as usize,
        cause: PhysFault::AboveMaxPhysAddr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn pieces_split_at_frames_and_stop_at_the_limit() {
        let v: Vec<_> = pieces(0xff8, 0x1010).collect();
        assert_eq!(
            v,
            [
                Ok((0xff8, 0, 8)),
                Ok((0x1000, 8, 0x1000)),
                Ok((0x2000, 0x1008, 8))
            ]
        );
        let v: Vec<_> = pieces(GPA_LIMIT - 4, 10).collect();
        assert_eq!(v, [Ok((GPA_LIMIT - 4, 0, 4)), Err(GPA_LIMIT)]);
        assert_eq!(pieces(u64::MAX, 1).collect::<Vec<_>>(), [Err(u64::MAX)]);
        assert_eq!(pieces(5, 0).count(), 0);
    }
}
