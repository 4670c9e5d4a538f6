//! One client connection: its buffers, its requests in flight and its reply checker.
//!
//! ```text
//!  write_request ──► tx [sent | queued | spare]  ──write()──► socket
//!                     │
//!                     └─ in flight: VecDeque<(tag, start, sent)>, front = oldest
//!  socket ──read()──► rx [consumed | unparsed | spare] ──ReplyParser──► pop front, record
//! ```
//!
//! All buffers are sized when the connection is made and never grow: `tx` holds a batch of
//! requests (the pipeline depth, 4 to 256 KiB, at least two largest requests), `rx` 32 KiB
//! (twice the largest reply head accepted), the in-flight queue its cap (24 bytes a request).
//! A connection with the defaults costs about 40 KiB closed loop, 60 KiB open loop.
//! Per request there is one `write` (shared by all requests queued together) and one `read`
//! (shared by all replies that arrived together). The socket is edge-triggered; a read or
//! write that comes back short means the kernel buffer was drained or filled, and Linux will
//! signal again when that changes, so no extra call is made just to see `WouldBlock`.
//!
//! Churn (`--reconnect-after`): each connection draws how many requests it will send and how
//! it will end ([`Ending`]). When its quota is written it stops queueing, ends as drawn, and
//! [`Conn::lifetime`] replaces the socket with a new non-blocking connect under the same
//! token, reusing every buffer: a reconnect allocates nothing. Its generation goes up by one,
//! so stamped payloads of the old connection can never pass as the new one's replies.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::cli::CountRange;
use crate::errors::{ErrorKind, Failure};
use crate::protocol::{Origin, Protocol, ReplyParser, Rng, Tag};
use crate::schedule::Schedule;

/// Receive buffer size: twice the largest HTTP reply head accepted.
const RX_SIZE: usize = 2 * crate::protocol::MAX_HTTP_HEAD;
/// Bounds of the send buffer, which is sized for `batch` requests (and at least two).
const TX_MIN: usize = 4 * 1024;
const TX_MAX: usize = 256 * 1024;
/// Compact the receive buffer when less than this is free at its end.
const RX_MIN_FREE: usize = 4096;

/// Monotonic nanoseconds since the run's epoch.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock counting from `epoch`.
    pub fn new(epoch: Instant) -> Clock {
        Clock { epoch }
    }

    /// Nanoseconds since the epoch (0 before it). One vDSO clock read, no syscall.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(
            Instant::now()
                .saturating_duration_since(self.epoch)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX)
    }
}

/// Where a thread's connections record what they completed.
#[derive(Debug)]
pub struct Recorder {
    /// Latencies (ns) of measured replies in the current interval.
    pub hist: Histogram<u64>,
    /// Open loop: how late requests were written, relative to their schedule (ns).
    pub lag: Histogram<u64>,
    /// Requests starting before this are warmup and not recorded.
    pub measure_from_ns: u64,
    /// Replies completed in the current interval, warmup included.
    pub completed: u64,
    /// What churn did in the current interval.
    pub churn: ChurnCounts,
}

/// How a connection ends under churn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Closes once its last reply has arrived.
    Close,
    /// Shuts down its write side once its last request is written, then reads until the
    /// server closes: every reply must arrive first.
    HalfClose,
    /// Resets (SO_LINGER 0) once its last request is written, its replies unread.
    Reset,
}

/// Churn settings, the same for every connection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Churn {
    /// Requests per connection, drawn uniformly per connection.
    pub after: CountRange,
    /// Fraction of connections that end with a half-close.
    pub half_close: f64,
    /// Fraction of connections that end with a reset.
    pub reset: f64,
}

impl Churn {
    fn draw(&self, rng: &mut Rng) -> (u64, Ending) {
        let span = self.after.max - self.after.min;
        let quota = self.after.min + if span > 0 { rng.below(span + 1) } else { 0 };
        let u = (rng.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
        let ending = if u < self.reset {
            Ending::Reset
        } else if u < self.reset + self.half_close {
            Ending::HalfClose
        } else {
            Ending::Close
        };
        (quota, ending)
    }
}

/// What churn did on a thread's connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChurnCounts {
    /// New connections made after a churn close (connected, not just attempted).
    pub reconnects: u64,
    /// Connections closed after their last reply.
    pub closes: u64,
    /// Connections half-closed whose server then closed with every reply delivered.
    pub half_closes: u64,
    /// Connections reset.
    pub resets: u64,
    /// Requests left unanswered by resets (not errors).
    pub abandoned: u64,
}

impl ChurnCounts {
    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &ChurnCounts) {
        self.reconnects += other.reconnects;
        self.closes += other.closes;
        self.half_closes += other.half_closes;
        self.resets += other.resets;
        self.abandoned += other.abandoned;
    }
}

impl Recorder {
    fn reply(&mut self, start_ns: u64, now_ns: u64) {
        self.completed += 1;
        if start_ns >= self.measure_from_ns {
            self.hist
                .saturating_record(now_ns.saturating_sub(start_ns).max(1));
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    tag: Tag,
    /// Latency is measured from here: the send time (closed loop) or the intended one (open).
    start_ns: u64,
    /// When it was written, for the timeout.
    sent_ns: u64,
}

/// A connection's state; see the [module docs](self).
#[derive(Debug)]
pub struct Conn {
    index: u64,
    addr: SocketAddr,
    origin: Origin,
    stream: TcpStream,
    connected: bool,
    /// When the current connect started (ns after the epoch; 0 for the first).
    connect_started_ns: u64,
    tx: Vec<u8>,
    tx_sent: usize,
    write_blocked: bool,
    rx: Box<[u8]>,
    rx_start: usize,
    rx_end: usize,
    in_flight: VecDeque<InFlight>,
    cap: usize,
    parser: ReplyParser,
    rng: Rng,
    seq: u64,
    churn: Option<Churn>,
    churn_rng: Rng,
    /// Requests this connection may still queue before it ends (`u64::MAX` without churn).
    quota: u64,
    ending: Ending,
    /// When the write side was shut down (ns after the epoch).
    half_closed_ns: Option<u64>,
    /// After a half-close, the server closed with every reply delivered.
    peer_closed: bool,
}

impl Conn {
    /// Starts a non-blocking connect to `addr` for connection number `index` (its place in
    /// the open-loop schedule and its random stream), allowing `cap` requests in flight and
    /// sizing the send buffer for `batch` requests written at once; with `churn`, it will
    /// close and reconnect (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// A connect failure the OS reports at once (e.g. no free local port or descriptor).
    pub fn connect(
        addr: SocketAddr,
        index: u64,
        proto: &Protocol,
        cap: usize,
        batch: usize,
        seed: u64,
        churn: Option<Churn>,
    ) -> Result<Conn, Failure> {
        let stream = TcpStream::connect(addr).map_err(|e| connect_failure(addr, &e))?;
        let req = proto.max_request_len();
        let tx_size = batch.saturating_mul(req).clamp(TX_MIN, TX_MAX).max(2 * req);
        let origin = Origin {
            conn: index,
            generation: 0,
        };
        let mut churn_rng = Rng::new(seed ^ index.wrapping_mul(0x9e6c_63d0_676a_9a99) ^ 0xc4u64);
        let (quota, ending) = churn.map_or((u64::MAX, Ending::Close), |c| c.draw(&mut churn_rng));
        Ok(Conn {
            index,
            addr,
            origin,
            stream,
            connected: false,
            connect_started_ns: 0,
            tx: Vec::with_capacity(tx_size),
            tx_sent: 0,
            write_blocked: false,
            rx: vec![0; RX_SIZE].into_boxed_slice(),
            rx_start: 0,
            rx_end: 0,
            in_flight: VecDeque::with_capacity(cap),
            cap,
            parser: ReplyParser::new(origin),
            rng: Rng::new(seed ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d)),
            seq: 0,
            churn,
            churn_rng,
            quota,
            ending,
            half_closed_ns: None,
            peer_closed: false,
        })
    }

    /// How many times this connection has reconnected.
    pub fn generation(&self) -> u64 {
        self.origin.generation
    }

    /// Under churn, ends the connection when its time has come and starts the next one:
    /// call after each round of reading, queueing and flushing. Counts what it did in
    /// `counts`. No allocation.
    ///
    /// # Errors
    ///
    /// The new connect's failure, as a connect error.
    pub fn lifetime(
        &mut self,
        registry: &Registry,
        token: Token,
        now_ns: u64,
        counts: &mut ChurnCounts,
    ) -> Result<(), Failure> {
        if self.churn.is_none() || !self.connected {
            return Ok(());
        }
        if self.peer_closed {
            counts.half_closes += 1;
            return self.reconnect(registry, token, now_ns, false);
        }
        if self.quota > 0 || !self.tx.is_empty() {
            return Ok(());
        }
        match self.ending {
            Ending::Close if self.in_flight.is_empty() => {
                counts.closes += 1;
                self.reconnect(registry, token, now_ns, false)
            }
            Ending::Close => Ok(()),
            Ending::HalfClose => {
                if self.half_closed_ns.is_none() {
                    self.half_closed_ns = Some(now_ns);
                    self.shutdown_write();
                }
                Ok(())
            }
            Ending::Reset => {
                counts.resets += 1;
                counts.abandoned += self.in_flight.len() as u64;
                self.reconnect(registry, token, now_ns, true)
            }
        }
    }

    /// Closes the socket (with a reset if `reset`) and starts a new connect in its place.
    fn reconnect(
        &mut self,
        registry: &Registry,
        token: Token,
        now_ns: u64,
        reset: bool,
    ) -> Result<(), Failure> {
        let _ = registry.deregister(&mut self.stream);
        if reset {
            let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        }
        let fresh = TcpStream::connect(self.addr).map_err(|e| connect_failure(self.addr, &e))?;
        drop(std::mem::replace(&mut self.stream, fresh));
        self.connected = false;
        self.connect_started_ns = now_ns;
        self.tx.clear();
        self.tx_sent = 0;
        self.write_blocked = false;
        self.rx_start = 0;
        self.rx_end = 0;
        self.in_flight.clear();
        self.origin.generation += 1;
        self.parser = ReplyParser::new(self.origin);
        self.half_closed_ns = None;
        self.peer_closed = false;
        if let Some(c) = self.churn {
            (self.quota, self.ending) = c.draw(&mut self.churn_rng);
        }
        self.register(registry, token)
            .map_err(|e| Failure::new(ErrorKind::ConnectFailed, format!("register: {e}")))
    }

    /// Registers the socket for read and write readiness.
    ///
    /// # Errors
    ///
    /// The registry's error.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut self.stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// Whether the connect has completed.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// On a readiness event while connecting: `Ok(true)` once connected, `Ok(false)` if not yet.
    ///
    /// # Errors
    ///
    /// The connect's failure (refused, unreachable, ...).
    pub fn finish_connect(&mut self, addr: SocketAddr) -> Result<bool, Failure> {
        if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
            return Err(connect_failure(addr, &e));
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connected = true;
                // Without it a pipelined tail can wait for Nagle; failure only costs latency.
                let _ = self.stream.set_nodelay(true);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(connect_failure(addr, &e)),
        }
    }

    /// Requests written and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Moves unsent bytes to the front of `tx` if a largest request would not fit after them.
    fn make_room(&mut self, need: usize) {
        if self.tx.capacity() - self.tx.len() >= need || self.tx_sent == 0 {
            return;
        }
        let len = self.tx.len();
        self.tx.copy_within(self.tx_sent..len, 0);
        self.tx.truncate(len - self.tx_sent);
        self.tx_sent = 0;
    }

    /// Closed loop: queues requests until `depth` are in flight or `tx` is full, all starting
    /// at `now_ns`. No allocation.
    pub fn fill_closed(&mut self, proto: &Protocol, depth: usize, now_ns: u64) {
        self.make_room(proto.max_request_len());
        while self.in_flight.len() < depth.min(self.cap) && self.quota > 0 {
            let Some(tag) = proto.write_request(self.origin, self.seq, &mut self.rng, &mut self.tx)
            else {
                break;
            };
            self.seq += 1;
            self.quota -= 1;
            self.in_flight.push_back(InFlight {
                tag,
                start_ns: now_ns,
                sent_ns: now_ns,
            });
        }
    }

    /// Open loop: queues every request whose scheduled time has come, while the in-flight cap
    /// and `tx` allow; each one's latency will count from its scheduled time. Returns when the
    /// next one is due, or `u64::MAX` if the connection must first get a reply or drain `tx`.
    pub fn fill_open(
        &mut self,
        proto: &Protocol,
        schedule: &Schedule,
        now_ns: u64,
        rec: &mut Recorder,
    ) -> u64 {
        self.make_room(proto.max_request_len());
        loop {
            let due = schedule.due_ns(self.index, self.seq);
            if due > now_ns {
                return due;
            }
            if self.in_flight.len() >= self.cap || self.quota == 0 {
                return u64::MAX;
            }
            let Some(tag) = proto.write_request(self.origin, self.seq, &mut self.rng, &mut self.tx)
            else {
                return u64::MAX;
            };
            self.seq += 1;
            self.quota -= 1;
            self.in_flight.push_back(InFlight {
                tag,
                start_ns: due,
                sent_ns: now_ns,
            });
            if due >= rec.measure_from_ns {
                rec.lag.saturating_record(now_ns - due);
            }
        }
    }

    /// After a writable event: writing may go on.
    pub fn writable(&mut self) {
        self.write_blocked = false;
    }

    /// Writes queued bytes until done or the socket is full. At most one `write` unless the
    /// kernel takes everything in pieces.
    ///
    /// # Errors
    ///
    /// Reset or closed by the peer, or another I/O error.
    pub fn flush(&mut self) -> Result<(), Failure> {
        if !self.connected {
            return Ok(()); // queued bytes leave once the connect completes
        }
        while !self.write_blocked && self.tx_sent < self.tx.len() {
            match self.stream.write(&self.tx[self.tx_sent..]) {
                Ok(0) => {
                    return Err(Failure::new(
                        ErrorKind::ClosedByPeer,
                        "the socket accepted no bytes",
                    ))
                }
                Ok(n) => {
                    self.tx_sent += n;
                    if self.tx_sent < self.tx.len() {
                        self.write_blocked = true; // short write: the send buffer is full
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.write_blocked = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_failure("write", &e)),
            }
        }
        if self.tx_sent == self.tx.len() {
            self.tx.clear();
            self.tx_sent = 0;
        }
        Ok(())
    }

    /// Reads what arrived, checks the replies and records each completed one at the time its
    /// bytes were read. Returns how many completed. A short read ends the call (the socket is
    /// drained) unless `to_end` is set (the event said the peer closed) or the client has
    /// half-closed: then it reads on until the EOF, which came in the same edge as the data.
    ///
    /// # Errors
    ///
    /// A wrong or unparsable reply, bytes no request asked for, the peer closing, a reset or
    /// another I/O error.
    pub fn read(
        &mut self,
        proto: &Protocol,
        clock: &Clock,
        rec: &mut Recorder,
        to_end: bool,
    ) -> Result<u64, Failure> {
        let to_end = to_end || self.half_closed_ns.is_some();
        let mut completed = 0;
        loop {
            if self.rx.len() - self.rx_end < RX_MIN_FREE && self.rx_start > 0 {
                self.rx.copy_within(self.rx_start..self.rx_end, 0);
                self.rx_end -= self.rx_start;
                self.rx_start = 0;
            }
            let space = self.rx.len() - self.rx_end;
            if space == 0 {
                return Err(Failure::new(
                    ErrorKind::Protocol,
                    format!("a reply part exceeds the {RX_SIZE}-byte receive buffer"),
                ));
            }
            match self.stream.read(&mut self.rx[self.rx_end..]) {
                Ok(0) => {
                    if self.half_closed_ns.is_some() && self.in_flight.is_empty() {
                        self.peer_closed = true; // every reply came before the close
                        return Ok(completed);
                    }
                    return Err(Failure::new(
                        ErrorKind::ClosedByPeer,
                        format!(
                            "the server closed the connection with {} requests unanswered{}",
                            self.in_flight.len(),
                            if self.half_closed_ns.is_some() {
                                " after the client's half-close"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                Ok(n) => {
                    self.rx_end += n;
                    completed += self.parse(proto, clock.now_ns(), rec)?;
                    if n < space && !to_end {
                        return Ok(completed); // short read: the socket is drained
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(completed),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_failure("read", &e)),
            }
        }
    }

    fn parse(&mut self, proto: &Protocol, now_ns: u64, rec: &mut Recorder) -> Result<u64, Failure> {
        let mut completed = 0;
        while self.rx_start < self.rx_end {
            let Some(&front) = self.in_flight.front() else {
                return Err(Failure::new(
                    ErrorKind::Protocol,
                    format!(
                        "the server sent {} bytes no request asked for",
                        self.rx_end - self.rx_start
                    ),
                ));
            };
            let (n, done) =
                self.parser
                    .feed(proto, front.tag, &self.rx[self.rx_start..self.rx_end])?;
            self.rx_start += n;
            if !done {
                break;
            }
            rec.reply(front.start_ns, now_ns);
            self.in_flight.pop_front();
            completed += 1;
        }
        if self.rx_start == self.rx_end {
            self.rx_start = 0;
            self.rx_end = 0;
        }
        Ok(completed)
    }

    /// Half-closes the connection: the server gets a FIN once the kernel has sent what it
    /// holds.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }

    /// Reads and discards what has arrived; true once the peer has closed (or the socket
    /// failed), false while it is still open.
    pub fn drain(&mut self) -> bool {
        loop {
            match self.stream.read(&mut self.rx) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }

    /// Whether the oldest request has waited longer than `timeout_ns` since it was written.
    ///
    /// # Errors
    ///
    /// A `Timeout` failure if it has.
    pub fn check_timeout(&self, now_ns: u64, timeout_ns: u64) -> Result<(), Failure> {
        if !self.connected && now_ns.saturating_sub(self.connect_started_ns) > timeout_ns {
            return Err(Failure::new(
                ErrorKind::ConnectTimeout,
                format!(
                    "reconnect to {} took longer than {:.3} s",
                    self.addr,
                    timeout_ns as f64 / 1e9
                ),
            ));
        }
        if let Some(at) = self.half_closed_ns {
            if self.in_flight.is_empty() && now_ns.saturating_sub(at) > timeout_ns {
                return Err(Failure::new(
                    ErrorKind::Timeout,
                    format!(
                        "the server did not close the connection within {:.3} s of the \
                         client's half-close",
                        timeout_ns as f64 / 1e9
                    ),
                ));
            }
        }
        match self.in_flight.front() {
            Some(f) if now_ns.saturating_sub(f.sent_ns) > timeout_ns => Err(Failure::new(
                ErrorKind::Timeout,
                format!(
                    "a request went unanswered for {:.3} s ({} in flight on the connection)",
                    timeout_ns as f64 / 1e9,
                    self.in_flight.len()
                ),
            )),
            _ => Ok(()),
        }
    }
}

fn connect_failure(addr: SocketAddr, e: &io::Error) -> Failure {
    Failure::new(ErrorKind::of_connect(e), format!("connect to {addr}: {e}"))
}

fn io_failure(what: &str, e: &io::Error) -> Failure {
    Failure::new(ErrorKind::of_io(e), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_draws_quotas_in_range_and_endings_in_proportion() {
        let churn = Churn {
            after: CountRange { min: 3, max: 9 },
            half_close: 0.25,
            reset: 0.125,
        };
        let mut rng = Rng::new(42);
        let mut ends = [0_u32; 3];
        let mut quotas = std::collections::BTreeSet::new();
        for _ in 0..8000 {
            let (q, e) = churn.draw(&mut rng);
            quotas.insert(q);
            ends[e as usize] += 1;
        }
        assert_eq!(
            quotas.into_iter().collect::<Vec<_>>(),
            (3..=9).collect::<Vec<_>>()
        );
        // 5000 closes, 2000 half-closes, 1000 resets expected
        assert!((4700..5300).contains(&ends[0]), "{ends:?}");
        assert!((1800..2200).contains(&ends[1]), "{ends:?}");
        assert!((850..1150).contains(&ends[2]), "{ends:?}");
        // the same seed draws the same lives
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert!((0..100).all(|_| churn.draw(&mut a) == churn.draw(&mut b)));
        let fixed = Churn {
            after: CountRange { min: 5, max: 5 },
            half_close: 0.0,
            reset: 0.0,
        };
        assert_eq!(fixed.draw(&mut a), (5, Ending::Close));
    }
}
