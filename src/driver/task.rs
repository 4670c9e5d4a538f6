//! The driver task: reap, dispatch, submit, and park without busy-spinning.

use super::{Driver, Recv, RxItem, GLOMMIO_TURN};
use crate::driver::ops::{Op, UserData};
use crate::shard::ShardCore;
use crate::stats::Counters;
use crate::sys::runtime;
use crate::sys::uring::Completion;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Batches handled per poll before the driver lets other tasks run.
const MAX_BATCHES_PER_POLL: usize = 16;

/// Runs the shard's ring until the shard stops.
pub(crate) async fn run(core: Rc<ShardCore>) {
    let mut state = LoopState::default();
    poll_fn(|cx| poll_driver(&core, cx, &mut state)).await
}

/// Keeps one glommio read of the ring's eventfd outstanding; when it completes (the ring had
/// a completion while the driver was parked, or the driver asked for a turn of glommio's
/// reactor), wakes the driver.
pub(crate) async fn eventfd_waiter(core: Rc<ShardCore>) {
    let Some(d) = core.driver() else { return };
    let mut efd = match runtime::EventfdReader::new(d.eventfd()) {
        Ok(r) => r,
        Err(e) => {
            log::error!(
                "shard {}: cannot watch the ring's eventfd: {e}",
                core.info.id
            );
            return;
        }
    };
    loop {
        if let Err(e) = efd.read().await {
            log::error!("shard {}: reading the ring's eventfd: {e}", core.info.id);
            return;
        }
        if core.is_stopped() {
            return;
        }
        if let Some(d) = core.driver() {
            d.glommio_turned();
            d.wake_driver();
        }
    }
}

#[derive(Debug, Default)]
struct LoopState {
    /// The driver yielded once with nothing to do; the activity count then.
    quiet_since: Option<u64>,
    /// When the driver began waiting with nothing to do (cleared when work arrives).
    idle_since: Option<Instant>,
}

fn poll_driver(core: &ShardCore, cx: &mut Context<'_>, st: &mut LoopState) -> Poll<()> {
    let Some(d) = core.driver() else {
        return Poll::Ready(());
    };
    d.set_waker(cx.waker());
    if d.is_parked() {
        d.set_parked(false);
        d.set_notifications(false);
    }
    if core.is_stopped() {
        return Poll::Ready(());
    }
    loop {
        let handled = drain(core, d);
        if handled > 0 {
            st.quiet_since = None;
            st.idle_since = None;
            // Let the woken connection tasks run, then come back for what they queued.
            return yield_or_turn(d, cx);
        }
        if let Some(since) = st.idle_since {
            // The last wait ended with nothing but a tick. Idle for `driver_block` in all:
            // park through glommio (no timer, no CPU) until the ring has a completion.
            // Sooner than that (the tick is periodic, not timed from the wait), wait again.
            if since.elapsed() >= d.block() {
                st.idle_since = None;
                return park(core, d, cx);
            }
            d.idle_wait();
            continue;
        }
        // Nothing completed. First one quiet round: yield so that tasks woken by other tasks
        // (not by us) run and can give us work.
        let activity = d.activity();
        if st.quiet_since != Some(activity) {
            st.quiet_since = Some(activity);
            return yield_or_turn(d, cx);
        }
        // Quiet: spin briefly if that has been paying, else wait in our own ring (one syscall
        // per wake-up) — unless glommio is due a turn; then park through it.
        if d.last_glommio_turn().elapsed() >= GLOMMIO_TURN || d.block().is_zero() {
            return park(core, d, cx);
        }
        st.idle_since = Some(Instant::now());
        d.idle_wait();
        st.quiet_since = None;
    }
}

/// Submits, reaps and dispatches until the ring has nothing more right now (bounded).
fn drain(core: &ShardCore, d: &Driver) -> usize {
    let mut handled = 0;
    for _ in 0..MAX_BATCHES_PER_POLL {
        d.submit();
        let n = d.reap_batch();
        if n == 0 {
            break;
        }
        let now = Instant::now();
        for i in 0..n {
            let c = d.batch_item(i);
            // Ticks and cancels are bookkeeping, not work: they must not keep an idle
            // driver awake.
            if matches!(
                UserData(c.user_data).op(),
                Some(Op::Accept | Op::Recv | Op::Send | Op::Poke)
            ) {
                handled += 1;
            }
            dispatch(core, d, c, now);
        }
        d.rearm_starved();
        if n < super::BATCH {
            break; // the CQ is empty
        }
    }
    // What the dispatch queued (re-armed receives) goes out with what the woken tasks queue,
    // in the next poll's first enter: one syscall for both.
    handled
}

/// Wakes ourselves so queued tasks run first — or, when glommio's reactor has not run for a
/// while, gives it a turn: signal our eventfd (its read in glommio completes at once) and
/// wait for that instead of waking ourselves.
fn yield_or_turn(d: &Driver, cx: &mut Context<'_>) -> Poll<()> {
    if d.take_turn_request() || d.last_glommio_turn().elapsed() >= GLOMMIO_TURN {
        d.set_parked(true);
        d.signal_eventfd();
        return Poll::Pending;
    }
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// Parks through glommio: the ring signals its eventfd on the next completion.
fn park(core: &ShardCore, d: &Driver, cx: &mut Context<'_>) -> Poll<()> {
    // Stop the tick, and take its last completions (bookkeeping, not work) before sleeping.
    d.disarm_tick();
    if drain(core, d) > 0 {
        cx.waker().wake_by_ref(); // work came in meanwhile: serve it first
        return Poll::Pending;
    }
    d.set_notifications(true);
    d.submit();
    if d.has_completions() {
        d.set_notifications(false);
        d.signal_eventfd(); // come straight back through the waiter
    }
    d.set_parked(true);
    d.glommio_parks.set(d.glommio_parks.get() + 1);
    Poll::Pending
}

/// Handles one completion.
fn dispatch(core: &ShardCore, d: &Driver, c: Completion, now: Instant) {
    let ud = UserData(c.user_data);
    match ud.op() {
        Some(Op::Accept) => {
            if !c.more() {
                d.accept_ended();
            }
            let hook = d.accept_hook();
            match &*hook {
                Some(h) => h(c.result),
                None if c.result >= 0 => {
                    // SAFETY: a descriptor the kernel just gave us, used by nobody.
                    unsafe { libc::close(c.result) };
                }
                None => {}
            }
        }
        Some(Op::Cancel) => d.cancel_done(),
        Some(Op::Tick) => d.ticked(c.more()),
        Some(Op::Poke) => d.poked(),
        Some(Op::Poked) => {}
        Some(op @ (Op::Recv | Op::Send)) => {
            let slot = ud.slot();
            if slot as usize >= d.slots() {
                return;
            }
            let io = d.io(slot);
            if io.gen.get() != ud.gen() || io.closed.get() {
                // Late completion for a reused entry: only a buffer it carries matters.
                drop(d.take_buffer(&c));
                return;
            }
            io.ops.set(io.ops.get().saturating_sub(1));
            let s = core.slots.get(slot);
            let wake = if op == Op::Recv {
                on_recv(core, d, slot, c, now);
                true
            } else {
                on_send(core, d, slot, c, now);
                // Only a connection that waits for this send needs to run now.
                io.tx_waiter.take() || c.result < 0
            };
            if io.orphaned.get() {
                if d.close_if_idle(slot) {
                    core.release_slot(slot); // the driver's share of the slot
                }
            } else if wake {
                s.wake();
            }
        }
        None => {}
    }
}

fn on_recv(core: &ShardCore, d: &Driver, slot: u32, c: Completion, now: Instant) {
    let io = d.io(slot);
    let slab = d.take_buffer(&c);
    if c.result > 0 {
        io.recv.set(Recv::Idle);
        d.recv_completions.set(d.recv_completions.get() + 1);
        match slab {
            Some(slab) if !io.orphaned.get() => {
                let n = c.result as usize;
                if let Some(t) = io.starved_at.take() {
                    d.pool().record_wait(now.saturating_duration_since(t));
                }
                Counters::inc(&core.counters.chunks_received);
                Counters::add(&core.counters.bytes_received, n as u64);
                io.push_rx(RxItem {
                    slab,
                    len: n as u32,
                    seq: core.next_seq(),
                    at: now,
                });
            }
            Some(_lingering) => {} // dropped: a lingering close discards what arrives
            None => {
                io.recv.set(Recv::Done(-libc::EIO));
                return;
            }
        }
        d.arm_recv(slot);
        return;
    }
    drop(slab);
    match -c.result {
        libc::ENOBUFS if !io.orphaned.get() => d.starve(slot),
        libc::ENOBUFS => io.recv.set(Recv::Done(c.result)),
        _ => io.recv.set(Recv::Done(c.result)),
    }
}

fn on_send(core: &ShardCore, d: &Driver, slot: u32, c: Completion, now: Instant) {
    let io = d.io(slot);
    io.tx_busy.set(false);
    io.tx_hold.borrow_mut().take(); // the kernel is done with the slab: back to the pool
    let counters = &core.counters;
    if c.result < 0 {
        io.tx_error.set(c.result);
    } else {
        Counters::add(&counters.bytes_sent, c.result as u64);
        Counters::inc(&counters.sends);
        if d.enters() <= io.tx_epoch.get() + 1 {
            Counters::inc(&counters.sends_sync);
        } else {
            Counters::inc(&counters.sends_async);
        }
        if let Some(t) = io.unanswered.take() {
            core.record_latency(now.saturating_duration_since(t));
        }
    }
    if io.fin_after_send.take() {
        // SAFETY: plain shutdown on the orphaned connection's open socket.
        unsafe { libc::shutdown(io.fd.get(), libc::SHUT_WR) };
    }
}
