//! The shard's connection table: one fixed slot per possible connection.
//!
//! The table is allocated once at start with `max_connections` slots (about 80 bytes each), so
//! accepting a connection allocates nothing here and a full table is how the connection limit
//! is enforced. A slot holds what the shard needs to act on a connection from outside its task:
//! what it is waiting for and since when (for the receive and send timeouts), the task's waker
//! (to wake it for a timeout or a shutdown), the flags the sweeper and the shutdown set, and
//! the close reason observed by the connection.
//!
//! A slot is held by two owners: the task that runs the handler and the [`Connection`] it was
//! given. It is freed, and the close reason counted, when both are gone.
//!
//! [`Connection`]: crate::Connection

use crate::conn::CloseReason;
use std::cell::{Cell, RefCell};
use std::task::Waker;

/// What a connection's task is blocked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not blocked in shardnet (running, or awaiting something of the handler's own).
    None,
    /// Waiting for data from the peer.
    Recv,
    /// Waiting for a free slab to receive into (counts against the receive timeout).
    RecvPool,
    /// Waiting for a free slab to queue a write into (counts against the send timeout).
    SendPool,
    /// Waiting for the peer to take sent data.
    Send,
}

/// Flag: the receive timeout fired.
pub(crate) const RECV_TIMED_OUT: u8 = 1;
/// Flag: the send timeout fired.
pub(crate) const SEND_TIMED_OUT: u8 = 2;
/// Flag: the shard is draining; receives must not wait for new data.
pub(crate) const DRAIN: u8 = 4;
/// Flag: the drain deadline passed; the connection must end now.
pub(crate) const FORCE: u8 = 8;

/// One connection's entry.
#[derive(Debug)]
pub(crate) struct Slot {
    refs: Cell<u8>,
    wait: Cell<Wait>,
    /// Sweeper tick at which the current wait began.
    since: Cell<u32>,
    /// Receive timeout in ticks (0: none).
    pub(crate) recv_ticks: Cell<u32>,
    /// Send timeout in ticks (0: none).
    pub(crate) send_ticks: Cell<u32>,
    flags: Cell<u8>,
    reason: Cell<Option<CloseReason>>,
    waker: RefCell<Option<Waker>>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            refs: Cell::new(0),
            wait: Cell::new(Wait::None),
            since: Cell::new(0),
            recv_ticks: Cell::new(0),
            send_ticks: Cell::new(0),
            flags: Cell::new(0),
            reason: Cell::new(None),
            waker: RefCell::new(None),
        }
    }

    /// Flags set on this connection.
    #[inline]
    pub(crate) fn flags(&self) -> u8 {
        self.flags.get()
    }

    /// Sets `flag`.
    pub(crate) fn set_flag(&self, flag: u8) {
        self.flags.set(self.flags.get() | flag);
    }

    /// Records the first close reason observed; later ones are ignored.
    pub(crate) fn set_reason(&self, reason: CloseReason) {
        if self.reason.get().is_none() {
            self.reason.set(Some(reason));
        }
    }

    /// The close reason observed so far.
    pub(crate) fn reason(&self) -> Option<CloseReason> {
        self.reason.get()
    }

    /// Marks the start of a wait at `tick` (keeps the original start while the wait goes on).
    #[inline]
    pub(crate) fn begin_wait(&self, wait: Wait, tick: impl FnOnce() -> u32) {
        if self.wait.get() != wait {
            self.wait.set(wait);
            self.since.set(tick());
        }
    }

    /// Marks the end of any wait.
    #[inline]
    pub(crate) fn end_wait(&self) {
        self.wait.set(Wait::None);
    }

    /// What the connection waits for, and since which tick.
    pub(crate) fn waiting(&self) -> (Wait, u32) {
        (self.wait.get(), self.since.get())
    }

    /// Stores the waker of the connection's task (a clone only when it changed).
    #[inline]
    pub(crate) fn register(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// Wakes the connection's task, if it has polled at least once.
    pub(crate) fn wake(&self) {
        if let Some(w) = &*self.waker.borrow() {
            w.wake_by_ref();
        }
    }
}

/// The fixed table of slots and the stack of free ones.
#[derive(Debug)]
pub(crate) struct Slots {
    slots: Box<[Slot]>,
    free: RefCell<Vec<u32>>,
}

impl Slots {
    /// Allocates `capacity` slots.
    pub(crate) fn new(capacity: usize) -> Slots {
        Slots {
            slots: (0..capacity).map(|_| Slot::new()).collect(),
            free: RefCell::new((0..capacity as u32).rev().collect()),
        }
    }

    /// Takes a free slot for a new connection with `owners` owners (the handler's task, the
    /// connection, and with the io_uring backend the driver), or `None` when the table is full.
    pub(crate) fn acquire(&self, owners: u8, recv_ticks: u32, send_ticks: u32) -> Option<u32> {
        let index = self.free.borrow_mut().pop()?;
        let s = &self.slots[index as usize];
        s.refs.set(owners);
        s.wait.set(Wait::None);
        s.since.set(0);
        s.recv_ticks.set(recv_ticks);
        s.send_ticks.set(send_ticks);
        s.flags.set(0);
        s.reason.set(None);
        Some(index)
    }

    /// Drops one owner; returns the close reason when this was the last one (slot freed).
    pub(crate) fn release(&self, index: u32) -> Option<Option<CloseReason>> {
        let s = &self.slots[index as usize];
        let refs = s.refs.get() - 1;
        s.refs.set(refs);
        if refs > 0 {
            return None;
        }
        s.waker.borrow_mut().take();
        s.wait.set(Wait::None);
        self.free.borrow_mut().push(index);
        Some(s.reason.take())
    }

    /// The slot at `index`.
    #[inline]
    pub(crate) fn get(&self, index: u32) -> &Slot {
        &self.slots[index as usize]
    }

    /// Calls `f` for every slot in use.
    pub(crate) fn for_each_live(&self, mut f: impl FnMut(&Slot)) {
        for s in self.slots.iter() {
            if s.refs.get() > 0 {
                f(s);
            }
        }
    }

    /// Calls `f` with the index of every slot in use.
    pub(crate) fn for_each_live_index(&self, mut f: impl FnMut(u32, &Slot)) {
        for (i, s) in self.slots.iter().enumerate() {
            if s.refs.get() > 0 {
                f(i as u32, s);
            }
        }
    }

    /// Slots in use.
    pub(crate) fn live(&self) -> usize {
        self.slots.len() - self.free.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_until_full_then_release() {
        let t = Slots::new(2);
        let a = t.acquire(2, 1, 2).unwrap();
        let b = t.acquire(2, 0, 0).unwrap();
        assert_ne!(a, b);
        assert!(t.acquire(2, 0, 0).is_none(), "table of 2 is full");
        assert_eq!(t.live(), 2);
        t.get(a).set_reason(CloseReason::TimedOut);
        t.get(a).set_reason(CloseReason::PeerClosed);
        assert_eq!(t.release(a), None, "one owner left");
        assert_eq!(
            t.release(a),
            Some(Some(CloseReason::TimedOut)),
            "first reason wins"
        );
        assert_eq!(t.live(), 1);
        let c = t.acquire(2, 0, 0).unwrap();
        assert_eq!(c, a, "freed slot is reused");
        assert_eq!(t.get(c).reason(), None);
        assert_eq!(t.get(c).flags(), 0);
    }

    #[test]
    fn wait_start_is_kept_across_repolls() {
        let t = Slots::new(1);
        let s = t.get(t.acquire(2, 0, 0).unwrap());
        s.begin_wait(Wait::Recv, || 3);
        s.begin_wait(Wait::Recv, || 7);
        assert_eq!(s.waiting(), (Wait::Recv, 3));
        s.end_wait();
        s.begin_wait(Wait::Recv, || 9);
        assert_eq!(s.waiting(), (Wait::Recv, 9));
    }
}
