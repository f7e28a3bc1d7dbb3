//! PVH `hvm_start_info` parsing into a [`BootInfo`], on top of the `pvh`
//! crate's raw structs and readers. Pure logic (the physical memory is reached
//! through a [`MemMap`]), unit-tested on the host with a fake physical memory.
//!
//! What we add around `pvh`'s readers, and why:
//! - a module's `cmdline_paddr == 0` means "no command line"; the reader would
//!   translate paddr 0 through the memory map and read whatever is there;
//! - command lines are read with a length bound (`MAX_CMDLINE`) rather than an
//!   unbounded `CStr::from_ptr`, so a missing NUL cannot run off the end;
//! - everything is copied into fixed-size arrays so the result can live in a
//!   `static` before the heap exists, and the boot data's extent is computed so
//!   the frame allocator never hands it out.

use crate::cmdline::MAX_CMDLINE;
use crate::memory::{align_up, Range, PAGE_SIZE};
use pvh::start_info::reader::StartInfoReader;
pub use pvh::start_info::reader::{IdentityMap, MemMap};
pub use pvh::start_info::{MemmapTableEntry, MemmapType, ModlistEntry, StartInfo};

/// Memory-map entries kept.
pub const MAX_MEMMAP: usize = 64;
/// Modules kept.
pub const MAX_MODULES: usize = 16;

/// One entry of the memory map Xen gave us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemEntry {
    /// The range.
    pub range: Range,
    /// Its type (RAM, reserved, ACPI, ...).
    pub kind: MemmapType,
}

/// A boot module (from `xl`'s `ramdisk=` / `module=`).
#[derive(Clone, Copy, Debug)]
pub struct Module<'a> {
    /// Guest-physical address.
    pub paddr: u64,
    /// Contents.
    pub data: &'a [u8],
    /// Its command line (empty if none).
    pub cmdline: &'a [u8],
}

/// Why the start info is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// Null pointer or wrong magic.
    BadMagic,
    /// Version 0 (no memory map) or an empty memory map.
    NoMemmap,
}

/// Everything the kernel needs from `hvm_start_info`.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo<'a> {
    /// Guest-physical address of `hvm_start_info`.
    pub start_info_paddr: u64,
    /// `hvm_start_info.version`.
    pub version: u32,
    /// RSDP address (0 if none).
    pub rsdp_paddr: u64,
    /// Raw command line bytes (without the NUL).
    pub cmdline: &'a [u8],
    memmap: [Option<MemEntry>; MAX_MEMMAP],
    modules: [Option<Module<'a>>; MAX_MODULES],
    /// Memory-map entries that did not fit (dropped).
    pub memmap_dropped: usize,
    /// Modules that did not fit (dropped).
    pub modules_dropped: usize,
    /// One past the highest address of any boot data (start info, memory map,
    /// module list, modules, command lines), page aligned.
    pub boot_data_end: u64,
}

fn bounded_cstr<M: MemMap>(map: &M, paddr: u64) -> (&'static [u8], u64) {
    if paddr == 0 {
        return (&[], 0);
    }
    let Ok(p) = usize::try_from(paddr) else {
        return (&[], 0);
    };
    let base = map.ptr(p, core::alloc::Layout::new::<u8>());
    if base.is_null() {
        return (&[], 0);
    }
    let mut len = 0;
    // SAFETY: the caller of `parse` guarantees the start info and everything
    // it points to is mapped; we read byte by byte up to the NUL or the bound.
    while len < MAX_CMDLINE && unsafe { base.add(len).read() } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes just read are valid for the lifetime of the map.
    let s = unsafe { core::slice::from_raw_parts(base, len) };
    (s, paddr + len as u64 + 1)
}

impl BootInfo<'static> {
    /// Reads the start info at `paddr` through `map`.
    ///
    /// # Safety
    /// `paddr` must be the address Xen passed in `%ebx`, and `map` must make
    /// it and all memory it refers to readable for `'static`.
    pub unsafe fn parse<M: MemMap>(paddr: u32, map: M) -> Result<Self, StartInfoError> {
        // SAFETY: forwarded from our caller.
        let reader =
            unsafe { StartInfoReader::from_paddr(paddr, &map) }.ok_or(StartInfoError::BadMagic)?;
        let raw = reader.raw();
        let mut end = u64::from(paddr) + core::mem::size_of::<StartInfo>() as u64;

        let (cmdline, cend) = bounded_cstr(&map, raw.cmdline_paddr);
        end = end.max(cend);

        let mut memmap = [None; MAX_MEMMAP];
        let mm = reader.memmap();
        if mm.is_empty() {
            return Err(StartInfoError::NoMemmap);
        }
        end = end.max(raw.memmap_paddr + core::mem::size_of_val(mm) as u64);
        let mut memmap_dropped = 0;
        for (i, e) in mm.iter().enumerate() {
            match memmap.get_mut(i) {
                Some(slot) => {
                    *slot = Some(MemEntry {
                        range: Range::with_len(e.addr, e.size),
                        kind: e.ty(),
                    })
                }
                None => memmap_dropped += 1,
            }
        }

        let mut modules = [None; MAX_MODULES];
        let mut modules_dropped = 0;
        if raw.nr_modules > 0 && raw.modlist_paddr != 0 {
            end = end.max(
                raw.modlist_paddr
                    + u64::from(raw.nr_modules) * core::mem::size_of::<ModlistEntry>() as u64,
            );
        }
        for (i, m) in reader.modlist().enumerate() {
            let e = m.raw();
            let (mcmd, mend) = bounded_cstr(&map, e.cmdline_paddr);
            end = end.max(mend).max(e.paddr.saturating_add(e.size));
            let module = Module {
                paddr: e.paddr,
                data: m.as_slice(),
                cmdline: mcmd,
            };
            match modules.get_mut(i) {
                Some(slot) => *slot = Some(module),
                None => modules_dropped += 1,
            }
        }

        Ok(BootInfo {
            start_info_paddr: u64::from(paddr),
            version: raw.version,
            rsdp_paddr: raw.rsdp_paddr,
            cmdline,
            memmap,
            modules,
            memmap_dropped,
            modules_dropped,
            boot_data_end: align_up(end, PAGE_SIZE),
        })
    }
}

impl<'a> BootInfo<'a> {
    /// The memory map, in Xen's order.
    pub fn memmap(&self) -> impl Iterator<Item = MemEntry> + '_ {
        self.memmap.iter().flatten().copied()
    }

    /// The boot modules.
    pub fn modules(&self) -> impl Iterator<Item = Module<'a>> + '_ {
        self.modules.iter().flatten().copied()
    }

    /// The command line as text (`None` if it is not UTF-8).
    pub fn cmdline_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.cmdline).ok()
    }

    /// RAM ranges only.
    pub fn ram(&self) -> impl Iterator<Item = Range> + '_ {
        self.memmap()
            .filter(|e| e.kind == MemmapType::Ram)
            .map(|e| e.range)
    }

    /// Total RAM in bytes.
    pub fn ram_bytes(&self) -> u64 {
        self.ram().map(|r| r.len()).sum()
    }

    /// One past the highest address of any memory-map entry.
    pub fn memmap_end(&self) -> u64 {
        self.memmap().map(|e| e.range.end).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::alloc::Layout;

    /// A fake guest-physical memory: paddr N is `buf[N]`.
    struct Fake(&'static mut [u8]);
    impl MemMap for &'static Fake {
        fn ptr(&self, paddr: usize, layout: Layout) -> *const u8 {
            if paddr
                .checked_add(layout.size())
                .is_none_or(|e| e > self.0.len())
            {
                return core::ptr::null();
            }
            self.0[paddr..].as_ptr()
        }
    }

    fn put<T: Copy>(buf: &mut [u8], at: usize, v: T) {
        let sz = core::mem::size_of::<T>();
        // SAFETY: test helper writing plain-old-data into a byte buffer.
        let bytes = unsafe { core::slice::from_raw_parts(&v as *const T as *const u8, sz) };
        buf[at..at + sz].copy_from_slice(bytes);
    }

    fn fake() -> &'static mut Fake {
        let buf = vec![0u8; 0x10000].leak();
        let si = StartInfo {
            magic: pvh::start_info::START_MAGIC_VALUE,
            version: 1,
            nr_modules: 1,
            modlist_paddr: 0x2000,
            cmdline_paddr: 0x3000,
            memmap_paddr: 0x6000,
            memmap_entries: 3,
            ..Default::default()
        };
        // 8-byte aligned destinations.
        put(buf, 0x1000, si);
        let m = ModlistEntry {
            paddr: 0x8000,
            size: 5,
            cmdline_paddr: 0x3100,
            reserved: 0,
        };
        put(buf, 0x2000, m);
        buf[0x3000..0x3000 + 18].copy_from_slice(b"selftest vcpus=4\0\0");
        buf[0x3100..0x3104].copy_from_slice(b"pol\0");
        buf[0x8000..0x8005].copy_from_slice(b"hello");
        let mm = [
            MemmapTableEntry {
                addr: 0,
                size: 0x200_0000,
                ty: 1,
                reserved: 0,
            },
            MemmapTableEntry {
                addr: 0xfc00_0000,
                size: 0x100_0000,
                ty: 2,
                reserved: 0,
            },
            MemmapTableEntry {
                addr: 0xfeff_8000,
                size: 0x8000,
                ty: 99,
                reserved: 0,
            },
        ];
        put(buf, 0x6000, mm);
        Box::leak(Box::new(Fake(buf)))
    }

    #[test]
    fn parses_everything() {
        let f: &'static Fake = fake();
        // SAFETY: the fake memory lives forever.
        let bi = unsafe { BootInfo::parse(0x1000, f) }.unwrap();
        assert_eq!(bi.cmdline, b"selftest vcpus=4");
        assert_eq!(bi.cmdline_str(), Some("selftest vcpus=4"));
        assert_eq!(bi.memmap().count(), 3);
        assert_eq!(bi.ram_bytes(), 0x200_0000);
        assert_eq!(bi.memmap_end(), 0xff00_0000);
        let kinds: Vec<_> = bi.memmap().map(|e| e.kind).collect();
        assert_eq!(kinds[1], MemmapType::Reserved);
        assert_eq!(kinds[2], MemmapType::Unknown(99));
        let m: Vec<_> = bi.modules().collect();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].data, b"hello");
        assert_eq!(m[0].cmdline, b"pol");
        assert_eq!(bi.boot_data_end, 0x9000, "module end, page aligned");
    }

    #[test]
    fn rejects_bad_magic_and_missing_memmap() {
        let f = fake();
        f.0[0x1004] = 0; // version 0: no memory map
        let f: &'static Fake = f;
        // SAFETY: the fake memory lives forever.
        let bad = unsafe { BootInfo::parse(0x1008, f) };
        assert_eq!(bad.unwrap_err(), StartInfoError::BadMagic);
        // SAFETY: as above.
        let zero = unsafe { BootInfo::parse(0, f) };
        assert_eq!(zero.unwrap_err(), StartInfoError::BadMagic);
        // SAFETY: as above.
        let v0 = unsafe { BootInfo::parse(0x1000, f) };
        assert_eq!(v0.unwrap_err(), StartInfoError::NoMemmap);
    }

    #[test]
    fn unterminated_cmdline_is_bounded_and_null_module_cmdline_is_empty() {
        let f = fake();
        for b in &mut f.0[0x3000..0x3000 + MAX_CMDLINE + 8] {
            *b = b'x';
        }
        f.0[0x2010..0x2018].copy_from_slice(&0u64.to_le_bytes()); // module cmdline_paddr = 0
        let f: &'static Fake = f;
        // SAFETY: the fake memory lives forever.
        let bi = unsafe { BootInfo::parse(0x1000, f) }.unwrap();
        assert_eq!(bi.cmdline.len(), MAX_CMDLINE);
        assert_eq!(bi.modules().next().unwrap().cmdline, b"");
    }
}
