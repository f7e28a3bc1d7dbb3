//! The few libxenctrl / libxenevtchn / libxenforeignmemory / libxencall
//! calls we need (Debian's libxen-dev, 4.17), wrapped so the rest of the tool
//! is safe code. Each handle closes itself on drop.

use std::ffi::c_void;
use std::io;
use std::os::raw::{c_int, c_uint, c_ulong};

use vmevent::abi::domctl::XenDomctl;

#[repr(C)]
pub struct XcInterface {
    _p: [u8; 0],
}
#[repr(C)]
pub struct XenevtchnHandle {
    _p: [u8; 0],
}
#[repr(C)]
pub struct FmemHandle {
    _p: [u8; 0],
}
#[repr(C)]
pub struct FresHandle {
    _p: [u8; 0],
}
#[repr(C)]
pub struct XencallHandle {
    _p: [u8; 0],
}

extern "C" {
    fn xc_interface_open(l: *mut c_void, dl: *mut c_void, flags: c_uint) -> *mut XcInterface;
    fn xc_interface_close(x: *mut XcInterface) -> c_int;
    fn xc_domain_pause(x: *mut XcInterface, domid: u32) -> c_int;
    fn xc_domain_unpause(x: *mut XcInterface, domid: u32) -> c_int;
    fn xc_monitor_enable(x: *mut XcInterface, domid: u32, port: *mut u32) -> *mut c_void;
    fn xc_monitor_disable(x: *mut XcInterface, domid: u32) -> c_int;
    fn xc_monitor_cpuid(x: *mut XcInterface, domid: u32, enable: bool) -> c_int;
    fn xc_monitor_guest_request(
        x: *mut XcInterface,
        domid: u32,
        enable: bool,
        sync: bool,
        allow_userspace: bool,
    ) -> c_int;

    fn xenevtchn_open(l: *mut c_void, flags: c_uint) -> *mut XenevtchnHandle;
    fn xenevtchn_close(h: *mut XenevtchnHandle) -> c_int;
    fn xenevtchn_fd(h: *mut XenevtchnHandle) -> c_int;
    fn xenevtchn_notify(h: *mut XenevtchnHandle, port: u32) -> c_int;
    fn xenevtchn_bind_interdomain(h: *mut XenevtchnHandle, domid: u32, remote: u32) -> c_int;
    fn xenevtchn_unbind(h: *mut XenevtchnHandle, port: u32) -> c_int;
    fn xenevtchn_pending(h: *mut XenevtchnHandle) -> c_int;
    fn xenevtchn_unmask(h: *mut XenevtchnHandle, port: u32) -> c_int;

    fn xenforeignmemory_open(l: *mut c_void, flags: c_uint) -> *mut FmemHandle;
    fn xenforeignmemory_close(h: *mut FmemHandle) -> c_int;
    fn xenforeignmemory_map_resource(
        h: *mut FmemHandle,
        domid: u16,
        type_: c_uint,
        id: c_uint,
        frame: c_ulong,
        nr_frames: c_ulong,
        paddr: *mut *mut c_void,
        prot: c_int,
        flags: c_int,
    ) -> *mut FresHandle;
    fn xenforeignmemory_unmap_resource(h: *mut FmemHandle, r: *mut FresHandle) -> c_int;

    fn xencall_open(l: *mut c_void, flags: c_uint) -> *mut XencallHandle;
    fn xencall_close(h: *mut XencallHandle) -> c_int;
    fn xencall_alloc_buffer(h: *mut XencallHandle, size: usize) -> *mut c_void;
    fn xencall_free_buffer(h: *mut XencallHandle, p: *mut c_void);
    fn xencall1(h: *mut XencallHandle, op: c_uint, a1: u64) -> c_int;
}

fn check(rc: c_int, what: &str) -> io::Result<c_int> {
    if rc < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(rc)
    }
}

fn non_null<T>(p: *mut T, what: &str) -> io::Result<*mut T> {
    if p.is_null() {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(p)
    }
}

pub struct Xc(*mut XcInterface);
// SAFETY: libxenctrl handles may be used from any thread (one at a time,
// which &self/&mut self discipline plus our single control thread ensure).
unsafe impl Send for Xc {}
// SAFETY: as for Send: calls through a shared reference are serialised by
// the one control thread that makes them.
unsafe impl Sync for Xc {}

impl Xc {
    pub fn open() -> io::Result<Xc> {
        // SAFETY: NULL loggers select libxenctrl's default stderr logger.
        non_null(
            unsafe { xc_interface_open(std::ptr::null_mut(), std::ptr::null_mut(), 0) },
            "xc_interface_open",
        )
        .map(Xc)
    }
    pub fn pause(&self, domid: u32) -> io::Result<()> {
        // SAFETY: valid handle; plain integer arguments.
        check(
            unsafe { xc_domain_pause(self.0, domid) },
            "pausing the domain",
        )
        .map(drop)
    }
    pub fn unpause(&self, domid: u32) -> io::Result<()> {
        // SAFETY: as above.
        check(
            unsafe { xc_domain_unpause(self.0, domid) },
            "unpausing the domain",
        )
        .map(drop)
    }
    /// The stock ring: maps the ring page from the target's physmap and
    /// returns it with Xen's port.
    pub fn monitor_enable(&self, domid: u32) -> io::Result<(*mut u8, u32)> {
        let mut port = 0;
        // SAFETY: `port` is a valid out pointer for the call's duration.
        let p = non_null(
            unsafe { xc_monitor_enable(self.0, domid, &mut port) },
            "xc_monitor_enable",
        )?;
        Ok((p.cast(), port))
    }
    pub fn monitor_disable(&self, domid: u32) -> io::Result<()> {
        // SAFETY: valid handle.
        check(
            unsafe { xc_monitor_disable(self.0, domid) },
            "xc_monitor_disable",
        )
        .map(drop)
    }
    pub fn monitor_cpuid(&self, domid: u32, on: bool) -> io::Result<()> {
        // SAFETY: valid handle.
        check(
            unsafe { xc_monitor_cpuid(self.0, domid, on) },
            "monitoring CPUID",
        )
        .map(drop)
    }
    /// `sync`: the vCPU waits for an answer (its slot); otherwise the event
    /// goes to the async ring.
    pub fn monitor_guest_request(&self, domid: u32, on: bool, sync: bool) -> io::Result<()> {
        // SAFETY: valid handle.
        check(
            unsafe { xc_monitor_guest_request(self.0, domid, on, sync, false) },
            "monitoring guest requests",
        )
        .map(drop)
    }
}

impl Drop for Xc {
    fn drop(&mut self) {
        // SAFETY: the handle came from xc_interface_open and is not used after.
        unsafe { xc_interface_close(self.0) };
    }
}

/// One event-channel handle; each serving thread has its own, so each
/// blocks on its own file descriptor.
pub struct Evtchn(*mut XenevtchnHandle);
// SAFETY: a handle is owned by one thread at a time.
unsafe impl Send for Evtchn {}

impl Evtchn {
    pub fn open() -> io::Result<Evtchn> {
        // SAFETY: NULL logger is allowed.
        non_null(
            unsafe { xenevtchn_open(std::ptr::null_mut(), 0) },
            "xenevtchn_open",
        )
        .map(Evtchn)
    }
    pub fn bind_interdomain(&self, domid: u32, remote: u32) -> io::Result<u32> {
        // SAFETY: valid handle; integers.
        check(
            unsafe { xenevtchn_bind_interdomain(self.0, domid, remote) },
            "binding an interdomain port",
        )
        .map(|p| p as u32)
    }
    pub fn unbind(&self, port: u32) {
        // SAFETY: valid handle.
        unsafe { xenevtchn_unbind(self.0, port) };
    }
    pub fn notify(&self, port: u32) -> io::Result<()> {
        // SAFETY: valid handle.
        check(unsafe { xenevtchn_notify(self.0, port) }, "notifying").map(drop)
    }
    /// Waits up to `timeout_ms` for an event; returns the pending port,
    /// already unmasked.
    pub fn wait(&self, timeout_ms: i32) -> io::Result<Option<u32>> {
        // SAFETY: valid handle.
        let fd = unsafe { xenevtchn_fd(self.0) };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n <= 0 {
            return Ok(None);
        }
        // SAFETY: valid handle.
        let port = check(
            unsafe { xenevtchn_pending(self.0) },
            "reading a pending port",
        )? as u32;
        // SAFETY: valid handle.
        check(unsafe { xenevtchn_unmask(self.0, port) }, "unmasking")?;
        Ok(Some(port))
    }
}

impl Drop for Evtchn {
    fn drop(&mut self) {
        // SAFETY: the handle is not used after.
        unsafe { xenevtchn_close(self.0) };
    }
}

/// A mapping of `XENMEM_acquire_resource` frames.
pub struct Resource {
    fmem: *mut FmemHandle,
    fres: *mut FresHandle,
    pub addr: *mut u8,
}
// SAFETY: the mapping is plain shared memory; access goes through vmevent's
// atomic/volatile accessors.
unsafe impl Send for Resource {}
// SAFETY: as for Send: every access is atomic or volatile.
unsafe impl Sync for Resource {}

impl Resource {
    pub fn map(domid: u16, type_: u32, id: u32, nr_frames: u64) -> io::Result<Resource> {
        // SAFETY: NULL logger is allowed.
        let fmem = non_null(
            unsafe { xenforeignmemory_open(std::ptr::null_mut(), 0) },
            "xenforeignmemory_open",
        )?;
        let mut addr: *mut c_void = std::ptr::null_mut();
        // SAFETY: `addr` is a valid out pointer; NULL asks the library to
        // choose the address.
        let fres = unsafe {
            xenforeignmemory_map_resource(
                fmem,
                domid,
                type_,
                id,
                0,
                nr_frames as c_ulong,
                &mut addr,
                libc::PROT_READ | libc::PROT_WRITE,
                0,
            )
        };
        if fres.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fmem is not used after.
            unsafe { xenforeignmemory_close(fmem) };
            return Err(io::Error::new(
                e.kind(),
                format!("mapping the vm_event resource: {e}"),
            ));
        }
        Ok(Resource {
            fmem,
            fres,
            addr: addr.cast(),
        })
    }
}

impl Drop for Resource {
    fn drop(&mut self) {
        // SAFETY: both handles are ours and not used after.
        unsafe {
            xenforeignmemory_unmap_resource(self.fmem, self.fres);
            xenforeignmemory_close(self.fmem);
        }
    }
}

/// A domctl Xen refused, with its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomctlError {
    pub errno: i32,
}

impl std::fmt::Display for DomctlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "domctl: {}", io::Error::from_raw_os_error(self.errno))
    }
}

/// Raw domctls (libxenctrl does not know our new vm_event ops).
pub struct Domctl {
    h: *mut XencallHandle,
    buf: *mut XenDomctl,
}

const HYPERVISOR_DOMCTL: c_uint = vmevent::abi::HYPERVISOR_DOMCTL;

impl Domctl {
    pub fn open() -> io::Result<Domctl> {
        // SAFETY: NULL logger is allowed.
        let h = non_null(
            unsafe { xencall_open(std::ptr::null_mut(), 0) },
            "xencall_open",
        )?;
        // SAFETY: valid handle; the buffer is hypercall-safe memory.
        let buf = unsafe { xencall_alloc_buffer(h, std::mem::size_of::<XenDomctl>()) };
        let buf = non_null(buf, "allocating a hypercall buffer")?.cast();
        Ok(Domctl { h, buf })
    }

    /// A hypercall-safe buffer for `n` u32 values (a guest handle target).
    pub fn alloc_u32s(&self, n: usize) -> io::Result<*mut u32> {
        // SAFETY: valid handle.
        non_null(
            unsafe { xencall_alloc_buffer(self.h, n * 4) },
            "allocating a hypercall buffer",
        )
        .map(|p| p.cast())
    }

    /// Issues `d`; returns Xen's answer (the domctl with OUT fields), or
    /// the errno Xen gave.
    pub fn issue(&self, d: &XenDomctl) -> Result<XenDomctl, DomctlError> {
        // SAFETY: buf holds one XenDomctl; Xen reads and writes only it.
        unsafe {
            self.buf.write(*d);
            if xencall1(self.h, HYPERVISOR_DOMCTL, self.buf as u64) < 0 {
                let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
                return Err(DomctlError { errno });
            }
            Ok(self.buf.read())
        }
    }
}

impl Drop for Domctl {
    fn drop(&mut self) {
        // SAFETY: buf came from this handle; neither is used after.
        unsafe {
            xencall_free_buffer(self.h, self.buf.cast());
            xencall_close(self.h);
        }
    }
}
