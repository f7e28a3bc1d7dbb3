// libxenctrl (XEN_DOMCTL_set_target) comes from Debian's libxen-dev
// (installed by `cargo xtask deps`); dom0 in the test bed carries the same
// library.
fn main() {
    println!("cargo:rustc-link-lib=dylib=xenctrl");
}
