//! Pairing a stub with its target: `XEN_DOMCTL_set_target` through
//! libxenctrl. With FLASK, the stub's rights over the paired domain are
//! checked against the target-relative type (`vmi_target_paired_t` in
//! xen/flask/vmi_stub.te), so they exist over that domain only.

use std::ffi::{c_int, c_uint, c_void};
use std::io;

extern "C" {
    fn xc_interface_open(l: *mut c_void, dl: *mut c_void, flags: c_uint) -> *mut c_void;
    fn xc_interface_close(x: *mut c_void) -> c_int;
    fn xc_domain_set_target(x: *mut c_void, domid: u32, target: u32) -> c_int;
}

/// Makes `target` the target of `stub` (once, before the stub runs: Xen
/// keeps the pairing until the stub is destroyed).
pub fn set_target(stub: u32, target: u32) -> Result<(), String> {
    // SAFETY: NULL loggers are allowed (libxenctrl's defaults); the handle
    // is checked and closed below.
    let xc = unsafe { xc_interface_open(std::ptr::null_mut(), std::ptr::null_mut(), 0) };
    if xc.is_null() {
        return Err(format!(
            "cannot open libxenctrl: {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: a live handle; the call only takes integers.
    let rc = unsafe { xc_domain_set_target(xc, stub, target) };
    let err = io::Error::last_os_error();
    // SAFETY: the handle is open and not used afterwards.
    unsafe { xc_interface_close(xc) };
    if rc != 0 {
        return Err(format!(
            "pairing stub domain {stub} with target {target} (XEN_DOMCTL_set_target) refused: {err}; check the FLASK policy (domain set_target, domain2 make_priv_for / set_as_target)"
        ));
    }
    Ok(())
}
