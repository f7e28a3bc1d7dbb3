//! The hardware side: the ring page and event channel the toolstack gave
//! us (`HVM_PARAM_STORE_PFN`, `HVM_PARAM_STORE_EVTCHN`), and blocking calls
//! that sleep on the event channel with a deadline, so a dead xenstored
//! costs a caller one timeout, never the kernel.
//!
//! Concurrency: one call at a time (a spin mutex; a second vCPU spins until
//! the first call ends, at most one timeout). The port is rebound to the
//! vCPU that waits (`EVTCHNOP_bind_vcpu`, only when the caller's vCPU
//! changes). The event handler runs on the port's vCPU with interrupts
//! off: it only sets a flag and kicks the waiting vCPU if that is another
//! one, so it neither allocates nor takes a lock.
//!
//! Timers: a blocking call arms the calling vCPU's one-shot timer for its
//! deadline and cancels it on return; a caller that uses that timer itself
//! must re-arm it after a xenstore call.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use boot::arch::x86_64::xen::get_param;
use boot::memory::Range;
use boot::xen::{Port, XenError, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use boot::{evtchn, paging, smp, time};
use spin::Mutex;

use crate::conn::{Connection, Stats};
use crate::control::{ShutdownRequest, FEATURE_POWEROFF, SHUTDOWN_PATH};
use crate::request::{expect_reply, split_strings, value_string, Op, WatchEvent};
use crate::wire::{Interface, SERVER_FEATURE_ERROR};
use crate::Error;

/// Timeout of a blocking call unless changed with
/// [`Xenstore::set_timeout_ns`].
pub const DEFAULT_TIMEOUT_NS: u64 = 5_000_000_000;

/// Watch token used by [`Xenstore::watch_shutdown`].
pub const SHUTDOWN_TOKEN: &str = "xenstore-shutdown";

/// One client per domain: the handler state below is global.
static CONNECTED: AtomicBool = AtomicBool::new(false);
/// Set by the handler, cleared by the waiter before it looks at the ring.
static EVENT: AtomicBool = AtomicBool::new(false);
/// vCPU id + 1 of the vCPU blocked in a call, 0 if none.
static WAITER: AtomicU32 = AtomicU32::new(0);

fn on_event(_port: Port) {
    EVENT.store(true, Ordering::SeqCst);
    let w = WAITER.load(Ordering::SeqCst);
    // If the port is still delivered elsewhere (rebinding failed or raced),
    // a caller blocked on another vCPU would not wake up for it.
    if w != 0 && w - 1 != boot::current_vcpu() {
        smp::kick(w - 1);
    }
}

fn hypercall(e: XenError) -> Error {
    Error::Hypercall(e.0)
}

/// The xenstore client of this domain.
pub struct Xenstore {
    page: &'static Interface,
    port: Port,
    conn: Mutex<Connection>,
    timeout_ns: AtomicU64,
    domid: u32,
    home: String,
}

impl Xenstore {
    /// Finds the ring and event channel, installs the event handler, and
    /// asks xenstored for our domid (`~/domid`) and home path. Only once
    /// per domain ([`Error::AlreadyConnected`] after that).
    pub fn connect() -> Result<Xenstore, Error> {
        if CONNECTED.swap(true, Ordering::SeqCst) {
            return Err(Error::AlreadyConnected);
        }
        let r = Self::connect_inner();
        if r.is_err() {
            CONNECTED.store(false, Ordering::SeqCst);
        }
        r
    }

    fn connect_inner() -> Result<Xenstore, Error> {
        let pfn = get_param(HVM_PARAM_STORE_PFN).map_err(hypercall)?;
        let port = get_param(HVM_PARAM_STORE_EVTCHN).map_err(hypercall)?;
        if pfn == 0 || port == 0 || port >= evtchn::NR_PORTS as u64 {
            return Err(Error::NotAvailable);
        }
        // 52-bit physical addresses at most: anything else is not a page.
        if pfn >= 1 << 40 {
            return Err(Error::NotAvailable);
        }
        let addr = pfn << 12;
        // boot identity-maps [0, 4 GiB) and the memory map; the store page
        // is a special page below 4 GiB with toolstacks of today, but make
        // sure rather than fault.
        paging::map_identity(Range {
            start: addr,
            end: addr + 4096,
        })
        .map_err(|_| Error::NotAvailable)?;
        // SAFETY: the store PFN is a page of our physmap that Xen and the
        // toolstack reserve for the xenstore ring for the domain's life; it
        // is identity mapped (above), 4 KiB-aligned, and `Interface` (2076
        // bytes of atomics, align 4) fits in it. All accesses go through
        // atomics because xenstored writes the page concurrently.
        let page: &'static Interface = unsafe { &*(addr as *const Interface) };
        let port = port as Port;
        let mut xs = Xenstore {
            page,
            port,
            conn: Mutex::new(Connection::new()),
            timeout_ns: AtomicU64::new(DEFAULT_TIMEOUT_NS),
            domid: 0,
            home: String::new(),
        };
        xs.check_server()?;
        evtchn::set_handler(port, Some(on_event)).map_err(hypercall)?;
        evtchn::unmask(port).map_err(hypercall)?;
        let domid = xs.read_string("domid")?;
        xs.domid = domid.trim().parse::<u16>().map_err(|_| Error::BadReply)? as u32;
        xs.home = xs.get_domain_path(xs.domid)?;
        Ok(xs)
    }

    /// Our domain id.
    pub fn domid(&self) -> u32 {
        self.domid
    }

    /// Our home path, `/local/domain/<domid>`; relative paths are resolved
    /// against it by xenstored.
    pub fn home(&self) -> &str {
        &self.home
    }

    /// The event channel port of the ring.
    pub fn port(&self) -> Port {
        self.port
    }

    /// Timeout of each blocking call.
    pub fn set_timeout_ns(&self, ns: u64) {
        self.timeout_ns.store(ns, Ordering::Relaxed);
    }

    pub fn timeout_ns(&self) -> u64 {
        self.timeout_ns.load(Ordering::Relaxed)
    }

    /// Survivable anomalies seen so far (stray replies, dropped events).
    pub fn stats(&self) -> Stats {
        self.conn.lock().stats()
    }

    /// The permanent error that ended the connection, if any (what
    /// [`poll_watch`](Self::poll_watch) cannot report).
    pub fn broken(&self) -> Option<Error> {
        self.check_server().err().or(self.conn.lock().broken())
    }

    fn check_server(&self) -> Result<(), Error> {
        if self.page.server_features.load(Ordering::Acquire) & SERVER_FEATURE_ERROR != 0 {
            let e = self.page.error.load(Ordering::Acquire);
            if e != 0 {
                return Err(Error::Server(e));
            }
        }
        Ok(())
    }

    /// Moves bytes both ways and notifies xenstored if anything moved.
    fn pump(&self, conn: &mut Connection) -> Result<(), Error> {
        self.check_server()?;
        if conn.pump(self.page)?.notify() {
            evtchn::send(self.port).map_err(hypercall)?;
        }
        Ok(())
    }

    /// Pumps until `done` yields or `deadline` (system time) passes, then
    /// `Ok(None)`. Sleeps on the event channel and this vCPU's timer.
    fn wait<T>(
        &self,
        conn: &mut Connection,
        deadline: u64,
        mut done: impl FnMut(&mut Connection) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        let me = boot::current_vcpu();
        WAITER.store(me + 1, Ordering::SeqCst);
        // Have the port delivered to the vCPU that waits, so a busy vCPU 0
        // (or one with interrupts off) cannot delay us; the kick in the
        // handler covers a failed rebind. An event racing with the rebind
        // is not lost: the loop below looks at the ring after it.
        if evtchn::bound_vcpu(self.port) != me {
            let _ = evtchn::bind_vcpu(self.port, me);
        }
        let mut blocked = false;
        let r = loop {
            // Cleared before looking, so an event from now on is seen by
            // the wait below.
            EVENT.store(false, Ordering::SeqCst);
            if let Err(e) = self.pump(conn) {
                break Err(e);
            }
            if let Some(t) = done(conn) {
                break Ok(Some(t));
            }
            if time::now_ns() >= deadline {
                break Ok(None);
            }
            // Re-arms the one-shot if Xen fires it early by our clock.
            blocked = true;
            time::wait_until_deadline(deadline, || EVENT.load(Ordering::SeqCst));
        };
        WAITER.store(0, Ordering::SeqCst);
        if blocked {
            let _ = time::stop_timer();
        }
        r
    }

    /// One request, one reply (or timeout).
    fn call(&self, op: &Op<'_>) -> Result<Vec<u8>, Error> {
        let mut conn = self.conn.lock();
        let id = conn.queue(op)?;
        let deadline = time::now_ns().saturating_add(self.timeout_ns());
        match self.wait(&mut conn, deadline, |c| c.take_reply(id)) {
            Ok(Some(reply)) => expect_reply(reply, op.msg_type()),
            Ok(None) => {
                conn.abandon(id);
                Err(Error::Timeout)
            }
            Err(e) => {
                conn.abandon(id);
                Err(e)
            }
        }
    }

    /// The value at `path` (absolute, or relative to [`home`](Self::home)).
    pub fn read(&self, path: &str) -> Result<Vec<u8>, Error> {
        self.call(&Op::Read(path))
    }

    /// The value at `path` as text (a trailing NUL dropped, invalid UTF-8
    /// replaced).
    pub fn read_string(&self, path: &str) -> Result<String, Error> {
        self.read(path).map(|v| value_string(&v))
    }

    /// Writes `value` at `path`, creating missing parents.
    pub fn write(&self, path: &str, value: &[u8]) -> Result<(), Error> {
        self.call(&Op::Write(path, value)).map(drop)
    }

    /// [`write`](Self::write) of a string.
    pub fn write_str(&self, path: &str, value: &str) -> Result<(), Error> {
        self.write(path, value.as_bytes())
    }

    /// Writes `value` at `path` without waiting for the reply (it is
    /// dropped when it comes): for what a busy vCPU publishes now and then.
    /// Never blocks: `Err(Busy)` if another vCPU is in a call or too much
    /// is queued already. Bytes the ring cannot take yet go out with the
    /// next call or [`poll_watch`](Self::poll_watch).
    pub fn post_write(&self, path: &str, value: &[u8]) -> Result<(), Error> {
        let mut conn = self.conn.try_lock().ok_or(Error::Busy)?;
        let id = conn.queue(&Op::Write(path, value))?;
        conn.abandon(id);
        self.pump(&mut conn)
    }

    /// Creates `path` (and parents) if missing.
    pub fn mkdir(&self, path: &str) -> Result<(), Error> {
        self.call(&Op::Mkdir(path)).map(drop)
    }

    /// Removes `path` and its children (not an error if it is missing but
    /// its parent exists).
    pub fn rm(&self, path: &str) -> Result<(), Error> {
        self.call(&Op::Rm(path)).map(drop)
    }

    /// Names of the children of `path`.
    pub fn directory(&self, path: &str) -> Result<Vec<String>, Error> {
        self.call(&Op::Directory(path)).map(|p| split_strings(&p))
    }

    /// The home path of domain `domid`.
    pub fn get_domain_path(&self, domid: u32) -> Result<String, Error> {
        self.call(&Op::GetDomainPath(domid))
            .map(|p| value_string(&p))
    }

    /// Watches `path` and its children; events carry `token`. xenstored
    /// fires the watch once right away.
    pub fn watch(&self, path: &str, token: &str) -> Result<(), Error> {
        self.call(&Op::Watch { path, token }).map(drop)
    }

    /// Removes a watch set with the same path and token.
    pub fn unwatch(&self, path: &str, token: &str) -> Result<(), Error> {
        self.call(&Op::Unwatch { path, token }).map(drop)
    }

    /// A watch event if one has arrived; never blocks (returns `None` if
    /// another vCPU is in a call right now, or the connection is broken).
    pub fn poll_watch(&self) -> Option<WatchEvent> {
        let mut conn = self.conn.try_lock()?;
        if let Some(ev) = conn.pop_watch() {
            return Some(ev);
        }
        let _ = self.pump(&mut conn);
        conn.pop_watch()
    }

    /// Waits up to `timeout_ns` for a watch event; `Ok(None)` on timeout.
    pub fn wait_event_or_timeout(&self, timeout_ns: u64) -> Result<Option<WatchEvent>, Error> {
        let mut conn = self.conn.lock();
        let deadline = time::now_ns().saturating_add(timeout_ns);
        self.wait(&mut conn, deadline, |c| c.pop_watch())
    }

    /// Tells the toolstack we answer `poweroff` (`control/feature-poweroff`
    /// = "1"). Optional for `xl shutdown` (libxl does not look at it for
    /// PV/PVH guests); failures are returned for the caller to log.
    pub fn advertise_poweroff(&self) -> Result<(), Error> {
        self.write_str(FEATURE_POWEROFF, "1")
    }

    /// Watches `control/shutdown` with [`SHUTDOWN_TOKEN`]; events with that
    /// token mean "call [`take_shutdown_request`](Self::take_shutdown_request)".
    pub fn watch_shutdown(&self) -> Result<(), Error> {
        self.watch(SHUTDOWN_PATH, SHUTDOWN_TOKEN)
    }

    /// Reads `control/shutdown`; if it holds a command, acknowledges it by
    /// writing the empty string (what libxl waits for, as Linux does) and
    /// returns it. The caller then acts (e.g. `boot::poweroff()`).
    pub fn take_shutdown_request(&self) -> Result<Option<ShutdownRequest>, Error> {
        let v = match self.read(SHUTDOWN_PATH) {
            Ok(v) => v,
            Err(e) if e.is_enoent() => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(req) = ShutdownRequest::parse(&v) else {
            return Ok(None);
        };
        self.write(SHUTDOWN_PATH, b"")?;
        Ok(Some(req))
    }
}
