//! The bed's tools fail with one clear line naming the problem and the log.

use std::fs;

use testbed::Layout;

#[test]
fn a_patch_that_does_not_apply_is_named_with_its_log() {
    let real = nested::layout();
    nested::artifacts(); // the source package is downloaded, deps installed
    let root = std::env::temp_dir().join(format!("bed-badpatch-{}", std::process::id()));
    fs::create_dir_all(root.join(testbed::xen::PATCH_DIR)).unwrap();
    fs::write(
        root.join(testbed::xen::PATCH_DIR)
            .join("0001-does-not-apply.patch"),
        "--- a/xen/common/vm_event.c\n+++ b/xen/common/vm_event.c\n@@ -1,3 +1,3 @@\n\
         -this line is not in Xen\n+nor is this one\n context\n context\n",
    )
    .unwrap();
    let layout = Layout {
        root: root.clone(),
        bed: real.bed.clone(),
    };
    let err =
        testbed::xen::build_hypervisor(&layout).expect_err("a bogus patch must fail the build");
    let line = format!("{err:#}");
    eprintln!("error line: {line}");
    assert!(!line.contains('\n'), "more than one line: {line}");
    assert!(
        line.contains("0001-does-not-apply.patch does not apply"),
        "{line}"
    );
    assert!(line.contains("without fuzz"), "{line}");
    let log = line.rsplit("log: ").next().unwrap().trim();
    assert!(
        fs::metadata(log).is_ok(),
        "the named log {log} does not exist"
    );
    // The failed build tree is not mistaken for a good one next time.
    let dir = std::path::Path::new(log).parent().unwrap();
    assert!(!dir.join("built").exists());
    fs::remove_dir_all(dir).unwrap();
    fs::remove_dir_all(root).unwrap();
}
