//! The per-shard buffer pool: one contiguous region, fixed slabs, a free list and a wait queue.
//!
//! Each shard allocates its pool once, at start:
//!
//! ```text
//!  region (one mmap, populated; optionally huge pages, mlock)
//!  ┌──────────┬──────────┬──────────┬─────┬──────────┐
//!  │ slab 0   │ slab 1   │ slab 2   │ ... │ slab N-1 │   each `slab_size` bytes
//!  └──────────┴──────────┴──────────┴─────┴──────────┘
//!  free list: [N-1, ..., 2, 1, 0]  (a stack of indices; LIFO keeps caches warm)
//!  waiters:   FIFO of tasks waiting for a slab while the free list is empty
//! ```
//!
//! A [`Slab`] is the only handle to its bytes: it is created from the free list and goes back
//! to it when dropped, so each index is either free or owned by exactly one `Slab`. Taking and
//! releasing are O(1) and never allocate. When the free list is empty a receiver *waits* (the
//! shard stops reading that socket and TCP flow control pushes back on the client); it never
//! allocates and never fails. Slabs freed while tasks wait are handed to the waiters in the
//! order they started waiting: a freed slab is reserved for the first waiter, so a newcomer
//! cannot overtake it.
//!
//! Everything here is single-threaded (`Rc`, `Cell`): a pool and its slabs never leave the
//! shard that created them (`Slab` is `!Send`). All of shardnet's pointer arithmetic and its
//! `unsafe` memory code live in this module.

mod bufring;
mod region;
mod slab;

pub use region::RegionFlags;
pub use slab::Slab;

use crate::stats::new_latency_histogram;
use bufring::BufRing;
use hdrhistogram::Histogram;
use region::Region;
use std::cell::OnceCell;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Size and placement of one shard's pool.
///
/// Memory per shard is `slab_size × slabs`, committed at start. The defaults (16 KiB × 4096 =
/// 64 MiB per shard) suit a 2-core, 24 GiB machine serving thousands of connections: a receive
/// takes at most one slab, and an idle connection holds none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Bytes per slab: the largest single receive. At least 64.
    pub slab_size: usize,
    /// Slabs per shard. At least 1.
    pub slabs: usize,
    /// Try explicit huge pages (falls back to transparent huge pages, then ordinary pages).
    pub huge_pages: bool,
    /// Try to lock the region in RAM with `mlock` (falls back to unlocked memory).
    pub lock_memory: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            slab_size: 16 * 1024,
            slabs: 4096,
            huge_pages: false,
            lock_memory: false,
        }
    }
}

/// Why a [`PoolConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolConfigError {
    /// `slab_size` is below 64 bytes or above 16 MiB.
    SlabSize(usize),
    /// `slabs` is 0 or above `u32::MAX`.
    SlabCount(usize),
    /// `slab_size × slabs` overflows the address space.
    TooLarge,
}

impl fmt::Display for PoolConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolConfigError::SlabSize(n) => {
                write!(f, "slab size {n} is outside 64 bytes ..= 16 MiB")
            }
            PoolConfigError::SlabCount(n) => write!(f, "slab count {n} is outside 1 ..= 2^32-1"),
            PoolConfigError::TooLarge => write!(f, "slab size × slab count overflows"),
        }
    }
}

impl std::error::Error for PoolConfigError {}

impl PoolConfig {
    /// Checks the limits and returns the region length in bytes.
    ///
    /// # Errors
    /// [`PoolConfigError`] naming the offending field.
    pub fn validate(&self) -> Result<usize, PoolConfigError> {
        if !(64..=16 * 1024 * 1024).contains(&self.slab_size) {
            return Err(PoolConfigError::SlabSize(self.slab_size));
        }
        if self.slabs == 0 || self.slabs > u32::MAX as usize {
            return Err(PoolConfigError::SlabCount(self.slabs));
        }
        self.slab_size
            .checked_mul(self.slabs)
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or(PoolConfigError::TooLarge)
    }
}

/// A point-in-time copy of a pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Bytes per slab.
    pub slab_size: usize,
    /// Slabs in the pool.
    pub slabs_total: u64,
    /// Slabs held right now (by receives not yet released, queued sends, or the application).
    pub slabs_in_use: u64,
    /// Most slabs ever held at once.
    pub high_water: u64,
    /// Slabs handed out since start.
    pub takes: u64,
    /// Takes that found the pool empty and had to wait.
    pub waits: u64,
    /// Total time spent waiting, in nanoseconds.
    pub wait_ns: u64,
    /// What the region's best-effort options achieved.
    pub region: RegionFlags,
}

impl PoolStats {
    /// Adds another pool's counters to these (for merged, all-shard views).
    pub fn merge(&mut self, other: &PoolStats) {
        self.slab_size = self.slab_size.max(other.slab_size);
        self.slabs_total += other.slabs_total;
        self.slabs_in_use += other.slabs_in_use;
        self.high_water += other.high_water;
        self.takes += other.takes;
        self.waits += other.waits;
        self.wait_ns += other.wait_ns;
        self.region.huge_pages &= other.region.huge_pages;
        self.region.transparent_huge_pages &= other.region.transparent_huge_pages;
        self.region.locked &= other.region.locked;
    }
}

/// A shard's buffer pool. Cloning is cheap (a reference count); all clones share one region.
///
/// Owns: one region of `slab_size × slabs` bytes (see the module picture), a free list of
/// `slabs` indices and a waiter queue, all allocated in [`Pool::new`]. Nothing allocates after
/// that, except the waiter queue if more tasks wait at once than the capacity it was given.
#[derive(Clone)]
pub struct Pool {
    inner: Rc<Inner>,
}

struct Inner {
    region: Region,
    slab_size: usize,
    slabs: u32,
    /// Indices of free slabs (a stack).
    free: RefCell<Vec<u32>>,
    /// Free slabs set aside for waiters that were woken but have not taken them yet.
    reserved: Cell<u32>,
    /// Waiting tasks in arrival order; tickets strictly increase front to back.
    waiters: RefCell<VecDeque<Waiter>>,
    next_ticket: Cell<u64>,
    high_water: Cell<u32>,
    takes: Cell<u64>,
    waits: Cell<u64>,
    wait_ns: Cell<u64>,
    wait_histogram: RefCell<Histogram<u64>>,
    /// Free slabs lent to the kernel as provided buffers (io_uring backend only).
    kernel: OnceCell<BufRing>,
    /// How many free slabs the kernel should hold; the rest stay in `free` for writes.
    kernel_target: Cell<u32>,
}

struct Waiter {
    ticket: u64,
    waker: Waker,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("slab_size", &self.inner.slab_size)
            .field("slabs", &self.inner.slabs)
            .field("free", &self.inner.free.borrow().len())
            .field("waiters", &self.inner.waiters.borrow().len())
            .finish()
    }
}

/// The waiting state of one task, owned by that task (see [`Pool::poll_take`]).
///
/// Dropping a queued ticket without [`Pool::cancel`] leaves a stale queue entry that is
/// skipped later; always cancel (the [`Take`] future and connections do).
#[derive(Debug, Default)]
pub(crate) struct WaitTicket {
    queued: Option<(u64, Instant)>,
}

impl Pool {
    /// Allocates the region, populates it and fills the free list.
    ///
    /// `waiter_capacity` sizes the wait queue up front (typically the shard's connection
    /// limit, since each connection waits at most once at a time).
    ///
    /// # Errors
    /// `InvalidInput` for a configuration [`PoolConfig::validate`] refuses; the `mmap` error
    /// (`ENOMEM`) when the region cannot be mapped.
    pub fn new(config: &PoolConfig, waiter_capacity: usize) -> std::io::Result<Pool> {
        let len = config
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let region = Region::new(len, config.huge_pages, config.lock_memory)?;
        let slabs = config.slabs as u32;
        // Highest index at the bottom, so slab 0 is handed out first.
        let free: Vec<u32> = (0..slabs).rev().collect();
        Ok(Pool {
            inner: Rc::new(Inner {
                region,
                slab_size: config.slab_size,
                slabs,
                free: RefCell::new(free),
                reserved: Cell::new(0),
                waiters: RefCell::new(VecDeque::with_capacity(waiter_capacity)),
                next_ticket: Cell::new(0),
                high_water: Cell::new(0),
                takes: Cell::new(0),
                waits: Cell::new(0),
                wait_ns: Cell::new(0),
                wait_histogram: RefCell::new(new_latency_histogram()),
                kernel: OnceCell::new(),
                kernel_target: Cell::new(0),
            }),
        })
    }

    /// Lends free slabs to the kernel: maps a provided-buffer descriptor ring and fills it with
    /// all free slabs but a reserve (an eighth of the pool) kept for writes. Returns the
    /// descriptor ring's address and length, for registration with the shard's ring.
    ///
    /// # Errors
    /// `InvalidInput` above 32768 slabs or when already attached; the `mmap` error.
    pub(crate) fn attach_kernel_ring(&self) -> std::io::Result<(u64, u16)> {
        let inner = &self.inner;
        let ring = BufRing::new(inner.slabs)?;
        let (addr, len) = (ring.addr(), ring.len());
        inner.kernel.set(ring).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "already attached")
        })?;
        let reserve = (inner.slabs / 8).min(inner.slabs - 1);
        inner.kernel_target.set(inner.slabs - reserve);
        let k = inner.kernel.get().expect("just set");
        let mut free = inner.free.borrow_mut();
        while k.provided() < inner.kernel_target.get() {
            let Some(index) = free.pop() else { break };
            k.provide(index, inner.slab_ptr(index), inner.slab_size);
        }
        Ok((addr, len))
    }

    /// Turns slab `index`, which the kernel just filled (a receive completion named it), back
    /// into a handle. `None` if the index is not one of ours (never expected).
    pub(crate) fn take_from_kernel(&self, index: u16) -> Option<Slab> {
        let inner = &self.inner;
        let k = inner.kernel.get()?;
        if index as u32 >= inner.slabs {
            return None;
        }
        k.consumed();
        let in_use = inner.slabs - inner.free.borrow().len() as u32 - k.provided();
        Some(self.hand_out(index as u32, in_use))
    }

    /// Counts a receive that found no buffer in the kernel's ring (io_uring backend): a wait.
    pub(crate) fn note_kernel_wait(&self) {
        self.inner.waits.set(self.inner.waits.get() + 1);
    }

    /// Records how long a receive waited for the kernel's ring to get a buffer again.
    pub(crate) fn record_wait(&self, waited: std::time::Duration) {
        let ns = waited.as_nanos().min(u64::MAX as u128) as u64;
        let inner = &self.inner;
        inner.wait_ns.set(inner.wait_ns.get().saturating_add(ns));
        inner
            .wait_histogram
            .borrow_mut()
            .saturating_record(ns.max(1));
    }

    /// Free slabs the kernel holds right now (0 without the io_uring backend).
    pub(crate) fn lent_to_kernel(&self) -> usize {
        self.inner.kernel.get().map_or(0, |k| k.provided() as usize)
    }

    /// Bytes per slab.
    pub fn slab_size(&self) -> usize {
        self.inner.slab_size
    }

    /// Slabs in the pool.
    pub fn capacity(&self) -> usize {
        self.inner.slabs as usize
    }

    /// Slabs held right now (not free, and not lent to the kernel for receiving).
    pub fn in_use(&self) -> usize {
        self.inner.slabs as usize - self.inner.free.borrow().len() - self.lent_to_kernel()
    }

    /// Slabs a new taker could get without waiting.
    pub fn available(&self) -> usize {
        if !self.inner.waiters.borrow().is_empty() {
            return 0;
        }
        self.inner.free.borrow().len() - self.inner.reserved.get() as usize
    }

    /// Takes a slab if one is free and nobody is waiting for one. O(1), no allocation.
    ///
    /// # Examples
    /// ```
    /// # glommio::LocalExecutor::default().run(async {
    /// use shardnet::pool::{Pool, PoolConfig};
    /// let pool = Pool::new(&PoolConfig { slab_size: 64, slabs: 1, ..Default::default() }, 4).unwrap();
    /// let slab = pool.try_take().expect("one slab is free");
    /// assert_eq!(slab.len(), 64);
    /// assert!(pool.try_take().is_none());
    /// drop(slab);
    /// assert_eq!(pool.available(), 1);
    /// # });
    /// ```
    pub fn try_take(&self) -> Option<Slab> {
        if !self.inner.waiters.borrow().is_empty() {
            return None;
        }
        self.take_unreserved()
    }

    fn take_unreserved(&self) -> Option<Slab> {
        let inner = &self.inner;
        let mut free = inner.free.borrow_mut();
        if free.len() <= inner.reserved.get() as usize {
            return None;
        }
        let index = free.pop()?;
        drop(free);
        Some(self.hand_out(index, self.in_use() as u32))
    }

    fn hand_out(&self, index: u32, in_use: u32) -> Slab {
        let inner = &self.inner;
        inner.takes.set(inner.takes.get() + 1);
        if in_use > inner.high_water.get() {
            inner.high_water.set(in_use);
        }
        Slab::new(self.inner.clone(), index)
    }

    /// Waits for a slab: resolves at once when one is free, otherwise when one is released
    /// (first come, first served). Dropping the future gives up the place in the queue.
    pub fn take(&self) -> Take<'_> {
        Take {
            pool: self,
            ticket: WaitTicket::default(),
        }
    }

    /// Polls for a slab, queueing the task behind earlier waiters when none is free.
    ///
    /// `ticket` carries the task's place in the queue between polls; the caller owns it and
    /// must [`Pool::cancel`] it if it stops waiting.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>, ticket: &mut WaitTicket) -> Poll<Slab> {
        let inner = &self.inner;
        match ticket.queued {
            None => {
                if let Some(slab) = self.try_take() {
                    return Poll::Ready(slab);
                }
                let t = inner.next_ticket.get();
                inner.next_ticket.set(t + 1);
                inner.waiters.borrow_mut().push_back(Waiter {
                    ticket: t,
                    waker: cx.waker().clone(),
                });
                inner.waits.set(inner.waits.get() + 1);
                ticket.queued = Some((t, Instant::now()));
                Poll::Pending
            }
            Some((t, since)) => {
                let mut waiters = inner.waiters.borrow_mut();
                if let Ok(pos) = waiters.binary_search_by_key(&t, |w| w.ticket) {
                    // Still queued: keep the freshest waker.
                    let w = &mut waiters[pos];
                    if !w.waker.will_wake(cx.waker()) {
                        w.waker = cx.waker().clone();
                    }
                    return Poll::Pending;
                }
                drop(waiters);
                // Our entry was popped by `grant`, which reserved a free slab for us.
                ticket.queued = None;
                inner.reserved.set(inner.reserved.get() - 1);
                let waited = since.elapsed().as_nanos().min(u64::MAX as u128) as u64;
                inner
                    .wait_ns
                    .set(inner.wait_ns.get().saturating_add(waited));
                inner
                    .wait_histogram
                    .borrow_mut()
                    .saturating_record(waited.max(1));
                let mut free = inner.free.borrow_mut();
                let index = free
                    .pop()
                    .expect("pool invariant: a reservation always has a free slab behind it");
                drop(free);
                Poll::Ready(self.hand_out(index, self.in_use() as u32))
            }
        }
    }

    /// Gives up a wait: leaves the queue, or passes an unused reservation to the next waiter.
    pub(crate) fn cancel(&self, ticket: &mut WaitTicket) {
        let Some((t, _)) = ticket.queued.take() else {
            return;
        };
        let inner = &self.inner;
        let mut waiters = inner.waiters.borrow_mut();
        if let Ok(pos) = waiters.binary_search_by_key(&t, |w| w.ticket) {
            waiters.remove(pos);
            return;
        }
        drop(waiters);
        inner.reserved.set(inner.reserved.get() - 1);
        self.inner.grant();
    }

    /// A copy of the counters.
    pub fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        PoolStats {
            slab_size: inner.slab_size,
            slabs_total: inner.slabs as u64,
            slabs_in_use: self.in_use() as u64,
            high_water: inner.high_water.get() as u64,
            takes: inner.takes.get(),
            waits: inner.waits.get(),
            wait_ns: inner.wait_ns.get(),
            region: inner.region.flags(),
        }
    }

    /// A copy of the pool-wait histogram (nanoseconds). Allocates the copy.
    pub fn wait_histogram(&self) -> Histogram<u64> {
        self.inner.wait_histogram.borrow().clone()
    }

    /// Clears the high-water mark and the wait histogram (counters keep running).
    pub fn reset_peaks(&self) {
        self.inner.high_water.set(self.in_use() as u32);
        self.inner.wait_histogram.borrow_mut().reset();
    }
}

impl Inner {
    /// Returns a slab: to the next waiter if anyone waits, else to the kernel if it holds fewer
    /// than its target, else to the free list. O(1), no allocation.
    fn release(&self, index: u32) {
        debug_assert!(index < self.slabs);
        if self.waiters.borrow().is_empty() {
            if let Some(k) = self.kernel.get() {
                if k.provided() < self.kernel_target.get() {
                    k.provide(index, self.slab_ptr(index), self.slab_size);
                    return;
                }
            }
        }
        self.free.borrow_mut().push(index);
        self.grant();
    }

    /// Reserves free slabs for waiters, front of the queue first, and wakes them.
    fn grant(&self) {
        loop {
            let free = self.free.borrow().len();
            if free <= self.reserved.get() as usize {
                return;
            }
            let Some(w) = self.waiters.borrow_mut().pop_front() else {
                return;
            };
            self.reserved.set(self.reserved.get() + 1);
            w.waker.wake();
        }
    }

    /// Pointer to the first byte of slab `index`.
    fn slab_ptr(&self, index: u32) -> *mut u8 {
        debug_assert!(index < self.slabs);
        debug_assert!((index as usize + 1) * self.slab_size <= self.region.len());
        // SAFETY: index < slabs, and the region holds slabs × slab_size bytes (checked in
        // PoolConfig::validate and mapped in Region::new), so the offset stays inside it.
        unsafe { self.region.as_ptr().add(index as usize * self.slab_size) }
    }
}

/// Future returned by [`Pool::take`]: resolves to a [`Slab`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Take<'a> {
    pool: &'a Pool,
    ticket: WaitTicket,
}

impl Future for Take<'_> {
    type Output = Slab;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Slab> {
        let this = self.get_mut();
        this.pool.poll_take(cx, &mut this.ticket)
    }
}

impl Drop for Take<'_> {
    fn drop(&mut self) {
        self.pool.cancel(&mut self.ticket);
    }
}

#[cfg(test)]
mod tests;
