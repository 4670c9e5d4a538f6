//! A client thread: one mio event loop over its share of the connections.
//!
//! Life of a worker: pin to its core, connect all its connections (bounded by the timeout),
//! report [`FromWorker::Connected`] or [`FromWorker::ConnectFailed`], wait for
//! [`ToWorker::Start`], then drive its connections until the end of the plan, sending one
//! [`FromWorker::Interval`] per tick and a final [`FromWorker::Done`]. Histograms travel to
//! the main thread by value and come back through the `recycled` channel, so the steady state
//! allocates nothing.
//!
//! Waiting: closed loop waits in `epoll_wait` with millisecond timeouts (only ticks and timeout
//! checks are timed). Open loop also has sends to make on time, so it arms a `timerfd` for the
//! next one and sets its timer slack to 1 µs.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Poll, Token};

use crate::affinity;
use crate::conn::{Churn, ChurnCounts, Clock, Conn, Recorder};
use crate::errors::{ErrorCounts, ErrorKind, Failure};
use crate::protocol::Protocol;
use crate::schedule::{Schedule, Tick};
use crate::sys::TimerFd;

/// The latency histogram every thread and the summary use: 1 ns to 60 s, 3 digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| {
        // The bounds are constants the crate accepts; keep a usable fallback regardless.
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

/// How requests are issued.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Keep `pipeline` requests in flight per connection.
    Closed {
        /// Requests in flight per connection.
        pipeline: usize,
    },
    /// Send on `schedule`, at most `max_inflight` unanswered per connection.
    Open {
        /// The send schedule.
        schedule: Schedule,
        /// In-flight cap per connection.
        max_inflight: usize,
    },
}

/// What a worker is given.
#[derive(Debug)]
pub struct Setup {
    /// Worker number.
    pub worker: usize,
    /// Core to pin to, if any.
    pub core: Option<usize>,
    /// Global numbers of this worker's connections.
    pub conns: Vec<u64>,
    /// Server address.
    pub addr: SocketAddr,
    /// The protocol.
    pub proto: Arc<Protocol>,
    /// Closed or open loop.
    pub mode: Mode,
    /// Request and connect timeout.
    pub timeout: Duration,
    /// Random seed of the run.
    pub seed: u64,
    /// Close and reconnect connections after some requests.
    pub churn: Option<Churn>,
}

/// The run's timing, sent with the start signal.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Time zero of the run.
    pub epoch: Instant,
    /// Reporting ticks; the last is the end of the run.
    pub ticks: Arc<[Tick]>,
    /// End of the warmup, ns after the epoch.
    pub measure_from_ns: u64,
}

/// Main thread to worker.
#[derive(Debug)]
pub enum ToWorker {
    /// Go.
    Start(Plan),
    /// Do not run (another worker failed to connect).
    Abort,
}

/// One tick's report.
#[derive(Debug)]
pub struct IntervalReport {
    /// Worker number.
    pub worker: usize,
    /// Index of the tick that ended the interval.
    pub tick: usize,
    /// When the interval really ended (ns after the epoch); before the tick if the worker
    /// stopped early.
    pub end_ns: u64,
    /// Measured latencies of the interval.
    pub hist: Histogram<u64>,
    /// Replies completed, warmup included.
    pub completed: u64,
    /// Errors counted in the interval.
    pub errors: ErrorCounts,
    /// Connections still alive.
    pub alive: usize,
    /// What churn did in the interval.
    pub churn: ChurnCounts,
}

/// Worker to main thread.
#[derive(Debug)]
pub enum FromWorker {
    /// All connections are up; waiting for the start.
    Connected,
    /// Some connections could not be made; the worker waits for `Abort`.
    ConnectFailed {
        /// Why.
        errors: ErrorCounts,
    },
    /// A tick's report.
    Interval(IntervalReport),
    /// The worker ended.
    Done {
        /// Worker number.
        worker: usize,
        /// Open loop: how late the writes were against the schedule (ns).
        lag: Histogram<u64>,
        /// Requests unanswered when it stopped.
        in_flight: u64,
    },
}

/// Runs a worker to completion. Never panics on peer input; every wait is bounded.
pub fn run(
    setup: Setup,
    to_main: &mpsc::Sender<FromWorker>,
    from_main: &mpsc::Receiver<ToWorker>,
    recycled: &mpsc::Receiver<Histogram<u64>>,
) {
    let worker = setup.worker;
    if let Some(core) = setup.core {
        if !affinity::pin_current_thread(core) {
            eprintln!("shardnet-load: warning: could not pin thread {worker} to core {core}");
        }
    }
    let mut errors = ErrorCounts::default();
    let mut conns = match connect_all(&setup, &mut errors) {
        Ok(c) if errors.total() == 0 => c,
        Ok(_) | Err(_) => {
            let _ = to_main.send(FromWorker::ConnectFailed { errors });
            let _ = from_main.recv();
            return;
        }
    };
    if to_main.send(FromWorker::Connected).is_err() {
        return;
    }
    let plan = match from_main.recv() {
        Ok(ToWorker::Start(plan)) => plan,
        Ok(ToWorker::Abort) | Err(_) => return,
    };
    let (in_flight, lag) = match drive(&setup, &mut conns, &plan, to_main, recycled) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("shardnet-load: thread {worker}: {e}");
            (0, new_histogram())
        }
    };
    let _ = to_main.send(FromWorker::Done {
        worker,
        lag,
        in_flight,
    });
}

/// The poll and connections of a worker.
struct Conns {
    poll: Poll,
    events: Events,
    list: Vec<Option<Conn>>,
}

fn connect_all(setup: &Setup, errors: &mut ErrorCounts) -> std::io::Result<Conns> {
    let poll = Poll::new()?;
    let mut list = Vec::with_capacity(setup.conns.len());
    let (cap, batch) = match setup.mode {
        Mode::Closed { pipeline } => (pipeline, pipeline),
        Mode::Open { max_inflight, .. } => (max_inflight, 16),
    };
    for (i, &index) in setup.conns.iter().enumerate() {
        match Conn::connect(
            setup.addr,
            index,
            &setup.proto,
            cap,
            batch,
            setup.seed,
            setup.churn,
        ) {
            Ok(mut c) => match c.register(poll.registry(), Token(i)) {
                Ok(()) => list.push(Some(c)),
                Err(e) => {
                    errors.add(&Failure::new(ErrorKind::ConnectFailed, e.to_string()));
                    list.push(None);
                }
            },
            Err(f) => {
                errors.add(&f);
                list.push(None);
            }
        }
    }
    let mut c = Conns {
        poll,
        events: Events::with_capacity(1024),
        list,
    };
    let deadline = Instant::now() + setup.timeout;
    loop {
        let pending = c
            .list
            .iter()
            .filter(|x| x.as_ref().is_some_and(|x| !x.is_connected()))
            .count();
        if pending == 0 {
            return Ok(c);
        }
        let now = Instant::now();
        if now >= deadline {
            for slot in &mut c.list {
                if slot.as_ref().is_some_and(|x| !x.is_connected()) {
                    *slot = None;
                    errors.add(&Failure::new(
                        ErrorKind::ConnectTimeout,
                        format!(
                            "connect to {} took longer than {:.3} s",
                            setup.addr,
                            setup.timeout.as_secs_f64()
                        ),
                    ));
                }
            }
            return Ok(c);
        }
        c.poll.poll(&mut c.events, Some(deadline - now))?;
        for ev in &c.events {
            let Some(slot) = c.list.get_mut(ev.token().0) else {
                continue;
            };
            if let Some(conn) = slot {
                if conn.is_connected() {
                    continue;
                }
                match conn.finish_connect(setup.addr) {
                    Ok(_) => {}
                    Err(f) => {
                        errors.add(&f);
                        *slot = None;
                    }
                }
            }
        }
    }
}

/// The event loop of a started worker. Returns the requests in flight at the end and the
/// send-lag histogram.
fn drive(
    setup: &Setup,
    c: &mut Conns,
    plan: &Plan,
    to_main: &mpsc::Sender<FromWorker>,
    recycled: &mpsc::Receiver<Histogram<u64>>,
) -> std::io::Result<(u64, Histogram<u64>)> {
    let worker = setup.worker;
    let proto = &*setup.proto;
    let clock = Clock::new(plan.epoch);
    let ticks = &*plan.ticks;
    let end_ns = ticks.last().map_or(0, |t| t.at_ns);
    let timeout_ns = u64::try_from(setup.timeout.as_nanos()).unwrap_or(u64::MAX);
    let check_every_ns = (timeout_ns / 10).clamp(1_000_000, 100_000_000);
    let timer_token = Token(c.list.len());
    let mut timer = match setup.mode {
        Mode::Open { .. } => {
            let _ = crate::sys::set_timer_slack_ns(1_000);
            let mut t = TimerFd::new()?;
            c.poll
                .registry()
                .register(&mut t, timer_token, mio::Interest::READABLE)?;
            Some(t)
        }
        Mode::Closed { .. } => None,
    };
    let mut spare: Vec<Histogram<u64>> = vec![new_histogram(), new_histogram()];
    let mut rec = Recorder {
        hist: new_histogram(),
        lag: new_histogram(),
        measure_from_ns: plan.measure_from_ns,
        completed: 0,
        churn: ChurnCounts::default(),
    };
    let mut interval_errors = ErrorCounts::default();
    let mut alive = c.list.iter().filter(|x| x.is_some()).count();

    if let Mode::Closed { pipeline } = setup.mode {
        let now = clock.now_ns();
        for i in 0..c.list.len() {
            if let Some(conn) = c.list[i].as_mut() {
                conn.fill_closed(proto, pipeline, now);
                if let Err(f) = conn.flush() {
                    kill(&mut c.list, i, &f, &mut interval_errors, &mut alive);
                }
            }
        }
    }

    let mut tick_i = 0;
    let mut next_check_ns = 0;
    let mut min_due_ns = 0;
    let mut armed_ns: Option<u64> = None;
    loop {
        let now = clock.now_ns();
        while tick_i < ticks.len() && now >= ticks[tick_i].at_ns {
            send_interval(
                worker,
                tick_i,
                now,
                &mut rec,
                &mut interval_errors,
                alive,
                &mut spare,
                recycled,
                to_main,
            );
            tick_i += 1;
        }
        if now >= end_ns {
            break;
        }
        if alive == 0 {
            // Everything failed: report the partial interval and stop early.
            send_interval(
                worker,
                tick_i,
                now,
                &mut rec,
                &mut interval_errors,
                alive,
                &mut spare,
                recycled,
                to_main,
            );
            break;
        }
        if now >= next_check_ns {
            next_check_ns = now + check_every_ns;
            for i in 0..c.list.len() {
                if let Some(Err(f)) = c.list[i].as_ref().map(|x| x.check_timeout(now, timeout_ns)) {
                    kill(&mut c.list, i, &f, &mut interval_errors, &mut alive);
                }
            }
        }
        if let Mode::Open { schedule, .. } = setup.mode {
            if now >= min_due_ns {
                min_due_ns = u64::MAX;
                for i in 0..c.list.len() {
                    if let Some(conn) = c.list[i].as_mut() {
                        let due = conn.fill_open(proto, &schedule, now, &mut rec);
                        min_due_ns = min_due_ns.min(due);
                        let result = conn.flush().and_then(|()| {
                            conn.lifetime(c.poll.registry(), Token(i), now, &mut rec.churn)
                        });
                        if let Err(f) = result {
                            kill(&mut c.list, i, &f, &mut interval_errors, &mut alive);
                        }
                    }
                }
            }
        }
        let mut deadline = ticks[tick_i].at_ns.min(next_check_ns);
        if timer.is_some() {
            deadline = deadline.min(min_due_ns);
        }
        let wait = deadline.saturating_sub(clock.now_ns());
        let poll_timeout = match timer.as_mut() {
            Some(t) if wait > 0 => {
                if armed_ns != Some(deadline) {
                    t.arm_after(Duration::from_nanos(wait))?;
                    armed_ns = Some(deadline);
                }
                // The timerfd wakes us on time; the poll timeout is only a backstop.
                Duration::from_nanos(wait) + Duration::from_millis(2)
            }
            _ => Duration::from_nanos(wait),
        };
        match c.poll.poll(&mut c.events, Some(poll_timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let registry = c.poll.registry();
        for ev in c.events.iter() {
            let i = ev.token().0;
            if ev.token() == timer_token {
                armed_ns = None;
                continue;
            }
            let Some(Some(conn)) = c.list.get_mut(i) else {
                continue;
            };
            let result = (|| {
                if !conn.is_connected() {
                    // A churn reconnect: wait for its connect, then write what is queued.
                    if !conn.finish_connect(setup.addr)? {
                        return Ok(());
                    }
                    rec.churn.reconnects += u64::from(conn.generation() > 0);
                    conn.writable();
                }
                if ev.is_writable() {
                    conn.writable();
                    conn.flush()?;
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    conn.read(
                        proto,
                        &clock,
                        &mut rec,
                        ev.is_read_closed() || ev.is_error(),
                    )?;
                }
                match setup.mode {
                    Mode::Closed { pipeline } => conn.fill_closed(proto, pipeline, clock.now_ns()),
                    Mode::Open { schedule, .. } => {
                        let due = conn.fill_open(proto, &schedule, clock.now_ns(), &mut rec);
                        min_due_ns = min_due_ns.min(due);
                    }
                }
                conn.flush()?;
                conn.lifetime(registry, Token(i), clock.now_ns(), &mut rec.churn)
            })();
            if let Err(f) = result {
                kill(&mut c.list, i, &f, &mut interval_errors, &mut alive);
            }
        }
    }
    let in_flight = c.list.iter().flatten().map(|x| x.in_flight() as u64).sum();
    close_politely(c);
    Ok((in_flight, rec.lag))
}

/// Half-closes every connection and reads until the server closes too, for at most 200 ms,
/// so the server sees an orderly close rather than a reset caused by unread replies.
fn close_politely(c: &mut Conns) {
    for conn in c.list.iter().flatten() {
        conn.shutdown_write();
    }
    let deadline = Instant::now() + Duration::from_millis(200);
    loop {
        for slot in &mut c.list {
            if slot.as_mut().is_some_and(Conn::drain) {
                *slot = None;
            }
        }
        let now = Instant::now();
        if c.list.iter().all(Option::is_none) || now >= deadline {
            return;
        }
        if c.poll.poll(&mut c.events, Some(deadline - now)).is_err() {
            return;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn send_interval(
    worker: usize,
    tick: usize,
    now: u64,
    rec: &mut Recorder,
    errors: &mut ErrorCounts,
    alive: usize,
    spare: &mut Vec<Histogram<u64>>,
    recycled: &mpsc::Receiver<Histogram<u64>>,
    to_main: &mpsc::Sender<FromWorker>,
) {
    while let Ok(h) = recycled.try_recv() {
        spare.push(h);
    }
    let fresh = spare.pop().unwrap_or_else(new_histogram);
    let hist = std::mem::replace(&mut rec.hist, fresh);
    let report = IntervalReport {
        worker,
        tick,
        end_ns: now,
        hist,
        completed: std::mem::take(&mut rec.completed),
        errors: std::mem::take(errors),
        alive,
        churn: std::mem::take(&mut rec.churn),
    };
    let _ = to_main.send(FromWorker::Interval(report));
}

/// Counts `f` and closes connection `i` (dropping it closes the socket and leaves epoll).
/// A connection that failed stays closed: its stream is out of step.
fn kill(
    list: &mut [Option<Conn>],
    i: usize,
    f: &Failure,
    errors: &mut ErrorCounts,
    alive: &mut usize,
) {
    if let Some(slot) = list.get_mut(i) {
        if slot.take().is_some() {
            errors.add(f);
            *alive -= 1;
        }
    }
}
