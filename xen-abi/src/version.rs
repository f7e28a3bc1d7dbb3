//! `public/version.h`: which Xen is running (the release it belongs to is
//! checked against ours with `domctl::check_release`).

/// Returns `major << 16 | minor`.
pub const XENVER_VERSION: u32 = 0;
/// Fills a `char[16]` (`".5"`).
pub const XENVER_EXTRAVERSION: u32 = 1;
