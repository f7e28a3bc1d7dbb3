//! One direction of the shared page as a byte ring: 1024 data bytes and two
//! free-running `u32` indices (`cons`, `prod`), masked on access, so
//! `prod - cons` (wrapping) is the number of unread bytes and a full ring
//! is distinguishable from an empty one.
//!
//! The other side owns one index and may be buggy: if `prod - cons` is ever
//! more than the ring size the indices are corrupt and we return
//! [`RingError`] instead of reading or writing out of step.

use core::sync::atomic::{fence, AtomicU32, AtomicU8, Ordering};

use crate::wire::{Interface, RING_SIZE};

/// The indices of a ring make no sense (`prod - cons > RING_SIZE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingError {
    pub cons: u32,
    pub prod: u32,
}

/// Ring offset of a free-running index.
pub fn mask(idx: u32) -> usize {
    (idx & (RING_SIZE - 1)) as usize
}

/// Bytes the consumer has not read yet, or an error for corrupt indices.
pub fn used(cons: u32, prod: u32) -> Result<u32, RingError> {
    let n = prod.wrapping_sub(cons);
    if n > RING_SIZE {
        Err(RingError { cons, prod })
    } else {
        Ok(n)
    }
}

/// Bytes the producer may still write.
pub fn free(cons: u32, prod: u32) -> Result<u32, RingError> {
    used(cons, prod).map(|n| RING_SIZE - n)
}

/// A view of one ring of the page.
pub struct RingView<'a> {
    data: &'a [AtomicU8; RING_SIZE as usize],
    cons: &'a AtomicU32,
    prod: &'a AtomicU32,
}

impl<'a> RingView<'a> {
    /// The request ring (guest produces, daemon consumes).
    pub fn requests(page: &'a Interface) -> Self {
        RingView {
            data: &page.req,
            cons: &page.req_cons,
            prod: &page.req_prod,
        }
    }

    /// The response ring (daemon produces, guest consumes).
    pub fn responses(page: &'a Interface) -> Self {
        RingView {
            data: &page.rsp,
            cons: &page.rsp_cons,
            prod: &page.rsp_prod,
        }
    }

    /// Producer side: copies as much of `src` as fits; returns how many
    /// bytes were written (0 when full). The index is published after the
    /// bytes (release), and the consumer's index is read before we reuse
    /// the space it freed (acquire).
    pub fn write(&self, src: &[u8]) -> Result<usize, RingError> {
        let cons = self.cons.load(Ordering::Acquire);
        let prod = self.prod.load(Ordering::Relaxed);
        let n = (free(cons, prod)? as usize).min(src.len());
        for (i, &b) in src[..n].iter().enumerate() {
            self.data[mask(prod.wrapping_add(i as u32))].store(b, Ordering::Relaxed);
        }
        fence(Ordering::Release);
        self.prod
            .store(prod.wrapping_add(n as u32), Ordering::Release);
        Ok(n)
    }

    /// Consumer side: copies up to `dst.len()` unread bytes; returns how
    /// many (0 when empty). Bytes are read after the producer's index
    /// (acquire), and our index is published only after they are copied.
    pub fn read(&self, dst: &mut [u8]) -> Result<usize, RingError> {
        let prod = self.prod.load(Ordering::Acquire);
        let cons = self.cons.load(Ordering::Relaxed);
        let n = (used(cons, prod)? as usize).min(dst.len());
        for (i, d) in dst[..n].iter_mut().enumerate() {
            *d = self.data[mask(cons.wrapping_add(i as u32))].load(Ordering::Relaxed);
        }
        fence(Ordering::Release);
        self.cons
            .store(cons.wrapping_add(n as u32), Ordering::Release);
        Ok(n)
    }

    /// Unread bytes (for tests and diagnostics).
    pub fn pending(&self) -> Result<u32, RingError> {
        used(
            self.cons.load(Ordering::Acquire),
            self.prod.load(Ordering::Acquire),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec::Vec;

    #[test]
    fn index_arithmetic_wraps() {
        assert_eq!(used(0, 0), Ok(0));
        assert_eq!(used(u32::MAX - 1, 3), Ok(5));
        assert_eq!(free(u32::MAX, 1023), Ok(0));
        assert_eq!(used(5, 4), Err(RingError { cons: 5, prod: 4 }));
        assert_eq!(
            used(0, 1025),
            Err(RingError {
                cons: 0,
                prod: 1025
            })
        );
        assert_eq!(mask(1024 + 3), 3);
        assert_eq!(mask(u32::MAX), 1023);
    }

    #[test]
    fn fill_drain_across_the_u32_wrap() {
        let page = Box::new(Interface::new());
        let start = u32::MAX - 700;
        page.req_cons.store(start, Ordering::Relaxed);
        page.req_prod.store(start, Ordering::Relaxed);
        let ring = RingView::requests(&page);
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let mut sent = 0;
        while out.len() < data.len() {
            sent += ring.write(&data[sent..]).unwrap();
            assert!(ring.pending().unwrap() <= RING_SIZE);
            let mut buf = [0u8; 300];
            let n = ring.read(&mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
        assert_eq!(ring.write(&[]).unwrap(), 0);
    }

    #[test]
    fn full_ring_takes_nothing_and_corrupt_indices_are_refused() {
        let page = Box::new(Interface::new());
        let ring = RingView::requests(&page);
        assert_eq!(ring.write(&[1u8; 2000]).unwrap(), 1024);
        assert_eq!(ring.write(&[1u8; 10]).unwrap(), 0);
        page.req_cons.store(7, Ordering::Relaxed);
        page.req_prod.store(5000, Ordering::Relaxed);
        assert!(ring.write(&[1]).is_err());
        assert!(ring.read(&mut [0u8; 4]).is_err());
        // Nothing moved.
        assert_eq!(page.req_prod.load(Ordering::Relaxed), 5000);
        assert_eq!(page.req_cons.load(Ordering::Relaxed), 7);
    }
}
