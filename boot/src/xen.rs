//! The Xen ABI as our kernels see it: all of `xen-abi` (the one definition,
//! layout-tested against Xen's headers), plus two rules of that ABI written
//! as code: TSC scaling and the 2-level event-channel scan.

pub use xen_abi::*;

/// Event-channel port number.
pub type Port = EvtchnPort;

/// Scales a TSC delta to nanoseconds as `vcpu_time_info` prescribes:
/// shift by `tsc_shift`, then multiply by `mul / 2^32`.
pub const fn scale_tsc_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let d = if shift >= 0 {
        delta << shift
    } else {
        delta >> (-(shift as i32))
    };
    ((d as u128 * mul as u128) >> 32) as u64
}

/// One pass of the 2-level event-channel scan, as the upcall does it: for
/// every word selected in `sel` (a vCPU's `evtchn_pending_sel`), every port
/// that is pending, not masked and bound to this vCPU (`mine`) is passed to
/// `deliver`, lowest first. `pending(w)`/`mask(w)` read word `w` of the
/// shared bitmaps. Ports of other vCPUs that share a word are left alone:
/// Xen has set their own vCPU's selector bit.
pub fn scan_2l(
    sel: u64,
    pending: impl Fn(usize) -> u64,
    mask: impl Fn(usize) -> u64,
    mine: impl Fn(usize) -> bool,
    mut deliver: impl FnMut(usize),
) {
    let mut words = sel;
    while words != 0 {
        let w = words.trailing_zeros() as usize;
        words &= words - 1;
        let mut bits = pending(w) & !mask(w);
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let port = w * 64 + b;
            if mine(port) {
                deliver(port);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn xen_sys_layouts_match_xen_4_17() {
        assert_eq!(size_of::<vcpu_info>(), 64);
        assert_eq!(core::mem::offset_of!(shared_info, evtchn_pending), 32 * 64);
    }

    #[test]
    fn scan_delivers_only_ready_ports_of_this_vcpu() {
        let pending = [0b1011u64, 0, 1 << 63, u64::MAX];
        let mask = [0b0010u64, 0, 0, !0b1];
        let mut got = Vec::new();
        // Word 1 selected but empty; word 3 not selected.
        scan_2l(
            0b0111,
            |w| pending[w],
            |w| mask[w],
            |p| p != 3,
            |p| got.push(p),
        );
        assert_eq!(
            got,
            [0, 2 * 64 + 63],
            "port 1 masked, port 3 another vCPU's"
        );
        got.clear();
        scan_2l(
            1 << 3,
            |w| pending[w],
            |w| mask[w],
            |_| true,
            |p| got.push(p),
        );
        assert_eq!(got, [3 * 64]);
        got.clear();
        scan_2l(0, |_| u64::MAX, |_| 0, |_| true, |p| got.push(p));
        assert!(got.is_empty());
    }

    #[test]
    fn tsc_scaling() {
        // 2 GHz TSC: mul = 2^31 (0.5 ns per tick), shift 0.
        assert_eq!(scale_tsc_delta(2_000, 1 << 31, 0), 1_000);
        assert_eq!(scale_tsc_delta(2_000, 1 << 31, 1), 2_000);
        assert_eq!(scale_tsc_delta(2_000, 1 << 31, -1), 500);
        // No overflow for large deltas.
        assert_eq!(
            scale_tsc_delta(1 << 40, u32::MAX, 0),
            (((1u128 << 40) * u32::MAX as u128) >> 32) as u64
        );
    }
}
