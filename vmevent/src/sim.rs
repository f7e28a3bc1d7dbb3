//! Host model of Xen's side of the vm_event channels (feature `sim`).
//!
//! One thread per target vCPU plays "Xen on that vCPU": it raises a sync
//! event, is paused until the answer comes back, and measures how long it
//! waited. Consumer threads play the stub (or xen-access), driving the
//! crate's real consumers over real shared pages. Event channels are a
//! pending flag plus a thread unpark; as in Xen, a notification of a
//! Xen-bound port runs Xen's handler synchronously in the sender's context.
//!
//! Two channels are modelled:
//! - `Channel::Ring`: Xen's stock ring, 8 entries, one port, a ring lock,
//!   and vCPUs parked on a wait queue while the ring is full;
//! - `Channel::Slots`: one slot and one port per vCPU, no shared lock.

use crate::abi::{
    slot_frames, VmEventCpuid, VmEventFlags, VmEventRequest, VmEventResponse, VmEventSt,
    VM_EVENT_INTERFACE_VERSION, VM_EVENT_REASON_CPUID, VM_EVENT_SLOT_FINISH, VM_EVENT_SLOT_IDLE,
    VM_EVENT_SLOT_SUBMIT, XEN_PAGE_SIZE,
};
use crate::ring::{front, StockRingConsumer};
use crate::shm::{AsyncRingPtr, SlotArea, SlotMem, StockRingPtr};
use crate::slot::SlotConsumer;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};
use std::vec::Vec;

/// Page-aligned zeroed memory standing in for frames Xen allocated.
pub struct Pages {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the memory is only reached through the atomic/volatile accessors
// of `shm`, from any thread.
unsafe impl Send for Pages {}
// SAFETY: as above.
unsafe impl Sync for Pages {}

impl Pages {
    pub fn new(nr: usize) -> Self {
        let layout =
            Layout::from_size_align(nr.max(1) * XEN_PAGE_SIZE, XEN_PAGE_SIZE).expect("page layout");
        // SAFETY: non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory");
        Self { ptr, layout }
    }
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
    pub fn len(&self) -> usize {
        self.layout.size()
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Overwrite bytes (a hostile peer scribbling on the page).
    pub fn scribble(&self, off: usize, bytes: &[u8]) {
        assert!(off + bytes.len() <= self.len());
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: in bounds (checked above); volatile because other
            // threads may access the page concurrently.
            unsafe { core::ptr::write_volatile(self.ptr.add(off + i), *b) };
        }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Ring,
    Slots,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Ring => "ring",
            Channel::Slots => "slots",
        }
    }
}

/// A CPUID request as Xen 4.17 raises it: regs already hold Xen's answer,
/// rip still on the instruction.
pub fn cpuid_request(vcpu: u32, seq: u64) -> VmEventRequest {
    let mut r = VmEventSt::zeroed();
    r.version = VM_EVENT_INTERFACE_VERSION;
    r.flags = VmEventFlags::VCPU_PAUSED.bits();
    r.reason = VM_EVENT_REASON_CPUID;
    r.vcpu_id = vcpu;
    r.set_cpuid(VmEventCpuid {
        insn_length: 2,
        leaf: (seq % 4) as u32,
        subleaf: 0,
        _pad: 0,
    });
    let regs = r.regs_x86_mut();
    regs.rip = expected_rip(vcpu, seq) - 2;
    regs.rax = 0x11;
    regs.rbx = 0x22;
    regs.rcx = 0x33;
    regs.rdx = 0x44;
    r
}

/// rip the vCPU must resume at after event `seq` (a CPUID skip).
pub fn expected_rip(vcpu: u32, seq: u64) -> u64 {
    0x1000_0000 + ((vcpu as u64) << 32) + seq * 16 + 2
}

/// Per-vCPU state shared between "Xen on vCPU i" and the consumer.
struct VcpuState {
    paused: AtomicBool,
    /// rip from the last response Xen applied (to catch crossed answers).
    resumed_rip: AtomicU64,
    thread: Mutex<Option<Thread>>,
    pending: AtomicBool,
}

impl VcpuState {
    fn new() -> Self {
        Self {
            paused: AtomicBool::new(false),
            resumed_rip: AtomicU64::new(0),
            thread: Mutex::new(None),
            pending: AtomicBool::new(false),
        }
    }
    fn unpause(&self) {
        self.paused.store(false, Ordering::Release);
        if let Some(t) = &*self.thread.lock().unwrap() {
            t.unpark();
        }
    }
}

struct Front {
    req_prod_pvt: u32,
    rsp_cons: u32,
}

struct Shared {
    channel: Channel,
    pages: Pages,
    vcpus: Vec<VcpuState>,
    /// Consumer threads ("stub vCPUs"); vCPU i's port goes to i % len.
    consumers: Vec<Mutex<Option<Thread>>>,
    /// Ring mode: Xen's ring lock and the wait queue of parked vCPUs.
    front: Mutex<Front>,
    ring_wq: Condvar,
    ring_pending: AtomicBool,
    stop: AtomicBool,
    /// Counters of what Xen saw.
    bad_responses: AtomicU64,
    crossed: AtomicU64,
    parked: AtomicU64,
}

impl Shared {
    fn ring(&self) -> StockRingPtr {
        // SAFETY: `pages` holds at least one page for the lifetime of Shared.
        unsafe { StockRingPtr::new(self.pages.as_ptr()) }
    }
    fn slots(&self) -> SlotArea {
        // SAFETY: `pages` holds slot_frames(n) pages.
        unsafe { SlotArea::new(self.pages.as_ptr(), self.vcpus.len() as u32) }
    }
    fn kick_consumer(&self, vcpu: u32) {
        let c = &self.consumers[vcpu as usize % self.consumers.len()];
        if let Some(t) = &*c.lock().unwrap() {
            t.unpark();
        }
    }

    /// Xen's handler for the consumer's notification of slot `i`.
    fn slot_resume(&self, i: u32) {
        let slot = self.slots().slot(i).expect("slot in range");
        if slot.load_state(Ordering::Acquire) != VM_EVENT_SLOT_FINISH {
            self.bad_responses.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let rsp = slot.read_event();
        slot.store_state(VM_EVENT_SLOT_IDLE, Ordering::Release);
        self.apply(i, &rsp);
    }

    /// Xen's handler for the consumer's notification of the ring port.
    fn ring_resume(&self) {
        let ring = self.ring();
        let mut f = self.front.lock().unwrap();
        while let Some(rsp) = front::get_response(&ring, &mut f.rsp_cons) {
            let v = rsp.vcpu_id;
            if (v as usize) < self.vcpus.len() {
                self.apply(v, &rsp);
            } else {
                self.bad_responses.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(f);
        self.ring_wq.notify_all();
    }

    fn apply(&self, v: u32, rsp: &VmEventResponse) {
        let st = &self.vcpus[v as usize];
        if rsp.flags & VmEventFlags::VCPU_PAUSED.bits() == 0 || !st.paused.load(Ordering::Acquire) {
            self.bad_responses.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if rsp.flags & VmEventFlags::SET_REGISTERS.bits() != 0 {
            st.resumed_rip.store(rsp.regs_x86().rip, Ordering::Relaxed);
        }
        st.unpause();
    }
}

/// Wait until `cond` holds: spin briefly (cheap when the answer is quick),
/// then park (needed when threads outnumber cores).
fn wait_until(cond: impl Fn() -> bool) {
    for _ in 0..64 {
        if cond() {
            return;
        }
        core::hint::spin_loop();
    }
    while !cond() {
        thread::park_timeout(Duration::from_millis(5));
    }
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub channel: Channel,
    pub vcpus: u32,
    /// Events each vCPU raises (if `duration` is None).
    pub events_per_vcpu: u64,
    /// Run for this long instead of a fixed count.
    pub duration: Option<Duration>,
    /// Consumer threads for `Slots` (target vCPU i is served by consumer
    /// i % consumers, like stub vCPUs); the stock ring has one port, so one.
    pub consumers: u32,
}

impl SimConfig {
    pub fn new(channel: Channel, vcpus: u32) -> Self {
        Self {
            channel,
            vcpus,
            events_per_vcpu: 1000,
            duration: None,
            consumers: 1,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct SimResult {
    pub events: u64,
    pub elapsed: Duration,
    /// Every wait (raise -> resume), ns, all vCPUs.
    pub waits_ns: Vec<u64>,
    pub per_vcpu_events: Vec<u64>,
    pub bad_responses: u64,
    /// Responses that resumed a vCPU at the wrong rip.
    pub crossed: u64,
    /// Times a vCPU found the ring full and was parked.
    pub parked: u64,
}

impl SimResult {
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
    /// Percentile (0..=100) of the wait times, ns.
    pub fn wait_percentile(&mut self, p: f64) -> u64 {
        if self.waits_ns.is_empty() {
            return 0;
        }
        self.waits_ns.sort_unstable();
        let idx = ((p / 100.0) * (self.waits_ns.len() - 1) as f64).round() as usize;
        self.waits_ns[idx.min(self.waits_ns.len() - 1)]
    }
}

/// Run the model with `handler` as the consumer's policy.
pub fn run<H>(cfg: &SimConfig, handler: H) -> SimResult
where
    H: Fn(&VmEventRequest, &mut VmEventResponse) + Send + Sync + 'static,
{
    let n = cfg.vcpus.max(1);
    let nc = match cfg.channel {
        Channel::Ring => 1,
        Channel::Slots => cfg.consumers.clamp(1, n),
    };
    let pages = match cfg.channel {
        Channel::Ring => Pages::new(1),
        Channel::Slots => Pages::new(slot_frames(n) as usize),
    };
    let sh = Arc::new(Shared {
        channel: cfg.channel,
        pages,
        vcpus: (0..n).map(|_| VcpuState::new()).collect(),
        consumers: (0..nc).map(|_| Mutex::new(None)).collect(),
        front: Mutex::new(Front {
            req_prod_pvt: 0,
            rsp_cons: 0,
        }),
        ring_wq: Condvar::new(),
        ring_pending: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        bad_responses: AtomicU64::new(0),
        crossed: AtomicU64::new(0),
        parked: AtomicU64::new(0),
    });
    if cfg.channel == Channel::Ring {
        sh.ring().init();
    }

    let handler = Arc::new(handler);
    let consumers: Vec<_> = (0..nc)
        .map(|k| {
            let sh = sh.clone();
            let h = handler.clone();
            thread::spawn(move || {
                *sh.consumers[k as usize].lock().unwrap() = Some(thread::current());
                consumer_main(&sh, &*h, k)
            })
        })
        .collect();

    let start_gate = Arc::new(AtomicU32::new(0));
    let deadline = cfg.duration;
    let per_vcpu = cfg.events_per_vcpu;
    let t_start = Instant::now();
    let workers: Vec<_> = (0..n)
        .map(|i| {
            let sh = sh.clone();
            let gate = start_gate.clone();
            thread::spawn(move || {
                *sh.vcpus[i as usize].thread.lock().unwrap() = Some(thread::current());
                gate.fetch_add(1, Ordering::AcqRel);
                while gate.load(Ordering::Acquire) < n {
                    thread::yield_now();
                }
                vcpu_main(&sh, i, per_vcpu, deadline)
            })
        })
        .collect();

    let mut res = SimResult::default();
    for w in workers {
        let (count, mut waits) = w.join().expect("vcpu thread");
        res.per_vcpu_events.push(count);
        res.events += count;
        res.waits_ns.append(&mut waits);
    }
    res.elapsed = t_start.elapsed();
    sh.stop.store(true, Ordering::Release);
    for (k, c) in consumers.into_iter().enumerate() {
        sh.kick_consumer(k as u32);
        c.join().expect("consumer thread");
    }
    res.bad_responses = sh.bad_responses.load(Ordering::Relaxed);
    res.crossed = sh.crossed.load(Ordering::Relaxed);
    res.parked = sh.parked.load(Ordering::Relaxed);
    res
}

fn vcpu_main(sh: &Shared, i: u32, per_vcpu: u64, deadline: Option<Duration>) -> (u64, Vec<u64>) {
    let st = &sh.vcpus[i as usize];
    let t0 = Instant::now();
    let mut waits = Vec::with_capacity(per_vcpu.min(1 << 20) as usize);
    let mut seq = 0u64;
    loop {
        match deadline {
            Some(d) if t0.elapsed() >= d => break,
            None if seq >= per_vcpu => break,
            _ => {}
        }
        let req = cpuid_request(i, seq);
        let t = Instant::now();
        st.paused.store(true, Ordering::Release);
        match sh.channel {
            Channel::Slots => {
                let slot = sh.slots().slot(i).expect("slot");
                // Xen only submits into an IDLE slot.
                wait_until(|| slot.load_state(Ordering::Acquire) == VM_EVENT_SLOT_IDLE);
                slot.write_event(&req);
                slot.store_state(VM_EVENT_SLOT_SUBMIT, Ordering::Release);
                st.pending.store(true, Ordering::Release);
                sh.kick_consumer(i);
            }
            Channel::Ring => {
                let ring = sh.ring();
                let mut f = sh.front.lock().unwrap();
                let mut was_parked = false;
                while front::free_requests(&ring, f.req_prod_pvt, f.rsp_cons) == 0 {
                    was_parked = true;
                    f = sh.ring_wq.wait(f).unwrap();
                }
                if was_parked {
                    sh.parked.fetch_add(1, Ordering::Relaxed);
                }
                let mut pvt = f.req_prod_pvt;
                front::put_request(&ring, &mut pvt, &req);
                f.req_prod_pvt = pvt;
                drop(f);
                sh.ring_pending.store(true, Ordering::Release);
                sh.kick_consumer(0);
            }
        }
        wait_until(|| !st.paused.load(Ordering::Acquire));
        waits.push(t.elapsed().as_nanos() as u64);
        if st.resumed_rip.load(Ordering::Relaxed) != expected_rip(i, seq) {
            sh.crossed.fetch_add(1, Ordering::Relaxed);
        }
        seq += 1;
    }
    (seq, waits)
}

fn consumer_main<H>(sh: &Shared, handler: &H, k: u32)
where
    H: Fn(&VmEventRequest, &mut VmEventResponse),
{
    let mut slots = SlotConsumer::new();
    let mut ring = StockRingConsumer::new(sh.ring());
    let area = sh.slots();
    loop {
        let mut worked = false;
        match sh.channel {
            Channel::Slots => {
                let nc = sh.consumers.len();
                for (i, st) in sh.vcpus.iter().enumerate().skip(k as usize).step_by(nc) {
                    if st.pending.swap(false, Ordering::AcqRel) {
                        worked = true;
                        let slot = area.slot(i as u32).expect("slot");
                        if slots.poll(&slot, i as u32, handler).must_notify() {
                            sh.slot_resume(i as u32);
                        }
                    }
                }
            }
            Channel::Ring => {
                if sh.ring_pending.swap(false, Ordering::AcqRel) {
                    worked = true;
                    if ring.poll(handler).notify {
                        sh.ring_resume();
                    }
                }
            }
        }
        if !worked {
            if sh.stop.load(Ordering::Acquire) {
                break;
            }
            thread::park_timeout(Duration::from_millis(5));
        }
    }
}

/// Async ring model: one producer raising `total` events as fast as it can
/// (dropping when full), one consumer reading them. Returns
/// `(delivered in order, dropped counted by Xen, drops seen by consumer,
/// out-of-order or corrupt entries)`.
pub fn run_async(total: u64, ring_frames: u32, consumer_pause: Duration) -> (u64, u64, u64, u64) {
    let pages = Arc::new(Pages::new(ring_frames as usize));
    // SAFETY: `pages` outlives both threads (joined below).
    let ring = unsafe { AsyncRingPtr::new(pages.as_ptr(), ring_frames) };
    ring.nr_entries_word()
        .store(ring.nr_entries(), Ordering::Relaxed);
    let done = Arc::new(AtomicBool::new(false));
    // The consumer takes its first look at `dropped` before the producer
    // starts, or early drops would count as already seen.
    let mut c = crate::async_ring::AsyncRingConsumer::new(ring);
    let producer = {
        let done = done.clone();
        thread::spawn(move || {
            for seq in 0..total {
                let mut r = cpuid_request(0, seq);
                r.flags = 0;
                crate::async_ring::async_produce(&ring, &r);
                if seq % 64 == 0 {
                    thread::yield_now();
                }
            }
            done.store(true, Ordering::Release);
        })
    };
    let (mut delivered, mut seen_drops, mut bad) = (0u64, 0u64, 0u64);
    let mut last: Option<u64> = None;
    loop {
        let finished = done.load(Ordering::Acquire);
        let p = c.poll(u32::MAX, |req| {
            let rip = req.regs_x86().rip + 2;
            let seq = (rip - expected_rip(0, 0)) / 16;
            if rip != expected_rip(0, seq) || last.is_some_and(|l| seq <= l) {
                bad += 1;
            }
            last = Some(seq);
            delivered += 1;
        });
        seen_drops += p.new_drops as u64;
        if finished && p.consumed == 0 {
            // One more look at `dropped` after the producer's last write.
            seen_drops += c.poll(0, |_| {}).new_drops as u64;
            break;
        }
        if !consumer_pause.is_zero() {
            thread::sleep(consumer_pause);
        }
    }
    producer.join().expect("producer");
    let dropped = ring.dropped().load(Ordering::Relaxed) as u64;
    drop(pages);
    (delivered, dropped, seen_drops, bad)
}
