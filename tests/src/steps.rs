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

/// The stub suite's policy (inline: `;` between rules, `,` between
/// words): deny LSTAR writes, spoof CPUID leaf 0x6, swallow INT3, log
/// guest requests.
pub const STUB_RULES: &str =
    "msr,msr=0xc0000082,deny,log=alert;cpuid,leaf=0x6,spoof,eax=0x1234abcd,log=info;\
cr4,allow,log=debug;int3,swallow,log=info;guest-request,log,log=info;any,allow";

/// The stub suite's target workload (its command line without `go=`):
/// every kind `count` times, CPUID on the spoofed leaf 0x6 and on 0xa.
pub fn stub_workload(count: u32) -> String {
    format!("kinds=cpuid,cr,msr,int3,guest_request count={count} leaves=0x6,0xa")
}

/// A shell loop that reads `stub`'s published `served` counter every
/// 0.2 s until `done` (a shell test on `$n`, the counter's last value)
/// holds. If the counter stands still for `still_s` seconds first, the
/// stub has stopped serving: it prints what Xen says of both domains'
/// vCPUs (`xl vcpu-list`), the stub's registers and stacks (`xenctx`),
/// Xen's dumps of domains and vCPUs, event channels, run queues, timer
/// queues and each pCPU's registers (debug keys `q e r a d`) and the tail
/// of Xen's log, and exits 1, so the step fails with the evidence rather
/// than at its timeout. Ends with `served=N` on success.
pub fn watch_served(stub: &str, target: &str, done: &str, still_s: u32) -> String {
    let still_reads = still_s * 5;
    format!(
        "p=/local/domain/$(xl domid {stub})/data/vmi/served; n=-1; still=0
         until {done}; do
             last=$n; n=$(xenstore-read $p 2>/dev/null || echo 0)
             if [ \"$n\" = \"$last\" ]; then still=$((still + 1)); else still=0; fi
             if [ $still -ge {still_reads} ]; then
                 echo \"STALL: served=$n for {still_s} s\"
                 xl vcpu-list {target} {stub}
                 xenctx -C -S -n 2 $(xl domid {stub})
                 for k in q e r a d; do xl debug-keys $k; sleep 0.5; done
                 xl dmesg | tail -n 400
                 exit 1
             fi
             sleep 0.2
         done
         echo served=$n"
    )
}

/// The shell step that prints Xen's counters of `target`'s vm_event
/// channels, the line Xen printed when they closed. The domid is read from
/// `/tmp/{target}.domid`, saved while the domain existed.
pub fn xen_counters(target: &str) -> String {
    format!("xl dmesg | grep \"d$(cat /tmp/{target}.domid) vm_event channels closed\" | tail -n 1")
}

/// `waited HITS/WAITS` of [`xen_counters`]' output: the answers the
/// waiting vCPU took from its slot itself (patch 0015), and its waits.
pub fn waited(counters: &str) -> Option<(u64, u64)> {
    let (hits, waits) = counters
        .split("waited ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .split_once('/')?;
    Some((hits.parse().ok()?, waits.parse().ok()?))
}

/// The Linux target's domain and its stub ([`with_linux_target`]).
pub const LINUX_TARGET: &str = "linux";
pub const LINUX_STUB: &str = "stub-linux";

/// The Linux target's policy: deny only the bogus LSTAR (the kernel's own
/// write at boot must go through, or no system call would work), log
/// every LSTAR write, and log the probe's CPUID leaf (from the task named
/// `cpuid-probe` only: a `comm=` rule) with the 16 bytes its `rsi` points
/// at (the probe's own ELF header).
pub fn linux_rules() -> String {
    use testbed::kernels::{LINUX_TARGET_BAD_LSTAR, LINUX_TARGET_PROBE_LEAF};
    format!(
        "msr,msr=0xc0000082,new={LINUX_TARGET_BAD_LSTAR:#x},deny,log=alert;\
         msr,msr=0xc0000082,log,log=warn;\
         cpuid,leaf={LINUX_TARGET_PROBE_LEAF:#x},comm=cpuid-probe,log,log=warn,peek=rsi:16;any,allow"
    )
}

/// Adds Debian's Linux as a 1-vCPU target ([`testbed::kernels::linux_target`])
/// monitored from its first instruction by a stub with the profile
/// `vmi-profile` makes in dom0 from the very kernel it boots, and waits
/// for both to end. `sc` must carry the stub ([`stub_scenario`]).
pub fn with_linux_target(sc: Scenario, linux: &crate::LinuxGuest) -> Scenario {
    let (t, s) = (LINUX_TARGET, LINUX_STUB);
    let target = crate::Guest::pvh(t, &linux.vmlinux)
        .ramdisk(&linux.initrd)
        .memory_mb(256)
        .seclabel("system_u:system_r:vmi_target_t")
        .cmdline("console=hvc0 quiet");
    let vmlinux = target.kernel_file();
    sc.file("/scenario/vmi-profile", &crate::dom0_tool("vmi-profile"))
        .guest(target)
        // Paused until its stub serves: monitored from boot.
        .start_paused(t)
        .step(
            "vmi-profile",
            &format!(
                "chmod +x /scenario/vmi-profile
                 /scenario/vmi-profile {vmlinux} -o /tmp/{t}.profile
                 cat /tmp/{t}.profile"
            ),
        )
        .step(
            &format!("launch {s}"),
            &launch_stub(
                s,
                t,
                1,
                &format!("--rules '{}' --profile /tmp/{t}.profile", linux_rules()),
            ),
        )
        .wait_for(s, "stub: serving", 60)
        .step(&format!("unpause {t}"), &format!("xl unpause {t}"))
        .wait_shutdown(t, 300)
        .wait_shutdown(s, 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn waited_reads_xens_closing_line() {
        let line = "(XEN) d3 vm_event channels closed: dropped 0 bad_state 0 spurious 0 \
                    bad_version 0 lost 0 waited 35/49 not_waited 32";
        assert_eq!(super::waited(line), Some((35, 49)));
        assert_eq!(super::waited(""), None);
        assert_eq!(super::waited("waited x/1"), None);
    }
}
