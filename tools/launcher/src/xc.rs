//! What the launcher asks of Xen directly, through libxenctrl: pairing a
//! stub with its target (`XEN_DOMCTL_set_target`), and, to follow a target
//! across reboots, listing domains and pausing/unpausing one. With FLASK,
//! the stub's rights over the paired domain are checked against the
//! target-relative type (`vmi_target_paired_t` in xen/flask/vmi_stub.te),
//! so they exist over that domain only.

use std::ffi::{c_int, c_uint, c_void};
use std::io;

use vmevent::abi::domctl::{Release, XenDomctlGetdomaininfo};

extern "C" {
    fn xc_interface_open(l: *mut c_void, dl: *mut c_void, flags: c_uint) -> *mut c_void;
    fn xc_interface_close(x: *mut c_void) -> c_int;
    fn xc_domain_set_target(x: *mut c_void, domid: u32, target: u32) -> c_int;
    fn xc_domain_getinfolist(
        x: *mut c_void,
        first: u32,
        max: c_uint,
        info: *mut XenDomctlGetdomaininfo,
    ) -> c_int;
    fn xc_domain_pause(x: *mut c_void, domid: u32) -> c_int;
    fn xc_domain_unpause(x: *mut c_void, domid: u32) -> c_int;
    fn xc_version(x: *mut c_void, cmd: c_int, arg: *mut c_void) -> c_int;
}

const XENVER_VERSION: c_int = vmevent::abi::XENVER_VERSION as c_int;
const XENVER_EXTRAVERSION: c_int = vmevent::abi::XENVER_EXTRAVERSION as c_int;

/// An open libxenctrl handle.
pub struct Xc(*mut c_void);

impl Xc {
    pub fn open() -> Result<Xc, String> {
        // SAFETY: NULL loggers are allowed (libxenctrl's defaults); the
        // handle is checked here and closed in Drop.
        let xc = unsafe { xc_interface_open(std::ptr::null_mut(), std::ptr::null_mut(), 0) };
        if xc.is_null() {
            return Err(format!(
                "cannot open libxenctrl: {}",
                io::Error::last_os_error()
            ));
        }
        Ok(Xc(xc))
    }

    fn check(rc: c_int, what: impl FnOnce(io::Error) -> String) -> Result<(), String> {
        if rc == 0 {
            Ok(())
        } else {
            Err(what(io::Error::last_os_error()))
        }
    }

    /// Makes `target` the target of `stub` (once, before the stub runs: Xen
    /// keeps the pairing, and a reference on the target, until the stub is
    /// destroyed).
    pub fn set_target(&self, stub: u32, target: u32) -> Result<(), String> {
        // SAFETY: a live handle; the call only takes integers.
        let rc = unsafe { xc_domain_set_target(self.0, stub, target) };
        Self::check(rc, |err| {
            format!(
                "pairing stub domain {stub} with target {target} (XEN_DOMCTL_set_target) refused: {err}{}",
                set_target_hint(err.raw_os_error())
            )
        })
    }

    /// The running hypervisor's release and extraversion (`".5"`).
    pub fn release(&self) -> Result<(Release, String), String> {
        // SAFETY: a live handle; XENVER_version takes no buffer.
        let v = unsafe { xc_version(self.0, XENVER_VERSION, std::ptr::null_mut()) };
        if v < 0 {
            return Err(format!(
                "reading Xen's version (xc_version): {}",
                io::Error::last_os_error()
            ));
        }
        let mut extra = [0u8; 16];
        // SAFETY: XENVER_extraversion writes a char[16], the size of `extra`.
        let rc = unsafe { xc_version(self.0, XENVER_EXTRAVERSION, extra.as_mut_ptr().cast()) };
        let extra = if rc < 0 {
            String::new()
        } else {
            let n = extra.iter().position(|&b| b == 0).unwrap_or(extra.len());
            String::from_utf8_lossy(&extra[..n]).into_owned()
        };
        Ok((Release::from_xenver(v as u32), extra))
    }

    /// Every domain Xen has (dying ones included), read into `buf` (kept
    /// by the caller: the follower polls every millisecond).
    pub fn domains<'b>(
        &self,
        buf: &'b mut Vec<XenDomctlGetdomaininfo>,
    ) -> Result<&'b [XenDomctlGetdomaininfo], String> {
        const MAX: usize = 1024;
        buf.resize(MAX, XenDomctlGetdomaininfo::default());
        // SAFETY: `buf` holds MAX entries of the C layout (layout-tested in
        // vmevent::abi); libxenctrl writes at most MAX of them.
        let n = unsafe { xc_domain_getinfolist(self.0, 0, MAX as c_uint, buf.as_mut_ptr()) };
        if n < 0 {
            return Err(format!(
                "listing domains (xc_domain_getinfolist): {}",
                io::Error::last_os_error()
            ));
        }
        Ok(&buf[..n as usize])
    }

    /// One domain, if it exists.
    pub fn domain(&self, domid: u32) -> Option<XenDomctlGetdomaininfo> {
        let mut i = XenDomctlGetdomaininfo::default();
        // SAFETY: room for exactly the one entry asked for.
        let n = unsafe { xc_domain_getinfolist(self.0, domid, 1, &mut i) };
        (n == 1 && u32::from(i.domain) == domid).then_some(i)
    }

    /// `XEN_DOMCTL_pausedomain`: one more pause by the controller (nested:
    /// xl's own unpause of a domain it built leaves this one in place).
    pub fn pause(&self, domid: u32) -> Result<(), String> {
        // SAFETY: a live handle; integers only.
        let rc = unsafe { xc_domain_pause(self.0, domid) };
        Self::check(rc, |err| format!("pausing domain {domid}: {err}"))
    }

    pub fn unpause(&self, domid: u32) -> Result<(), String> {
        // SAFETY: a live handle; integers only.
        let rc = unsafe { xc_domain_unpause(self.0, domid) };
        Self::check(rc, |err| format!("unpausing domain {domid}: {err}"))
    }
}

/// What a `set_target` refusal most likely means, by errno.
fn set_target_hint(errno: Option<i32>) -> &'static str {
    match errno {
        Some(3) => "; one of the two domains no longer exists",
        Some(22) => "; the stub is already paired (Xen pairs a domain once), or stub and target are the same domain",
        Some(95) => "; the target is not an HVM/PVH domain",
        Some(1) | Some(13) => {
            "; check the FLASK policy (domain set_target, domain2 make_priv_for / set_as_target)"
        }
        _ => "",
    }
}

impl Drop for Xc {
    fn drop(&mut self) {
        // SAFETY: the handle is open and not used afterwards.
        unsafe { xc_interface_close(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_explained_by_their_errno() {
        assert!(set_target_hint(Some(3)).contains("no longer exists"));
        assert!(set_target_hint(Some(22)).contains("already paired"));
        assert!(set_target_hint(Some(95)).contains("HVM/PVH"));
        assert!(set_target_hint(Some(1)).contains("FLASK"));
        assert!(set_target_hint(Some(13)).contains("FLASK"));
        assert_eq!(set_target_hint(None), "");
    }
}
