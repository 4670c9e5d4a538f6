//! The connection side of the io_uring backend: take received chunks from the driver, hand
//! queued sends to it, and give the socket back to it when the connection is dropped.
//!
//! The driver owns the socket and everything the kernel may still touch (see
//! `driver::io_slot`); a `Connection` only moves chunks out of, and send queues into, its
//! entry in the driver's table.

use super::{ConnError, Connection};
use crate::conn::{Chunk, CloseReason};
use crate::driver::Recv;
use crate::slots::{self, Wait};
use crate::sys::socket;
use std::future::poll_fn;
use std::io;
use std::task::{Context, Poll};

fn not_connected() -> ConnError {
    ConnError::Io(io::ErrorKind::NotConnected.into())
}

impl Connection {
    /// The next received chunk, or a wait for one.
    pub(super) fn poll_recv_ring(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Chunk>, ConnError>> {
        let core = &*self.core;
        let Some(d) = core.driver() else {
            return Poll::Ready(Err(not_connected()));
        };
        let io = d.io(self.slot);
        let slot = core.slots.get(self.slot);
        if let Some(item) = io.pop_rx() {
            slot.end_wait();
            d.arm_recv(self.slot); // room again: keep one receive in flight
            if self.unanswered_since.is_none() {
                self.unanswered_since = Some(item.at);
            }
            return Poll::Ready(Ok(Some(item.into_chunk(self.id))));
        }
        match io.recv.get() {
            Recv::Done(0) => {
                slot.end_wait();
                self.rx_eof = true;
                slot.set_reason(CloseReason::PeerClosed);
                return Poll::Ready(Ok(None));
            }
            Recv::Done(errno) => {
                slot.end_wait();
                let e = ConnError::from_io(io::Error::from_raw_os_error(-errno));
                return Poll::Ready(Err(self.fail(e)));
            }
            _ => {}
        }
        if slot.flags() & slots::DRAIN != 0
            && !d.has_completions()
            && socket::readable_bytes(self.fd).unwrap_or(0) == 0
        {
            // Draining and nothing more has arrived: do not wait for new data.
            slot.end_wait();
            return Poll::Ready(Err(self.fail(ConnError::Shutdown)));
        }
        let wait = if io.recv.get() == Recv::Starved {
            Wait::RecvPool
        } else {
            Wait::Recv
        };
        slot.begin_wait(wait, core.tick());
        slot.register(cx.waker());
        d.arm_recv(self.slot);
        Poll::Pending
    }

    /// `recv_into` for the ring: the kernel picked a slab for the new bytes; copy them into
    /// the room of the chunk the caller holds (what does not fit waits for the next read).
    pub(super) async fn recv_into_ring(&mut self, chunk: &mut Chunk) -> Result<usize, ConnError> {
        if chunk.spare_capacity() == 0 {
            chunk.compact();
        }
        if chunk.spare_capacity() == 0 {
            return Err(ConnError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recv_into: the chunk's slab is full",
            )));
        }
        let Some(mut next) = self.recv().await? else {
            return Ok(0);
        };
        let n = chunk.extend_from_slice(&next);
        chunk.restamp(next.seq(), next.received_at());
        if n < next.len() {
            next.advance(n);
            self.rx_pending = Some(next);
        }
        Ok(n)
    }

    /// `send_vectored` for the ring: one non-blocking `sendmsg` straight from the caller's
    /// buffers when nothing else is queued or in flight (sync-first); whatever it did not take
    /// is copied into the send queue and handed to the driver.
    pub(super) async fn send_vectored_ring(&mut self, bufs: &[&[u8]]) -> Result<usize, ConnError> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut skip = 0;
        let idle = self.out.is_empty()
            && !self.tx_started
            && self
                .core
                .driver()
                .is_some_and(|d| !d.io(self.slot).tx_busy.get());
        if idle && total > 0 {
            self.check(slots::SEND_TIMED_OUT)?;
            let mut iov = [std::io::IoSlice::new(&[]); super::send::MAX_IOV];
            let n = super::send::fill_iov_from(bufs, 0, &mut iov);
            match socket::send_vectored(self.fd, &iov[..n]) {
                Ok(sent) => {
                    crate::stats::Counters::add(&self.core.counters.bytes_sent, sent as u64);
                    skip = sent;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(self.fail(ConnError::from_io(e))),
            }
            if skip == total {
                self.complete_send();
                return Ok(total);
            }
            self.tx_fell_back = true;
        }
        for b in bufs {
            if skip >= b.len() {
                skip -= b.len();
                continue;
            }
            self.write(&b[skip..]).await?;
            skip = 0;
        }
        poll_fn(|cx| self.poll_flush_ring(cx, false)).await?;
        Ok(total)
    }

    /// Hands the queue to the driver and waits for it to be sent (or, with `partial`, only
    /// until the queue has room again). Returns the bytes this flush handed over.
    pub(super) fn poll_flush_ring(
        &mut self,
        cx: &mut Context<'_>,
        partial: bool,
    ) -> Poll<Result<usize, ConnError>> {
        let core = &*self.core;
        let Some(d) = core.driver() else {
            return Poll::Ready(Err(not_connected()));
        };
        let io = d.io(self.slot);
        let slot = core.slots.get(self.slot);
        loop {
            let flags = slot.flags();
            if flags & slots::FORCE != 0 {
                return Poll::Ready(Err(self.fail(ConnError::Shutdown)));
            }
            if flags & slots::SEND_TIMED_OUT != 0 {
                return Poll::Ready(Err(self.fail(ConnError::TimedOut)));
            }
            if io.tx_busy.get() {
                if partial && self.out.is_empty() {
                    return Poll::Ready(Ok(0)); // room made: the queue moved to the driver
                }
                slot.begin_wait(Wait::Send, core.tick());
                slot.register(cx.waker());
                return Poll::Pending;
            }
            let errno = io.tx_error.replace(0);
            if std::mem::take(&mut self.tx_started) && !io.tx_sync.get() {
                self.tx_fell_back = true;
            }
            if errno != 0 {
                slot.end_wait();
                self.flush_bytes = 0;
                let e = ConnError::from_io(io::Error::from_raw_os_error(-errno));
                return Poll::Ready(Err(self.fail(e)));
            }
            if self.out.is_empty() {
                slot.end_wait();
                let sent = std::mem::take(&mut self.flush_bytes);
                if sent > 0 {
                    self.complete_send();
                }
                return Poll::Ready(Ok(sent));
            }
            // Hand the queue over: the driver keeps the slabs until the kernel is done.
            let moved = {
                let mut tx = io.tx.borrow_mut();
                std::mem::swap(&mut self.out, &mut *tx);
                tx.bytes()
            };
            self.flush_bytes += moved;
            self.tx_started = true;
            d.start_send(self.slot);
            if partial {
                return Poll::Ready(Ok(moved));
            }
        }
    }

    /// Gives the socket back to the driver: it closes it when nothing is in flight any more,
    /// after a lingering close if the peer may still be sending.
    pub(super) fn drop_ring(&mut self) {
        let linger = self.should_linger().then_some(self.core.linger);
        if linger.is_some() {
            crate::stats::Counters::inc(&self.core.counters.lingering_closes);
        }
        if let Some(d) = self.core.driver() {
            if d.orphan(self.slot, linger) {
                self.core.release_slot(self.slot); // the driver's share: nothing in flight
            }
        }
        self.core.release_slot(self.slot);
    }
}
