//! `shardnet-load`: a TCP load generator for request/response protocols (echo, RESP, HTTP/1.1)
//! that records latency in HdrHistograms and writes them in HdrHistogram's formats.
//!
//! ```text
//! cargo run --release --bin shardnet-load -- --addr 127.0.0.1:9000 --connections 8 \
//!     --duration 10s --hgrm run.hgrm --json run.json
//! cargo run --release --bin shardnet-load -- --addr 127.0.0.1:9000 --rate 20000 ...
//! cargo run --release --bin shardnet-load -- --addr 127.0.0.1:9000 --size 16..4096 \
//!     --reconnect-after 1..200 --half-close 0.2 --reset 0.1 ...   # churn
//! cargo run --release --bin shardnet-load -- plot --out cmp.svg a.hgrm b.hgrm
//! ```
//!
//! The main thread parses the arguments, picks cores ([`affinity`]), starts one [`worker`] per
//! thread, waits until every connection is up, starts the clock, then once a second merges the
//! threads' interval histograms, prints a progress line and appends to the interval log. At
//! the end it prints the summary ([`report`]) and writes the requested files. Exit status 0
//! means every request was answered correctly; 1 means errors were counted or the run could
//! not start; 2 means bad arguments.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

mod affinity;
mod cli;
mod conn;
mod cpu;
mod errors;
mod plot;
mod protocol;
mod report;
mod schedule;
mod stamp;
mod sys;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use hdrhistogram::Histogram;
use shardnet::hgrm::{self, Distribution, Interval, IntervalLogHeader};

use crate::cli::{Cli, Command, PlotArgs, ProtocolKind, RunArgs};
use crate::conn::{Churn, ChurnCounts};
use crate::cpu::{CpuSample, CpuUse};
use crate::errors::{ErrorCounts, ErrorKind};
use crate::protocol::Protocol;
use crate::report::{ChurnSummary, Cpu, Errors, Latency, Summary};
use crate::schedule::Schedule;
use crate::worker::{FromWorker, IntervalReport, Mode, Plan, Setup, ToWorker};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Plot(args)) => plot_files(args),
        None => run(&cli.run),
    };
    match result {
        Ok(code) => code,
        Err(Failed::Usage(message)) => {
            eprintln!("shardnet-load: error: {message}");
            ExitCode::from(2)
        }
        Err(Failed::Run(message)) => {
            eprintln!("shardnet-load: error: {message}");
            ExitCode::from(1)
        }
    }
}

/// Why a command failed: bad input (exit 2, like clap's errors) or a failed run (exit 1).
#[derive(Debug)]
enum Failed {
    Usage(String),
    Run(String),
}

impl From<String> for Failed {
    fn from(message: String) -> Failed {
        Failed::Run(message)
    }
}

/// The `plot` subcommand.
fn plot_files(args: &PlotArgs) -> Result<ExitCode, Failed> {
    let mut series = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let d = Distribution::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let label = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into(),
        );
        series.push(plot::Series {
            label,
            rows: d.rows,
        });
    }
    write_file(&args.out, |w| {
        plot::write_svg(w, &args.title, &args.unit, &series)
    })?;
    eprintln!(
        "shardnet-load: wrote {} ({} curves)",
        args.out.display(),
        series.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` and writes it with `f` through a buffer.
fn write_file(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), String> {
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut w = BufWriter::new(file);
    f(&mut w)
        .and_then(|()| w.flush())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Resolves HOST:PORT, preferring an IPv4 address (servers often listen on 127.0.0.1 only).
fn resolve(addr: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve --addr {addr}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("--addr {addr} resolves to no address"))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A started worker thread, seen from the main thread.
struct WorkerHandle {
    start: mpsc::Sender<ToWorker>,
    recycle: mpsc::Sender<Histogram<u64>>,
    thread: thread::JoinHandle<()>,
}

/// A load run.
fn run(args: &RunArgs) -> Result<ExitCode, Failed> {
    let addr = resolve(&args.addr).map_err(Failed::Usage)?;
    if args.duration.is_zero() {
        return Err(Failed::Usage("--duration must be more than 0".into()));
    }
    if args.timeout.is_zero() {
        return Err(Failed::Usage("--timeout must be more than 0".into()));
    }
    if args.half_close + args.reset > 1.0 {
        return Err(Failed::Usage(
            "--half-close and --reset are fractions of the closes: together at most 1".into(),
        ));
    }
    let churn = args.reconnect_after.map(|after| Churn {
        after,
        half_close: args.half_close,
        reset: args.reset,
    });
    // Fail on an unwritable output before any load is sent.
    for path in [&args.hgrm, &args.hlog, &args.json, &args.plot]
        .into_iter()
        .flatten()
    {
        File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    }
    let proto = Arc::new(Protocol::new(
        args.protocol,
        args.size,
        args.keys,
        args.set_ratio,
        &args.path,
        &args.addr,
    ));
    let want_files = u64::from(args.connections) + 64;
    match sys::raise_open_file_limit(want_files) {
        Ok(limit) if limit < want_files => eprintln!(
            "shardnet-load: warning: the open-file limit is {limit}, below the {want_files} \
             this run needs; connections beyond it will fail"
        ),
        Ok(_) => {}
        Err(e) => eprintln!("shardnet-load: warning: cannot read the open-file limit: {e}"),
    }
    let choice = affinity::choose(addr, args.cores.as_deref());
    let threads = (args
        .threads
        .map_or(choice.cores.len().max(1), |t| t as usize))
    .min(args.connections as usize)
    .max(1);
    if args.threads.is_some_and(|t| t as usize > threads) {
        eprintln!("shardnet-load: note: {threads} threads, one per connection at most");
    }
    eprintln!(
        "shardnet-load: {threads} client thread(s) on cores {}: {}",
        affinity::fmt_list(&choice.cores[..threads.min(choice.cores.len())]),
        choice.reason
    );
    let mode = match args.rate {
        Some(rate) => Mode::Open {
            schedule: Schedule::new(rate, u64::from(args.connections)),
            max_inflight: args.max_inflight as usize,
        },
        None => Mode::Closed {
            pipeline: args.pipeline as usize,
        },
    };

    let (to_main, from_workers) = mpsc::channel();
    let mut workers = Vec::with_capacity(threads);
    for w in 0..threads {
        let (start_tx, start_rx) = mpsc::channel();
        let (recycle_tx, recycle_rx) = mpsc::channel();
        let setup = Setup {
            worker: w,
            core: (!choice.cores.is_empty()).then(|| choice.cores[w % choice.cores.len()]),
            conns: (0..u64::from(args.connections))
                .filter(|c| *c as usize % threads == w)
                .collect(),
            addr,
            proto: Arc::clone(&proto),
            mode,
            timeout: args.timeout,
            seed: args.seed,
            churn,
        };
        let tx = to_main.clone();
        let thread = thread::Builder::new()
            .name(format!("load-{w}"))
            .spawn(move || worker::run(setup, &tx, &start_rx, &recycle_rx))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        workers.push(WorkerHandle {
            start: start_tx,
            recycle: recycle_tx,
            thread,
        });
    }
    drop(to_main);

    // Every connection up, or the run does not start.
    let connect_deadline = Instant::now() + args.timeout + Duration::from_secs(5);
    let mut connect_errors = ErrorCounts::default();
    let (mut ready, mut failed) = (0, 0);
    while ready + failed < threads {
        let wait = connect_deadline.saturating_duration_since(Instant::now());
        match from_workers.recv_timeout(wait) {
            Ok(FromWorker::Connected) => ready += 1,
            Ok(FromWorker::ConnectFailed { errors, .. }) => {
                connect_errors.merge(&errors);
                failed += 1;
            }
            Ok(_) => {}
            Err(_) => {
                return Err(Failed::Run(format!(
                    "connecting to {addr} did not finish within {:.1} s",
                    (args.timeout + Duration::from_secs(5)).as_secs_f64()
                )))
            }
        }
    }
    if failed > 0 {
        for w in &workers {
            let _ = w.start.send(ToWorker::Abort);
        }
        for w in workers {
            let _ = w.thread.join();
        }
        let mut message = format!(
            "{} of {} connections to {addr} could not be made:",
            connect_errors.total(),
            args.connections
        );
        for kind in ErrorKind::ALL {
            let n = connect_errors.count(kind);
            if n > 0 {
                let first = connect_errors.first(kind).unwrap_or("");
                message.push_str(&format!(" {} {n} (first: {first});", kind.name()));
            }
        }
        return Err(Failed::Run(message));
    }

    // Go.
    let warmup_ns = nanos(args.warmup);
    let ticks: Arc<[schedule::Tick]> = schedule::ticks(warmup_ns, nanos(args.duration)).into();
    let epoch = Instant::now();
    let wall_epoch = SystemTime::now();
    let plan = Plan {
        epoch,
        ticks: Arc::clone(&ticks),
        measure_from_ns: warmup_ns,
    };
    let cpu_start = CpuSample::now();
    for w in &workers {
        let _ = w.start.send(ToWorker::Start(plan.clone()));
    }

    let (hlog_tx, hlog_thread) = match &args.hlog {
        Some(path) => {
            let (tx, rx) = mpsc::channel::<Interval<Histogram<u64>>>();
            let header = IntervalLogHeader {
                comment: Some(format!(
                    "[Logged with shardnet-load {}]\n{}",
                    env!("CARGO_PKG_VERSION"),
                    std::env::args().collect::<Vec<_>>().join(" ")
                )),
                start_time: wall_epoch + args.warmup,
                max_value_divisor: 1e6,
            };
            let path = path.clone();
            let handle = thread::spawn(move || {
                write_file(&path, |w| {
                    hgrm::write_interval_log(w, &header, rx.iter())
                        .map(drop)
                        .map_err(|e| std::io::Error::other(e.to_string()))
                })
            });
            (Some(tx), Some(handle))
        }
        None => (None, None),
    };

    let grace = args.timeout + Duration::from_secs(5);
    let mut total = worker::new_histogram();
    let mut merged = worker::new_histogram();
    let mut lag = worker::new_histogram();
    let mut errors = ErrorCounts::default();
    let mut churned = ChurnCounts::default();
    let mut done = vec![false; threads];
    let mut in_flight_at_end = 0;
    let mut reports: HashMap<usize, Vec<IntervalReport>> = HashMap::new();
    let mut cpu_measure_start = (warmup_ns == 0).then_some(cpu_start);
    let mut cpu_last = cpu_start;
    let mut cpu_end = cpu_start;
    let mut measured_end_ns = warmup_ns;
    let mut last_end_ns = 0;
    let mut lost_thread = false;

    let mut absorb = |msg: FromWorker,
                      reports: &mut HashMap<usize, Vec<IntervalReport>>,
                      done: &mut Vec<bool>| match msg {
        FromWorker::Interval(r) => reports.entry(r.tick).or_default().push(r),
        FromWorker::Done {
            worker,
            lag: l,
            in_flight,
        } => {
            done[worker] = true;
            let _ = lag.add(&l);
            in_flight_at_end += in_flight;
        }
        FromWorker::Connected | FromWorker::ConnectFailed { .. } => {}
    };

    for (i, tick) in ticks.iter().enumerate() {
        let deadline = epoch + Duration::from_nanos(tick.at_ns) + grace;
        loop {
            let have = reports.get(&i).map_or(&[][..], Vec::as_slice);
            let waiting = (0..threads).any(|w| !done[w] && !have.iter().any(|r| r.worker == w));
            if !waiting {
                break;
            }
            match from_workers.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(msg) => absorb(msg, &mut reports, &mut done),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    done.iter_mut().for_each(|d| *d = true);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    lost_thread = true;
                    done.iter_mut().for_each(|d| *d = true);
                }
            }
        }
        let cpu_now = CpuSample::now();
        let start_ns = if i == 0 { 0 } else { ticks[i - 1].at_ns };
        merged.reset();
        let mut completed = 0;
        let mut alive = 0;
        let mut end_ns = start_ns;
        for r in reports.remove(&i).unwrap_or_default() {
            let _ = merged.add(&r.hist);
            completed += r.completed;
            alive += r.alive;
            errors.merge(&r.errors);
            churned.merge(&r.churn);
            end_ns = end_ns.max(r.end_ns.min(tick.at_ns));
            let mut h = r.hist;
            h.reset();
            let _ = workers[r.worker].recycle.send(h);
        }
        if tick.measured {
            let _ = total.add(&merged);
            measured_end_ns = end_ns.max(measured_end_ns);
            if let Some(tx) = &hlog_tx {
                let _ = tx.send(Interval {
                    start: Duration::from_nanos(start_ns.saturating_sub(warmup_ns)),
                    length: Duration::from_nanos(end_ns.saturating_sub(start_ns)),
                    histogram: merged.clone(),
                });
            }
        } else if ticks.get(i + 1).is_some_and(|t| t.measured) || i + 1 == ticks.len() {
            cpu_measure_start = Some(cpu_now);
        }
        if !args.quiet {
            let secs = (end_ns.saturating_sub(start_ns)) as f64 / 1e9;
            let rps = if secs > 0.0 {
                completed as f64 / secs
            } else {
                0.0
            };
            let mut line = report::progress_line(
                end_ns as f64 / 1e9,
                tick.measured,
                rps,
                &total,
                errors.total(),
                cpu_now.since(&cpu_last).percent_of_one_core(),
            );
            if alive < args.connections as usize {
                line.push_str(&format!("  connections {alive}/{}", args.connections));
            }
            eprintln!("{line}");
        }
        cpu_last = cpu_now;
        cpu_end = cpu_now;
        last_end_ns = end_ns;
        if done.iter().all(|d| *d) {
            break;
        }
    }
    // Stopped before the plan's end: every connection failed (or a thread was lost).
    let ended_early = ticks.last().is_some_and(|t| last_end_ns < t.at_ns);
    // Collect the final reports.
    let deadline = Instant::now() + grace;
    while !done.iter().all(|d| *d) {
        match from_workers.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(msg) => absorb(msg, &mut reports, &mut done),
            Err(_) => {
                lost_thread = true;
                break;
            }
        }
    }
    drop(hlog_tx);
    let join_deadline = Instant::now() + Duration::from_secs(2);
    for w in workers {
        while !w.thread.is_finished() && Instant::now() < join_deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if w.thread.is_finished() {
            let _ = w.thread.join();
        }
    }

    let cpu: CpuUse = cpu_end.since(&cpu_measure_start.unwrap_or(cpu_start));
    let measured_s = measured_end_ns.saturating_sub(warmup_ns) as f64 / 1e9;
    let mut error_details = BTreeMap::new();
    for kind in ErrorKind::ALL {
        if let Some(first) = errors.first(kind) {
            error_details.insert(kind.name(), first.to_owned());
        }
    }
    let open = args.rate.is_some();
    let summary = Summary {
        protocol: match args.protocol {
            ProtocolKind::Echo => "echo",
            ProtocolKind::Resp => "resp",
            ProtocolKind::Http => "http",
        },
        addr: args.addr.clone(),
        mode: if open { "open" } else { "closed" },
        connections: args.connections,
        pipeline: (!open).then_some(args.pipeline),
        rate: args.rate,
        threads,
        cores: choice.cores.iter().copied().take(threads).collect(),
        cores_reason: choice.reason.clone(),
        size: args.size.max,
        size_min: args.size.min,
        stamped: proto.stamped(),
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: args.duration.as_secs_f64(),
        measured_s,
        ended_early,
        requests: total.len(),
        throughput_rps: if measured_s > 0.0 {
            total.len() as f64 / measured_s
        } else {
            0.0
        },
        in_flight_at_end,
        reconnects: churned.reconnects,
        churn: args.reconnect_after.map(|after| ChurnSummary {
            reconnect_after: after.to_string(),
            half_close: args.half_close,
            reset: args.reset,
            reconnects: churned.reconnects,
            closes: churned.closes,
            half_closes: churned.half_closes,
            resets: churned.resets,
            abandoned: churned.abandoned,
        }),
        errors: Errors::of(&errors),
        error_details,
        latency_us: Latency::of(&total),
        send_lag_us: open.then(|| Latency::of(&lag)),
        client_cpu: Cpu::from(cpu),
    };
    let mut stdout = std::io::stdout().lock();
    report::write_summary(&summary, &mut stdout)
        .map_err(|e| Failed::Run(format!("stdout: {e}")))?;
    drop(stdout);

    let mut failures = Vec::new();
    if let Some(path) = &args.hgrm {
        if let Err(e) = write_file(path, |w| {
            hgrm::write_percentile_distribution(&total, w, 5, 1000.0)
        }) {
            failures.push(e);
        }
    }
    if let Some(path) = &args.json {
        if let Err(e) = write_file(path, |w| {
            serde_json::to_writer_pretty(&mut *w, &summary).map_err(std::io::Error::other)?;
            writeln!(w)
        }) {
            failures.push(e);
        }
    }
    if let Some(path) = &args.plot {
        let series = [plot::Series {
            label: format!("{} {} {}", summary.protocol, summary.mode, summary.addr),
            rows: Distribution::from_histogram(&total, 5, 1000.0).rows,
        }];
        if let Err(e) = write_file(path, |w| {
            plot::write_svg(w, "Latency by Percentile Distribution", "µs", &series)
        }) {
            failures.push(e);
        }
    }
    if let Some(handle) = hlog_thread {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("the interval log writer failed".to_owned()),
        }
    }
    if lost_thread {
        failures.push("a client thread stopped reporting; results may be incomplete".to_owned());
    }
    if !failures.is_empty() {
        return Err(Failed::Run(failures.join("; ")));
    }
    if errors.total() > 0 {
        eprintln!(
            "shardnet-load: {} error(s) during the run; exit status 1",
            errors.total()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
