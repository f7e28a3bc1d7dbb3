//! The client's protocol state against a simulated xenstored on an ordinary
//! page: replies split across many "notifications", watch events between
//! replies, a value bigger than the ring, daemon errors, and a hostile
//! daemon (corrupt indices, impossible lengths) that must produce an error,
//! never a panic or a loop.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;

use proptest::prelude::*;
use xenstore::conn::{Connection, WATCH_QUEUE_MAX};
use xenstore::frame::{Decoder, Message};
use xenstore::request::{expect_reply, split_strings, Op};
use xenstore::ring::RingView;
use xenstore::wire::{Header, Interface, MsgType, RING_SIZE};
use xenstore::{Errno, Error, WatchEvent};

/// A toy xenstored: a flat map of absolute paths, watches, replies queued
/// as bytes and released `chunk` bytes per step.
struct Daemon {
    home: String,
    store: BTreeMap<String, Vec<u8>>,
    watches: Vec<(String, String)>,
    decoder: Decoder,
    out: VecDeque<u8>,
    /// Queue a watch event for every watch before each reply.
    chatty: bool,
}

impl Daemon {
    fn new() -> Self {
        let mut store = BTreeMap::new();
        store.insert("/local/domain/7/domid".to_string(), b"7".to_vec());
        Daemon {
            home: "/local/domain/7".into(),
            store,
            watches: Vec::new(),
            decoder: Decoder::new(),
            out: VecDeque::new(),
            chatty: false,
        }
    }

    fn abs(&self, p: &str) -> String {
        if p.starts_with('/') {
            p.to_string()
        } else {
            format!("{}/{p}", self.home)
        }
    }

    fn send(&mut self, ty: u32, req_id: u32, payload: &[u8]) {
        let h = Header {
            ty,
            req_id,
            tx_id: 0,
            len: payload.len() as u32,
        };
        self.out.extend(h.encode());
        self.out.extend(payload);
    }

    fn event(&mut self, path: &str, token: &str) {
        let mut p = path.as_bytes().to_vec();
        p.push(0);
        p.extend(token.as_bytes());
        p.push(0);
        self.send(MsgType::WatchEvent as u32, 0, &p);
    }

    fn fire(&mut self, abs: &str) {
        let hits: Vec<(String, String)> = self
            .watches
            .iter()
            .filter(|(w, _)| abs == self.abs(w) || abs.starts_with(&format!("{}/", self.abs(w))))
            .cloned()
            .collect();
        for (w, t) in hits {
            // Relative watches report relative paths.
            let shown = if w.starts_with('/') {
                abs.to_string()
            } else {
                abs[self.home.len() + 1..].to_string()
            };
            self.event(&shown, &t);
        }
    }

    fn handle(&mut self, m: Message) {
        let strs: Vec<&[u8]> = m.payload.split(|&b| b == 0).collect();
        let s0 = String::from_utf8_lossy(strs[0]).into_owned();
        let id = m.header.req_id;
        let ty = m.header.ty;
        if self.chatty {
            for (w, t) in self.watches.clone() {
                self.event(&w, &t);
            }
        }
        let ok = b"OK\0";
        match MsgType::from_u32(ty) {
            Some(MsgType::Read) => match self.store.get(&self.abs(&s0)).cloned() {
                Some(v) => self.send(ty, id, &v),
                None => self.send(MsgType::Error as u32, id, b"ENOENT\0"),
            },
            Some(MsgType::Write) => {
                let at = s0.len() + 1;
                let abs = self.abs(&s0);
                self.store.insert(abs.clone(), m.payload[at..].to_vec());
                self.send(ty, id, ok);
                self.fire(&abs);
            }
            Some(MsgType::Rm) => {
                let abs = self.abs(&s0);
                self.store
                    .retain(|k, _| k != &abs && !k.starts_with(&format!("{abs}/")));
                self.send(ty, id, ok);
                self.fire(&abs);
            }
            Some(MsgType::Directory) => {
                let pre = format!("{}/", self.abs(&s0));
                let mut kids: Vec<String> = self
                    .store
                    .keys()
                    .filter_map(|k| k.strip_prefix(&pre))
                    .map(|r| r.split('/').next().unwrap().to_string())
                    .collect();
                kids.dedup();
                let mut p = Vec::new();
                for k in kids {
                    p.extend(k.as_bytes());
                    p.push(0);
                }
                self.send(ty, id, &p);
            }
            Some(MsgType::Watch) => {
                let tok = String::from_utf8_lossy(strs[1]).into_owned();
                self.watches.push((s0.clone(), tok.clone()));
                self.send(ty, id, ok);
                self.event(&s0, &tok);
            }
            Some(MsgType::Unwatch) => {
                let tok = String::from_utf8_lossy(strs[1]).into_owned();
                self.watches.retain(|(w, t)| !(w == &s0 && t == &tok));
                self.send(ty, id, ok);
            }
            Some(MsgType::GetDomainPath) => {
                let p = format!("/local/domain/{s0}\0");
                self.send(ty, id, p.as_bytes());
            }
            _ => self.send(MsgType::Error as u32, id, b"EINVAL\0"),
        }
    }

    /// One notification's worth of work: take every request byte, release
    /// at most `chunk` reply bytes into the ring.
    fn step(&mut self, page: &Interface, chunk: usize) {
        let req = RingView::requests(page);
        let mut buf = [0u8; 97];
        loop {
            let n = req.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            self.decoder.feed(&buf[..n]).unwrap();
        }
        while let Some(m) = self.decoder.pop() {
            self.handle(m);
        }
        let n = chunk.min(self.out.len());
        let bytes: Vec<u8> = self.out.iter().take(n).copied().collect();
        let wrote = RingView::responses(page).write(&bytes).unwrap();
        self.out.drain(..wrote);
    }
}

/// Pumps client and daemon alternately until the reply to `id` arrives.
fn call(
    conn: &mut Connection,
    d: &mut Daemon,
    page: &Interface,
    chunk: usize,
    op: Op<'_>,
) -> Result<Vec<u8>, Error> {
    let id = conn.queue(&op)?;
    for _ in 0..100_000 {
        conn.pump(page)?;
        if let Some(m) = conn.take_reply(id) {
            return expect_reply(m, op.msg_type());
        }
        d.step(page, chunk);
    }
    Err(Error::Timeout)
}

/// Lets everything the daemon still holds reach the client.
fn settle(conn: &mut Connection, d: &mut Daemon, page: &Interface, chunk: usize) {
    while !d.out.is_empty() || RingView::responses(page).pending().unwrap() > 0 {
        d.step(page, chunk);
        conn.pump(page).unwrap();
    }
}

fn fresh_page(start: u32) -> Box<Interface> {
    let page = Box::new(Interface::new());
    for idx in [
        &page.req_cons,
        &page.req_prod,
        &page.rsp_cons,
        &page.rsp_prod,
    ] {
        idx.store(start, Ordering::Relaxed);
    }
    page
}

#[test]
fn basic_calls_with_replies_one_byte_at_a_time() {
    let page = fresh_page(u32::MAX - 10);
    let mut conn = Connection::new();
    let mut d = Daemon::new();
    let c = &mut conn;
    assert_eq!(call(c, &mut d, &page, 1, Op::Read("domid")).unwrap(), b"7");
    assert_eq!(
        call(c, &mut d, &page, 1, Op::GetDomainPath(7)).unwrap(),
        b"/local/domain/7\0"
    );
    call(c, &mut d, &page, 1, Op::Write("data/vmi/hello", b"world")).unwrap();
    assert_eq!(
        call(
            c,
            &mut d,
            &page,
            1,
            Op::Read("/local/domain/7/data/vmi/hello")
        )
        .unwrap(),
        b"world"
    );
    assert_eq!(
        call(c, &mut d, &page, 3, Op::Read("data/nothing")),
        Err(Error::Xs(Errno::ENOENT))
    );
    call(c, &mut d, &page, 5, Op::Write("data/vmi/b", b"")).unwrap();
    let dir = call(c, &mut d, &page, 7, Op::Directory("data/vmi")).unwrap();
    assert_eq!(split_strings(&dir), ["b", "hello"]);
    call(c, &mut d, &page, 2, Op::Rm("data/vmi")).unwrap();
    assert!(call(c, &mut d, &page, 2, Op::Read("data/vmi/b"))
        .unwrap_err()
        .is_enoent());
    assert_eq!(conn.stats(), Default::default());
}

#[test]
fn a_value_bigger_than_the_ring_both_ways() {
    let page = fresh_page(0);
    let mut conn = Connection::new();
    let mut d = Daemon::new();
    let v: Vec<u8> = (0..4000u32).map(|i| (i % 200) as u8 + 1).collect();
    call(&mut conn, &mut d, &page, 333, Op::Write("data/big", &v)).unwrap();
    let back = call(&mut conn, &mut d, &page, 1024, Op::Read("data/big")).unwrap();
    assert_eq!(back, v);
    assert!(v.len() > RING_SIZE as usize * 3);
}

#[test]
fn watch_events_between_replies_are_kept_apart_in_order() {
    let page = fresh_page(1000);
    let mut conn = Connection::new();
    let mut d = Daemon::new();
    let c = &mut conn;
    call(
        c,
        &mut d,
        &page,
        10,
        Op::Watch {
            path: "control/shutdown",
            token: "sd",
        },
    )
    .unwrap();
    // Initial firing (sent after the reply).
    settle(c, &mut d, &page, 10);
    assert_eq!(
        c.pop_watch(),
        Some(WatchEvent {
            path: "control/shutdown".into(),
            token: "sd".into()
        })
    );
    d.chatty = true;
    for n in 0..5u8 {
        call(c, &mut d, &page, 9, Op::Write("data/n", &[b'0' + n])).unwrap();
    }
    // One event before each of the 5 replies.
    assert_eq!(c.watches_queued(), 5);
    d.chatty = false;
    call(
        c,
        &mut d,
        &page,
        9,
        Op::Write("control/shutdown", b"poweroff"),
    )
    .unwrap();
    settle(c, &mut d, &page, 9);
    assert_eq!(c.watches_queued(), 6);
    call(
        c,
        &mut d,
        &page,
        9,
        Op::Unwatch {
            path: "control/shutdown",
            token: "sd",
        },
    )
    .unwrap();
    call(c, &mut d, &page, 9, Op::Write("control/shutdown", b"")).unwrap();
    settle(c, &mut d, &page, 9);
    assert_eq!(c.watches_queued(), 6);
    while let Some(ev) = c.pop_watch() {
        assert_eq!(ev.path, "control/shutdown");
        assert_eq!(ev.token, "sd");
    }
}

#[test]
fn watch_queue_is_bounded() {
    let page = fresh_page(0);
    let mut conn = Connection::new();
    let mut d = Daemon::new();
    call(
        &mut conn,
        &mut d,
        &page,
        64,
        Op::Watch {
            path: "data",
            token: "t",
        },
    )
    .unwrap();
    for i in 0..(WATCH_QUEUE_MAX + 10) {
        call(
            &mut conn,
            &mut d,
            &page,
            64,
            Op::Write("data/x", i.to_string().as_bytes()),
        )
        .unwrap();
    }
    settle(&mut conn, &mut d, &page, 64);
    assert_eq!(conn.watches_queued(), WATCH_QUEUE_MAX);
    assert_eq!(conn.stats().watch_overflow, 11);
}

#[test]
fn a_late_reply_to_an_abandoned_request_is_dropped() {
    let page = fresh_page(0);
    let mut conn = Connection::new();
    let mut d = Daemon::new();
    let id = conn.queue(&Op::Read("domid")).unwrap();
    conn.pump(&page).unwrap();
    conn.abandon(id); // the caller timed out
    d.step(&page, 4096);
    let v = call(&mut conn, &mut d, &page, 4096, Op::Read("domid")).unwrap();
    assert_eq!(v, b"7");
    assert_eq!(conn.stats().stray_replies, 1);
    assert!(conn.take_reply(id).is_none());
}

#[test]
fn a_daemon_that_does_not_read_makes_requests_busy_not_unbounded() {
    let page = fresh_page(0);
    let mut conn = Connection::new();
    let v = vec![b'x'; 4000];
    let mut queued = 0;
    loop {
        match conn.queue(&Op::Write("data/v", &v)) {
            Ok(_) => queued += 1,
            Err(Error::Busy) => break,
            Err(e) => panic!("{e}"),
        }
        conn.pump(&page).unwrap();
        assert!(queued < 100);
    }
    assert!(queued >= 4);
}

#[test]
fn corrupt_ring_indices_break_the_connection_for_good() {
    let page = fresh_page(0);
    let mut conn = Connection::new();
    page.rsp_prod.store(5000, Ordering::Relaxed);
    let e = conn.pump(&page).unwrap_err();
    assert!(matches!(e, Error::Ring(_)), "{e:?}");
    page.rsp_prod.store(0, Ordering::Relaxed);
    assert_eq!(conn.pump(&page), Err(e));
    assert_eq!(conn.queue(&Op::Read("domid")), Err(e));
}

#[test]
fn an_impossible_length_is_an_error_not_a_loop() {
    let page = fresh_page(0);
    let mut conn = Connection::new();
    let h = Header {
        ty: MsgType::Read as u32,
        req_id: 1,
        tx_id: 0,
        len: 1 << 20,
    };
    RingView::responses(&page).write(&h.encode()).unwrap();
    let e = conn.pump(&page).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
}

#[test]
fn a_reply_of_the_wrong_type_is_reported() {
    let page = fresh_page(0);
    let mut conn = Connection::new();
    let id = conn.queue(&Op::Read("domid")).unwrap();
    conn.pump(&page).unwrap();
    let m = Message {
        header: Header {
            ty: MsgType::Write as u32,
            req_id: id,
            tx_id: 0,
            len: 3,
        },
        payload: b"OK\0".to_vec(),
    };
    RingView::responses(&page).write(&m.encode()).unwrap();
    conn.pump(&page).unwrap();
    let r = expect_reply(conn.take_reply(id).unwrap(), MsgType::Read);
    assert_eq!(
        r,
        Err(Error::UnexpectedReply {
            expected: 2,
            got: 11
        })
    );
}

fn arb_message() -> impl Strategy<Value = Message> {
    (
        0u32..24,
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(ty, req_id, tx_id, payload)| Message {
            header: Header {
                ty,
                req_id,
                tx_id,
                len: payload.len() as u32,
            },
            payload,
        })
}

proptest! {
    /// Any stream of valid messages, cut in two at every byte boundary,
    /// decodes to the same messages.
    #[test]
    fn framing_survives_a_split_at_every_boundary(
        msgs in prop::collection::vec(arb_message(), 1..5)
    ) {
        let stream: Vec<u8> = msgs.iter().flat_map(|m| m.encode()).collect();
        for cut in 0..=stream.len() {
            let mut d = Decoder::new();
            d.feed(&stream[..cut]).unwrap();
            d.feed(&stream[cut..]).unwrap();
            let got: Vec<Message> = std::iter::from_fn(|| d.pop()).collect();
            prop_assert_eq!(&got, &msgs);
            prop_assert!(d.at_boundary());
        }
    }

    /// ... and cut into arbitrary pieces.
    #[test]
    fn framing_survives_arbitrary_pieces(
        msgs in prop::collection::vec(arb_message(), 1..8),
        cuts in prop::collection::vec(1usize..64, 1..200),
    ) {
        let stream: Vec<u8> = msgs.iter().flat_map(|m| m.encode()).collect();
        let mut d = Decoder::new();
        let mut at = 0;
        for c in cuts.iter().cycle() {
            if at >= stream.len() {
                break;
            }
            let end = (at + c).min(stream.len());
            d.feed(&stream[at..end]).unwrap();
            at = end;
        }
        let got: Vec<Message> = std::iter::from_fn(|| d.pop()).collect();
        prop_assert_eq!(got, msgs);
    }

    /// Garbage never panics; once the decoder fails it stays failed.
    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..20_000),
                            piece in 1usize..5000) {
        let mut d = Decoder::new();
        let mut failed = None;
        for chunk in bytes.chunks(piece) {
            match d.feed(chunk) {
                Ok(()) => prop_assert!(failed.is_none()),
                Err(e) => {
                    if let Some(f) = failed {
                        prop_assert_eq!(f, e);
                    }
                    failed = Some(e);
                }
            }
        }
        while let Some(m) = d.pop() {
            prop_assert!(m.payload.len() <= xenstore::wire::PAYLOAD_MAX);
        }
    }

    /// Garbage from the "daemon" into a live connection: an error or
    /// nothing, never a panic; the pump always terminates.
    #[test]
    fn hostile_ring_contents(bytes in prop::collection::vec(any::<u8>(), 0..1024),
                             prod_skew in 0u32..2048, start in any::<u32>()) {
        let page = fresh_page(start);
        for (i, b) in bytes.iter().enumerate() {
            page.rsp[i].store(*b, Ordering::Relaxed);
        }
        page.rsp_prod.store(start.wrapping_add(prod_skew), Ordering::Relaxed);
        let mut conn = Connection::new();
        let _ = conn.queue(&Op::Read("domid"));
        let r = conn.pump(&page);
        if prod_skew > RING_SIZE {
            prop_assert!(matches!(r, Err(Error::Ring(_))));
        }
        let _ = conn.pop_watch();
    }

    /// Real calls with replies and watch events released in random-sized
    /// pieces from a random ring start.
    #[test]
    fn calls_with_random_reply_pieces(chunk in 1usize..1100, start in any::<u32>(),
                                      value in prop::collection::vec(any::<u8>(), 0..3000)) {
        let page = fresh_page(start);
        let mut conn = Connection::new();
        let mut d = Daemon::new();
        d.chatty = true;
        call(&mut conn, &mut d, &page, chunk, Op::Watch { path: "data", token: "w" }).unwrap();
        call(&mut conn, &mut d, &page, chunk, Op::Write("data/v", &value)).unwrap();
        let back = call(&mut conn, &mut d, &page, chunk, Op::Read("data/v")).unwrap();
        prop_assert_eq!(back, value);
        prop_assert!(conn.watches_queued() >= 3);
        prop_assert_eq!(conn.stats().stray_replies, 0);
    }
}
