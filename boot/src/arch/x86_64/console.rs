//! Console: the Xen PV console ring (`HVM_PARAM_CONSOLE_PFN` /
//! `HVM_PARAM_CONSOLE_EVTCHN`), read by xenconsoled (`xl console`, log
//! files). Before the ring is up, bytes go to port 0xE9 (Xen's HVM debug
//! port, printed on the hypervisor console when `guest_loglvl` allows); fatal
//! messages go to both. `console_io` is refused for domUs in release Xen, so
//! it is not used.
//!
//! The ring page is shared with xenconsoled: every access to it is volatile
//! (`volatile` crate), and the producer index is published after the data
//! with a release fence. The lock is taken with interrupts off so a handler
//! that prints cannot deadlock against the code it interrupted.

use core::fmt::{self, Write};
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use spin::Mutex;
use volatile::{map_field, VolatilePtr};
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::instructions::port::Port;

use crate::xen::*;

use super::hypercall;

static RING: AtomicPtr<XenconsInterface> = AtomicPtr::new(core::ptr::null_mut());
static PORT: AtomicU32 = AtomicU32::new(0);
static LOCK: Mutex<()> = Mutex::new(());
static DROPPED: AtomicU64 = AtomicU64::new(0);
static MIRROR_E9: AtomicBool = AtomicBool::new(false);

const RING_SIZE: u32 = 2048;

fn e9(bytes: &[u8]) {
    let mut port: Port<u8> = Port::new(0xe9);
    for &b in bytes {
        // SAFETY: port 0xE9 is Xen's debug console; writing is harmless.
        unsafe { port.write(b) };
    }
}

fn ring() -> Option<VolatilePtr<'static, XenconsInterface>> {
    let p = NonNull::new(RING.load(Ordering::Acquire))?;
    // SAFETY: the console page is mapped (identity) for the domain's life.
    Some(unsafe { VolatilePtr::new(p) })
}

fn notify() {
    let mut s = EvtchnSend {
        port: PORT.load(Ordering::Relaxed),
    };
    // SAFETY: EVTCHNOP_send takes an `EvtchnSend`.
    let _ = unsafe { hypercall::event_channel_op(EVTCHNOP_SEND, &mut s) };
}

/// Connects the console ring. Returns `(pfn, port)`.
pub fn init_ring() -> Result<(u64, u32), XenError> {
    let pfn = super::xen::get_param(HVM_PARAM_CONSOLE_PFN)?;
    let port = super::xen::get_param(HVM_PARAM_CONSOLE_EVTCHN)?;
    if pfn == 0 {
        return Err(XenError::ENOENT);
    }
    PORT.store(port as u32, Ordering::Relaxed);
    RING.store((pfn << 12) as *mut XenconsInterface, Ordering::Release);
    Ok((pfn, port as u32))
}

/// Also copy everything to port 0xE9 (slow under emulation; off by default).
pub fn set_mirror_e9(on: bool) {
    MIRROR_E9.store(on, Ordering::Relaxed);
}

/// Bytes dropped because xenconsoled did not drain the ring in time.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn ring_write(r: VolatilePtr<'_, XenconsInterface>, mut bytes: &[u8]) {
    let out = map_field!(r.output).as_raw_ptr().cast::<u8>();
    let prod_f = map_field!(r.out_prod);
    let cons_f = map_field!(r.out_cons);
    let mut spins = 0u32;
    while !bytes.is_empty() {
        let cons = cons_f.read();
        let prod = prod_f.read();
        let used = prod.wrapping_sub(cons);
        if used >= RING_SIZE {
            // Full: kick xenconsoled and wait a bounded time, then drop.
            if spins == 0 {
                notify();
            }
            spins += 1;
            if spins > 2_000 {
                DROPPED.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                return;
            }
            super::sched::yield_now();
            continue;
        }
        spins = 0;
        let n = ((RING_SIZE - used) as usize).min(bytes.len());
        for (i, &b) in bytes[..n].iter().enumerate() {
            let idx = (prod.wrapping_add(i as u32) % RING_SIZE) as usize;
            // SAFETY: idx < 2048, inside the ring's output array.
            unsafe { out.as_ptr().add(idx).write_volatile(b) };
        }
        fence(Ordering::Release);
        prod_f.write(prod.wrapping_add(n as u32));
        bytes = &bytes[n..];
    }
}

fn write_bytes(bytes: &[u8]) {
    match ring() {
        Some(r) => {
            ring_write(r, bytes);
            if MIRROR_E9.load(Ordering::Relaxed) {
                e9(bytes);
            }
        }
        None => e9(bytes),
    }
}

struct Writer;

impl Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Backend of `print!`/`println!`: one call is one atomic chunk.
pub fn print(args: fmt::Arguments<'_>) {
    without_interrupts(|| {
        let _g = LOCK.lock();
        let _ = Writer.write_fmt(args);
        if ring().is_some() {
            notify();
        }
    });
}

/// Writes `bytes` whole if the ring has room for all of them now, else
/// nothing; never waits, not even for the lock. For callers that keep
/// their own backlog (the stub's audit queue), which must not stall on a
/// slow xenconsoled; whole, so no other line lands inside this one.
pub fn try_write_whole(bytes: &[u8]) -> bool {
    without_interrupts(|| {
        let Some(_g) = LOCK.try_lock() else {
            return false;
        };
        let Some(r) = ring() else {
            e9(bytes);
            return true;
        };
        let used = map_field!(r.out_prod)
            .read()
            .wrapping_sub(map_field!(r.out_cons).read());
        if used > RING_SIZE || (RING_SIZE - used) < bytes.len() as u32 {
            // Full (or xenconsoled wrote a cons past prod): tell it there
            // is data and try again later.
            notify();
            return false;
        }
        ring_write(r, bytes);
        if MIRROR_E9.load(Ordering::Relaxed) {
            e9(bytes);
        }
        notify();
        true
    })
}

/// For fatal paths: writes `args` and a newline to the ring and to port 0xE9
/// without waiting for the lock forever (the faulting code may hold it).
pub fn emergency(args: fmt::Arguments<'_>) {
    let mut guard = None;
    for _ in 0..1_000_000 {
        if let Some(g) = LOCK.try_lock() {
            guard = Some(g);
            break;
        }
        core::hint::spin_loop();
    }
    struct Both;
    impl Write for Both {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            if let Some(r) = ring() {
                ring_write(r, s.as_bytes());
            }
            e9(s.as_bytes());
            Ok(())
        }
    }
    let _ = Both.write_fmt(format_args!("{args}\n"));
    if ring().is_some() && hypercall::ready() {
        notify();
    }
    drop(guard);
}

/// Waits (bounded, ~1 s) until xenconsoled has consumed everything.
pub fn flush() {
    let Some(r) = ring() else { return };
    if !hypercall::ready() {
        return;
    }
    notify();
    let start = super::time::now_ns();
    loop {
        let cons = map_field!(r.out_cons).read();
        let prod = map_field!(r.out_prod).read();
        if cons == prod || super::time::now_ns().saturating_sub(start) > 1_000_000_000 {
            return;
        }
        super::sched::yield_now();
    }
}
