//! Host model for tests, the bench and the fuzz target (feature `sim`):
//!
//! - [`SimTarget`]: the target's memory — a p2m from GFN to a frame ("mfn")
//!   or to an injected fault (hole, MMIO, paged out, denied, ...).
//! - [`SimWindow`]: the stub's frame window over it. Like a real foreign
//!   mapping, a slot keeps the *frame* it was given: if the target's p2m
//!   later moves the GFN ([`SimTarget::remap`]), the slot goes stale until the
//!   cache drops it. It checks the [`FrameWindow`] contract with panics, so a
//!   cache bug fails the tests.
//! - [`PageTableBuilder`]: writes x86-64 page tables into a `SimTarget` and
//!   keeps its own record of what it mapped — the reference model the
//!   walker is tested against. It never reads the tables back.

use core::cell::Cell;
use std::boxed::Box;
use std::collections::HashMap;
use std::vec;
use std::vec::Vec;

use crate::{FrameWindow, MapError, PageSize, PagingRegs, PAGE_SHIFT, PAGE_SIZE};

/// Register and entry bits, spelt out again here (not taken from the
/// walker) so the tests state the architecture independently.
pub mod bits {
    pub const CR4_PAE: u64 = 1 << 5;
    pub const CR4_LA57: u64 = 1 << 12;
    pub const CR4_PCIDE: u64 = 1 << 17;
    pub const EFER_LME: u64 = 1 << 8;
    pub const EFER_LMA: u64 = 1 << 10;
    pub const EFER_NXE: u64 = 1 << 11;
    pub const P: u64 = 1 << 0;
    pub const RW: u64 = 1 << 1;
    pub const US: u64 = 1 << 2;
    pub const PS: u64 = 1 << 7;
    pub const PAT_LARGE: u64 = 1 << 12;
    pub const XD: u64 = 1 << 63;
    /// Bits no level's translation depends on: A, D, AVL 11:9 and 62:52
    /// (ignored, or protection key without CR4.PKE). Bit 8 (G) is left out:
    /// AMD has it must-be-zero in a PML4E.
    pub const IGNORED: u64 = (1 << 5) | (1 << 6) | (0x7 << 9) | (0x7ff << 52);
}

enum P2m {
    Ram(usize),
    Fault(MapError),
}

/// The target's guest-physical memory. An absent GFN is a hole.
#[derive(Default)]
pub struct SimTarget {
    p2m: HashMap<u64, P2m>,
    frames: Vec<Box<[u8; PAGE_SIZE]>>,
}

impl SimTarget {
    pub fn new() -> Self {
        Self::default()
    }

    /// Give `gfn` a fresh zeroed frame (replacing whatever it had).
    pub fn add_ram(&mut self, gfn: u64) {
        self.frames.push(Box::new([0; PAGE_SIZE]));
        self.p2m.insert(gfn, P2m::Ram(self.frames.len() - 1));
    }

    /// Make mapping `gfn` fail with `err`.
    pub fn set_fault(&mut self, gfn: u64, err: MapError) {
        self.p2m.insert(gfn, P2m::Fault(err));
    }

    /// Balloon `gfn` out: it becomes a hole.
    pub fn remove(&mut self, gfn: u64) {
        self.p2m.remove(&gfn);
    }

    /// Move `gfn` to a new frame holding `bytes` (as a pager or page
    /// sharing would): mappings made before still show the old frame.
    pub fn remap(&mut self, gfn: u64, bytes: &[u8; PAGE_SIZE]) {
        self.add_ram(gfn);
        self.write(gfn << PAGE_SHIFT, bytes);
    }

    pub fn is_ram(&self, gfn: u64) -> bool {
        matches!(self.p2m.get(&gfn), Some(P2m::Ram(_)))
    }

    fn frame_of(&self, gfn: u64) -> Result<usize, MapError> {
        match self.p2m.get(&gfn) {
            Some(P2m::Ram(i)) => Ok(*i),
            Some(P2m::Fault(e)) => Err(*e),
            None => Err(MapError::Hole),
        }
    }

    /// Test-side write; panics unless every frame touched is RAM.
    pub fn write(&mut self, gpa: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let a = gpa + i as u64;
            let f = self
                .frame_of(a >> PAGE_SHIFT)
                .expect("sim write to non-RAM");
            self.frames[f][(a as usize) & (PAGE_SIZE - 1)] = *b;
        }
    }

    pub fn write_u64(&mut self, gpa: u64, v: u64) {
        self.write(gpa, &v.to_le_bytes());
    }

    /// Test-side read: the bytes, or the first GPA that is not RAM.
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), u64> {
        for (i, b) in buf.iter_mut().enumerate() {
            let a = gpa + i as u64;
            let f = self.frame_of(a >> PAGE_SHIFT).map_err(|_| a)?;
            *b = self.frames[f][(a as usize) & (PAGE_SIZE - 1)];
        }
        Ok(())
    }
}

/// The stub's window, simulated: each slot shows one frame of the target.
pub struct SimWindow {
    pub target: SimTarget,
    slots: Vec<Option<usize>>,
    /// `map` calls (including failed ones) and `unmap` calls.
    pub maps: u64,
    pub unmaps: u64,
    /// Make every `unmap` report this error (the slot is emptied anyway).
    pub unmap_fault: Option<MapError>,
    reads: Cell<u64>,
}

impl SimWindow {
    pub fn new(target: SimTarget, slots: usize) -> Self {
        SimWindow {
            target,
            slots: vec![None; slots],
            maps: 0,
            unmaps: 0,
            unmap_fault: None,
            reads: Cell::new(0),
        }
    }

    /// `read` and `read_u64` calls so far.
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }

    /// Slots that show a frame now.
    pub fn mapped(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn shown(&self, slot: usize) -> usize {
        self.slots[slot].expect("FrameWindow contract: access to an empty slot")
    }
}

impl FrameWindow for SimWindow {
    fn slots(&self) -> usize {
        self.slots.len()
    }

    fn map(&mut self, slot: usize, gfn: u64) -> Result<(), MapError> {
        assert!(
            self.slots[slot].is_none(),
            "FrameWindow contract: map on a mapped slot"
        );
        self.maps += 1;
        self.slots[slot] = Some(self.target.frame_of(gfn)?);
        Ok(())
    }

    fn unmap(&mut self, slot: usize) -> Result<(), MapError> {
        assert!(
            self.slots[slot].is_some(),
            "FrameWindow contract: unmap of an empty slot"
        );
        self.unmaps += 1;
        self.slots[slot] = None;
        self.unmap_fault.map_or(Ok(()), Err)
    }

    fn read(&self, slot: usize, offset: usize, buf: &mut [u8]) {
        self.reads.set(self.reads.get() + 1);
        let f = self.shown(slot);
        buf.copy_from_slice(&self.target.frames[f][offset..offset + buf.len()]);
    }

    fn write(&mut self, slot: usize, offset: usize, buf: &[u8]) {
        let f = self.shown(slot);
        self.target.frames[f][offset..offset + buf.len()].copy_from_slice(buf);
    }

    fn read_u64(&self, slot: usize, offset: usize) -> u64 {
        assert!(offset % 8 == 0, "FrameWindow contract: unaligned read_u64");
        let mut b = [0u8; 8];
        self.read(slot, offset, &mut b);
        u64::from_le_bytes(b)
    }
}

/// Rights of one entry, or combined over a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    pub w: bool,
    pub u: bool,
    pub nx: bool,
}

impl Perms {
    /// Writable, user, executable: what intermediate entries usually have.
    pub const ALL: Perms = Perms {
        w: true,
        u: true,
        nx: false,
    };

    fn bits(self) -> u64 {
        bits::P
            | if self.w { bits::RW } else { 0 }
            | if self.u { bits::US } else { 0 }
            | if self.nx { bits::XD } else { 0 }
    }

    /// Combined over levels: W and U need every level, NX any level.
    fn and(self, lower: Perms) -> Perms {
        Perms {
            w: self.w && lower.w,
            u: self.u && lower.u,
            nx: self.nx || lower.nx,
        }
    }
}

/// One mapping the builder made: what a walk of any VA in it must give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub gva: u64,
    pub gpa: u64,
    pub size: PageSize,
    /// Rights combined over the entries on the path.
    pub rights: Perms,
}

enum Node {
    Table { gfn: u64, perms: Perms },
    Leaf,
}

/// Builds long-mode page tables in a [`SimTarget`].
pub struct PageTableBuilder {
    levels: u8,
    root: u64,
    next_gfn: u64,
    /// (table gfn, index) → what the builder put there.
    nodes: HashMap<(u64, u64), Node>,
    mappings: Vec<Mapping>,
    /// OR-ed into every entry, masked to [`bits::IGNORED`] (and to PAT for
    /// large leaves): a walk must not depend on them.
    pub noise: u64,
}

impl PageTableBuilder {
    /// A root table (4 or 5 levels) at `first_table_gfn`; further tables
    /// take the GFNs after it.
    pub fn new(target: &mut SimTarget, levels: u8, first_table_gfn: u64) -> Self {
        assert!(levels == 4 || levels == 5);
        target.add_ram(first_table_gfn);
        PageTableBuilder {
            levels,
            root: first_table_gfn,
            next_gfn: first_table_gfn + 1,
            nodes: HashMap::new(),
            mappings: Vec::new(),
            noise: 0,
        }
    }

    pub fn root_gfn(&self) -> u64 {
        self.root
    }

    /// First GFN the builder has not used for a table.
    pub fn next_gfn(&self) -> u64 {
        self.next_gfn
    }

    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    /// Registers of a long-mode vCPU using these tables, no PCID.
    pub fn regs(&self, nxe: bool) -> PagingRegs {
        let la57 = if self.levels == 5 { bits::CR4_LA57 } else { 0 };
        let nx = if nxe { bits::EFER_NXE } else { 0 };
        PagingRegs::new(
            self.root << PAGE_SHIFT,
            bits::CR4_PAE | la57,
            bits::EFER_LME | bits::EFER_LMA | nx,
        )
    }

    /// Map the page at `gva` (aligned to `size`, canonical) to `gpa`
    /// (aligned, below `1 << 52`): new intermediate entries get `upper`,
    /// existing ones are kept as they are; the leaf gets `leaf`. Refuses a
    /// mapping that overlaps an earlier one.
    pub fn map(
        &mut self,
        target: &mut SimTarget,
        gva: u64,
        gpa: u64,
        size: PageSize,
        leaf: Perms,
        upper: Perms,
    ) -> Result<Mapping, &'static str> {
        let va_bits = 12 + 9 * u32::from(self.levels);
        let sign = gva >> (va_bits - 1);
        if sign != 0 && sign != (u64::MAX >> (va_bits - 1)) {
            return Err("non-canonical gva");
        }
        if gva % size.bytes() != 0 || gpa % size.bytes() != 0 || gpa >= crate::GPA_LIMIT {
            return Err("misaligned or out-of-range address");
        }
        let index = |level: u8| (gva >> (12 + 9 * (u32::from(level) - 1))) & 0x1ff;
        let mut table = self.root;
        let mut rights = Perms {
            w: true,
            u: true,
            nx: false,
        };
        for level in (size.level() + 1..=self.levels).rev() {
            let key = (table, index(level));
            match self.nodes.get(&key) {
                Some(Node::Table { gfn, perms }) => {
                    rights = rights.and(*perms);
                    table = *gfn;
                }
                Some(Node::Leaf) => return Err("overlaps a large page"),
                None => {
                    let gfn = self.next_gfn;
                    self.next_gfn += 1;
                    target.add_ram(gfn);
                    let e = upper.bits() | (gfn << PAGE_SHIFT) | (self.noise & bits::IGNORED);
                    target.write_u64((table << PAGE_SHIFT) + key.1 * 8, e);
                    self.nodes.insert(key, Node::Table { gfn, perms: upper });
                    rights = rights.and(upper);
                    table = gfn;
                }
            }
        }
        let key = (table, index(size.level()));
        if self.nodes.contains_key(&key) {
            return Err("already mapped");
        }
        let large = if size == PageSize::Size4K {
            0
        } else {
            bits::PS | (self.noise & bits::PAT_LARGE)
        };
        let e = leaf.bits() | large | gpa | (self.noise & bits::IGNORED);
        target.write_u64((table << PAGE_SHIFT) + key.1 * 8, e);
        self.nodes.insert(key, Node::Leaf);
        let m = Mapping {
            gva,
            gpa,
            size,
            rights: rights.and(leaf),
        };
        self.mappings.push(m);
        Ok(m)
    }
}
