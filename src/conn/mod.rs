//! A connection: receives into pool slabs, stamped; sync-first, bounded, vectored sends.
//!
//! A [`Connection`] lives and dies on the shard that accepted it. It owns its socket, at most
//! one slab it is reading into *during* a poll (returned at once if no data is there, so an
//! idle connection holds no slab), the chunk it lends to `AsyncRead` readers, and its send
//! queue (up to [`QUEUE_SLOTS`] slabs, `max_pending_send` bytes). It never allocates.
//!
//! The path of one receive: take a slab from the shard's pool (wait in line if the pool is
//! empty — the socket is not read meanwhile, so TCP pushes back on the peer) → non-blocking
//! `recv` into the slab, or, if nothing is there, give the slab back and wait for readiness →
//! stamp the chunk with the shard's next sequence number → hand it to the handler.

mod chunk;
mod error;
mod io;
mod linger;
mod ring;
pub(crate) mod send;

pub use chunk::{Chunk, ConnId};
pub use error::{CloseReason, ConnError};
pub use send::QUEUE_SLOTS;

use crate::pool::WaitTicket;
use crate::shard::ShardCore;
use crate::slots::{self, Slot, Wait};
use crate::stats::Counters;
use crate::sys::{runtime::Stream, socket};
use send::{fill_iov_from, OutQueue, MAX_IOV};
use std::fmt;
use std::future::poll_fn;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// One accepted TCP connection, owned by the shard that accepted it (`!Send`).
///
/// Receive with [`recv`](Connection::recv) (zero-copy chunks) or through `AsyncRead` /
/// `AsyncBufRead`; send with [`send`](Connection::send) / [`send_vectored`](Connection::send_vectored)
/// (straight from your buffers), or queue with [`write`](Connection::write) /
/// [`push`](Connection::push) and send everything queued in one `sendmsg` with
/// [`flush`](Connection::flush). `AsyncWrite` is the queue plus flush.
///
/// Dropping the connection closes the socket at once; bytes still queued are discarded
/// (flush first, or use [`close`](Connection::close)).
pub struct Connection {
    core: Rc<ShardCore>,
    backend: Backend,
    fd: RawFd,
    slot: u32,
    id: ConnId,
    peer: SocketAddr,
    rx_eof: bool,
    pool_wait: WaitTicket,
    /// Chunk lent to `AsyncRead`/`AsyncBufRead` readers, partly consumed.
    rx_pending: Option<Chunk>,
    out: OutQueue,
    /// The current send operation had to wait on the reactor.
    tx_fell_back: bool,
    /// Oldest received chunk not yet followed by a completed send (for service latency).
    unanswered_since: Option<Instant>,
    /// Ring backend: bytes the current flush handed to the driver.
    flush_bytes: usize,
}

/// How a connection's socket is driven.
#[derive(Debug)]
enum Backend {
    /// Through glommio's stream (readiness polls on glommio's reactor). The stream is taken
    /// out only by `Drop`, to hand it to a lingering close. Boxed: glommio's stream is 120
    /// bytes, which would otherwise sit in every connection of the default ring backend too.
    Glommio(Option<Box<Stream>>),
    /// Through the shard driver's own ring; the driver owns the socket.
    Ring,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("eof", &self.rx_eof)
            .field("queued", &self.out.bytes())
            .finish()
    }
}

impl Connection {
    /// A connection over glommio's stream (glommio backend).
    pub(crate) fn new(
        core: Rc<ShardCore>,
        stream: Stream,
        slot: u32,
        id: ConnId,
        peer: SocketAddr,
    ) -> Self {
        let fd = stream.fd();
        Connection::with_backend(
            core,
            Backend::Glommio(Some(Box::new(stream))),
            fd,
            slot,
            id,
            peer,
        )
    }

    /// A connection whose socket `fd` the shard driver owns (io_uring backend).
    pub(crate) fn new_ring(
        core: Rc<ShardCore>,
        fd: RawFd,
        slot: u32,
        id: ConnId,
        peer: SocketAddr,
    ) -> Self {
        Connection::with_backend(core, Backend::Ring, fd, slot, id, peer)
    }

    fn with_backend(
        core: Rc<ShardCore>,
        backend: Backend,
        fd: RawFd,
        slot: u32,
        id: ConnId,
        peer: SocketAddr,
    ) -> Self {
        Connection {
            core,
            backend,
            fd,
            slot,
            id,
            peer,
            rx_eof: false,
            pool_wait: WaitTicket::default(),
            rx_pending: None,
            out: OutQueue::default(),
            tx_fell_back: false,
            unanswered_since: None,
            flush_bytes: 0,
        }
    }

    fn is_ring(&self) -> bool {
        matches!(self.backend, Backend::Ring)
    }

    /// This connection's id (shard and number).
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The index of the shard that owns it.
    pub fn shard_id(&self) -> usize {
        self.id.shard as usize
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// True once a receive returned end of stream (the peer shut down its write side).
    pub fn is_eof(&self) -> bool {
        self.rx_eof
    }

    /// True when the server is shutting down: finish the current work and return.
    pub fn is_draining(&self) -> bool {
        self.slot().flags() & (slots::DRAIN | slots::FORCE) != 0
    }

    /// Bytes queued for sending and not yet taken by the kernel.
    pub fn queued(&self) -> usize {
        self.out.bytes()
    }

    /// Changes this connection's receive timeout (`None` disables it). The resolution is the
    /// server's `timer_resolution`.
    pub fn set_recv_timeout(&mut self, t: Option<Duration>) {
        let ticks = self.core.ticks(t);
        self.slot().recv_ticks.set(ticks);
        self.core.kick_sweeper();
    }

    /// Changes this connection's send timeout (`None` disables it).
    pub fn set_send_timeout(&mut self, t: Option<Duration>) {
        let ticks = self.core.ticks(t);
        self.slot().send_ticks.set(ticks);
        self.core.kick_sweeper();
    }

    #[inline]
    fn slot(&self) -> &Slot {
        self.core.slots.get(self.slot)
    }

    /// Fails the operation if a timeout or the shutdown's deadline ended the connection.
    fn check(&self, timed_out_flag: u8) -> Result<(), ConnError> {
        let flags = self.slot().flags();
        if flags & slots::FORCE != 0 {
            return Err(self.fail(ConnError::Shutdown));
        }
        if flags & timed_out_flag != 0 {
            return Err(self.fail(ConnError::TimedOut));
        }
        Ok(())
    }

    /// Records the close reason an error implies and returns the error.
    fn fail(&self, e: ConnError) -> ConnError {
        self.slot().set_reason(e.close_reason());
        if !matches!(e, ConnError::Io(_)) {
            log::trace!("connection {}: {e}", self.id);
        } else {
            log::debug!("connection {}: {e}", self.id);
        }
        e
    }

    /// Receives the next chunk: `Ok(None)` at end of stream.
    ///
    /// The bytes land directly in a slab of the shard's pool; the chunk holds that slab until
    /// dropped. If the pool is empty this waits for a slab (the socket is not read meanwhile,
    /// so TCP pushes back on the peer). No allocation.
    ///
    /// A handler that keeps a partial message while it waits for the rest should append to
    /// the chunk it holds with [`recv_into`](Connection::recv_into) rather than take a second
    /// slab: many connections each holding one slab and waiting for another can empty the
    /// pool for everyone (the receive timeout then ends the waiters).
    ///
    /// # Errors
    /// [`ConnError::TimedOut`] when no data came (or no slab was free) within the receive
    /// timeout, [`ConnError::Reset`] when the peer reset, [`ConnError::Shutdown`] when the
    /// server is draining and no more data is available now, [`ConnError::Io`] otherwise.
    pub async fn recv(&mut self) -> Result<Option<Chunk>, ConnError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll form of [`recv`](Connection::recv).
    ///
    /// # Errors
    /// As for [`recv`](Connection::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Chunk>, ConnError>> {
        if let Some(c) = self.rx_pending.take() {
            return Poll::Ready(Ok(Some(c)));
        }
        if self.rx_eof {
            return Poll::Ready(Ok(None));
        }
        if let Err(e) = self.check(slots::RECV_TIMED_OUT) {
            self.core.pool.cancel(&mut self.pool_wait);
            return Poll::Ready(Err(e));
        }
        if self.is_ring() {
            return self.poll_recv_ring(cx);
        }
        let core = &*self.core;
        let mut slab = match core.pool.poll_take(cx, &mut self.pool_wait) {
            Poll::Ready(s) => s,
            Poll::Pending => {
                let slot = core.slots.get(self.slot);
                slot.begin_wait(Wait::RecvPool, || core.tick());
                slot.register(cx.waker());
                return Poll::Pending;
            }
        };
        // On `Pending` the slab is dropped here and goes straight back: idle connections
        // hold none.
        let n = std::task::ready!(self.poll_read_into(cx, &mut slab))?;
        if n == 0 {
            return Poll::Ready(Ok(None));
        }
        let now = Instant::now();
        let seq = self.core.next_seq();
        Poll::Ready(Ok(Some(Chunk::new(slab, n, seq, self.id, now))))
    }

    /// Receives more bytes into the spare room of a chunk the handler already holds (after
    /// its current bytes), instead of taking another slab; the chunk is compacted first if
    /// it has no room at its end. Returns the bytes appended; `Ok(0)` at end of stream. The
    /// chunk takes the new receive's sequence stamp.
    ///
    /// # Errors
    /// As for [`recv`](Connection::recv); [`ConnError::Io`] with `InvalidInput` when the
    /// chunk's slab is full of unconsumed bytes (copy them out or drop the chunk).
    pub async fn recv_into(&mut self, chunk: &mut Chunk) -> Result<usize, ConnError> {
        if let Some(pending) = self.rx_pending.take() {
            chunk.compact();
            let n = chunk.extend_from_slice(&pending);
            if n < pending.len() {
                let mut rest = pending;
                rest.advance(n);
                self.rx_pending = Some(rest);
            }
            if n > 0 {
                return Ok(n);
            }
        }
        if self.is_ring() {
            // The kernel picks the slab; copy from it into the chunk's room.
            return self.recv_into_ring(chunk).await;
        }
        if chunk.spare_capacity() == 0 {
            chunk.compact();
        }
        if chunk.spare_capacity() == 0 {
            return Err(ConnError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "recv_into: the chunk's slab is full",
            )));
        }
        let n = poll_fn(|cx| {
            if self.rx_eof {
                return Poll::Ready(Ok(0));
            }
            self.check(slots::RECV_TIMED_OUT)?;
            self.poll_read_into(cx, chunk.spare_mut())
        })
        .await?;
        if n > 0 {
            let seq = self.core.next_seq();
            chunk.appended(n, seq, Instant::now());
        }
        Ok(n)
    }

    /// Reads into `buf`: at once if data is there, else waits for readiness (or, while the
    /// shard drains, fails with `Shutdown` instead of waiting). Counts what arrives; `Ok(0)`
    /// marks end of stream.
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<usize, ConnError>> {
        let core = &*self.core;
        let slot = core.slots.get(self.slot);
        let result = if slot.flags() & slots::DRAIN != 0 {
            // Take what is already here, but do not wait for more.
            match socket::recv(self.fd, buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    slot.end_wait();
                    return Poll::Ready(Err(self.fail(ConnError::Shutdown)));
                }
                r => r,
            }
        } else {
            let Backend::Glommio(Some(stream)) = &mut self.backend else {
                return Poll::Ready(Err(ConnError::Io(std::io::ErrorKind::NotConnected.into())));
            };
            match stream.poll_read(cx, buf) {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    slot.begin_wait(Wait::Recv, || core.tick());
                    slot.register(cx.waker());
                    return Poll::Pending;
                }
            }
        };
        slot.end_wait();
        match result {
            Ok(0) => {
                self.rx_eof = true;
                slot.set_reason(CloseReason::PeerClosed);
                Poll::Ready(Ok(0))
            }
            Ok(n) => {
                Counters::inc(&core.counters.chunks_received);
                Counters::add(&core.counters.bytes_received, n as u64);
                if self.unanswered_since.is_none() {
                    self.unanswered_since = Some(Instant::now());
                }
                Poll::Ready(Ok(n))
            }
            Err(e) => Poll::Ready(Err(self.fail(ConnError::from_io(e)))),
        }
    }

    /// Sends all of `data` straight from the caller's buffer (no copy), after anything queued.
    /// Returns the bytes sent by this call (queued bytes included) — the "data sent" event.
    ///
    /// Tries one non-blocking `sendmsg` first and waits on the reactor only if the socket
    /// buffer is full.
    ///
    /// # Errors
    /// [`ConnError::TimedOut`] when the peer took nothing for the send timeout,
    /// [`ConnError::Reset`] when it went away, [`ConnError::Shutdown`] past the drain deadline.
    pub async fn send(&mut self, data: &[u8]) -> Result<usize, ConnError> {
        self.send_vectored(&[data]).await
    }

    /// Sends all of `bufs`, in order, in as few `sendmsg` calls as possible (up to 16 slices
    /// each), after anything queued. Returns the bytes sent (queued bytes included).
    ///
    /// # Errors
    /// As for [`send`](Connection::send).
    pub async fn send_vectored(&mut self, bufs: &[&[u8]]) -> Result<usize, ConnError> {
        if self.is_ring() {
            return self.send_vectored_ring(bufs).await;
        }
        let mut queued = 0;
        if !self.out.is_empty() {
            queued = poll_fn(|cx| self.poll_flush_queue(cx, false)).await?;
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut done = 0;
        poll_fn(|cx| {
            while done < total {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let n = fill_iov_from(bufs, done, &mut iov);
                match self.poll_send_step(cx, &iov[..n]) {
                    Poll::Ready(Ok(sent)) => done += sent,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            Poll::Ready(Ok(()))
        })
        .await?;
        self.complete_send();
        Ok(queued + total)
    }

    /// Sends a received chunk back out without copying it (after anything queued).
    ///
    /// # Errors
    /// As for [`send`](Connection::send).
    pub async fn send_chunk(&mut self, chunk: Chunk) -> Result<usize, ConnError> {
        // Not `push(chunk).await`: a nested `async fn` would store the chunk twice in the
        // handler's future, which every idle connection carries.
        self.make_room(chunk.len()).await?;
        self.out.push_chunk(chunk);
        self.flush().await
    }

    /// Queues a received chunk for sending, without copying it. Waits (sending what is
    /// queued) if the queue is full.
    ///
    /// # Errors
    /// As for [`send`](Connection::send), from the flush a full queue needs.
    pub async fn push(&mut self, chunk: Chunk) -> Result<(), ConnError> {
        self.make_room(chunk.len()).await?;
        self.out.push_chunk(chunk);
        Ok(())
    }

    /// Waits (sending what is queued) until the send queue has a free slot and room for `len`
    /// more bytes within `max_pending_send`.
    async fn make_room(&mut self, len: usize) -> Result<(), ConnError> {
        if self.out.slots_full() || self.out.bytes() + len > self.core.max_pending_send {
            poll_fn(|cx| self.poll_flush_queue(cx, true)).await?;
        }
        Ok(())
    }

    /// Copies `data` into the send queue (pool slabs) and returns once all of it is queued.
    /// When the queue is at its bound this first sends what is queued, so it waits for a
    /// peer that is not reading. Call [`flush`](Connection::flush) to send.
    ///
    /// # Errors
    /// As for [`send`](Connection::send).
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), ConnError> {
        while !data.is_empty() {
            let n = poll_fn(|cx| self.poll_queue_write(cx, data)).await?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Sends everything queued; returns the bytes handed to the kernel.
    ///
    /// With the glommio backend this returns when the kernel has taken every byte. With the
    /// io_uring backend it returns once every byte is sent or in the one send in flight on the
    /// shard's ring — the kernel tries that send at once, waiting for writability only when the
    /// socket buffer is full; its completion is counted by the driver, and a failure is
    /// reported by this connection's next operation. [`wait_sent`](Connection::wait_sent)
    /// waits for the completion itself.
    ///
    /// # Errors
    /// As for [`send`](Connection::send).
    pub async fn flush(&mut self) -> Result<usize, ConnError> {
        poll_fn(|cx| self.poll_flush_queue(cx, false)).await
    }

    /// Flushes and waits until the kernel has taken every queued byte.
    ///
    /// # Errors
    /// As for [`send`](Connection::send).
    pub async fn wait_sent(&mut self) -> Result<(), ConnError> {
        if self.is_ring() {
            poll_fn(|cx| self.poll_sent_ring(cx)).await
        } else {
            self.flush().await.map(|_| ())
        }
    }

    /// Shuts down the write side now: the peer sees end of stream after the bytes the kernel
    /// already took. Flush first; bytes still queued are not sent by this call.
    ///
    /// # Errors
    /// The `shutdown` error (`NotConnected` when the peer is already gone).
    pub fn shutdown_write(&mut self) -> std::io::Result<()> {
        socket::shutdown_write(self.fd)
    }

    /// Bytes the kernel has accepted for this socket but the peer has not acknowledged yet.
    ///
    /// # Errors
    /// The `ioctl` error.
    pub fn unacked_bytes(&self) -> std::io::Result<usize> {
        socket::unsent_bytes(self.fd)
    }

    /// Flushes, shuts down the write side (the peer sees end of stream after every byte),
    /// then reads and discards what the peer still sends until it closes — at most `linger`
    /// long — so that closing does not reset the connection under the peer's last reads.
    ///
    /// # Errors
    /// The flush's error; errors after the flush are ignored (the connection is ending).
    pub async fn close(mut self, linger: Duration) -> Result<(), ConnError> {
        self.wait_sent().await?;
        let _ = socket::shutdown_write(self.fd);
        if self.rx_eof {
            return Ok(());
        }
        let deadline = Instant::now() + linger;
        self.set_recv_timeout(Some(linger));
        while Instant::now() < deadline {
            match self.recv().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        Ok(())
    }

    /// Copies some of `data` into the queue; returns how much (at least 1 unless `data` is
    /// empty), or waits when the queue is at its bound or the pool is empty.
    fn poll_queue_write(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<Result<usize, ConnError>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if let Err(e) = self.check(slots::SEND_TIMED_OUT) {
            self.core.pool.cancel(&mut self.pool_wait);
            return Poll::Ready(Err(e));
        }
        let limit = self.core.max_pending_send;
        if self.out.bytes() >= limit || (self.out.tail_spare() == 0 && self.out.slots_full()) {
            // At the bound: make room by sending (waits for a peer that is not reading).
            match self.poll_flush_queue(cx, true) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let room = limit - self.out.bytes().min(limit);
        let data = &data[..data.len().min(room.max(1))];
        let mut n = self.out.append_to_tail(data);
        if n < data.len() && !self.out.slots_full() {
            let core = &*self.core;
            match core.pool.poll_take(cx, &mut self.pool_wait) {
                Poll::Ready(slab) => {
                    self.out.push_slab(slab);
                    n += self.out.append_to_tail(&data[n..]);
                }
                Poll::Pending if n == 0 => {
                    let slot = core.slots.get(self.slot);
                    slot.begin_wait(Wait::SendPool, || core.tick());
                    slot.register(cx.waker());
                    return Poll::Pending;
                }
                Poll::Pending => {
                    // Some bytes went in; report them and come back for the slab.
                    self.core.pool.cancel(&mut self.pool_wait);
                }
            }
        }
        Poll::Ready(Ok(n))
    }

    /// Sends what is queued. With `partial`, returns as soon as some bytes went out (to make
    /// room); otherwise only when the queue is empty. Returns bytes sent.
    fn poll_flush_queue(
        &mut self,
        cx: &mut Context<'_>,
        partial: bool,
    ) -> Poll<Result<usize, ConnError>> {
        if self.is_ring() {
            return self.poll_flush_ring(cx, partial);
        }
        if self.out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut sent = 0;
        while !self.out.is_empty() {
            let step = {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let n = self.out.fill_iov(&mut iov);
                if n == 0 {
                    // Only an empty tail slab is left.
                    self.out.clear();
                    break;
                }
                // `poll_send_step` needs `&mut self` beside the borrowed queue: split it.
                let stream = match &mut self.backend {
                    Backend::Glommio(s) => s.as_deref_mut(),
                    Backend::Ring => None,
                };
                let (stream, core, slot_ix, fell_back) =
                    (stream, &self.core, self.slot, &mut self.tx_fell_back);
                send_step(stream, core, slot_ix, fell_back, cx, &iov[..n])
            };
            match step {
                Poll::Ready(Ok(n)) => {
                    self.out.consume(n);
                    sent += n;
                    if partial && n > 0 {
                        break;
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.fail(e))),
                Poll::Pending if sent > 0 && partial => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.out.is_empty() || !partial {
            self.complete_send();
        }
        Poll::Ready(Ok(sent))
    }

    /// One sync-first send attempt of `iov`; see [`send_step`].
    fn poll_send_step(
        &mut self,
        cx: &mut Context<'_>,
        iov: &[IoSlice<'_>],
    ) -> Poll<Result<usize, ConnError>> {
        let stream = match &mut self.backend {
            Backend::Glommio(s) => s.as_deref_mut(),
            Backend::Ring => None,
        };
        let r = send_step(
            stream,
            &self.core,
            self.slot,
            &mut self.tx_fell_back,
            cx,
            iov,
        );
        match r {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.fail(e))),
            other => other,
        }
    }

    /// Counts one completed send and records the service latency.
    fn complete_send(&mut self) {
        let core = &*self.core;
        let c = &core.counters;
        Counters::inc(&c.sends);
        if std::mem::take(&mut self.tx_fell_back) {
            Counters::inc(&c.sends_async);
        } else {
            Counters::inc(&c.sends_sync);
        }
        if let Some(t) = self.unanswered_since.take() {
            core.record_latency(t.elapsed());
        }
    }
}

/// One send attempt: a non-blocking vectored `sendmsg`, or — when the socket buffer is full —
/// a wait for writability on the reactor (glommio retries one plain send of the first slice
/// when it polls). Returns the bytes the kernel took (the caller advances and calls again).
fn send_step(
    stream: Option<&mut Stream>,
    core: &ShardCore,
    slot_ix: u32,
    fell_back: &mut bool,
    cx: &mut Context<'_>,
    iov: &[IoSlice<'_>],
) -> Poll<Result<usize, ConnError>> {
    let Some(stream) = stream else {
        return Poll::Ready(Err(ConnError::Io(std::io::ErrorKind::NotConnected.into())));
    };
    let slot = core.slots.get(slot_ix);
    let flags = slot.flags();
    if flags & slots::FORCE != 0 {
        return Poll::Ready(Err(ConnError::Shutdown));
    }
    if flags & slots::SEND_TIMED_OUT != 0 {
        return Poll::Ready(Err(ConnError::TimedOut));
    }
    let total: usize = iov.iter().map(|b| b.len()).sum();
    match socket::send_vectored(stream.fd(), iov) {
        Ok(n) => {
            if n < total {
                *fell_back = true;
            }
            slot.end_wait();
            Counters::add(&core.counters.bytes_sent, n as u64);
            return Poll::Ready(Ok(n));
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => *fell_back = true,
        Err(e) => return Poll::Ready(Err(ConnError::from_io(e))),
    }
    match stream.poll_write(cx, &iov[0]) {
        Poll::Ready(Ok(n)) => {
            slot.end_wait();
            Counters::add(&core.counters.bytes_sent, n as u64);
            Poll::Ready(Ok(n))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(ConnError::from_io(e))),
        Poll::Pending => {
            slot.begin_wait(Wait::Send, || core.tick());
            slot.register(cx.waker());
            Poll::Pending
        }
    }
}

impl Connection {
    /// Closing a socket with unread input makes the kernel send a reset, which can destroy the
    /// last replies still on their way to the peer. Unless the peer already finished sending
    /// (EOF), or the connection is dead or timed out, it is closed gracefully: FIN after the
    /// queued bytes, then read and discard until the peer closes (bounded by `linger`).
    fn should_linger(&self) -> bool {
        let slot = self.slot();
        !self.rx_eof
            && self.core.linger > Duration::ZERO
            && slot.flags() & slots::FORCE == 0
            && !matches!(
                slot.reason(),
                Some(CloseReason::Reset | CloseReason::TimedOut)
            )
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.core.pool.cancel(&mut self.pool_wait);
        let dropped = self.out.clear();
        if dropped > 0 {
            log::debug!(
                "connection {}: dropped with {dropped} unsent bytes",
                self.id
            );
        }
        self.rx_pending = None;
        if self.is_ring() {
            self.drop_ring();
            return;
        }
        if self.should_linger() {
            if let Backend::Glommio(s) = &mut self.backend {
                if let Some(stream) = s.take() {
                    linger::spawn(self.core.clone(), *stream, self.core.linger);
                }
            }
        }
        self.core.release_slot(self.slot);
    }
}
