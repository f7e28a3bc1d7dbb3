//! Shell steps several scenarios share.

use crate::Scenario;

/// A scenario that carries the stub kernel and the launcher, as
/// `/scenario/stubdom` and `/scenario/vmi-launch` (what [`launch_stub`]
/// runs).
pub fn stub_scenario(name: &str) -> Scenario {
    Scenario::new(name)
        .file("/scenario/stubdom", &crate::kernel("stubdom"))
        .file("/scenario/vmi-launch", &crate::dom0_tool("vmi-launch"))
}

/// The shell step that starts `vmi-launch` for a stub on `target` in the
/// background as `xl create -F` (so `wait_shutdown(stub)` sees it end).
pub fn launch_stub(stub: &str, target: &str, vcpus: u32, extra: &str) -> String {
    format!(
        "chmod +x /scenario/vmi-launch
         /scenario/vmi-launch --target {target} --kernel /scenario/stubdom --name {stub} --vcpus {vcpus} \
            --tsc-native --foreground --config-out /tmp/{stub}.cfg {extra} > /tmp/xl-{stub}.log 2>&1 &
         echo $! > /tmp/xl-{stub}.pid
         sleep 1; head -n 1 /tmp/xl-{stub}.log"
    )
}
