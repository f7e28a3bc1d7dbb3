//! The mechanism the stub provides: a window of slots that show target
//! frames. All policy (which frame where, when to unmap) is the cache's.

use crate::MapError;

/// A fixed window of the stub's own GFNs ("slots" `0..slots()`), each of
/// which can show one frame of the target.
///
/// The stub implements this with one `XENMEM_add_to_physmap_batch` entry
/// (`space = XENMAPSPACE_GMFN_FOREIGN`, `foreign_domid` = the target,
/// `idxs[0]` = target GFN, `gpfns[0]` = the slot's GFN) per `map`, and
/// `XENMEM_remove_from_physmap` per `unmap`, turning the per-frame result
/// with [`MapError::check`]. The slot GFNs should be unpopulated in the
/// stub's p2m: Xen frees a RAM page it finds at a GFN it maps over.
///
/// Contract, kept by [`MapCache`](crate::MapCache), so the implementation
/// need not check it:
/// - `map` is only called on an empty slot (never mapped, or unmapped);
///   `unmap` only on a slot whose last `map` succeeded.
/// - `read`/`write` only touch a slot whose last `map` succeeded, with
///   `offset + buf.len() <= 4096`; `read_u64` has `offset % 8 == 0`.
///
/// The frames are shared with running target vCPUs, so the implementation
/// copies bytes in and out and never hands out references into a slot.
pub trait FrameWindow {
    /// Number of slots in the window.
    fn slots(&self) -> usize;

    /// Show target frame `gfn` in `slot`. On error the slot is empty.
    fn map(&mut self, slot: usize, gfn: u64) -> Result<(), MapError>;

    /// Empty `slot`, dropping Xen's reference on the target frame. The
    /// cache counts an error and considers the slot empty all the same
    /// (a later map at the same GFN replaces whatever Xen left there).
    fn unmap(&mut self, slot: usize) -> Result<(), MapError>;

    /// Copy `buf.len()` bytes from `offset` in the frame shown in `slot`.
    fn read(&self, slot: usize, offset: usize, buf: &mut [u8]);

    /// Copy `buf` to `offset` in the frame shown in `slot`.
    fn write(&mut self, slot: usize, offset: usize, buf: &[u8]);

    /// The little-endian u64 at the 8-aligned `offset` (a page-table
    /// entry). Override with one aligned 8-byte load: a target vCPU may be
    /// rewriting the entry, and a torn read could join two halves that never
    /// coexisted (an aligned quadword access is atomic: Intel SDM Vol. 3A,
    /// "Guaranteed Atomic Operations").
    fn read_u64(&self, slot: usize, offset: usize) -> u64 {
        let mut b = [0u8; 8];
        self.read(slot, offset, &mut b);
        u64::from_le_bytes(b)
    }
}
