//! Console output used by `print!`/`println!`: the Xen PV console ring on
//! the hardware (see `arch::x86_64::console`), nothing on the host.

#[cfg(target_os = "none")]
pub use crate::arch::x86_64::console::*;

/// Backend of the print macros.
#[doc(hidden)]
pub fn _print(args: core::fmt::Arguments<'_>) {
    #[cfg(target_os = "none")]
    crate::arch::x86_64::console::print(args);
    #[cfg(not(target_os = "none"))]
    let _ = args;
}
