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
            if io.unanswered.get().is_none() {
                io.unanswered.set(Some(item.at));
            }
            return Poll::Ready(Ok(Some(item.into_chunk(self.id))));
        }
        let errno = io.tx_error.get();
        if errno != 0 {
            // A send failed (reset, broken pipe): the connection is over.
            io.tx_error.set(0);
            let e = ConnError::from_io(io::Error::from_raw_os_error(-errno));
            return Poll::Ready(Err(self.fail(e)));
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
        slot.begin_wait(wait, || core.tick());
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
                let c = &self.core.counters;
                crate::stats::Counters::inc(&c.sends);
                crate::stats::Counters::inc(&c.sends_sync);
                if let Some(d) = self.core.driver() {
                    if let Some(t) = d.io(self.slot).unanswered.take() {
                        self.core.record_latency(t.elapsed());
                    }
                }
                return Ok(total);
            }
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

    /// Starts the next send when none is in flight. Returns the bytes handed to the kernel by
    /// this flush. Resolves once everything queued is sent or in flight (the kernel has it;
    /// its completion is counted by the driver and a failure is reported by the connection's
    /// next operation); with `partial`, as soon as the queue has room again.
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
            let errno = io.tx_error.replace(0);
            if errno != 0 {
                slot.end_wait();
                self.flush_bytes = 0;
                let e = ConnError::from_io(io::Error::from_raw_os_error(-errno));
                return Poll::Ready(Err(self.fail(e)));
            }
            let room = self.out.bytes() < core.max_pending_send && !self.out.slots_full();
            if io.tx_busy.get() {
                // One send is in flight; what is queued behind it waits for its completion.
                if self.out.is_empty() || (partial && room) {
                    slot.end_wait();
                    return Poll::Ready(Ok(std::mem::take(&mut self.flush_bytes)));
                }
                io.tx_waiter.set(true);
                slot.begin_wait(Wait::Send, || core.tick());
                slot.register(cx.waker());
                return Poll::Pending;
            }
            slot.end_wait();
            let Some((slab, ptr, len)) = self.out.take_front() else {
                self.out.clear();
                return Poll::Ready(Ok(std::mem::take(&mut self.flush_bytes)));
            };
            // The driver owns the slab until the send completes, even if we are dropped.
            *io.tx_hold.borrow_mut() = Some(slab);
            // SAFETY: `ptr..ptr+len` lies in the slab now held by `tx_hold`, which the driver
            // drops only when this send's completion is handled; nobody writes to it meanwhile
            // (the slab left our queue, so no `write` appends to it).
            unsafe { d.start_send(self.slot, ptr, len) };
            self.flush_bytes += len;
        }
    }

    /// Waits until nothing is queued or in flight.
    pub(super) fn poll_sent_ring(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        match self.poll_flush_ring(cx, false) {
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        let Some(d) = self.core.driver() else {
            return Poll::Ready(Ok(()));
        };
        let io = d.io(self.slot);
        if !io.tx_busy.get() {
            return Poll::Ready(Ok(()));
        }
        io.tx_waiter.set(true);
        let slot = self.core.slots.get(self.slot);
        slot.begin_wait(Wait::Send, || self.core.tick());
        slot.register(cx.waker());
        Poll::Pending
    }

    /// Gives the socket back to the driver: it closes it when nothing is in flight any more,
    /// after a lingering close if the peer may still be sending.
    pub(super) fn drop_ring(&mut self) {
        self.out.clear(); // unsent bytes are dropped; the one in flight is the driver's
        let linger = self.should_linger().then_some(self.core.linger);
        if linger.is_some() {
            crate::stats::Counters::inc(&self.core.counters.lingering_closes);
            self.core.kick_sweeper(); // it ends lingering closes on time
        }
        if let Some(d) = self.core.driver() {
            if d.orphan(self.slot, linger) {
                self.core.release_slot(self.slot); // the driver's share: nothing in flight
            }
        }
        self.core.release_slot(self.slot);
    }
}
