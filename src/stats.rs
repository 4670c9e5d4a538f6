//! Per-shard counters and histograms, and the merged view across shards.
//!
//! Each shard owns plain `Cell` counters and hdrhistogram histograms; recording is a few
//! adds on shard-local memory — no lock, no atomic, no allocation. A snapshot copies them
//! (that copy allocates, once per snapshot), and snapshots of all shards merge with `add`.
//!
//! Latencies are recorded in nanoseconds, from 1 ns to 60 s with 3 significant digits.

use crate::pool::PoolStats;
use hdrhistogram::Histogram;
use std::cell::Cell;
use std::fmt;

/// Largest latency a shardnet histogram records (60 s, in nanoseconds); larger values saturate.
pub const LATENCY_MAX_NS: u64 = 60_000_000_000;

/// A new empty latency histogram: 1 ns ..= 60 s, 3 significant digits (about 200 KiB).
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).expect("constant histogram bounds are valid")
}

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// Live counters of one shard (shard-local `Cell`s).
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $( pub(crate) $name: Cell<u64>, )*
        }

        impl Counters {
            /// Copies every counter.
            pub(crate) fn snapshot(&self) -> ShardCounters {
                ShardCounters { $( $name: self.$name.get(), )* }
            }
        }

        /// The counters of one shard (or, merged, of all shards) at one moment.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct ShardCounters {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl ShardCounters {
            /// Adds another shard's counters to these.
            pub fn merge(&mut self, other: &ShardCounters) {
                $( self.$name += other.$name; )*
            }
        }
    };
}

counters! {
    /// Connections accepted and handed to the handler.
    connections_accepted,
    /// Connections open right now.
    connections_active,
    /// Most connections open at once.
    connections_peak,
    /// Connections accepted and closed at once because `max_connections` was reached.
    connections_rejected,
    /// Accept calls that failed (other than running out of descriptors).
    accept_errors,
    /// Times accepting paused because the process or system ran out of descriptors
    /// (`EMFILE`, `ENFILE`) or memory (`ENOBUFS`, `ENOMEM`).
    accept_backoffs,
    /// Connections that ended with the peer closing its side (EOF).
    closed_peer,
    /// Connections that ended with a reset (`ECONNRESET`, `EPIPE`).
    closed_reset,
    /// Connections closed by a receive or send timeout.
    closed_timeout,
    /// Connections that ended with an I/O error or a handler error or panic.
    closed_error,
    /// Connections closed by the server's shutdown.
    closed_shutdown,
    /// Connections the handler closed while the peer was still open.
    closed_local,
    /// Receive timeouts that fired.
    recv_timeouts,
    /// Send timeouts that fired.
    send_timeouts,
    /// Bytes received.
    bytes_received,
    /// Chunks received (one per completed receive).
    chunks_received,
    /// Bytes sent.
    bytes_sent,
    /// Completed sends (a `send`, `send_vectored` or `flush` that finished).
    sends,
    /// Sends finished by their first, non-blocking attempt.
    sends_sync,
    /// Sends that found the socket buffer full and waited on the reactor.
    sends_async,
    /// Closes that lingered (FIN, then reading until the peer closed) so no reply was lost.
    lingering_closes,
    /// Handler futures that panicked (the connection is closed with reason error).
    handler_panics,
    /// io_uring backend: `io_uring_enter` calls on the shard's ring.
    ring_enters,
    /// io_uring backend: times the idle driver waited in its ring.
    ring_waits,
    /// io_uring backend: idle waits that spun first.
    driver_spins,
    /// io_uring backend: times the driver parked through glommio (idle longer than
    /// `driver_block`).
    glommio_parks,
}

impl ShardCounters {
    /// Fraction of sends finished by the first non-blocking attempt (1.0 when none were made).
    pub fn sync_send_ratio(&self) -> f64 {
        let total = self.sends_sync + self.sends_async;
        if total == 0 {
            1.0
        } else {
            self.sends_sync as f64 / total as f64
        }
    }

    /// Connections closed, over all reasons.
    pub fn connections_closed(&self) -> u64 {
        self.closed_peer
            + self.closed_reset
            + self.closed_timeout
            + self.closed_error
            + self.closed_shutdown
            + self.closed_local
    }
}

impl Counters {
    /// Adds one to `c`.
    #[inline]
    pub(crate) fn inc(c: &Cell<u64>) {
        c.set(c.get() + 1);
    }

    /// Adds `n` to `c`.
    #[inline]
    pub(crate) fn add(c: &Cell<u64>, n: u64) {
        c.set(c.get() + n);
    }
}

/// Everything one shard measured: counters, pool, histograms.
#[derive(Debug, Clone)]
pub struct ShardStats {
    /// The shard's index, 0-based.
    pub shard: usize,
    /// The CPU the shard is pinned to.
    pub cpu: usize,
    /// The shard's counters.
    pub counters: ShardCounters,
    /// The shard's pool.
    pub pool: PoolStats,
    /// Service latency in nanoseconds: from a chunk's receive to the next completed send on
    /// the same connection.
    pub latency: Histogram<u64>,
    /// Time receivers waited for a free slab, in nanoseconds.
    pub pool_wait: Histogram<u64>,
}

/// All shards' stats at one moment, and their merge.
#[derive(Debug, Clone)]
pub struct StatsSnapshot {
    /// One entry per shard, in shard order.
    pub shards: Vec<ShardStats>,
}

/// The sum of all shards.
#[derive(Debug, Clone)]
pub struct MergedStats {
    /// Counters summed over shards.
    pub counters: ShardCounters,
    /// Pools summed over shards.
    pub pool: PoolStats,
    /// All shards' service latencies (nanoseconds).
    pub latency: Histogram<u64>,
    /// All shards' pool waits (nanoseconds).
    pub pool_wait: Histogram<u64>,
}

impl StatsSnapshot {
    /// Merges the shards: counters add, histograms add.
    pub fn merged(&self) -> MergedStats {
        let mut m = MergedStats {
            counters: ShardCounters::default(),
            pool: PoolStats::default(),
            latency: new_latency_histogram(),
            pool_wait: new_latency_histogram(),
        };
        for (i, s) in self.shards.iter().enumerate() {
            m.counters.merge(&s.counters);
            if i == 0 {
                m.pool = s.pool;
            } else {
                m.pool.merge(&s.pool);
            }
            // Same bounds everywhere, so `add` cannot fail.
            let _ = m.latency.add(&s.latency);
            let _ = m.pool_wait.add(&s.pool_wait);
        }
        m
    }
}

/// Formats nanoseconds as microseconds with one decimal.
fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

/// One line of latency percentiles in microseconds: `p50 .. p99.99 max (n=...)`.
pub fn percentile_line(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".to_string();
    }
    format!(
        "p50={}us p90={}us p99={}us p99.9={}us p99.99={}us max={}us (n={})",
        us(h.value_at_quantile(0.50)),
        us(h.value_at_quantile(0.90)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.value_at_quantile(0.9999)),
        us(h.max()),
        h.len()
    )
}

impl fmt::Display for StatsSnapshot {
    /// A per-shard table (connections, bytes, pool high-water, sync-send hit rate, close
    /// reasons) and the merged latency percentiles.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>5} {:>4} {:>9} {:>7} {:>14} {:>14} {:>8} {:>9} {:>8} {:>7} {:>6}",
            "shard",
            "cpu",
            "accepted",
            "active",
            "bytes_in",
            "bytes_out",
            "pool_use",
            "pool_hw",
            "pool_wt",
            "sync%",
            "reject"
        )?;
        for s in &self.shards {
            let c = &s.counters;
            writeln!(
                f,
                "{:>5} {:>4} {:>9} {:>7} {:>14} {:>14} {:>8} {:>9} {:>8} {:>6.1}% {:>6}",
                s.shard,
                s.cpu,
                c.connections_accepted,
                c.connections_active,
                c.bytes_received,
                c.bytes_sent,
                s.pool.slabs_in_use,
                format!("{}/{}", s.pool.high_water, s.pool.slabs_total),
                s.pool.waits,
                c.sync_send_ratio() * 100.0,
                c.connections_rejected,
            )?;
        }
        let m = self.merged();
        let c = &m.counters;
        writeln!(
            f,
            "closed: peer={} reset={} timeout={} error={} shutdown={} local={}; accept errors={} backoffs={}; handler panics={}",
            c.closed_peer,
            c.closed_reset,
            c.closed_timeout,
            c.closed_error,
            c.closed_shutdown,
            c.closed_local,
            c.accept_errors,
            c.accept_backoffs,
            c.handler_panics
        )?;
        writeln!(
            f,
            "sends: {} ({:.1}% finished by the non-blocking attempt); chunks received: {}",
            c.sends,
            c.sync_send_ratio() * 100.0,
            c.chunks_received
        )?;
        writeln!(f, "service latency: {}", percentile_line(&m.latency))?;
        write!(f, "pool wait:       {}", percentile_line(&m.pool_wait))
    }
}
