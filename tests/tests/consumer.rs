//! Our dom0 consumer (tools/consumer) on Xen's stock ring: it serves a PVH
//! guest's CPUID events from boot to poweroff, and the guest completes.

use nested::{Guest, Scenario};

#[test]
fn dom0_consumer_serves_the_stock_ring() {
    let linux = nested::linux_guest();
    let consumer = nested::dom0_tool("vmi-consumer");
    let run = Scenario::new("consumer-ring")
        .file("/scenario/vmi-consumer", &consumer)
        .guest(
            Guest::pvh("linux", &linux.vmlinux)
                .ramdisk(&linux.initrd)
                .memory_mb(128)
                .cmdline("console=hvc0 quiet"),
        )
        .start_paused("linux")
        .step(
            "consumer",
            "chmod +x /scenario/vmi-consumer
             /scenario/vmi-consumer $(xl domid linux) --ring --cpuid > /tmp/c.log 2>&1 &
             echo $! > /tmp/c.pid
             while ! grep -q serving /tmp/c.log; do
                 kill -0 $(cat /tmp/c.pid) || { cat /tmp/c.log; exit 1; }
                 sleep 0.1
             done
             xl unpause linux
             cat /tmp/c.log",
        )
        .wait_shutdown("linux", 180)
        .step(
            "stop",
            "kill -INT $(cat /tmp/c.pid); while kill -0 $(cat /tmp/c.pid) 2>/dev/null; do sleep 0.1; done
             cat /tmp/c.log",
        )
        .run();
    run.assert_ok();
    run.expect_in(
        "linux console",
        run.console("linux"),
        testbed::kernels::LINUX_GUEST_MARKER,
    );
    let out = &run.step("stop").output;
    let cpuid: u64 = out
        .lines()
        .filter_map(|l| l.strip_prefix("consumer: vcpu=0 cpuid="))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .next()
        .unwrap_or(0);
    eprintln!("vmi-consumer (stock ring) answered {cpuid} CPUID events");
    assert!(
        cpuid > 0,
        "no CPUID answered: {out}; logs: {}",
        run.log_dir.display()
    );
}
