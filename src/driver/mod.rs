//! The shard driver: the shard's own io_uring ring and the task that runs it.
//!
//! With the io_uring backend every connection's receives, sends and the listener's accepts
//! run on one ring per shard (`sys::uring`), not through glommio's reactor:
//!
//! * **receives** are armed with buffer selection from the pool's provided-buffer ring, so a
//!   slab is taken only when data arrives (an idle connection holds none); at most one receive
//!   is in flight and [`RX_QUEUE`] chunks wait per connection, so a handler that stops reading
//!   stops the socket being read (TCP pushes back); when the pool has no buffer for the kernel
//!   the receive ends with `ENOBUFS` and the connection is re-armed, first come first served,
//!   when slabs come back;
//! * **sends** are queued on the ring with `MSG_WAITALL`: the kernel tries each at once,
//!   without blocking, when the ring is entered, and waits for writability only when the socket
//!   buffer is full;
//! * the **driver task** reaps completions in batches, stamps receives with the shard's
//!   sequence counter in completion order, wakes the connections' tasks, and submits what they
//!   queued — many operations per `io_uring_enter`.
//!
//! **Parking.** When there is nothing to do, the driver first yields once (so tasks woken by
//! other tasks run), then waits *in its own ring* for up to `driver_block`: a completion wakes
//! it with a single syscall, with no trip through glommio's reactor. If the wait times out it
//! parks through glommio (an eventfd the ring signals, read through glommio), so an idle shard
//! uses no CPU. While it waits in its ring, glommio's own timers and I/O (the shard's control
//! channel, the timeout sweeper, handlers' glommio timers) are served at most `driver_block`
//! late; under continuous load the driver hands the thread back to glommio's reactor at least
//! every [`GLOMMIO_TURN`].

mod io_slot;
mod ops;
mod task;

pub(crate) use io_slot::{IoSlot, Recv, RxItem};
pub(crate) use task::{eventfd_waiter, run};

use crate::pool::Pool;
use crate::sys::uring::{Completion, Uring};
use io_uring::{opcode, squeue, types};
use ops::{Op, UserData};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::task::Waker;
use std::time::{Duration, Instant};

/// The buffer group id of the pool's provided-buffer ring.
const BGID: u16 = 1;

/// Longest a busy driver keeps the thread before letting glommio's reactor run once.
pub(crate) const GLOMMIO_TURN: Duration = Duration::from_millis(5);

/// While spinning does not pay, one idle wait in this many spins anyway, to re-test.
const SPIN_PROBE: u32 = 32;

/// Bound of the spin score (how much history the spin decision remembers).
const SPIN_SCORE_MAX: i32 = 16;

/// Completions reaped per batch.
pub(crate) const BATCH: usize = 256;

/// Every shard's ring, shared by the server's shards so that each can poke the others
/// (`MSG_RING`): a duplicate of each ring's descriptor, set once when its driver starts.
///
/// The table owns the duplicates and closes them when the last shard lets go of it, so a
/// poke never targets a descriptor number that a stopped shard closed and something else
/// reused: a stopped shard's ring stays open (its memory, not the pool, which the driver
/// unregisters when it drops) until the whole server is gone, and a late poke lands there
/// unread.
pub(crate) type RingTable = std::sync::Arc<[std::sync::OnceLock<std::os::fd::OwnedFd>]>;

/// What the driver does with an accepted socket: the shard's accept hook.
pub(crate) type AcceptHook = Box<dyn Fn(RawFd)>;

/// The shard's ring and the per-connection state of everything in flight on it.
pub(crate) struct Driver {
    ring: RefCell<Uring>,
    io: Box<[IoSlot]>,
    pool: Pool,
    /// The driver task's waker, and whether it is parked (waiting for a kick or the eventfd).
    waker: RefCell<Option<Waker>>,
    parked: Cell<bool>,
    /// Bumped by everything that gives the driver work; an unchanged value over a yield round
    /// means the shard is quiet.
    activity: Cell<u64>,
    listener: Cell<RawFd>,
    tick_armed: Cell<bool>,
    turn_requested: Cell<bool>,
    accept_armed: Cell<bool>,
    accepting: Cell<bool>,
    on_accept: RefCell<Option<AcceptHook>>,
    /// Connections whose receive ended for lack of buffers, oldest first.
    starved: RefCell<VecDeque<u32>>,
    block: Duration,
    spin: Duration,
    /// Recent spin successes minus twice the failures, clamped: spin while it is not negative.
    spin_score: Cell<i32>,
    idle_waits: Cell<u32>,
    /// Idle waits that spun first.
    pub(crate) spins: Cell<u64>,
    last_glommio_turn: Cell<Instant>,
    /// Operations in flight that belong to no connection (accept, cancels).
    misc_ops: Cell<u32>,
    /// Receive completions handled (for the stats).
    pub(crate) recv_completions: Cell<u64>,
    /// Times the driver waited in its own ring, and parked through glommio.
    pub(crate) ring_waits: Cell<u64>,
    pub(crate) glommio_parks: Cell<u64>,
    scratch: RefCell<Vec<Completion>>,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("ring", &self.ring.borrow())
            .field("parked", &self.parked.get())
            .finish()
    }
}

impl Driver {
    /// Creates the ring, lends the pool's free slabs to it, and sizes the table for
    /// `connections` slots.
    ///
    /// # Errors
    /// The ring's setup error, or the pool's (more than 32768 slabs).
    pub(crate) fn new(
        pool: Pool,
        connections: usize,
        block: Duration,
        spin: Duration,
        defer_taskrun: bool,
    ) -> io::Result<Driver> {
        let entries = (connections.min(4096) as u32).next_power_of_two().max(256);
        let ring = Uring::new(entries, defer_taskrun)?;
        let (addr, len) = pool.attach_kernel_ring()?;
        // SAFETY: `addr` is the pool's descriptor ring, which the pool keeps mapped for as
        // long as the pool lives, and the pool outlives this ring (the driver holds it and
        // drops the ring first, see `Drop`); its buffers are pool slabs, which stay mapped.
        unsafe { ring.register_buf_ring(addr, len, BGID)? };
        Ok(Driver {
            ring: RefCell::new(ring),
            io: (0..connections).map(|_| IoSlot::new()).collect(),
            pool,
            waker: RefCell::new(None),
            parked: Cell::new(false),
            activity: Cell::new(0),
            listener: Cell::new(-1),
            tick_armed: Cell::new(false),
            turn_requested: Cell::new(false),
            accept_armed: Cell::new(false),
            accepting: Cell::new(false),
            on_accept: RefCell::new(None),
            starved: RefCell::new(VecDeque::with_capacity(connections)),
            block,
            spin,
            spin_score: Cell::new(0),
            idle_waits: Cell::new(0),
            spins: Cell::new(0),
            last_glommio_turn: Cell::new(Instant::now()),
            misc_ops: Cell::new(0),
            recv_completions: Cell::new(0),
            ring_waits: Cell::new(0),
            glommio_parks: Cell::new(0),
            scratch: RefCell::new(Vec::with_capacity(BATCH)),
        })
    }

    /// The I/O state of connection slot `slot`.
    #[inline]
    pub(crate) fn io(&self, slot: u32) -> &IoSlot {
        &self.io[slot as usize]
    }

    /// Wakes the driver if it is parked (something was queued for it).
    #[inline]
    pub(crate) fn kick(&self) {
        self.activity.set(self.activity.get().wrapping_add(1));
        if self.parked.get() {
            if let Some(w) = &*self.waker.borrow() {
                w.wake_by_ref();
            }
        }
    }

    /// Queues `entry` on the ring.
    ///
    /// # Safety
    /// As for [`Uring::push`]: what `entry` points to stays valid until its completion.
    unsafe fn push(&self, entry: squeue::Entry) {
        // SAFETY: forwarded from our caller.
        if let Err(e) = unsafe { self.ring.borrow_mut().push(&entry) } {
            // Only a dead ring fails to submit; the operations' owners see no completion and
            // time out. Nothing here can be recovered.
            log::error!("io_uring submit failed: {e}");
        }
        self.kick();
    }

    // ---- accept -------------------------------------------------------------------------

    /// Starts accepting on `listener`, handing every accepted socket to `hook`.
    pub(crate) fn start_accepting(&self, listener: RawFd, hook: AcceptHook) {
        self.listener.set(listener);
        *self.on_accept.borrow_mut() = Some(hook);
        self.accepting.set(true);
        self.arm_accept();
    }

    fn arm_accept(&self) {
        if !self.accepting.get() || self.accept_armed.get() {
            return;
        }
        let e = opcode::AcceptMulti::new(types::Fd(self.listener.get()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(UserData::misc(Op::Accept).0);
        self.accept_armed.set(true);
        self.misc_ops.set(self.misc_ops.get() + 1);
        // SAFETY: accept takes no buffers from us.
        unsafe { self.push(e) };
    }

    /// Stops accepting: cancels the armed accept and drops the hook (which holds the shard's
    /// context). The listener is closed by its owner.
    pub(crate) fn stop_accepting(&self) {
        self.accepting.set(false);
        self.on_accept.borrow_mut().take();
        if self.accept_armed.get() {
            let e = opcode::AsyncCancel::new(UserData::misc(Op::Accept).0)
                .build()
                .user_data(UserData::misc(Op::Cancel).0);
            self.misc_ops.set(self.misc_ops.get() + 1);
            // SAFETY: a cancel references no memory.
            unsafe { self.push(e) };
        }
    }

    // ---- receive ------------------------------------------------------------------------

    /// Registers a new connection on `fd` in `slot` and arms its first receive.
    pub(crate) fn open(&self, slot: u32, fd: RawFd, id: crate::conn::ConnId) {
        self.io(slot).open(fd, id);
        self.arm_recv(slot);
    }

    /// Arms a receive with buffer selection if the connection wants one.
    pub(crate) fn arm_recv(&self, slot: u32) {
        let io = self.io(slot);
        if !io.wants_recv() {
            return;
        }
        let e = opcode::Recv::new(
            types::Fd(io.fd.get()),
            std::ptr::null_mut(),
            self.pool.slab_size() as u32,
        )
        .buf_group(BGID)
        .build()
        .flags(squeue::Flags::BUFFER_SELECT)
        .user_data(UserData::conn(Op::Recv, slot, io.gen.get()).0);
        io.recv.set(Recv::InFlight);
        io.ops.set(io.ops.get() + 1);
        // SAFETY: the kernel picks the buffer from the provided ring (pool slabs, which stay
        // mapped); the request references no other memory.
        unsafe { self.push(e) };
    }

    // ---- send ---------------------------------------------------------------------------

    /// Sends `len` bytes at `ptr` — the front of the connection's send queue — for `slot`.
    ///
    /// # Safety
    /// The bytes must stay valid and unchanged until the send completes: they are in the pool
    /// slab the caller just put in `tx_hold`, which the completion handler drops.
    pub(crate) unsafe fn start_send(&self, slot: u32, ptr: *const u8, len: usize) {
        let io = self.io(slot);
        let e = opcode::Send::new(types::Fd(io.fd.get()), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
            .build()
            .user_data(UserData::conn(Op::Send, slot, io.gen.get()).0);
        io.tx_busy.set(true);
        io.tx_len.set(len as u32);
        io.tx_epoch.set(self.ring.borrow().enters());
        io.ops.set(io.ops.get() + 1);
        // SAFETY: as our caller promised; the driver table outlives the ring.
        unsafe { self.push(e) };
    }

    // ---- close --------------------------------------------------------------------------

    /// The connection in `slot` was dropped. Cancels what is in flight (unless it lingers),
    /// and closes the socket once nothing is; returns `true` when the slot is already done.
    pub(crate) fn orphan(&self, slot: u32, linger: Option<Duration>) -> bool {
        let io = self.io(slot);
        io.orphaned.set(true);
        while io.pop_rx().is_some() {}
        match linger {
            Some(d) if !matches!(io.recv.get(), Recv::Done(_)) => {
                // FIN after every byte (after the send in flight, if there is one); then
                // discard what the peer still sends.
                if io.tx_busy.get() {
                    io.fin_after_send.set(true);
                } else {
                    // SAFETY: plain shutdown on the connection's open socket.
                    unsafe { libc::shutdown(io.fd.get(), libc::SHUT_WR) };
                }
                io.linger_until.set(Some(Instant::now() + d));
                if io.recv.get() == Recv::Starved {
                    io.recv.set(Recv::Idle);
                }
                self.arm_recv(slot);
            }
            _ => self.cancel_all(slot),
        }
        self.try_close(slot)
    }

    /// Ends a lingering close whose time is up (called by the timeout sweeper).
    pub(crate) fn end_linger_if_due(&self, slot: u32, now: Instant) {
        let io = self.io(slot);
        if let Some(t) = io.linger_until.get() {
            if now >= t && io.ops.get() > 0 {
                io.linger_until.set(None);
                self.cancel_all(slot);
            }
        }
    }

    /// Cancels every operation in flight on the slot's socket.
    pub(crate) fn cancel_all(&self, slot: u32) {
        let io = self.io(slot);
        if io.ops.get() == 0 || io.closed.get() {
            return;
        }
        let e = opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(io.fd.get())).all())
            .build()
            .user_data(UserData::misc(Op::Cancel).0);
        self.misc_ops.set(self.misc_ops.get() + 1);
        // SAFETY: a cancel references no memory.
        unsafe { self.push(e) };
    }

    /// Closes an orphaned connection's socket once nothing is in flight. Returns whether it is
    /// closed.
    fn try_close(&self, slot: u32) -> bool {
        let io = self.io(slot);
        if io.closed.get() {
            return true;
        }
        if !io.orphaned.get() || io.ops.get() > 0 {
            return false;
        }
        io.clear_buffers();
        io.closed.set(true);
        io.linger_until.set(None);
        // SAFETY: the socket is ours and nothing on the ring uses it any more.
        unsafe { libc::close(io.fd.get()) };
        io.fd.set(-1);
        true
    }

    /// Closes the socket of an orphaned connection once nothing is in flight; returns whether
    /// the slot is finished (closed, or never open).
    pub(crate) fn close_if_idle(&self, slot: u32) -> bool {
        self.try_close(slot)
    }

    // ---- completions --------------------------------------------------------------------

    /// Copies the next batch of completions into the scratch buffer; returns how many.
    pub(crate) fn reap_batch(&self) -> usize {
        let mut batch = self.scratch.borrow_mut();
        if batch.len() < BATCH {
            batch.resize(
                BATCH,
                Completion {
                    user_data: 0,
                    result: 0,
                    flags: 0,
                },
            );
        }
        self.ring.borrow_mut().reap(&mut batch)
    }

    /// Completion `i` of the last batch.
    pub(crate) fn batch_item(&self, i: usize) -> Completion {
        self.scratch.borrow()[i]
    }

    /// A receive completion's slab, handed back by the kernel.
    pub(crate) fn take_buffer(&self, c: &Completion) -> Option<crate::pool::Slab> {
        c.buffer().and_then(|bid| self.pool.take_from_kernel(bid))
    }

    /// Notes that the armed multishot accept ended (it must be re-armed).
    pub(crate) fn accept_ended(&self) {
        self.accept_armed.set(false);
        self.misc_ops.set(self.misc_ops.get().saturating_sub(1));
    }

    /// The accept hook, if the shard is accepting.
    pub(crate) fn accept_hook(&self) -> std::cell::Ref<'_, Option<AcceptHook>> {
        self.on_accept.borrow()
    }

    /// Re-arms accepting (after a back-off, or when the multishot ended).
    pub(crate) fn resume_accepting(&self) {
        self.arm_accept();
    }

    /// A cancel completed.
    pub(crate) fn cancel_done(&self) {
        self.misc_ops.set(self.misc_ops.get().saturating_sub(1));
    }

    /// Re-arms starved receives while the kernel has buffers for them, oldest first.
    pub(crate) fn rearm_starved(&self) {
        loop {
            if self.pool.lent_to_kernel() == 0 {
                return;
            }
            let Some(slot) = self.starved.borrow_mut().pop_front() else {
                return;
            };
            let io = self.io(slot);
            if io.recv.get() == Recv::Starved && !io.closed.get() {
                io.recv.set(Recv::Idle);
                self.arm_recv(slot);
            }
        }
    }

    /// Queues a starved connection for re-arming (and counts a pool wait).
    pub(crate) fn starve(&self, slot: u32) {
        let io = self.io(slot);
        io.recv.set(Recv::Starved);
        if io.starved_at.get().is_none() {
            io.starved_at.set(Some(Instant::now()));
            self.pool.note_kernel_wait();
        }
        self.starved.borrow_mut().push_back(slot);
    }

    /// Ring enters so far.
    pub(crate) fn enters(&self) -> u64 {
        self.ring.borrow().enters()
    }

    // ---- waiting ------------------------------------------------------------------------

    /// Submits what is queued, without waiting, if there is anything to submit.
    pub(crate) fn submit(&self) {
        let mut ring = self.ring.borrow_mut();
        if ring.needs_enter() {
            if let Err(e) = ring.submit() {
                log::error!("io_uring_enter failed: {e}");
            }
        }
    }

    /// True when completions wait in the CQ.
    pub(crate) fn has_completions(&self) -> bool {
        self.ring.borrow_mut().has_completions()
    }

    /// Waits in the ring for a completion. The wait itself has no timeout (arming and
    /// cancelling a kernel timer on every wait costs about as much as a syscall on a VM);
    /// instead a multishot timeout ticks every `driver_block` while the driver is awake, so
    /// the wait ends by then at the latest.
    pub(crate) fn wait_in_ring(&self) {
        self.ring_waits.set(self.ring_waits.get() + 1);
        self.arm_tick();
        if let Err(e) = self.ring.borrow_mut().submit_and_wait_any() {
            log::error!("io_uring_enter (wait) failed: {e}");
        }
    }

    /// Starts the periodic tick (a multishot timeout of `driver_block`) if it is not running.
    fn arm_tick(&self) {
        if self.tick_armed.get() {
            return;
        }
        let ts = types::Timespec::from(self.block);
        let e = opcode::Timeout::new(&ts)
            .count(0)
            .flags(types::TimeoutFlags::MULTISHOT)
            .build()
            .user_data(UserData::misc(Op::Tick).0);
        self.tick_armed.set(true);
        // SAFETY: the kernel copies the timespec when the request is prepared, which happens
        // in `submit` below, while `ts` is alive.
        unsafe { self.push(e) };
        self.submit();
    }

    /// Stops the periodic tick (before parking through glommio: an idle shard has no timer).
    pub(crate) fn disarm_tick(&self) {
        if !self.tick_armed.get() {
            return;
        }
        let e = opcode::TimeoutRemove::new(UserData::misc(Op::Tick).0)
            .build()
            .user_data(UserData::misc(Op::Cancel).0);
        self.tick_armed.set(false);
        self.misc_ops.set(self.misc_ops.get() + 1);
        // SAFETY: a timeout removal references no memory.
        unsafe { self.push(e) };
    }

    /// A tick completion arrived; `more` is false when the multishot ended.
    pub(crate) fn ticked(&self, more: bool) {
        if !more {
            self.tick_armed.set(false);
        }
    }

    /// How long the driver may wait in its own ring.
    pub(crate) fn block(&self) -> Duration {
        self.block
    }

    /// Waits for work while idle: spins (no syscall) for up to the spin limit when recent
    /// spins usually found work — a sleep and a wake-up cost more than a short spin, and the
    /// answer goes out sooner — and otherwise, or when the spin finds nothing, waits in the
    /// ring. While spinning does not pay, one idle wait in [`SPIN_PROBE`] spins anyway to notice
    /// when it pays again. Returns whether the spin found work (`false` after a wait in the
    /// ring, which ends with work or with the periodic tick).
    pub(crate) fn idle_wait(&self) -> bool {
        let spin = self.spin;
        let score = self.spin_score.get();
        let probe = self.idle_waits.get() % SPIN_PROBE == 0;
        self.idle_waits.set(self.idle_waits.get().wrapping_add(1));
        if !spin.is_zero() && (score >= 0 || probe) {
            self.spins.set(self.spins.get() + 1);
            let start = Instant::now();
            let mut ring = self.ring.borrow_mut();
            loop {
                if ring.work_pending() {
                    self.spin_score.set((score + 1).min(SPIN_SCORE_MAX));
                    return true;
                }
                if start.elapsed() >= spin {
                    break;
                }
                std::hint::spin_loop();
            }
            self.spin_score.set((score - 2).max(-SPIN_SCORE_MAX));
        }
        self.wait_in_ring();
        false
    }

    /// The driver's activity counter (changes whenever it was given work).
    pub(crate) fn activity(&self) -> u64 {
        self.activity.get()
    }

    /// Stores the driver task's waker.
    pub(crate) fn set_waker(&self, w: &Waker) {
        let mut slot = self.waker.borrow_mut();
        match &*slot {
            Some(old) if old.will_wake(w) => {}
            _ => *slot = Some(w.clone()),
        }
    }

    /// True while the driver waits for a kick or its eventfd.
    pub(crate) fn is_parked(&self) -> bool {
        self.parked.get()
    }

    /// Wakes the driver task (from the eventfd waiter).
    pub(crate) fn wake_driver(&self) {
        if let Some(w) = &*self.waker.borrow() {
            w.wake_by_ref();
        }
    }

    /// Makes the outstanding glommio read of our eventfd complete (a turn of glommio's reactor
    /// that comes back to the driver).
    pub(crate) fn signal_eventfd(&self) {
        let one: u64 = 1;
        // SAFETY: an 8-byte write of a local to our eventfd.
        unsafe { libc::write(self.eventfd(), (&one as *const u64).cast(), 8) };
    }

    /// Marks the driver parked (a kick must wake it) or running.
    pub(crate) fn set_parked(&self, parked: bool) {
        self.parked.set(parked);
    }

    /// Arms or disarms the ring's eventfd notifications (on only while parked in glommio).
    pub(crate) fn set_notifications(&self, on: bool) {
        self.ring.borrow_mut().set_eventfd_notifications(on);
    }

    /// The ring's eventfd.
    pub(crate) fn eventfd(&self) -> RawFd {
        self.ring.borrow().eventfd()
    }

    /// When glommio's reactor last ran (the driver is polled after a park in glommio).
    pub(crate) fn last_glommio_turn(&self) -> Instant {
        self.last_glommio_turn.get()
    }

    /// Records that glommio's reactor just ran.
    pub(crate) fn glommio_turned(&self) {
        self.last_glommio_turn.set(Instant::now());
    }

    /// The pool the ring receives into.
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Connection slots in the table.
    pub(crate) fn slots(&self) -> usize {
        self.io.len()
    }

    /// Publishes a duplicate of this ring's descriptor as shard `id`'s, for the other
    /// shards' pokes.
    ///
    /// # Errors
    /// The `dup` error (no descriptor left).
    pub(crate) fn publish_ring_fd(&self, table: &RingTable, id: usize) -> io::Result<()> {
        let fd = self.ring.borrow().fd();
        // SAFETY: the ring's descriptor is open for as long as `self.ring` lives, and we only
        // borrow it here to duplicate it.
        let dup = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
        if let Some(slot) = table.get(id) {
            let _ = slot.set(dup);
        }
        Ok(())
    }

    /// Wakes shard `to`'s driver, even while it waits in its own ring: posts a completion into
    /// its ring (`IORING_OP_MSG_RING`). Sent with our next enter.
    pub(crate) fn poke(&self, table: &RingTable, to: usize) {
        let Some(fd) = table.get(to).and_then(|f| f.get()) else {
            return; // its driver has not started: it has not parked in its ring either
        };
        let e = opcode::MsgRingData::new(
            types::Fd(fd.as_raw_fd()),
            0,
            UserData::misc(Op::Poke).0,
            None,
        )
        .build()
        .user_data(UserData::misc(Op::Poked).0);
        // SAFETY: a message to another ring references no memory of ours.
        unsafe { self.push(e) };
    }

    /// Another shard poked us: glommio's reactor has a message to deliver.
    pub(crate) fn poked(&self) {
        self.turn_requested.set(true);
    }

    /// Whether a poke asked for a glommio turn (and clears it).
    pub(crate) fn take_turn_request(&self) -> bool {
        self.turn_requested.replace(false)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Unregister the provided buffers before the ring goes; the pool (and its region)
        // outlives this call because the driver holds it.
        let _ = self.ring.borrow().unregister_buf_ring(BGID);
    }
}
