//! What every example server shares: the command-line flags that build a `ServerConfig`, and
//! the run loop — signals, histogram output, final stats.
//!
//! Profiling output of a running server (all of it is the *merged* service-latency histogram
//! of every shard: from a chunk's receive to the next completed send on that connection):
//!
//! * at shutdown (SIGINT or SIGTERM): the per-shard stats table, then the full percentile
//!   distribution in HdrHistogram's `.hgrm` text format on stdout (and into `--hgrm FILE`);
//! * on demand: `kill -USR1 <pid>` prints the stats and the distribution so far to stderr
//!   (and rewrites `--hgrm FILE`);
//! * periodically: `--hlog FILE` writes an HdrHistogram interval log (V2 compressed), one
//!   interval per `--hlog-interval` seconds, readable by HistogramLogProcessor and by
//!   `hdrhistogram::serialization::interval_log`.
#![allow(dead_code)] // each example uses a different subset

use clap::Args;
use hdrhistogram::Histogram;
use shardnet::{hgrm, Cores, IoBackend, PoolConfig, Server, ServerConfig, StatsSnapshot};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Flags every example server takes.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// Cores to run shards on: `all`, or a CPU list like `0,1` / `0-3`.
    #[arg(long, default_value = "all")]
    pub cores: Cores,
    /// Run this many shards on the first allowed cores (instead of --cores).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Bytes per pool slab.
    #[arg(long, default_value_t = PoolConfig::default().slab_size)]
    pub slab_size: usize,
    /// Slabs per shard.
    #[arg(long, default_value_t = PoolConfig::default().slabs)]
    pub slabs: usize,
    /// Back the pools with huge pages where the system allows.
    #[arg(long)]
    pub huge_pages: bool,
    /// Lock the pools in RAM where the system allows.
    #[arg(long)]
    pub lock_memory: bool,
    /// Connections per shard.
    #[arg(long, default_value_t = ServerConfig::default().max_connections)]
    pub max_connections: usize,
    /// Close a connection whose receive waited this many seconds (0 disables).
    #[arg(long, default_value_t = 60.0)]
    pub recv_timeout: f64,
    /// Close a connection whose send made no progress for this many seconds (0 disables).
    #[arg(long, default_value_t = 30.0)]
    pub send_timeout: f64,
    /// Seconds a shutdown lets open connections finish.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// How sockets are driven: `ring` (the shard's own io_uring ring) or `glommio`.
    #[arg(long, default_value = "ring")]
    pub backend: IoBackend,
    /// Ring backend: microseconds an idle driver waits in its ring before parking in glommio.
    #[arg(long, default_value_t = ServerConfig::default().driver_block.as_micros() as u64)]
    pub driver_block_us: u64,
    /// Ring backend: microseconds an idle driver spins before waiting in its ring.
    #[arg(long, default_value_t = ServerConfig::default().driver_spin.as_micros() as u64)]
    pub driver_spin_us: u64,
    /// Ring backend: create the ring with DEFER_TASKRUN instead of COOP_TASKRUN.
    #[arg(long)]
    pub defer_taskrun: bool,
    /// Write the merged latency distribution (.hgrm) here at shutdown and on SIGUSR1.
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Write an HdrHistogram interval log of the merged latency here while serving.
    #[arg(long)]
    pub hlog: Option<PathBuf>,
    /// Seconds per interval of --hlog.
    #[arg(long, default_value_t = 1.0)]
    pub hlog_interval: f64,
}

fn seconds(name: &str, s: f64) -> Result<Option<Duration>, String> {
    if !s.is_finite() || !(0.0..=1e7).contains(&s) {
        return Err(format!(
            "--{name} must be between 0 and 1e7 seconds, got {s}"
        ));
    }
    Ok((s > 0.0).then(|| Duration::from_secs_f64(s)))
}

impl ServerArgs {
    /// The server configuration these flags describe.
    ///
    /// # Errors
    /// A message naming the bad flag.
    pub fn config(&self, default_addr: &str) -> Result<ServerConfig, String> {
        let addr = match self.addr {
            Some(a) => a,
            None => default_addr
                .parse()
                .map_err(|e| format!("bad default address: {e}"))?,
        };
        let cores = match self.shards {
            Some(n) => Cores::Count(n),
            None => self.cores.clone(),
        };
        if self.hlog_interval < 0.01 || !self.hlog_interval.is_finite() {
            return Err("--hlog-interval must be at least 0.01 seconds".into());
        }
        Ok(ServerConfig {
            addr,
            cores,
            pool: PoolConfig {
                slab_size: self.slab_size,
                slabs: self.slabs,
                huge_pages: self.huge_pages,
                lock_memory: self.lock_memory,
            },
            max_connections: self.max_connections,
            recv_timeout: seconds("recv-timeout", self.recv_timeout)?,
            send_timeout: seconds("send-timeout", self.send_timeout)?,
            drain_timeout: seconds("drain", self.drain)?.unwrap_or(Duration::ZERO),
            io_backend: self.backend,
            driver_block: Duration::from_micros(self.driver_block_us),
            driver_spin: Duration::from_micros(self.driver_spin_us),
            defer_taskrun: self.defer_taskrun,
            ..ServerConfig::default()
        })
    }
}

/// Prints where the server listens, serves until SIGINT/SIGTERM, and prints the final stats
/// and latency distribution. Returns the process's exit code: 0 after a clean shutdown.
pub fn run(name: &str, server: Server, args: &ServerArgs) -> ExitCode {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    eprintln!(
        "{name}: listening on {} with {} shards on cores {:?} (pid {})",
        server.local_addr(),
        server.shard_count(),
        server.cores(),
        std::process::id()
    );
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR1]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{name}: cannot install signal handlers: {e}");
            server.shutdown();
            let _ = server.join();
            return ExitCode::FAILURE;
        }
    };
    let handle = server.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let hlog = args.hlog.clone().map(|path| {
        let (handle, stop) = (handle.clone(), stop.clone());
        let interval = Duration::from_secs_f64(args.hlog_interval);
        let name = name.to_string();
        std::thread::spawn(move || {
            if let Err(e) = write_hlog(&path, &handle, &stop, interval) {
                eprintln!("{name}: --hlog {}: {e}", path.display());
            }
        })
    });
    {
        let (name, hgrm_path) = (name.to_string(), args.hgrm.clone());
        let handle = handle.clone();
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if sig == SIGUSR1 {
                    match handle.stats(Duration::from_secs(5)) {
                        Ok(s) => {
                            let mut err = std::io::stderr().lock();
                            let _ = writeln!(err, "{name}: stats on SIGUSR1\n{s}");
                            let _ = write_distribution(&mut err, &s.merged().latency);
                            if let Some(p) = &hgrm_path {
                                save_hgrm(&name, p, &s.merged().latency);
                            }
                        }
                        Err(e) => eprintln!("{name}: stats: {e}"),
                    }
                    continue;
                }
                eprintln!("{name}: signal {sig}, shutting down");
                handle.shutdown();
                break;
            }
        });
    }
    let result = server.join();
    stop.store(true, Ordering::SeqCst);
    if let Some(t) = hlog {
        let _ = t.join();
    }
    match result {
        Ok(stats) => {
            print_final(name, &stats, args.hgrm.as_deref());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_final(name: &str, stats: &StatsSnapshot, hgrm_path: Option<&Path>) {
    let latency = stats.merged().latency;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{stats}");
    let _ = writeln!(
        out,
        "\nservice latency distribution (microseconds, all shards):"
    );
    let _ = write_distribution(&mut out, &latency);
    if let Some(p) = hgrm_path {
        save_hgrm(name, p, &latency);
    }
}

/// The `.hgrm` distribution of a nanosecond histogram, in microseconds.
fn write_distribution(out: &mut impl Write, h: &Histogram<u64>) -> std::io::Result<()> {
    hgrm::write_percentile_distribution(h, out, 5, 1000.0)
}

fn save_hgrm(name: &str, path: &Path, h: &Histogram<u64>) {
    let result = File::create(path).and_then(|f| {
        let mut w = BufWriter::new(f);
        write_distribution(&mut w, h)?;
        w.flush()
    });
    if let Err(e) = result {
        eprintln!("{name}: --hgrm {}: {e}", path.display());
    }
}

/// Streams one interval per `interval` until `stop`: each interval is the difference between
/// two merged snapshots.
fn write_hlog(
    path: &Path,
    handle: &shardnet::ServerHandle,
    stop: &AtomicBool,
    interval: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    // Unbuffered: each interval reaches the file as it is written, so the log can be read
    // while the server runs.
    let mut out = File::create(path)?;
    let start = Instant::now();
    let header = hgrm::IntervalLogHeader {
        comment: Some(format!(
            "shardnet merged service latency (ns), {:?} intervals",
            interval
        )),
        start_time: SystemTime::now(),
        max_value_divisor: 1e6,
    };
    let mut previous = shardnet::stats::new_latency_histogram();
    let mut last = Duration::ZERO;
    let intervals = std::iter::from_fn(|| {
        // Sleep to the next boundary in small steps so a shutdown is noticed quickly.
        let next = last + interval;
        while start.elapsed() < next {
            if stop.load(Ordering::SeqCst) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10).min(next - start.elapsed()));
        }
        let now = handle.stats(Duration::from_secs(5)).ok()?.merged().latency;
        let mut delta = now.clone();
        delta.subtract(&previous).ok()?;
        previous = now;
        let iv = hgrm::Interval {
            start: last,
            length: interval,
            histogram: delta,
        };
        last = next;
        Some(iv)
    });
    hgrm::write_interval_log(&mut out, &header, intervals)?;
    Ok(())
}
