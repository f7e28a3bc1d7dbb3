// The Xen libraries come from Debian's libxen-dev (installed by `cargo xtask
// deps`); dom0 in the test bed carries the same libraries.
fn main() {
    for lib in ["xenctrl", "xenevtchn", "xenforeignmemory", "xencall"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
}
