//! A shard: one pinned core's executor, listener, pool, connection table, counters and user state.
//!
//! **How connections are spread.** Every shard has its own listening socket on the same
//! address, all in one `SO_REUSEPORT` group, and accepts only from it: the kernel hashes each
//! new connection onto one socket of the group, so connections are spread without any
//! hand-off between threads, and a connection's receives, sends, timers and state stay on the
//! core that accepted it. The alternative — one acceptor handing sockets to workers — costs a
//! cross-thread message per connection and moves the socket away from the core its first
//! packets were processed on. The price of `SO_REUSEPORT` is that the kernel, not load,
//! decides the spread; the stats report the split per shard.
//!
//! Inside a shard nothing is shared with other threads: counters are `Cell`s, the sequence
//! counter is a `Cell<u64>`, the pool and table are `Rc`/`RefCell`. The only cross-thread
//! input is the control channel (shutdown, stats requests).

use crate::config::{ticks_for, IoBackend, ServerConfig};
use crate::conn::{CloseReason, ConnId, Connection};
use crate::control::{Command, Control, ControlReceiver};
use crate::driver::{self, Driver};
use crate::error::StartError;
use crate::pool::Pool;
use crate::slots::{self, Slots, Wait};
use crate::stats::{new_latency_histogram, Counters, ShardCounters, ShardStats};
use crate::sys::runtime::{self, Listener, TaskHandle};
use crate::sys::socket;
use hdrhistogram::Histogram;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{poll_fn, Future};
use std::os::fd::OwnedFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

thread_local! {
    /// The shard running on this thread (for APIs reached without a context, such as the mesh).
    static CURRENT: RefCell<std::rc::Weak<ShardCore>> = const { RefCell::new(std::rc::Weak::new()) };
}

/// Pokes shard `to` from the shard running on this thread, if any (see [`ShardCore::poke`]).
pub(crate) fn poke_from_current(to: usize) {
    CURRENT.with(|c| {
        if let Some(core) = c.borrow().upgrade() {
            core.poke(to);
        }
    });
}

/// Which shard this is, handed to the state factory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardInfo {
    /// This shard's index, `0..shards`.
    pub id: usize,
    /// The CPU it is pinned to.
    pub cpu: usize,
    /// How many shards the server runs.
    pub shards: usize,
}

/// What a handler's future may return: `()` or any `Result<(), E: Display>`.
///
/// An `Err` closes the connection with reason [`CloseReason::Error`] (unless an earlier
/// reason, such as a timeout, was already observed) and is logged at debug level.
pub trait HandlerResult {
    /// Logs a failure for connection `id`; returns whether there was one.
    fn report(self, id: ConnId) -> bool;
}

impl HandlerResult for () {
    fn report(self, _id: ConnId) -> bool {
        false
    }
}

impl<E: fmt::Display> HandlerResult for Result<(), E> {
    fn report(self, id: ConnId) -> bool {
        match self {
            Ok(()) => false,
            Err(e) => {
                log::debug!("connection {id}: handler returned an error: {e}");
                true
            }
        }
    }
}

/// Shard-local state shared by every connection of one shard (`!Send`).
pub(crate) struct ShardCore {
    /// The shard's own ring (io_uring backend). Declared first so it is dropped before the
    /// pool handle below.
    driver: Option<Driver>,
    /// Every shard's ring (duplicated descriptors), for pokes after cross-shard messages.
    rings: driver::RingTable,
    pub(crate) info: ShardInfo,
    pub(crate) pool: Pool,
    pub(crate) slots: Slots,
    pub(crate) counters: Counters,
    pub(crate) max_pending_send: usize,
    latency: RefCell<Histogram<u64>>,
    seq: Cell<u64>,
    next_conn: Cell<u64>,
    /// When the shard started: the origin of its coarse clock (ticks of `resolution`).
    epoch: Instant,
    resolution: Duration,
    /// The longest the timeout sweeper sleeps (a quarter of the shortest configured timeout).
    max_sweep_sleep: Duration,
    sweeper_kicked: Cell<bool>,
    recv_ticks: u32,
    send_ticks: u32,
    nodelay: bool,
    draining: Cell<bool>,
    /// How long a closing connection lingers (0: close at once).
    pub(crate) linger: Duration,
    lingering: Cell<usize>,
    sweeper_waker: RefCell<Option<Waker>>,
    idle_waker: RefCell<Option<Waker>>,
    stopped: Cell<bool>,
}

impl ShardCore {
    fn new(
        info: ShardInfo,
        config: &ServerConfig,
        pool: Pool,
        driver: Option<Driver>,
        rings: driver::RingTable,
    ) -> ShardCore {
        ShardCore {
            driver,
            rings,
            info,
            pool,
            slots: Slots::new(config.max_connections),
            counters: Counters::default(),
            max_pending_send: config.max_pending_send,
            latency: RefCell::new(new_latency_histogram()),
            seq: Cell::new(0),
            next_conn: Cell::new(0),
            epoch: Instant::now(),
            resolution: config.timer_resolution,
            max_sweep_sleep: max_sweep_sleep(config),
            sweeper_kicked: Cell::new(false),
            recv_ticks: config.ticks(config.recv_timeout),
            send_ticks: config.ticks(config.send_timeout),
            nodelay: config.nodelay,
            draining: Cell::new(false),
            linger: config.linger,
            lingering: Cell::new(0),
            sweeper_waker: RefCell::new(None),
            idle_waker: RefCell::new(None),
            stopped: Cell::new(false),
        }
    }

    /// The shard's ring driver (io_uring backend only).
    #[inline]
    pub(crate) fn driver(&self) -> Option<&Driver> {
        self.driver.as_ref()
    }

    /// Wakes shard `to` after a message was queued for it (io_uring backend: its driver may be
    /// waiting in its own ring, where glommio's cross-shard wake-ups do not reach).
    pub(crate) fn poke(&self, to: usize) {
        if to != self.info.id {
            if let Some(d) = self.driver() {
                d.poke(&self.rings, to);
            }
        }
    }

    /// True once the shard has finished its shutdown.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.get()
    }

    /// Owners of a new connection's slot: its task, the connection, and the ring's driver.
    fn slot_owners(&self) -> u8 {
        if self.driver.is_some() {
            3
        } else {
            2
        }
    }

    /// The shard's coarse clock for timeouts: ticks of `timer_resolution` since start.
    #[inline]
    pub(crate) fn tick(&self) -> u32 {
        (self.epoch.elapsed().as_nanos() / self.resolution.as_nanos().max(1)) as u32
    }

    /// Makes the timeout sweeper re-plan now (a timeout got shorter, a linger began).
    pub(crate) fn kick_sweeper(&self) {
        self.sweeper_kicked.set(true);
        if let Some(w) = self.sweeper_waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// A timeout in ticks of this shard's timer resolution.
    pub(crate) fn ticks(&self, t: Option<Duration>) -> u32 {
        ticks_for(t, self.resolution)
    }

    /// The next sequence stamp. Plain `Cell`: nothing crosses threads.
    #[inline]
    pub(crate) fn next_seq(&self) -> u64 {
        let s = self.seq.get();
        self.seq.set(s + 1);
        s
    }

    /// Records one service latency sample.
    #[inline]
    pub(crate) fn record_latency(&self, d: Duration) {
        let ns = d.as_nanos().min(u64::MAX as u128) as u64;
        self.latency.borrow_mut().saturating_record(ns.max(1));
    }

    /// Drops one owner of a connection's slot; the last one counts the close reason.
    pub(crate) fn release_slot(&self, index: u32) {
        let Some(reason) = self.slots.release(index) else {
            return;
        };
        let c = &self.counters;
        let counter = match reason.unwrap_or(CloseReason::Local) {
            CloseReason::PeerClosed => &c.closed_peer,
            CloseReason::Reset => &c.closed_reset,
            CloseReason::TimedOut => &c.closed_timeout,
            CloseReason::Error => &c.closed_error,
            CloseReason::Shutdown => &c.closed_shutdown,
            CloseReason::Local => &c.closed_local,
        };
        Counters::inc(counter);
        c.connections_active.set(c.connections_active.get() - 1);
        self.wake_if_idle();
    }

    /// A lingering close began.
    pub(crate) fn linger_started(&self) {
        self.lingering.set(self.lingering.get() + 1);
        Counters::inc(&self.counters.lingering_closes);
    }

    /// A lingering close ended.
    pub(crate) fn linger_ended(&self) {
        self.lingering.set(self.lingering.get() - 1);
        self.wake_if_idle();
    }

    fn is_idle(&self) -> bool {
        self.slots.live() == 0 && self.lingering.get() == 0
    }

    fn wake_if_idle(&self) {
        if self.is_idle() {
            if let Some(w) = self.idle_waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// A copy of everything this shard measured. Allocates the histogram copies.
    pub(crate) fn snapshot(&self) -> ShardStats {
        let mut counters = self.counters.snapshot();
        if let Some(d) = self.driver() {
            counters.ring_enters = d.enters();
            counters.ring_waits = d.ring_waits.get();
            counters.driver_spins = d.spins.get();
            counters.glommio_parks = d.glommio_parks.get();
        }
        ShardStats {
            shard: self.info.id,
            cpu: self.info.cpu,
            counters,
            pool: self.pool.stats(),
            latency: self.latency.borrow().clone(),
            pool_wait: self.pool.wait_histogram(),
        }
    }

    /// Waits until no connection is open or closing.
    async fn idle(&self) {
        poll_fn(|cx| {
            if self.is_idle() {
                Poll::Ready(())
            } else {
                *self.idle_waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// What the handler sees of its shard: ids, stats, the pool and the user state built once per
/// shard by the factory. Cheap to clone (two reference counts); `!Send`.
pub struct ShardContext<S> {
    core: Rc<ShardCore>,
    state: Rc<S>,
}

impl<S> Clone for ShardContext<S> {
    fn clone(&self) -> Self {
        ShardContext {
            core: self.core.clone(),
            state: self.state.clone(),
        }
    }
}

impl<S> fmt::Debug for ShardContext<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardContext")
            .field("info", &self.core.info)
            .finish()
    }
}

impl<S> ShardContext<S> {
    /// This shard's index, `0..shard_count()`.
    pub fn id(&self) -> usize {
        self.core.info.id
    }

    /// The CPU this shard is pinned to.
    pub fn cpu(&self) -> usize {
        self.core.info.cpu
    }

    /// How many shards the server runs.
    pub fn shard_count(&self) -> usize {
        self.core.info.shards
    }

    /// The user state of this shard.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// This shard's buffer pool (handlers may take slabs for their own buffers).
    pub fn pool(&self) -> &Pool {
        &self.core.pool
    }

    /// This shard's counters right now (no allocation).
    pub fn counters(&self) -> ShardCounters {
        self.core.counters.snapshot()
    }

    /// A full copy of this shard's stats, histograms included (allocates the copies).
    pub fn stats(&self) -> ShardStats {
        self.core.snapshot()
    }

    /// True once the server started shutting down.
    pub fn is_draining(&self) -> bool {
        self.core.draining.get()
    }
}

/// Everything a shard thread needs, moved into it.
pub(crate) struct ShardSetup {
    pub(crate) info: ShardInfo,
    /// Every shard's ring (duplicated descriptors), for cross-shard pokes.
    pub(crate) rings: driver::RingTable,
    pub(crate) config: ServerConfig,
    pub(crate) listener: OwnedFd,
    pub(crate) control: Arc<Control>,
    pub(crate) control_fd: OwnedFd,
    pub(crate) ready: mpsc::Sender<Result<(), StartError>>,
}

/// Runs one shard until it is shut down; returns its final stats, or `None` if its setup
/// failed (the error went to the `ready` channel).
pub(crate) async fn run<S, F, SFut, H, Fut>(
    setup: ShardSetup,
    factory: Arc<F>,
    handler: Arc<H>,
) -> Option<ShardStats>
where
    S: 'static,
    F: Fn(ShardInfo) -> SFut + Send + Sync + 'static,
    SFut: Future<Output = S> + 'static,
    H: Fn(Connection, ShardContext<S>) -> Fut + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerResult,
{
    let ShardSetup {
        info,
        rings,
        config,
        listener,
        control,
        control_fd,
        ready,
    } = setup;
    let mut control = ControlReceiver::new(control, control_fd);
    let pool = match Pool::new(&config.pool, config.max_connections) {
        Ok(p) => p,
        Err(source) => {
            let _ = ready.send(Err(StartError::Pool {
                shard: info.id,
                source,
            }));
            return None;
        }
    };
    let driver = match config.io_backend {
        IoBackend::Glommio => None,
        IoBackend::Ring => {
            match Driver::new(
                pool.clone(),
                config.max_connections,
                config.driver_block,
                config.driver_spin,
                config.defer_taskrun,
            ) {
                Ok(d) => Some(d),
                Err(source) => {
                    let _ = ready.send(Err(StartError::Ring {
                        shard: info.id,
                        source,
                    }));
                    return None;
                }
            }
        }
    };
    if let Some(d) = &driver {
        if let Err(e) = d.publish_ring_fd(&rings, info.id) {
            // Without it the other shards cannot wake this one while it waits in its ring:
            // their messages wait for its next turn of glommio (at most `driver_block`).
            log::warn!("shard {}: cannot share the ring for wake-ups: {e}", info.id);
        }
    }
    let core = Rc::new(ShardCore::new(info, &config, pool, driver, rings));
    CURRENT.with(|c| *c.borrow_mut() = Rc::downgrade(&core));
    let state = Rc::new(factory(info).await);
    let ctx = ShardContext {
        core: core.clone(),
        state,
    };
    let mut ring_tasks = Vec::new();
    let mut listener_fd = None;
    let mut accept = None;
    match core.driver() {
        None => {
            let listener = Listener::from_fd(listener);
            accept = Some(runtime::spawn_owned(accept_loop(ctx, listener, handler)));
        }
        Some(d) => {
            use std::os::fd::AsRawFd;
            ring_tasks.push(runtime::spawn_owned(driver::run(core.clone())));
            ring_tasks.push(runtime::spawn_owned(driver::eventfd_waiter(core.clone())));
            d.start_accepting(listener.as_raw_fd(), ring_accept_hook(ctx, handler));
            listener_fd = Some(listener);
        }
    }
    let _sweeper = runtime::spawn_owned(sweeper(core.clone()));
    log::debug!("shard {} ready on cpu {}", info.id, info.cpu);
    let _ = ready.send(Ok(()));
    drop(ready);
    loop {
        match control.next().await {
            Command::Stats(reply) => {
                let _ = reply.send(core.snapshot());
            }
            Command::Shutdown { drain } => {
                if let Some(d) = core.driver() {
                    d.stop_accepting(); // also drops the hook, which holds the shard context
                }
                drop(listener_fd.take());
                drain_connections(&core, accept.take(), drain).await;
                break;
            }
        }
    }
    let stats = core.snapshot();
    core.stopped.set(true);
    if let Some(d) = core.driver() {
        d.wake_driver();
        d.signal_eventfd();
    }
    drop(ring_tasks);
    CURRENT.with(|c| *c.borrow_mut() = std::rc::Weak::new());
    log::debug!("shard {} stopped", info.id);
    Some(stats)
}

/// The ring backend's accept hook: every socket the driver accepts becomes a connection with
/// its handler task; errors are counted, and running out of descriptors pauses accepting.
fn ring_accept_hook<S, H, Fut>(ctx: ShardContext<S>, handler: Arc<H>) -> driver::AcceptHook
where
    S: 'static,
    H: Fn(Connection, ShardContext<S>) -> Fut + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerResult,
{
    let backoff = Rc::new(Cell::new(BACKOFF_MIN));
    Box::new(move |fd| {
        let core = &ctx.core;
        if fd < 0 {
            let e = std::io::Error::from_raw_os_error(-fd);
            if accept_error(core, &e) {
                let (core2, delay) = (ctx.core.clone(), backoff.get());
                backoff.set((delay * 2).min(BACKOFF_MAX));
                runtime::spawn(async move {
                    runtime::sleep(delay).await;
                    if let Some(d) = core2.driver() {
                        d.resume_accepting();
                    }
                });
            } else if let Some(d) = core.driver() {
                d.resume_accepting();
            }
            return;
        }
        backoff.set(BACKOFF_MIN);
        let Some(slot) = admit(core) else {
            // SAFETY: the accepted descriptor is ours and nothing else uses it.
            unsafe { libc::close(fd) };
            return;
        };
        let (id, peer) = register_connection(core, fd);
        let Some(d) = core.driver() else { return };
        d.open(slot, fd, id);
        let conn = Connection::new_ring(core.clone(), fd, slot, id, peer);
        runtime::spawn(supervise(
            core.clone(),
            slot,
            id,
            Box::pin(handler(conn, ctx.clone())),
        ));
    })
}

/// Counts an accept error; returns `true` when it means descriptors or memory ran out (the
/// caller then pauses accepting).
fn accept_error(core: &ShardCore, e: &std::io::Error) -> bool {
    let c = &core.counters;
    let code = e.raw_os_error().unwrap_or(0);
    if matches!(
        code,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
    ) {
        Counters::inc(&c.accept_backoffs);
        if c.accept_backoffs.get().is_power_of_two() {
            log::warn!(
                "shard {}: accept: {e}; pausing accepts (backoff #{})",
                core.info.id,
                c.accept_backoffs.get()
            );
        }
        true
    } else {
        Counters::inc(&c.accept_errors);
        log::debug!("shard {}: accept: {e}", core.info.id);
        false
    }
}

/// Takes a connection slot, or counts a rejection when the shard is full.
fn admit(core: &ShardCore) -> Option<u32> {
    let slot = core
        .slots
        .acquire(core.slot_owners(), core.recv_ticks, core.send_ticks);
    if slot.is_none() {
        Counters::inc(&core.counters.connections_rejected);
    }
    slot
}

/// Tunes an accepted socket, gives it an id and counts it; returns its id and peer address.
fn register_connection(core: &ShardCore, fd: std::os::fd::RawFd) -> (ConnId, std::net::SocketAddr) {
    let c = &core.counters;
    let peer = socket::peer_addr(fd).unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
    if let Err(e) = socket::tune_accepted(fd, core.nodelay) {
        log::debug!("shard {}: tuning accepted socket: {e}", core.info.id);
    }
    let id = ConnId {
        shard: core.info.id as u32,
        local: core.next_conn.get(),
    };
    core.next_conn.set(id.local + 1);
    Counters::inc(&c.connections_accepted);
    let active = c.connections_active.get() + 1;
    c.connections_active.set(active);
    if active > c.connections_peak.get() {
        c.connections_peak.set(active);
    }
    if active == 1 {
        if let Some(w) = core.sweeper_waker.borrow_mut().take() {
            w.wake();
        }
    }
    (id, peer)
}

/// Stops accepting, lets open connections finish for `drain`, then ends the rest.
async fn drain_connections(core: &ShardCore, accept: Option<TaskHandle>, drain: Duration) {
    let deadline = Instant::now() + drain;
    core.draining.set(true);
    drop(accept); // cancels the accept loop and closes the listener
    core.slots.for_each_live(|s| {
        s.set_flag(slots::DRAIN);
        if s.waiting().0 == Wait::Recv {
            s.wake();
        }
    });
    let remaining = deadline.saturating_duration_since(Instant::now());
    futures_lite::future::or(core.idle(), runtime::sleep(remaining)).await;
    if core.slots.live() > 0 {
        log::info!(
            "shard {}: drain deadline passed with {} connections open; closing them",
            core.info.id,
            core.slots.live()
        );
        core.slots.for_each_live_index(|i, s| {
            s.set_reason(CloseReason::Shutdown);
            s.set_flag(slots::FORCE);
            s.wake();
            if let Some(d) = core.driver() {
                d.cancel_all(i); // lingering closes end now
            }
        });
        // Forced tasks end at their next poll, which the wake-up above schedules.
        futures_lite::future::or(core.idle(), runtime::sleep(Duration::from_secs(1))).await;
    }
}

/// A quarter of the shortest configured receive or send timeout (the longest a wait that
/// starts while the sweeper sleeps can go unchecked), within `timer_resolution ..= 10 s`.
fn max_sweep_sleep(config: &ServerConfig) -> Duration {
    let shortest = [config.recv_timeout, config.send_timeout]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Duration::from_secs(40));
    (shortest / 4).clamp(config.timer_resolution, Duration::from_secs(10))
}

/// How long accepting pauses after running out of descriptors, at first and at most.
const BACKOFF_MIN: Duration = Duration::from_millis(1);
const BACKOFF_MAX: Duration = Duration::from_millis(200);

async fn accept_loop<S, H, Fut>(ctx: ShardContext<S>, listener: Listener, handler: Arc<H>)
where
    S: 'static,
    H: Fn(Connection, ShardContext<S>) -> Fut + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerResult,
{
    let core = ctx.core.clone();
    let mut backoff = BACKOFF_MIN;
    loop {
        let stream = match listener.accept().await {
            Ok(s) => {
                backoff = BACKOFF_MIN;
                s
            }
            Err(e) => {
                let exhausted = accept_error(&core, &e);
                let code = e.raw_os_error().unwrap_or(0);
                if exhausted
                    || !matches!(
                        code,
                        libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM
                    )
                {
                    runtime::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                continue;
            }
        };
        let Some(slot) = admit(&core) else {
            drop(stream); // accepted and closed at once
            continue;
        };
        let (id, peer) = register_connection(&core, stream.fd());
        let conn = Connection::new(core.clone(), stream, slot, id, peer);
        runtime::spawn(supervise(
            core.clone(),
            slot,
            id,
            Box::pin(handler(conn, ctx.clone())),
        ));
    }
}

/// Releases the task's share of a slot however the task ends (even if it is dropped).
struct TaskSlot {
    core: Rc<ShardCore>,
    slot: u32,
}

impl Drop for TaskSlot {
    fn drop(&mut self) {
        self.core.release_slot(self.slot);
    }
}

/// Runs a handler's future: keeps the connection's waker in its slot, drops the future when
/// the drain deadline forces the connection closed, and turns a panic into a closed
/// connection (reason error) instead of a dead shard.
///
/// The handler's future comes boxed: an `async fn` keeps its arguments beside its locals, so
/// a future taken by value would be stored twice in this task (3 KiB instead of 1.5 KiB per
/// connection for the echo handler). One allocation per connection, none per request.
async fn supervise<Fut>(core: Rc<ShardCore>, slot: u32, id: ConnId, fut: Pin<Box<Fut>>)
where
    Fut: Future,
    Fut::Output: HandlerResult,
{
    let guard = TaskSlot { core, slot };
    let mut fut = Some(fut);
    let failed = poll_fn(|cx| {
        let s = guard.core.slots.get(slot);
        if s.flags() & slots::FORCE != 0 {
            fut = None;
            return Poll::Ready(false);
        }
        s.register(cx.waker());
        let Some(f) = fut.as_mut() else {
            return Poll::Ready(false);
        };
        match catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(out.report(id)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic".to_string());
                log::error!("connection {id}: handler panicked: {msg}");
                Counters::inc(&guard.core.counters.handler_panics);
                s.set_reason(CloseReason::Error);
                Poll::Ready(true)
            }
        }
    })
    .await;
    // Drop the handler's future (and with it, usually, the connection) before counting.
    drop(fut);
    if failed {
        guard.core.slots.get(slot).set_reason(CloseReason::Error);
    }
}

/// Enforces receive and send timeouts (and, with the io_uring backend, the end of lingering
/// closes) while connections are open; sleeps without a timer while there are none.
///
/// It does not tick at a fixed rate: each sweep computes when the next deadline falls and
/// sleeps until then — but never longer than [`ShardCore::max_sweep_sleep`], a quarter of the
/// shortest configured timeout, so a wait that starts during the sleep is caught at most that
/// late. A connection that shortens its own timeout, or starts a lingering close, wakes the
/// sweeper to re-plan. Idle connections under the default timeouts cost one wake-up every
/// 7.5 s, not one per `timer_resolution`.
async fn sweeper(core: Rc<ShardCore>) {
    loop {
        if core.slots.live() == 0 {
            poll_fn(|cx| {
                if core.slots.live() > 0 {
                    Poll::Ready(())
                } else {
                    *core.sweeper_waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
        }
        let next = sweep(&core);
        let nap = next.clamp(core.resolution, core.max_sweep_sleep);
        let kicked = poll_fn(|cx| {
            if core.sweeper_kicked.replace(false) {
                Poll::Ready(())
            } else {
                *core.sweeper_waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        });
        futures_lite::future::or(runtime::sleep(nap), kicked).await;
    }
}

/// One pass over the open connections: fires the timeouts that are due and returns how long
/// until the next one.
fn sweep(core: &ShardCore) -> Duration {
    let tick = core.tick();
    let now = Instant::now();
    let c = &core.counters;
    let mut next_ticks = u32::MAX;
    let mut next_linger: Option<Instant> = None;
    core.slots.for_each_live_index(|i, s| {
        if let Some(d) = core.driver() {
            d.end_linger_if_due(i, now);
            if let Some(t) = d.io(i).linger_until.get() {
                next_linger = Some(next_linger.map_or(t, |n| n.min(t)));
            }
        }
        let (wait, since) = s.waiting();
        let (limit, flag, counter) = match wait {
            Wait::Recv | Wait::RecvPool => {
                (s.recv_ticks.get(), slots::RECV_TIMED_OUT, &c.recv_timeouts)
            }
            Wait::Send | Wait::SendPool => {
                (s.send_ticks.get(), slots::SEND_TIMED_OUT, &c.send_timeouts)
            }
            Wait::None => return,
        };
        if limit == 0 || s.flags() & flag != 0 {
            return;
        }
        // `since` was taken somewhere inside its tick, so waiting `limit + 1` ticks guarantees
        // at least the full timeout.
        let due = since.wrapping_add(limit).wrapping_add(1);
        let left = due.wrapping_sub(tick);
        if left == 0 || left > u32::MAX / 2 {
            s.set_flag(flag);
            Counters::inc(counter);
            s.wake();
        } else {
            next_ticks = next_ticks.min(left);
        }
    });
    let by_ticks = core.resolution.saturating_mul(next_ticks);
    match next_linger {
        Some(t) => by_ticks.min(t.saturating_duration_since(now)),
        None => by_ticks,
    }
}
