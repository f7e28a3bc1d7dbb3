//! x86-64 long-mode VA → GPA translation by reading the target's page
//! tables through the cache (Intel SDM Vol. 3A §4.5 "4-level paging and
//! 5-level paging"; AMD APM Vol. 2 §5.3 "Long-Mode Page Translation").
//!
//! Read-only: the walker never sets Accessed/Dirty bits, which a CPU walk
//! would. Effective rights are the raw combination of the entries' R/W,
//! U/S and XD bits; CR0.WP, SMEP/SMAP and protection keys are the caller's
//! to apply (SDM §4.6).

use crate::{FrameWindow, MapCache, WalkError, PAGE_SHIFT};

const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PS: u64 = 1 << 7;
const XD: u64 = 1 << 63;

const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const CR4_PCIDE: u64 = 1 << 17;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

/// CR3 bit 63: with CR4.PCIDE = 1 a MOV to CR3 takes it as "do not flush
/// this PCID" and does not store it (SDM §4.10.4.1); a value reported from
/// a CR3 write can carry it.
const CR3_NOFLUSH: u64 = 1 << 63;
/// CR3 bits 62 and 61: LAM_U48 / LAM_U57 on CPUs with linear-address
/// masking. Judgement: ignored (not an address, and refusing them would make
/// a LAM guest untranslatable); their effect on user pointers is not modelled.
const CR3_LAM: u64 = (1 << 62) | (1 << 61);

/// PDPTE bits 29:13 of a 1 GiB page (bit 12 is PAT), PDE bits 20:13 of a
/// 2 MiB page: reserved (the 1 GiB and 2 MiB entry formats in SDM §4.5).
const RSVD_1G: u64 = 0x3fff_e000;
const RSVD_2M: u64 = 0x001f_e000;

/// The registers a walk depends on, as the target's vCPU has them (e.g.
/// from a vm_event request's `regs.x86`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagingRegs {
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    /// The target's MAXPHYADDR (CPUID 0x80000008 EAX bits 7:0): entry address
    /// bits at or above it are reserved. `new` assumes 52, the widest, which
    /// accepts every entry a narrower CPU accepts.
    pub maxphyaddr: u8,
}

impl PagingRegs {
    pub fn new(cr3: u64, cr4: u64, efer: u64) -> Self {
        PagingRegs {
            cr3,
            cr4,
            efer,
            maxphyaddr: crate::MAX_PHYS_BITS as u8,
        }
    }

    /// With the target's real MAXPHYADDR, clamped to 32..=52.
    pub fn with_maxphyaddr(self, bits: u8) -> Self {
        PagingRegs {
            maxphyaddr: bits.clamp(32, crate::MAX_PHYS_BITS as u8),
            ..self
        }
    }

    /// 5 with CR4.LA57, else 4.
    pub fn levels(&self) -> u8 {
        if self.cr4 & CR4_LA57 != 0 {
            5
        } else {
            4
        }
    }

    /// The PCID in CR3 bits 11:0, only when CR4.PCIDE = 1 (otherwise bits 3
    /// and 4 are PWT/PCD and the rest ignored; SDM §4.5.2 CR3 tables).
    pub fn pcid(&self) -> Option<u16> {
        (self.cr4 & CR4_PCIDE != 0).then_some((self.cr3 & 0xfff) as u16)
    }

    fn nxe(&self) -> bool {
        self.efer & EFER_NXE != 0
    }

    fn maxphyaddr(&self) -> u32 {
        u32::from(self.maxphyaddr).clamp(32, crate::MAX_PHYS_BITS)
    }

    /// Bits `maxphyaddr-1 .. 12`: where entries and CR3 hold a frame address.
    fn addr_mask(&self) -> u64 {
        ((1u64 << self.maxphyaddr()) - 1) & !0xfff
    }

    /// The top-level table's GPA: CR3 bits M-1..12, whatever bits 11:0 are
    /// (PCID, or PWT/PCD and ignored bits).
    fn root(&self) -> Result<u64, WalkError> {
        if self.efer & EFER_LMA == 0 || self.cr4 & CR4_PAE == 0 {
            return Err(WalkError::NotLongMode);
        }
        let mut cr3 = self.cr3 & !CR3_LAM;
        if self.cr4 & CR4_PCIDE != 0 {
            cr3 &= !CR3_NOFLUSH;
        }
        // Bits 63 (when not the no-flush bit) and 60..M are reserved
        // (CR3 tables of SDM §4.5.2).
        if cr3 & !self.addr_mask() & !0xfff != 0 {
            return Err(WalkError::BadCr3 { cr3: self.cr3 });
        }
        Ok(cr3 & self.addr_mask())
    }

    /// Reserved bits of a present entry at `level` (SDM §4.5, entry-format
    /// tables; AMD APM §5.3.3). Follows Intel where AMD is stricter (AMD
    /// has PML4E bit 8 must-be-zero, Intel ignores it): accepting what one
    /// vendor accepts can only let introspection see more, never crash.
    fn reserved(&self, level: u8, entry: u64) -> u64 {
        let mut rsvd = ((1u64 << crate::MAX_PHYS_BITS) - 1) & !((1u64 << self.maxphyaddr()) - 1);
        if !self.nxe() {
            // XD is reserved when EFER.NXE = 0 (SDM §4.5.4).
            rsvd |= XD;
        }
        match level {
            // No large pages above 1 GiB.
            5 | 4 => rsvd |= PS,
            3 if entry & PS != 0 => rsvd |= RSVD_1G,
            2 if entry & PS != 0 => rsvd |= RSVD_2M,
            _ => {}
        }
        entry & rsvd
    }
}

/// Size of the page a VA lands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageSize {
    Size4K,
    Size2M,
    Size1G,
}

impl PageSize {
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 1 << 12,
            PageSize::Size2M => 1 << 21,
            PageSize::Size1G => 1 << 30,
        }
    }

    /// Level of the entry that maps such a page (1 = PTE, 2 = PDE, 3 = PDPTE).
    pub const fn level(self) -> u8 {
        match self {
            PageSize::Size4K => 1,
            PageSize::Size2M => 2,
            PageSize::Size1G => 3,
        }
    }
}

/// A successful walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub gpa: u64,
    pub size: PageSize,
    /// Level of the leaf entry (`size.level()`).
    pub level: u8,
    /// R/W = 1 at every level (SDM §4.6.1: writes need it at all levels).
    pub writable: bool,
    /// U/S = 1 at every level.
    pub user: bool,
    /// XD = 1 at some level; always false when EFER.NXE = 0.
    pub nx: bool,
    /// The leaf entry as read (PAT, G, D, protection key are in it).
    pub entry: u64,
}

impl<W: FrameWindow, const N: usize> MapCache<W, N> {
    /// Translate `gva` with the target's paging registers.
    ///
    /// At most `regs.levels()` (≤ 5) entry reads, by construction: one read
    /// per iteration of a loop over the upper levels counting down from the
    /// top to 2, then one for the PTE; no other loop and no recursion. The
    /// level goes down whatever the entry points at, so a table that points
    /// at itself or at another walk's table ends the walk all the same.
    pub fn translate(&mut self, regs: &PagingRegs, gva: u64) -> Result<Translation, WalkError> {
        let mut table = regs.root()?;
        let top = regs.levels();
        // Canonical: bits 63..(47 or 56) all equal (SDM Vol. 1 §3.3.7.1).
        let shift = 64 - (u32::from(top) * 9 + PAGE_SHIFT);
        if ((gva << shift) as i64 >> shift) as u64 != gva {
            return Err(WalkError::NonCanonical { gva });
        }
        let mut rights = Rights {
            w: true,
            u: true,
            nx: false,
        };
        for level in (2..=top).rev() {
            let entry = self.entry(regs, table, gva, level)?;
            rights.add(entry, regs.nxe());
            if entry & PS != 0 {
                // `entry` passed the reserved check, so PS is only set here
                // at level 3 or 2.
                let size = if level == 3 {
                    PageSize::Size1G
                } else {
                    PageSize::Size2M
                };
                return Ok(leaf(regs, entry, gva, size, rights));
            }
            table = entry & regs.addr_mask();
        }
        let entry = self.entry(regs, table, gva, 1)?;
        rights.add(entry, regs.nxe());
        Ok(leaf(regs, entry, gva, PageSize::Size4K, rights))
    }

    /// Read the entry for `gva` at `level` in the table at `table`, and
    /// check it is present and has no reserved bit set. Exactly one read.
    fn entry(
        &mut self,
        regs: &PagingRegs,
        table: u64,
        gva: u64,
        level: u8,
    ) -> Result<u64, WalkError> {
        let index = (gva >> (PAGE_SHIFT + 9 * (u32::from(level) - 1))) & 0x1ff;
        let gpa = table | (index * 8);
        let entry = self
            .read_u64(gpa)
            .map_err(|err| WalkError::TableUnreadable { level, gpa, err })?;
        // With P = 0 every other bit is ignored, reserved ones included.
        if entry & P == 0 {
            return Err(WalkError::NotPresent { level, entry });
        }
        if regs.reserved(level, entry) != 0 {
            return Err(WalkError::ReservedBits { level, entry });
        }
        Ok(entry)
    }
}

/// Rights combined over the levels walked so far (SDM §4.6.1).
#[derive(Clone, Copy)]
struct Rights {
    w: bool,
    u: bool,
    nx: bool,
}

impl Rights {
    fn add(&mut self, entry: u64, nxe: bool) {
        self.w &= entry & RW != 0;
        self.u &= entry & US != 0;
        self.nx |= nxe && entry & XD != 0;
    }
}

fn leaf(regs: &PagingRegs, entry: u64, gva: u64, size: PageSize, r: Rights) -> Translation {
    let offset_mask = size.bytes() - 1;
    Translation {
        // Clearing the offset bits also drops bit 12 (PAT) of large pages.
        gpa: (entry & regs.addr_mask() & !offset_mask) | (gva & offset_mask),
        size,
        level: size.level(),
        writable: r.w,
        user: r.u,
        nx: r.nx,
        entry,
    }
}
