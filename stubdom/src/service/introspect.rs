//! What the stub sees inside its target: guest memory through a window of
//! our own frames (the `guestmem` cache over `XENMAPSPACE_gmfn_foreign`
//! mappings), and, with a Linux profile, the task behind each event.
//!
//! Everything read here is the target's word: a pointer may lead anywhere,
//! a page table may loop. Every read is bounded (a walk is at most five
//! table reads, a task read is three fixed-size reads) and every failure
//! is a value, printed in the audit record, never a stop.

use boot::println;
use guestmem::{FrameWindow, MapCache, MapError, PagingRegs, VirtError, VirtFault, WalkError};
use linux_profile::Profile;
use vmevent::{Attribution, Mode, PeekRecord, Process, VmEventRequest};
use xenctl as xenops;

/// Frames one serving vCPU keeps mapped. A walk reads at most 5 tables
/// and a task read touches the per-CPU page and the task's pages; the
/// kernel's upper tables are shared by every event, so 16 keep a working
/// set for a few tasks.
pub(super) const WINDOW_SLOTS: usize = 16;

/// A window of [`WINDOW_SLOTS`] of our (unpopulated, identity-mapped)
/// guest frames, each showing one target frame.
pub(super) struct Window {
    target: u16,
    base: u64,
}

impl Window {
    fn va(&self, slot: usize, offset: usize) -> usize {
        (((self.base + slot as u64) << 12) as usize) + offset
    }
}

impl FrameWindow for Window {
    fn slots(&self) -> usize {
        WINDOW_SLOTS
    }

    fn map(&mut self, slot: usize, gfn: u64) -> Result<(), MapError> {
        match xenops::map_foreign(self.target, gfn, self.base + slot as u64) {
            Ok(r) => r.map_err(MapError::from_xen_errno),
            Err(e) => Err(MapError::from_xen_errno(e.0)),
        }
    }

    fn unmap(&mut self, slot: usize) -> Result<(), MapError> {
        xenops::remove_from_physmap(self.base + slot as u64)
            .map_err(|e| MapError::from_xen_errno(e.0))
    }

    fn read(&self, slot: usize, offset: usize, buf: &mut [u8]) {
        let src = self.va(slot, offset) as *const u8;
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: the cache only reads a slot whose map succeeded, within
            // its 4096 bytes (FrameWindow's contract); the frame is mapped at
            // the slot's identity address. Volatile: the target may be
            // writing it.
            *b = unsafe { src.add(i).read_volatile() };
        }
    }

    fn write(&mut self, slot: usize, offset: usize, buf: &[u8]) {
        let dst = self.va(slot, offset) as *mut u8;
        for (i, b) in buf.iter().enumerate() {
            // SAFETY: as for `read`.
            unsafe { dst.add(i).write_volatile(*b) };
        }
    }

    fn read_u64(&self, slot: usize, offset: usize) -> u64 {
        // SAFETY: as for `read`, and `offset` is 8-aligned (the contract):
        // one aligned load, so a page-table entry is never torn.
        unsafe { (self.va(slot, offset) as *const u64).read_volatile() }
    }
}

/// One serving vCPU's view of the target: its mapping cache and, if
/// given, the kernel profile.
pub(super) struct Inspector {
    cache: MapCache<Window, WINDOW_SLOTS>,
    profile: Option<Profile>,
    /// Time spent attributing (Xen system time, ns): what each event's
    /// answer waits for it.
    attributed: u64,
    attribute_ns: u64,
    attribute_max_ns: u64,
}

/// Kernel half of the address space (bit 63 set): where a per-CPU base
/// and a `task_struct` must be.
fn is_kernel(va: u64) -> bool {
    va >> 63 == 1
}

impl Inspector {
    /// `None` when no window of our frames is free.
    pub(super) fn new(target: u16, profile: Option<Profile>) -> Option<Self> {
        let base = boot::alloc_gfns(WINDOW_SLOTS as u64)?;
        Some(Self {
            cache: MapCache::new(Window { target, base }),
            profile,
            attributed: 0,
            attribute_ns: 0,
            attribute_max_ns: 0,
        })
    }

    /// Says what the window did and lets go of every frame it shows (the
    /// stub's destruction would too; a detached stub holds nothing).
    pub(super) fn finish(mut self, me: u32) {
        let s = self.cache.stats();
        let rate = s.hit_rate_permille().unwrap_or(0);
        println!(
            "stub: vCPU {me}: memory window of {WINDOW_SLOTS} frames: {} hit(s), {} miss(es) ({}.{}% hits), {} eviction(s), {} map error(s)",
            s.hits,
            s.misses,
            rate / 10,
            rate % 10,
            s.evictions,
            s.map_errors
        );
        if self.attributed > 0 {
            println!(
                "stub: vCPU {me}: attributed {} event(s): {} ns each on average, {} ns at most",
                self.attributed,
                self.attribute_ns / self.attributed,
                self.attribute_max_ns
            );
        }
        self.cache.flush();
    }

    /// The task current on the event's vCPU: the per-CPU base is the GS
    /// base in the kernel and the saved one (`KERNEL_GS_BASE`, which
    /// `swapgs` exchanges) in user mode; if the expected one is not a kernel
    /// address (an entry path before its `swapgs`) the other is used.
    pub(super) fn attribute(&mut self, req: &VmEventRequest) -> Attribution {
        let Some(profile) = self.profile else {
            return Attribution::None;
        };
        let t0 = boot::time::now_ns();
        let a = self.attribute_with(&profile, req);
        let dt = boot::time::now_ns().saturating_sub(t0);
        self.attributed += 1;
        self.attribute_ns += dt;
        self.attribute_max_ns = self.attribute_max_ns.max(dt);
        a
    }

    fn attribute_with(&mut self, profile: &Profile, req: &VmEventRequest) -> Attribution {
        let r = req.regs_x86();
        let regs = PagingRegs::new(r.cr3, r.cr4, r.msr_efer);
        let (first, second) = match Mode::of(req) {
            Mode::Kernel => (r.gs_base, r.shadow_gs),
            Mode::User => (r.shadow_gs, r.gs_base),
        };
        let base = match (is_kernel(first), is_kernel(second)) {
            (true, _) => first,
            (false, true) => second,
            _ => return Attribution::Failed("no kernel GS base on this vCPU"),
        };
        let cur = base.wrapping_add(u64::from(profile.current_task.percpu_offset));
        match self.task(profile, &regs, cur) {
            Ok(p) => Attribution::Process(p),
            Err(why) => Attribution::Failed(why),
        }
    }

    /// A rule's `peek=`: `len` bytes at guest-virtual `gva`, translated
    /// with the event's own CR3.
    pub(super) fn peek(&mut self, req: &VmEventRequest, gva: u64, len: u8) -> PeekRecord {
        let r = req.regs_x86();
        let regs = PagingRegs::new(r.cr3, r.cr4, r.msr_efer);
        let mut bytes = [0u8; 64];
        let n = usize::from(len).min(bytes.len());
        match self.cache.read_virt(&regs, gva, &mut bytes[..n]) {
            Ok(()) => PeekRecord::Bytes { gva, len, bytes },
            Err(e) => PeekRecord::Failed {
                gva,
                why: reason(e),
            },
        }
    }

    fn task(
        &mut self,
        profile: &Profile,
        regs: &PagingRegs,
        cur: u64,
    ) -> Result<Process, &'static str> {
        let mut b8 = [0u8; 8];
        self.cache.read_virt(regs, cur, &mut b8).map_err(reason)?;
        let task = u64::from_le_bytes(b8);
        if !is_kernel(task) {
            return Err("the current-task pointer is not a kernel address");
        }
        let ts = profile.task_struct;
        let mut b4 = [0u8; 4];
        self.cache
            .read_virt(regs, task.wrapping_add(u64::from(ts.pid)), &mut b4)
            .map_err(reason)?;
        let pid = u32::from_le_bytes(b4);
        self.cache
            .read_virt(regs, task.wrapping_add(u64::from(ts.tgid)), &mut b4)
            .map_err(reason)?;
        let tgid = u32::from_le_bytes(b4);
        let mut comm = [0u8; 16];
        let n = (ts.comm_len as usize).min(comm.len());
        self.cache
            .read_virt(regs, task.wrapping_add(u64::from(ts.comm)), &mut comm[..n])
            .map_err(reason)?;
        Ok(Process { pid, tgid, comm })
    }
}

/// A failed read as one static phrase for the audit record (the details
/// vary per event; the record stays bounded).
fn reason(e: VirtError) -> &'static str {
    match e.cause {
        VirtFault::Walk(w) => match w {
            WalkError::NotLongMode => "the vCPU is not in long mode",
            WalkError::BadCr3 { .. } => "cr3 is not a valid long-mode cr3",
            WalkError::NonCanonical { .. } => "a non-canonical address",
            WalkError::NotPresent { .. } => "a page table entry is not present",
            WalkError::ReservedBits { .. } => "a page table entry sets reserved bits",
            WalkError::TableUnreadable { .. } => "a page table frame cannot be mapped",
        },
        VirtFault::Phys { .. } => "a frame cannot be mapped",
        VirtFault::Wrap => "the read wraps past 2^64",
    }
}
