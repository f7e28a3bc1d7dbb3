//! The product: the stub domain serves a live target with no dom0 process
//! in the event path. Target on 1, 2 and 4 vCPUs, stub on 1 and 2: every
//! event the guest generated is served exactly once, denied writes did not
//! stick, allowed ones did, the spoofed CPUID leaf returns the policy's
//! value; INT3 swallowed (the guest's #BP handler sees none) and reinjected
//! (it sees each once). Then detaching (`xl shutdown`, `xl destroy`) mid-workload, and
//! refused starts (no such target, a bad policy line, a capability the host
//! lacks, a second stub on the same target, a Xen release the stub cannot
//! speak to). Each target runs its workload once its stub says it is
//! attached (`go=xenstore`), never on a timer. One boot of Xen.

use std::sync::OnceLock;

use nested::steps::{launch_stub as launch, stub_workload, watch_served, STUB_RULES};
use nested::{Guest, Run};
use workload::{Kind, Report};

const COUNT: u32 = 40;
/// CPUIDs per vCPU of the stalled-console target: its audit lines are
/// far more than the 2 KiB console ring holds.
const QUIET_COUNT: u32 = 150;
/// (target vCPUs, stub vCPUs, how the stub waits): `poll` where the
/// target's vCPU finds its answers in Xen while it waits (patch 0015), CR
/// and MSR writes among them, whose denial must hold there too (patch
/// 0016); `spin` is block mode looking on for 200 µs after each answer,
/// on stub vCPUs with two ports each (unmasked: their upcalls come while
/// it spins).
const PAIRS: [(u32, u32, &str); 5] = [
    (1, 1, "poll"),
    (2, 1, "block"),
    (2, 2, "block"),
    (4, 2, "block"),
    (4, 2, "spin"),
];

/// The target's and the stub's names of a pair.
fn pair_names(t: u32, s: u32, mode: &str) -> (String, String) {
    let tn = match mode {
        "spin" => format!("t{t}s{s}spin"),
        _ => format!("t{t}s{s}"),
    };
    let sn = format!("stub-{tn}");
    (tn, sn)
}

/// The launcher's flags for a pair's mode.
fn mode_flags(mode: &str) -> &'static str {
    match mode {
        "poll" => "--mode poll",
        "spin" => "--mode block --spin 200",
        _ => "--mode block",
    }
}
const TARGET_LABEL: &str = "system_u:system_r:vmi_target_t";

fn target(name: &str, kernel: &std::path::Path, vcpus: u32) -> Guest {
    Guest::pvh(name, kernel)
        .vcpus(vcpus)
        .seclabel(TARGET_LABEL)
        .cmdline(&format!("{} go=xenstore", stub_workload(COUNT)))
}

/// A stub for the victim whose xl config, as `vmi-launch --dry-run` writes
/// it, is edited by hand (`sed` expression) and then created, unpaired,
/// with plain `xl create` (what the stub must refuse comes first).
fn edited_stub(name: &str, sed: &str) -> String {
    format!(
        "/scenario/vmi-launch --target victim --kernel /scenario/stubdom --name {name} \
            --rules any,allow --tsc-native --dry-run --config-out /tmp/{name}.cfg > /dev/null
         sed -i '{sed}' /tmp/{name}.cfg
         grep extra /tmp/{name}.cfg
         xl create -F /tmp/{name}.cfg > /tmp/xl-{name}.log 2>&1 &
         echo $! > /tmp/xl-{name}.pid
         sleep 1"
    )
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let guest = nested::kernel("guest");
        let mut sc = nested::steps::stub_scenario("stub");
        for (t, s, mode) in PAIRS {
            let (tn, sn) = pair_names(t, s, mode);
            sc = sc
                .guest(target(&tn, &guest, t))
                .start(&tn)
                .step(
                    &format!("domid {tn}"),
                    &format!("xl domid {tn} > /tmp/{tn}.domid"),
                )
                .wait_for(&tn, "WORKLOAD-WAIT", 60)
                .step(
                    &format!("launch {sn}"),
                    &launch(&sn, &tn, s, &format!("--rules '{STUB_RULES}' {}", mode_flags(mode))),
                )
                .wait_for(&sn, "stub: attached", 60)
                .go(&tn)
                .step(
                    &format!("no dom0 consumer {tn}"),
                    "! pidof vmi-consumer xen-access",
                )
                // Until the target is gone; a stub that stops serving for
                // 30 s fails the step with Xen's view of both domains.
                .step_within(
                    &format!("served {tn}"),
                    &watch_served(&sn, &tn, &format!("! xl domid {tn} > /dev/null 2>&1"), 30),
                    300,
                )
                .wait_shutdown(&tn, 60)
                .wait_shutdown(&sn, 60)
                .step(
                    &format!("placement {sn}"),
                    &format!("grep '^vmi-launch: stub vCPUs' /tmp/xl-{sn}.log"),
                )
                .step(
                    &format!("xen counters {tn}"),
                    &nested::steps::xen_counters(&tn),
                );
        }
        // INT3 reinjected: the stub serves each one and Xen delivers it to
        // the guest's own #BP handler, which returns after the INT3.
        sc = sc
            .guest(target("reinject", &guest, 2).cmdline(&format!(
                "kinds=int3,cpuid count={COUNT} leaves=0x6 go=xenstore"
            )))
            .start("reinject")
            .wait_for("reinject", "WORKLOAD-WAIT", 60)
            .step(
                "launch stub-reinject",
                &launch(
                    "stub-reinject",
                    "reinject",
                    1,
                    "--rules 'int3,reinject,log=info;any,allow'",
                ),
            )
            .wait_for("stub-reinject", "stub: attached", 60)
            .go("reinject")
            .wait_shutdown("reinject", 300)
            .wait_shutdown("stub-reinject", 60);
        // A stalled console: xenconsoled is stopped (SIGSTOP) from before
        // the go until the stub has served the whole workload (its
        // counters in xenstore say so), while the stub logs every event.
        // The stub must serve at full speed and lose no record. The
        // target then waits for `xl shutdown`: had it powered off while
        // xenconsoled was stopped, its own last lines would have gone
        // with it, unread (one boot on 2026-12-02 lost them so).
        sc = sc
            .guest(target("quiet", &guest, 2).cmdline(&format!(
                "kinds=cpuid count={QUIET_COUNT} leaves=0x6 go=xenstore then=xl"
            )))
            .start("quiet")
            .wait_for("quiet", "WORKLOAD-WAIT", 60)
            .step(
                "launch stub-quiet",
                &launch(
                    "stub-quiet",
                    "quiet",
                    1,
                    "--rules 'cpuid,allow,log=info;any,allow' --log all",
                ),
            )
            .wait_for("stub-quiet", "stub: attached", 60)
            // The stub's lines before the stop are out: the wait above
            // read them from xenconsoled's log.
            .step("stop xenconsoled", "kill -STOP $(pidof xenconsoled)")
            .go("quiet")
            .step_within(
                "stub-quiet served all",
                &format!(
                    "d=$(xl domid stub-quiet)
                     while [ \"$(xenstore-read /local/domain/$d/data/vmi/served 2>/dev/null)\" \
                             != {} ]; do sleep 0.2; done",
                    2 * QUIET_COUNT
                ),
                300,
            )
            .step("continue xenconsoled", "kill -CONT $(pidof xenconsoled)")
            .wait_for("quiet", "WORKLOAD-WAIT-XL", 60)
            .step("xl shutdown quiet", "xl shutdown quiet")
            .wait_shutdown("quiet", 60)
            .wait_shutdown("stub-quiet", 60);
        // Detach mid-workload: xl shutdown, then xl destroy of the stub.
        for how in ["shutdown", "destroy"] {
            let (tn, sn) = (format!("{how}-t"), format!("{how}-s"));
            sc = sc
                .guest(
                    Guest::pvh(&tn, &guest)
                        .vcpus(2)
                        .seclabel(TARGET_LABEL)
                        .cmdline("kinds=cpuid count=20000 leaves=0x6 go=xenstore"),
                )
                .start(&tn)
                .step(
                    &format!("domid {tn}"),
                    &format!("xl domid {tn} > /tmp/{tn}.domid"),
                )
                .wait_for(&tn, "WORKLOAD-WAIT", 60)
                .step(
                    &format!("launch {sn}"),
                    &launch(&sn, &tn, 1, "--rules cpuid,allow --log none"),
                )
                .wait_for(&sn, "stub: attached", 60)
                .go(&tn)
                // Mid-workload: once the stub's own counter (published in
                // xenstore) shows it serving.
                .step(
                    &format!("xl {how} {sn}"),
                    &format!(
                        "{}\n xl {how} {sn}",
                        watch_served(&sn, &tn, "[ \"$n\" -gt 200 ]", 50)
                    ),
                )
                .wait_shutdown(&sn, 60)
                .wait_shutdown(&tn, 300);
        }
        // Refused starts: each one line, a clean stop, the target unharmed.
        sc = sc
            // It waits for its go (after six launches, each one created
            // paused, paired and unpaused by vmi-launch).
            .guest(target("victim", &guest, 1).cmdline("kinds=cpuid count=5 go=xenstore"))
            .start("victim")
            .wait_for("victim", "WORKLOAD-WAIT", 60)
            // The launcher refuses a target it cannot resolve...
            .step_may_fail(
                "launcher bad target",
                "/scenario/vmi-launch --target 4000 --kernel /scenario/stubdom --rules any,allow",
                30,
            )
            // ...and the stub refuses one that is gone by the time it attaches.
            .step(
                "launch bad-target",
                &edited_stub("bad-target", "s/target=[0-9]*/target=4000/"),
            )
            .wait_shutdown("bad-target", 60)
            // A key given twice (say, by hand in the xl config) is refused,
            // not resolved silently in favour of one copy.
            .step(
                "launch dup-key",
                &edited_stub("dup-key", "s/extra = \"/extra = \"ring_frames=17 /"),
            )
            .wait_shutdown("dup-key", 60)
            // A spin for a mode that never blocks: named, not ignored.
            .step(
                "launch spin-poll",
                &edited_stub("spin-poll", "s/mode=block/mode=poll spin=50/"),
            )
            .wait_shutdown("spin-poll", 60)
            // A hypervisor the stub cannot speak to (forced: the stub is
            // told it speaks 4.19's domctls) is named by the launcher before
            // it creates anything, and by the stub before its first domctl.
            .step_may_fail(
                "launcher wrong release",
                "/scenario/vmi-launch --target victim --kernel /scenario/stubdom --rules any,allow \
                    --test-release 4.19",
                30,
            )
            .step(
                "launch wrong-release",
                &edited_stub("wrong-release", "s/extra = \"/extra = \"test_release=4.19 /"),
            )
            .wait_shutdown("wrong-release", 60)
            .step(
                "launch bad-policy",
                &launch(
                    "bad-policy",
                    "victim",
                    1,
                    "--rules 'cpuid,leaf=zero,spoof;any,allow'",
                ),
            )
            .wait_shutdown("bad-policy", 60)
            .step(
                "launch no-capability",
                &launch(
                    "no-capability",
                    "victim",
                    1,
                    "--rules 'singlestep,allow;any,allow'",
                ),
            )
            .wait_shutdown("no-capability", 60)
            .step(
                "launch first",
                &launch("first", "victim", 1, "--rules any,allow --log none"),
            )
            .wait_for("first", "stub: attached", 60)
            .step(
                "launch second",
                &launch("second", "victim", 1, "--rules any,allow"),
            )
            .wait_shutdown("second", 60)
            .go("victim")
            .wait_shutdown("victim", 120)
            .wait_shutdown("first", 60);
        // A target that has shut down but is not destroyed yet (xl keeps it
        // with on_poweroff="preserve"): the stub says so and does not attach.
        sc = sc
            .guest(target("ended", &guest, 2).cmdline("kinds=cpuid count=1"))
            .step(
                "preserve ended",
                "sed -i 's/on_poweroff = \"destroy\"/on_poweroff = \"preserve\"/' /scenario/ended.cfg",
            )
            .start("ended")
            .wait_shutdown("ended", 60)
            .step(
                "launch late",
                &launch("late", "ended", 1, "--rules any,allow"),
            )
            .wait_shutdown("late", 60)
            .step("destroy ended", "xl list; xl destroy ended");
        sc.run()
    })
}

fn stub_counts(console: &str, vcpu: u32) -> std::collections::BTreeMap<String, u64> {
    let line = console
        .lines()
        .find(|l| l.starts_with(&format!("stub: vcpu={vcpu} ")))
        .unwrap_or_else(|| panic!("no stub line for vCPU {vcpu}:\n{console}"));
    line.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

fn report(run: &Run, guest: &str) -> Report {
    let rep = workload::parse(run.console(guest));
    assert!(rep.malformed.is_empty(), "{guest}: {:?}", rep.malformed);
    assert!(
        rep.summary.is_some(),
        "{guest} did not finish; logs: {}",
        run.log_dir.display()
    );
    rep
}

#[test]
fn every_event_is_served_once_and_the_policy_holds() {
    let run = run();
    for (t, s, mode) in PAIRS {
        let (tn, sn) = pair_names(t, s, mode);
        let rep = report(run, &tn);
        let console = run.console(&sn);
        // Xen's counters: how many answers the waiting vCPU took itself.
        let xen = &run.step(&format!("xen counters {tn}")).output;
        eprintln!("{tn}: {}", xen.trim());
        if mode == "poll" {
            let (hits, _) = nested::steps::waited(xen)
                .unwrap_or_else(|| panic!("{tn}: no waited count from Xen: {xen}"));
            assert!(hits > 0, "{tn}: Xen took no answer while waiting: {xen}");
        }
        assert!(run.step(&format!("no dom0 consumer {tn}")).ok());
        // The launcher says where it put the stub's vCPUs (on this bed's
        // 2 pCPUs: nowhere of their own).
        let launch = &run.step(&format!("placement {sn}")).output;
        let placed = launch
            .lines()
            .find(|l| l.starts_with("vmi-launch: stub vCPUs "))
            .unwrap_or_else(|| panic!("{sn}: no placement line: {launch}"));
        eprintln!("{sn}: {placed}");
        // The target left first: the detach says so, without alarm.
        assert!(
            console.contains("stub: detached from domain") && !console.contains("failed"),
            "{sn}: {console}"
        );
        // The target ran only once every stub vCPU served: the unpause
        // line comes after the attach and before the first audit record.
        let at = |needle: &str| console.find(needle).unwrap_or(usize::MAX);
        let unpaused = at(&format!("stub: serving on {s} vCPU(s); domain "));
        assert!(
            at("stub: attached") < unpaused && unpaused < at("{\"vcpu\":"),
            "{sn}: {console}"
        );
        for v in 0..t {
            let c = stub_counts(console, v);
            let g = |k| {
                rep.record(v, k)
                    .unwrap_or_else(|| panic!("{tn}: no {k:?} for vCPU {v}"))
            };
            let ctx = format!("{tn} vCPU {v}: stub {c:?}");
            let probes = g(Kind::Cr).num("cpuid_probes").unwrap();
            assert_eq!(
                c["cpuid"],
                u64::from(g(Kind::Cpuid).count) + probes,
                "{ctx}"
            );
            assert_eq!(c["cr"], g(Kind::Cr).num("cr4_writes").unwrap(), "{ctx}");
            assert_eq!(c["msr"], u64::from(g(Kind::Msr).count), "{ctx}");
            // INT3 swallowed: the stub served every one, the guest's own
            // #BP handler saw none.
            let (int3, delivered) = (c["int3"], g(Kind::Int3).num("delivered").unwrap());
            assert_eq!((int3, delivered), (u64::from(COUNT), 0), "{ctx}");
            assert_eq!(
                c["guest_request"],
                u64::from(g(Kind::GuestRequest).count),
                "{ctx}"
            );
            // Denied LSTAR writes did not stick; allowed CR4 writes did.
            assert_eq!(g(Kind::Msr).num("stuck"), Some(0), "{ctx}");
            assert_eq!(g(Kind::Cr).num("stuck"), Some(u64::from(COUNT)), "{ctx}");
            // The spoofed leaf answered the policy's eax.
            let leaf6 = g(Kind::Cpuid).get("leaf.0x6").unwrap().to_string();
            assert!(
                leaf6.starts_with("0x1234abcd:"),
                "{ctx}: leaf 0x6 = {leaf6}"
            );
        }
        assert!(
            console.contains("\"action\":\"deny\""),
            "{sn} printed no deny audit record"
        );
        assert_eq!(run.shutdown_reason(&tn), Some(0));
        assert_eq!(
            run.shutdown_reason(&sn),
            Some(0),
            "{sn} did not power off cleanly"
        );
    }
}

/// No slot of any target held one request (or one answer) for the stub's
/// stall bound: a stub vCPU that lost a wake-up says so (`stub: stall:`)
/// and is kicked, which keeps its target alive but is still a bug.
#[test]
fn no_stub_vcpu_stalls() {
    let run = run();
    let mut stubs: Vec<String> = PAIRS
        .iter()
        .map(|&(t, s, mode)| pair_names(t, s, mode).1)
        .collect();
    stubs.extend(["stub-reinject", "stub-quiet", "shutdown-s", "destroy-s"].map(String::from));
    for sn in &stubs {
        let stalls: Vec<&str> = run
            .console(sn)
            .lines()
            .filter(|l| l.starts_with("stub: stall"))
            .collect();
        assert!(
            stalls.is_empty(),
            "{sn}: {}; logs: {}",
            stalls.join("\n"),
            run.log_dir.display()
        );
    }
}

/// xenconsoled stopped for the whole workload: before the audit queue,
/// each line waited 2000 yields for the full ring, then was dropped (and
/// the event after it waited meanwhile).
#[test]
fn a_stalled_console_loses_no_record_and_stalls_no_event() {
    let run = run();
    run.assert_ok();
    let rep = report(run, "quiet");
    let want = u64::from(2 * QUIET_COUNT);
    assert_eq!(rep.total(Kind::Cpuid), want, "quiet: the guest's CPUIDs");
    let console = run.console("stub-quiet");
    let seqs: Vec<u64> = console
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"kind\":\"cpuid\""))
        .filter_map(|l| {
            let at = l.find("\"seq\":")? + 6;
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let first = seqs.first().copied().unwrap_or_default();
    let contiguous = seqs.iter().enumerate().all(|(i, &s)| s == first + i as u64);
    assert!(
        seqs.len() as u64 == want && contiguous,
        "stub-quiet printed {} of {want} CPUID records (contiguous seq: {contiguous}); logs: {}",
        seqs.len(),
        run.log_dir.display()
    );
    assert!(
        !console.contains("dropped:"),
        "stub-quiet dropped records:\n{console}"
    );
    assert!(
        console.contains(&format!("stub: served {want} sync event(s)")),
        "stub-quiet's summary:\n{console}"
    );
}

#[test]
fn reinjected_int3_reaches_the_guest_once_each() {
    let run = run();
    let rep = report(run, "reinject");
    let console = run.console("stub-reinject");
    for v in 0..2 {
        let c = stub_counts(console, v);
        let rec = rep
            .record(v, Kind::Int3)
            .unwrap_or_else(|| panic!("reinject: no int3 record for vCPU {v}"));
        assert_eq!(
            (c["int3"], rec.num("delivered").unwrap()),
            (u64::from(COUNT), u64::from(COUNT)),
            "reinject vCPU {v}: stub served, guest saw; stub {c:?}"
        );
    }
    assert!(
        !console.contains("reinjecting a trap failed"),
        "stub-reinject: {console}"
    );
    assert_eq!(rep.summary.unwrap()["status"], "ok");
}

#[test]
fn the_target_finishes_when_the_stub_is_shut_down_or_destroyed() {
    let run = run();
    for how in ["shutdown", "destroy"] {
        let (tn, sn) = (format!("{how}-t"), format!("{how}-s"));
        let rep = report(run, &tn);
        assert_eq!(rep.total(Kind::Cpuid), 40_000, "{tn}");
        let published: u64 = run
            .step(&format!("xl {how} {sn}"))
            .output
            .lines()
            .find_map(|l| l.strip_prefix("served="))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        assert!(published > 200, "{sn}: xenstore counter {published}");
        assert_eq!(
            run.shutdown_reason(&tn),
            Some(0),
            "{tn}; logs: {}",
            run.log_dir.display()
        );
        let served: u64 = (0..2)
            .filter_map(|v| {
                run.console(&sn)
                    .lines()
                    .find(|l| l.starts_with(&format!("stub: vcpu={v} ")))
                    .map(|_| v)
            })
            .count() as u64;
        if how == "shutdown" {
            assert_eq!(
                served,
                2,
                "{sn} printed no counters after xl shutdown:\n{}",
                run.console(&sn)
            );
            run.expect_in(&sn, run.console(&sn), "stub: detached from domain");
            let total: u64 = run
                .console(&sn)
                .lines()
                .find_map(|l| l.strip_prefix("stub: served "))
                .and_then(|r| r.split_whitespace().next()?.parse().ok())
                .unwrap();
            assert!(total < 40_000, "{sn} served all {total}: not mid-workload");
            assert_eq!(
                run.shutdown_reason(&sn),
                Some(0),
                "{sn}: xl shutdown is a poweroff"
            );
        }
    }
}

#[test]
fn refused_starts_are_one_line_and_leave_the_target_alone() {
    let run = run();
    let l = run.step("launcher bad target");
    assert_eq!(l.status, Some(1), "{}", l.output);
    run.expect_in("launcher", &l.output, "no domain named or numbered '4000'");
    let gone = run.console("bad-target");
    assert!(
        gone.contains("cannot attach: no such domain 4000"),
        "bad target: {gone}"
    );
    assert_eq!(
        run.shutdown_reason("bad-target"),
        Some(0),
        "a refused attach is a clean poweroff"
    );
    let bad = run.console("bad-policy");
    assert!(
        bad.contains("bad policy") && bad.contains("line 1"),
        "bad policy: {bad}"
    );
    assert!(matches!(run.shutdown_reason("bad-policy"), Some(r) if r != 0));
    let cap = run.console("no-capability");
    assert!(
        cap.contains("line 1: the host cannot monitor single-step"),
        "capability: {cap}"
    );
    assert_eq!(run.shutdown_reason("no-capability"), Some(0));
    let second = run.console("second");
    assert!(
        second.contains("already monitored"),
        "second stub: {second}"
    );
    assert_eq!(run.shutdown_reason("second"), Some(0));
    let dup = run.console("dup-key");
    assert!(
        dup.contains("stubdom: bad command line: field 'ring_frames': given more than once"),
        "duplicate key: {dup}"
    );
    assert_eq!(
        run.shutdown_reason("dup-key"),
        Some(3),
        "{}",
        run.xl_log("dup-key")
    );
    run.expect_in(
        "spin-poll stub",
        run.console("spin-poll"),
        "stubdom: bad command line: field 'spin': only for mode=block (mode=poll never blocks)",
    );
    assert_eq!(run.shutdown_reason("spin-poll"), Some(3));
    let wr = run.step("launcher wrong release");
    assert_eq!(wr.status, Some(1), "{}", wr.output);
    run.expect_in(
        "launcher",
        &wr.output,
        "vmi-launch: hypervisor is Xen 4.17.5 (domctl 0x15); \
         the stub speaks domctl 0x17 (Xen 4.19): no stub started",
    );
    run.expect_in(
        "wrong-release stub",
        run.console("wrong-release"),
        "stubdom: cannot attach: hypervisor is Xen 4.17.5 (domctl 0x15); \
         this stub speaks domctl 0x17 (Xen 4.19): not attached",
    );
    assert_eq!(run.shutdown_reason("wrong-release"), Some(0));
    let late = run.console("late");
    assert!(
        late.contains("has shut down (reason code 0): not attached"),
        "a shut-down target: {late}"
    );
    assert_eq!(run.shutdown_reason("late"), Some(0));
    for stub in [
        "bad-target",
        "dup-key",
        "wrong-release",
        "bad-policy",
        "no-capability",
        "second",
        "late",
    ] {
        let errors = run
            .console(stub)
            .lines()
            .filter(|l| l.contains("cannot attach") || l.contains("bad "))
            .count();
        assert_eq!(
            errors,
            1,
            "{stub}: one error line expected:\n{}",
            run.console(stub)
        );
    }
    let rep = report(run, "victim");
    assert_eq!(rep.summary.unwrap()["status"], "ok");
    assert_eq!(run.shutdown_reason("victim"), Some(0));
}
