//! `public/io/console.h`: the PV console ring a PVH kernel writes to.

use core::mem::size_of;

/// `struct xencons_interface`.
#[repr(C)]
pub struct XenconsInterface {
    pub input: [u8; 1024],
    pub output: [u8; 2048],
    pub in_cons: u32,
    pub in_prod: u32,
    pub out_cons: u32,
    pub out_prod: u32,
}

const _: () = assert!(size_of::<XenconsInterface>() == 1024 + 2048 + 16);
