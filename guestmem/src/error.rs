//! Every way an access to the target's memory can fail, each saying where.

use core::fmt;
use xen_abi::XenError;

/// Why a target frame could not be shown in a window slot (or a slot could
/// not be emptied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Nothing at that GFN: never populated, or ballooned out.
    Hole,
    /// Not RAM: emulated or passed-through MMIO, or a special page.
    NotRam,
    /// Paged out (or being paged back in) by a Xen pager: may work later.
    PagedOut,
    /// Xen refused the frame as not mappable RAM without saying why
    /// (`EINVAL`): a hole, MMIO, a shared or a paged-out frame.
    Unmappable,
    /// The stub may not map the target's frames: FLASK (`EACCES`), dummy
    /// XSM without privilege over the target, or a stub configuration Xen
    /// will not give foreign mappings to (`EPERM`).
    Denied(XenError),
    /// The target domain no longer exists (`ESRCH`).
    NoDomain,
    /// Any other errno (`ENOMEM`: Xen could not grow the stub's p2m;
    /// `EFAULT`: the stub passed a bad handle; ...).
    Other(XenError),
}

impl MapError {
    /// The error for one nonzero per-frame result of
    /// `XENMEM_add_to_physmap_batch` (`errs[i]`, negative as Xen writes it;
    /// a positive errno is taken the same way), or of
    /// `XENMEM_remove_from_physmap`.
    ///
    /// What Xen 4.17 means by each (x86 `p2m_add_foreign`, common
    /// `xenmem_add_to_physmap_batch`), and where the mapping is a judgement:
    ///
    /// | errno | variant | meaning |
    /// | --- | --- | --- |
    /// | `ENOENT` | `PagedOut` | Xen's word for "paged out, page-in started, retry" on the foreign-mapping paths (PV `mmu_update`, privcmd); `add_to_physmap_batch` itself gives `EINVAL` for that on 4.17, so this is for other callers and later Xens |
    /// | `EINVAL` | `Unmappable` | the foreign GFN is not plain RAM: unpopulated, MMIO (on x86 HVM an unpopulated GFN *is* `p2m_mmio_dm`), shared or paged out; the errno cannot tell which — a stub that cares asks `HVMOP_get_mem_type` and reports `Hole`/`NotRam`/`PagedOut` itself |
    /// | `EACCES` | `Denied` | FLASK refused `map_gmfn_foreign` |
    /// | `EPERM` | `Denied` | dummy XSM refused it, or the stub has altp2m/nested HVM (no foreign mappings for such domains) |
    /// | `ESRCH` | `NoDomain` | no domain with the target's domid |
    /// | other | `Other` | e.g. `ENOMEM`, `EFAULT`, `EOPNOTSUPP` |
    ///
    /// `0` is not an error; use [`MapError::check`] for a raw result.
    pub fn from_xen_errno(errno: i32) -> MapError {
        // `unsigned_abs` keeps `i32::MIN` from overflowing; such a value is
        // no errno and lands in `Other`.
        let e = XenError(i32::try_from(errno.unsigned_abs()).unwrap_or(i32::MAX));
        if e == XenError::ENOENT {
            MapError::PagedOut
        } else if e == XenError::EINVAL {
            MapError::Unmappable
        } else if e.is_denial() {
            MapError::Denied(e)
        } else if e == XenError::ESRCH {
            MapError::NoDomain
        } else {
            MapError::Other(e)
        }
    }

    /// `Ok` for a zero per-frame result, else [`MapError::from_xen_errno`].
    pub fn check(ret: i32) -> Result<(), MapError> {
        if ret == 0 {
            Ok(())
        } else {
            Err(MapError::from_xen_errno(ret))
        }
    }

    /// Whether trying the same frame again later can succeed without the
    /// target or the stub's rights changing.
    pub fn is_transient(self) -> bool {
        matches!(self, MapError::PagedOut)
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Hole => f.write_str("hole (no frame at this gfn)"),
            MapError::NotRam => f.write_str("not RAM (MMIO or special page)"),
            MapError::PagedOut => f.write_str("paged out"),
            MapError::Unmappable => f.write_str("not mappable RAM (-EINVAL)"),
            MapError::Denied(e) => write!(f, "denied ({e})"),
            MapError::NoDomain => f.write_str("target domain gone (-ESRCH)"),
            MapError::Other(e) => write!(f, "map failed ({e})"),
        }
    }
}

/// Why a physical access stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysFault {
    /// The frame holding `gpa` could not be mapped.
    Map(MapError),
    /// `gpa` is at or above `1 << 52` (no x86-64 guest has such addresses).
    AboveMaxPhysAddr,
}

/// A physical read or write that stopped at `gpa` after `done` bytes: the
/// first `done` bytes of the buffer were transferred, the rest were not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysError {
    /// First GPA not transferred.
    pub gpa: u64,
    /// Bytes transferred before it.
    pub done: usize,
    pub cause: PhysFault,
}

impl fmt::Display for PhysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gpa {:#x} after {} bytes: {}",
            self.gpa, self.done, self.cause
        )
    }
}

impl fmt::Display for PhysFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhysFault::Map(e) => write!(f, "{e}"),
            PhysFault::AboveMaxPhysAddr => f.write_str("above MAXPHYADDR (52 bits)"),
        }
    }
}

/// Why a VA → PA walk failed. `level` is the paging-structure level whose
/// entry was at fault: 5 = PML5E, 4 = PML4E, 3 = PDPTE, 2 = PDE, 1 = PTE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// EFER.LMA or CR4.PAE is clear: the target is not in long mode and
    /// this walker does not do 32-bit or PAE-legacy paging.
    NotLongMode,
    /// CR3 has bits set that cannot be part of a long-mode CR3 (address
    /// bits at or above MAXPHYADDR, or bit 63 with CR4.PCIDE = 0).
    BadCr3 { cr3: u64 },
    /// Bits 63..48 (57 with LA57) of the VA are not copies of bit 47 (56).
    NonCanonical { gva: u64 },
    /// The entry at `level` has P = 0.
    NotPresent { level: u8, entry: u64 },
    /// The entry at `level` sets a reserved bit (the CPU would raise #PF
    /// with RSVD = 1).
    ReservedBits { level: u8, entry: u64 },
    /// The table holding the entry at `level` could not be mapped.
    TableUnreadable { level: u8, gpa: u64, err: MapError },
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WalkError::NotLongMode => f.write_str("target not in long mode"),
            WalkError::BadCr3 { cr3 } => write!(f, "bad cr3 {cr3:#x}"),
            WalkError::NonCanonical { gva } => write!(f, "non-canonical gva {gva:#x}"),
            WalkError::NotPresent { level, entry } => {
                write!(f, "not present at level {level} (entry {entry:#x})")
            }
            WalkError::ReservedBits { level, entry } => {
                write!(f, "reserved bits at level {level} (entry {entry:#x})")
            }
            WalkError::TableUnreadable { level, gpa, err } => {
                write!(f, "level {level} table at gpa {gpa:#x} unreadable: {err}")
            }
        }
    }
}

/// Why a virtual access stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtFault {
    /// `gva` does not translate.
    Walk(WalkError),
    /// `gva` translates to `gpa`, which could not be read.
    Phys { gpa: u64, cause: PhysFault },
    /// The range runs past the top of the 64-bit address space.
    Wrap,
}

/// A virtual read that stopped at `gva` after `done` bytes: the first `done`
/// bytes of the buffer hold target data, the rest were not touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtError {
    /// First GVA not read.
    pub gva: u64,
    /// Bytes read before it.
    pub done: usize,
    pub cause: VirtFault,
}

impl fmt::Display for VirtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gva {:#x} after {} bytes: ", self.gva, self.done)?;
        match self.cause {
            VirtFault::Walk(e) => write!(f, "{e}"),
            VirtFault::Phys { gpa, cause } => write!(f, "gpa {gpa:#x}: {cause}"),
            VirtFault::Wrap => f.write_str("range wraps past 2^64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        assert_eq!(MapError::from_xen_errno(-2), MapError::PagedOut);
        assert_eq!(MapError::from_xen_errno(-22), MapError::Unmappable);
        assert_eq!(MapError::from_xen_errno(22), MapError::Unmappable);
        assert_eq!(
            MapError::from_xen_errno(-13),
            MapError::Denied(XenError::EACCES)
        );
        assert_eq!(
            MapError::from_xen_errno(-1),
            MapError::Denied(XenError::EPERM)
        );
        assert_eq!(MapError::from_xen_errno(-3), MapError::NoDomain);
        assert_eq!(
            MapError::from_xen_errno(-12),
            MapError::Other(XenError::ENOMEM)
        );
        assert_eq!(
            MapError::from_xen_errno(i32::MIN),
            MapError::Other(XenError(i32::MAX))
        );
        assert_eq!(MapError::check(0), Ok(()));
        assert_eq!(MapError::check(-3), Err(MapError::NoDomain));
        assert!(MapError::PagedOut.is_transient() && !MapError::Hole.is_transient());
    }
}
