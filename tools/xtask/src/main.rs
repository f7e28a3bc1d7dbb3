//! `cargo xtask <command>`: builds the bed and runs the project's tests.

use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context};
use testbed::Layout;

mod bench;
mod demo;
mod soak;
mod trace;

const HELP: &str = "\
cargo xtask <command>

Commands:
  deps      install the host packages the bed needs (apt, as root)
  xen       build the hypervisor (Debian's Xen 4.17.5 + xen/patches/4.17/, FLASK on)
            and the FLASK policy (+ xen/flask/*.te); prints their paths
  dom0      assemble the dom0 kernel + initramfs from Debian packages
  kernels   build our PVH kernels (x86_64-unknown-none)
  build     all of the above
  exec [--file DEST=SRC]... [--guest NAME=KERNEL[:VCPUS[:CMDLINE]]]... CMD...
            boot the bed and run each CMD as a dom0 shell step (busybox sh,
            120 s each); files are copied into dom0, guests get xl configs
            (/scenario/NAME.cfg; start them with `bed_start NAME [-p]`);
            prints every step's output, then the log folder
  demo      the quick start: build everything, boot the bed, run the target
            test guest (4 vCPUs) under the stub domain (2 vCPUs) with
            vmevent/examples/demo.policy; print the stub's audit lines and a
            summary table
  bench [ROUNDS] [--vcpus N[,N]...] | bench trace
            guest-seen cycles per CPUID, unmonitored vs xen-access vs our
            dom0 consumer (ring, slots) vs the stub domain (mode=block,
            mode=poll, spin=200), 1/2/4/8 vCPUs, ROUNDS interleaved rounds (default
            and minimum 3) in one boot: median ratio [min-max], events/s,
            fairness; a row whose consumer did not serve every CPUID says
            INVALID and why; then one traced round at 1 vCPU (xentrace +
            vmi-trace: exits, hypercalls, switches and phases per event);
            `--vcpus 8`: those target vCPU counts only, no traced round;
            `bench trace`: the traced round alone
            (a benchmark: prints figures, asserts none)
  soak [N [CYCLES]] [--no-stub | --pause | --serve [--spin]]
            boot the bed's stress scenario (stub create/destroy cycles
            against 3..12-vCPU targets while dom0 starts processes) N times
            (default 20) and count the boots in which the bed broke; never
            retried (a measurement: prints, asserts nothing); --no-stub
            runs the same targets unmonitored; --serve boots CYCLES (10)
            2-vCPU targets served by a 1-vCPU stub, each watched for a
            serving stall (10 s without progress: Xen's view is dumped);
            --serve --spin: the stub suite's t4s2spin pair instead (4
            target vCPUs on a 2-vCPU stub, spin=200)
  test      the project's test command: host unit tests, then the nested
            QEMU + Xen integration tests (installs and builds what it needs)

Builds are cached under target/bed by a hash of their inputs; run logs are
kept under target/bed/runs.
";

/// Our PVH kernels, by package name.
const KERNELS: &[&str] = &["stubdom", "guest"];

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn status(cmd: &mut Command) -> anyhow::Result<()> {
    let st = cmd
        .status()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !st.success() {
        bail!("{:?} failed ({st})", cmd);
    }
    Ok(())
}

fn kernels(layout: &Layout) -> anyhow::Result<()> {
    testbed::deps::ensure_rust(layout)?;
    for k in KERNELS {
        let elf = testbed::kernels::build_ours(layout, k)?;
        println!("kernel {k}: {}", elf.display());
    }
    Ok(())
}

fn test(layout: &Layout) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let art = testbed::prepare(layout)?;
    println!(
        "xtask: bed ready in {:.0} s (Xen {}, {} patch(es))",
        t0.elapsed().as_secs_f64(),
        art.xen.version,
        art.xen.patches.len()
    );
    // Host tests and nested tests in one cargo run: the nested ones share
    // boots inside each test binary and take turns on QEMU through a lock.
    status(
        cargo()
            // Every test binary runs even after one fails, so one run shows
            // everything; the kernels are built by the tests themselves.
            .args([
                "test",
                "--no-fail-fast",
                "--workspace",
                "--exclude",
                "stubdom",
                "--exclude",
                "guest",
                "--exclude",
                "xskernel",
                "--exclude",
                "attack",
                // Only for the kernels (the hypercall edge is bare-metal).
                "--exclude",
                "xenctl",
            ])
            .env("VMEVENT_PATCHED_XEN_INCLUDE", art.xen.public_headers())
            .current_dir(&layout.root),
    )?;
    // The loom model of the slot handshake needs its own cfg (and so its
    // own target directory, so the main build stays cached).
    status(
        cargo()
            .args(["test", "--release", "-p", "vmevent", "--test", "loom"])
            .env("RUSTFLAGS", "--cfg loom")
            .env("CARGO_TARGET_DIR", layout.root.join("target/loom"))
            .current_dir(&layout.root),
    )?;
    println!(
        "xtask: all tests passed in {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn exec(args: &[String]) -> anyhow::Result<()> {
    let mut sc = nested::Scenario::new("exec");
    let mut cmds = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--file" => {
                let spec = it.next().context("--file needs DEST=SRC")?;
                let (dest, src) = spec.split_once('=').context("--file needs DEST=SRC")?;
                sc = sc.file(dest, std::path::Path::new(src));
            }
            "--guest" => {
                let spec = it
                    .next()
                    .context("--guest needs NAME=KERNEL[:VCPUS[:CMDLINE]]")?;
                let (name, rest) = spec.split_once('=').context("--guest needs NAME=KERNEL")?;
                let mut parts = rest.splitn(3, ':');
                let kernel = parts.next().unwrap_or_default();
                let mut g = nested::Guest::pvh(name, std::path::Path::new(kernel));
                if let Some(v) = parts.next() {
                    g = g.vcpus(v.parse().context("--guest: VCPUS must be a number")?);
                }
                if let Some(c) = parts.next() {
                    g = g.cmdline(c);
                }
                sc = sc.guest(g);
            }
            _ => cmds.push(a.clone()),
        }
    }
    if cmds.is_empty() {
        bail!("exec needs at least one shell command");
    }
    for (i, c) in cmds.iter().enumerate() {
        sc = sc.step_may_fail(&format!("{i}"), c, 120);
    }
    let run = sc.run();
    for (st, c) in run.steps.iter().zip(&cmds) {
        println!(
            "$ {c}\n{}[status {:?}, {:.2} s]",
            st.output,
            st.status,
            st.seconds()
        );
    }
    println!("logs: {}", run.log_dir.display());
    Ok(())
}

fn main() -> ExitCode {
    let layout = Layout::from_workspace();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("deps") => testbed::deps::ensure(&layout),
        Some("xen") => (|| {
            testbed::deps::ensure(&layout)?;
            let hv = testbed::xen::build_hypervisor(&layout)?;
            let pol = testbed::xen::build_policy(&layout, &hv)?;
            println!("xen: {}\npolicy: {}", hv.image.display(), pol.display());
            Ok(())
        })(),
        Some("dom0") => (|| {
            testbed::deps::ensure(&layout)?;
            let img = testbed::dom0::build(&layout)?;
            println!(
                "kernel: {}\ninitrd: {}",
                img.kernel.display(),
                img.initrd.display()
            );
            Ok(())
        })(),
        Some("kernels") => kernels(&layout),
        Some("build") => testbed::prepare(&layout).and_then(|_| kernels(&layout)),
        Some("test") => test(&layout),
        Some("exec") => exec(&args[1..]),
        Some("demo") => demo::run(&layout),
        Some("bench") => bench::run(&layout, &args[1..]),
        Some("soak") => soak::run(&layout, &args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!(
            "unknown command {other:?}; see cargo xtask --help"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
