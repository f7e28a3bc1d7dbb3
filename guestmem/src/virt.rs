//! Guest-virtual reads: translate per page, read per frame.

use crate::{FrameWindow, MapCache, PagingRegs, VirtError, VirtFault};

impl<W: FrameWindow, const N: usize> MapCache<W, N> {
    /// Fill `buf` from guest-virtual `gva` on, translating once per page
    /// (4 KiB, 2 MiB or 1 GiB, as the tables say) and crossing pages. On
    /// error the first `err.done` bytes of `buf` hold target data and
    /// `err.gva` is the first GVA that could not be read. Rights are not
    /// checked: this is the introspector reading, not the guest.
    pub fn read_virt(
        &mut self,
        regs: &PagingRegs,
        gva: u64,
        buf: &mut [u8],
    ) -> Result<(), VirtError> {
        let mut done = 0usize;
        // Each iteration consumes at least one byte (a page is never empty),
        // so this ends after at most `buf.len()` translations.
        while done < buf.len() {
            let fail = |done: usize, cur: u64, cause| VirtError {
                gva: cur,
                done,
                cause,
            };
            let Some(cur) = gva.checked_add(done as u64) else {
                // Report the byte past 2^64 as its wrapped address.
                return Err(fail(done, gva.wrapping_add(done as u64), VirtFault::Wrap));
            };
            let t = self
                .translate(regs, cur)
                .map_err(|e| fail(done, cur, VirtFault::Walk(e)))?;
            let left_in_page = (t.size.bytes() - (cur & (t.size.bytes() - 1))) as usize;
            let n = left_in_page.min(buf.len() - done);
            if let Err(e) = self.read_phys(t.gpa, &mut buf[done..done + n]) {
                let at = done + e.done;
                // (Never `AboveMaxPhysAddr`: a translated GPA is below
                // MAXPHYADDR and the piece stays inside its page.)
                let cause = VirtFault::Phys {
                    gpa: e.gpa,
                    cause: e.cause,
                };
                return Err(fail(at, cur + e.done as u64, cause));
            }
            done += n;
        }
        Ok(())
    }
}
