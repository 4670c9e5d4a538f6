//! One connection's I/O state on the shard's ring, owned by the driver.
//!
//! The kernel may read and write a connection's buffers until their completions are reaped,
//! even after the handler dropped the [`Connection`](crate::Connection). So everything an
//! operation in flight touches lives here, in the driver's fixed table (one entry per
//! connection slot, allocated at start), not in the `Connection`: received chunks waiting for
//! the handler, the slabs of the send in flight, the counts of operations in flight.

use crate::conn::send::OutQueue;
use crate::conn::{Chunk, ConnId};
use crate::pool::Slab;
use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::time::Instant;

/// Received chunks a connection may have waiting for its handler (plus one receive in flight).
pub(crate) const RX_QUEUE: usize = 2;

/// Where the receive side of a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recv {
    /// No receive in flight (the queue is full, or nothing was armed yet).
    Idle,
    /// A receive with buffer selection is armed.
    InFlight,
    /// The pool had no buffer for the kernel (`ENOBUFS`): waiting to be re-armed.
    Starved,
    /// The stream ended: 0 for end of stream, or a negative errno.
    Done(i32),
}

/// One received chunk waiting for its handler.
#[derive(Debug)]
pub(crate) struct RxItem {
    pub(crate) slab: Slab,
    pub(crate) len: u32,
    pub(crate) seq: u64,
    pub(crate) at: Instant,
}

/// A connection's entry in the driver table.
#[derive(Debug)]
pub(crate) struct IoSlot {
    /// Bumped every time the entry is reused; part of every operation's user data, so a late
    /// completion can never be mistaken for the next connection's.
    pub(crate) gen: Cell<u32>,
    pub(crate) fd: Cell<RawFd>,
    pub(crate) id: Cell<ConnId>,
    rx: RefCell<[Option<RxItem>; RX_QUEUE]>,
    rx_len: Cell<usize>,
    pub(crate) recv: Cell<Recv>,
    /// Slabs of the send in flight (moved out of the connection's queue when it started).
    pub(crate) tx: RefCell<OutQueue>,
    pub(crate) tx_busy: Cell<bool>,
    /// The failed send's result (a negative errno), for the connection to report.
    pub(crate) tx_error: Cell<i32>,
    /// The last send finished within the enter that submitted it (no wait for writability).
    pub(crate) tx_sync: Cell<bool>,
    pub(crate) tx_epoch: Cell<u64>,
    /// Operations in flight on the ring.
    pub(crate) ops: Cell<u16>,
    /// The connection is gone: close the socket once nothing is in flight.
    pub(crate) orphaned: Cell<bool>,
    /// Lingering close in progress: receive and discard until end of stream or this deadline.
    pub(crate) linger_until: Cell<Option<Instant>>,
    /// The socket was already closed (or handed back).
    pub(crate) closed: Cell<bool>,
    /// When the receive last ran out of buffers (for the pool-wait histogram).
    pub(crate) starved_at: Cell<Option<Instant>>,
}

impl IoSlot {
    pub(crate) fn new() -> IoSlot {
        IoSlot {
            gen: Cell::new(0),
            fd: Cell::new(-1),
            id: Cell::new(ConnId { shard: 0, local: 0 }),
            rx: RefCell::new([None, None]),
            rx_len: Cell::new(0),
            recv: Cell::new(Recv::Idle),
            tx: RefCell::new(OutQueue::default()),
            tx_busy: Cell::new(false),
            tx_error: Cell::new(0),
            tx_sync: Cell::new(false),
            tx_epoch: Cell::new(0),
            ops: Cell::new(0),
            orphaned: Cell::new(false),
            linger_until: Cell::new(None),
            closed: Cell::new(true),
            starved_at: Cell::new(None),
        }
    }

    /// Prepares the entry for a new connection on `fd`.
    pub(crate) fn open(&self, fd: RawFd, id: ConnId) {
        self.gen.set(self.gen.get().wrapping_add(1));
        self.fd.set(fd);
        self.id.set(id);
        self.rx_len.set(0);
        self.recv.set(Recv::Idle);
        self.tx_busy.set(false);
        self.tx_error.set(0);
        self.tx_sync.set(false);
        self.ops.set(0);
        self.orphaned.set(false);
        self.linger_until.set(None);
        self.closed.set(false);
        self.starved_at.set(None);
    }

    /// True when another receive may be armed (room in the queue, stream not ended).
    pub(crate) fn wants_recv(&self) -> bool {
        self.recv.get() == Recv::Idle && self.rx_len.get() < RX_QUEUE && !self.closed.get()
    }

    /// Queues a received chunk (the caller checked there is room).
    pub(crate) fn push_rx(&self, item: RxItem) {
        let mut q = self.rx.borrow_mut();
        let n = self.rx_len.get();
        debug_assert!(n < RX_QUEUE);
        q[n] = Some(item);
        self.rx_len.set(n + 1);
    }

    /// Takes the oldest received chunk.
    pub(crate) fn pop_rx(&self) -> Option<RxItem> {
        let n = self.rx_len.get();
        if n == 0 {
            return None;
        }
        let mut q = self.rx.borrow_mut();
        let first = q[0].take();
        q.rotate_left(1);
        self.rx_len.set(n - 1);
        first
    }

    /// Drops everything received and queued for sending (slabs back to the pool).
    pub(crate) fn clear_buffers(&self) {
        while self.pop_rx().is_some() {}
        if !self.tx_busy.get() {
            self.tx.borrow_mut().clear();
        }
    }
}

impl RxItem {
    /// The chunk the handler sees.
    pub(crate) fn into_chunk(self, conn: ConnId) -> Chunk {
        Chunk::new(self.slab, self.len as usize, self.seq, conn, self.at)
    }
}
