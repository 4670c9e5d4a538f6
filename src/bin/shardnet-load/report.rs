//! What a run prints: the per-second progress line (stderr), the summary (stdout) and the
//! same summary as JSON.
//!
//! Latencies are recorded in nanoseconds and shown in microseconds. Percentiles are the
//! histogram's values at those quantiles (the highest value equivalent to the bucket, so at
//! most 0.1% above the true sample at 3 significant digits), the same values the `.hgrm` rows
//! show at those percentiles.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use hdrhistogram::Histogram;
use serde::Serialize;
use shardnet::hgrm::Distribution;

use crate::cpu::CpuUse;
use crate::errors::{ErrorCounts, ErrorKind};

/// Latency statistics in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Smallest.
    pub min: f64,
    /// Mean (as the `.hgrm` footer computes it).
    pub mean: f64,
    /// Standard deviation.
    pub stddev: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    /// 99.99th percentile.
    #[serde(rename = "p99.99")]
    pub p99_99: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// The statistics of a nanosecond histogram, in µs; all zero when it is empty.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        let footer = Distribution::from_histogram(h, 1, 1000.0).footer;
        Latency {
            min: us(h.min()),
            mean: footer.mean,
            stddev: footer.std_deviation,
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p99_9: us(h.value_at_quantile(0.999)),
            p99_99: us(h.value_at_quantile(0.9999)),
            max: footer.max,
        }
    }
}

/// Error counts for the JSON: `total` and one field per kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Errors {
    /// All errors.
    pub total: u64,
    /// Count per kind, keyed by [`ErrorKind::name`].
    #[serde(flatten)]
    pub by_kind: BTreeMap<&'static str, u64>,
}

impl Errors {
    /// From the merged counters.
    pub fn of(e: &ErrorCounts) -> Errors {
        Errors {
            total: e.total(),
            by_kind: ErrorKind::ALL
                .iter()
                .map(|&k| (k.name(), e.count(k)))
                .collect(),
        }
    }
}

/// Client CPU use over the measured time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Cpu {
    /// User-mode seconds.
    pub user_s: f64,
    /// Kernel-mode seconds.
    pub sys_s: f64,
    /// (user + sys) / wall, in percent of one core.
    pub percent_of_one_core: f64,
}

impl From<CpuUse> for Cpu {
    fn from(u: CpuUse) -> Cpu {
        Cpu {
            user_s: u.user_s,
            sys_s: u.sys_s,
            percent_of_one_core: u.percent_of_one_core(),
        }
    }
}

/// Everything a run reports; `--json` writes exactly this.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// `echo`, `resp` or `http`.
    pub protocol: &'static str,
    /// Server address as given.
    pub addr: String,
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Connections.
    pub connections: u32,
    /// Closed loop: requests in flight per connection.
    pub pipeline: Option<u32>,
    /// Open loop: target requests per second.
    pub rate: Option<f64>,
    /// Client threads.
    pub threads: usize,
    /// Cores the threads were pinned to.
    pub cores: Vec<usize>,
    /// How the cores were chosen.
    pub cores_reason: String,
    /// Request size in bytes (the largest, when sizes are a range).
    pub size: u32,
    /// Smallest request size (equal to `size` unless a range was given).
    pub size_min: u32,
    /// Whether payloads carried stamps (every payload at least 16 bytes).
    pub stamped: bool,
    /// Warmup seconds.
    pub warmup_s: f64,
    /// Planned measured seconds.
    pub duration_s: f64,
    /// Measured seconds actually run (less if every connection failed).
    pub measured_s: f64,
    /// True if the run stopped before its planned end.
    pub ended_early: bool,
    /// Requests answered correctly in the measured time (the histogram's count).
    pub requests: u64,
    /// `requests / measured_s`.
    pub throughput_rps: f64,
    /// Requests unanswered when the run stopped (not errors).
    pub in_flight_at_end: u64,
    /// New connections made after churn closes (0 without `--reconnect-after`).
    pub reconnects: u64,
    /// Churn settings and counts, with `--reconnect-after`.
    pub churn: Option<ChurnSummary>,
    /// Errors by kind.
    pub errors: Errors,
    /// The first error of each kind that occurred.
    pub error_details: BTreeMap<&'static str, String>,
    /// Latency of the measured requests.
    pub latency_us: Latency,
    /// Open loop: how late requests were written against their schedule; a large lag means
    /// the client could not keep the rate (the latency still counts it).
    pub send_lag_us: Option<Latency>,
    /// Client CPU over the measured time.
    pub client_cpu: Cpu,
}

/// What churn did over the whole run (warmup included).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChurnSummary {
    /// Requests per connection, as given.
    pub reconnect_after: String,
    /// Fraction of closes that were half-closes.
    pub half_close: f64,
    /// Fraction of closes that were resets.
    pub reset: f64,
    /// New connections made after churn closes.
    pub reconnects: u64,
    /// Closes after the last reply.
    pub closes: u64,
    /// Half-closes answered in full and closed by the server.
    pub half_closes: u64,
    /// Resets.
    pub resets: u64,
    /// Requests left unanswered by the resets (not errors).
    pub abandoned: u64,
}

/// Formats a nanosecond value for a progress line: `812ns`, `45.1us`, `3.20ms`, `1.250s`.
pub fn short_time(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}us", v / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", v / 1e6)
    } else {
        format!("{:.3}s", v / 1e9)
    }
}

/// One progress line: elapsed time, phase, this second's rate, p50/p99 of everything measured
/// so far, errors so far, client CPU this second.
pub fn progress_line(
    elapsed_s: f64,
    measured: bool,
    rps: f64,
    so_far: &Histogram<u64>,
    errors: u64,
    cpu_percent: f64,
) -> String {
    let mut line = format!("[{elapsed_s:7.1}s] ");
    if measured {
        let _ = write!(
            line,
            "{rps:9.0} req/s  p50 {:>8}  p99 {:>8}",
            short_time(so_far.value_at_quantile(0.5)),
            short_time(so_far.value_at_quantile(0.99))
        );
    } else {
        let _ = write!(line, "{rps:9.0} req/s  (warmup, not recorded)");
    }
    let _ = write!(line, "  errors {errors}  cpu {cpu_percent:3.0}%");
    line
}

/// Writes the human-readable summary.
///
/// # Errors
///
/// Any error of `out`.
pub fn write_summary<W: Write>(s: &Summary, out: &mut W) -> io::Result<()> {
    writeln!(out, "shardnet-load: {} {}", s.protocol, s.addr)?;
    let size = if s.size_min == s.size {
        s.size.to_string()
    } else {
        format!("{}..{}", s.size_min, s.size)
    };
    let stamped = if s.stamped { ", stamped" } else { "" };
    match (s.mode, s.rate) {
        ("open", Some(rate)) => writeln!(
            out,
            "  load        open loop, {rate:.0} req/s over {} connections, {size}-byte \
             requests{stamped}",
            s.connections
        )?,
        _ => writeln!(
            out,
            "  load        closed loop, {} connections x {} in flight, {size}-byte \
             requests{stamped}",
            s.connections,
            s.pipeline.unwrap_or(1)
        )?,
    }
    writeln!(
        out,
        "  threads     {} on cores {:?}: {}",
        s.threads, s.cores, s.cores_reason
    )?;
    writeln!(
        out,
        "  time        {:.3} s measured after {:.3} s warmup{}",
        s.measured_s,
        s.warmup_s,
        if s.ended_early {
            " (ended early: no connection left)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "  requests    {} ({:.1} req/s), {} in flight at the end",
        s.requests, s.throughput_rps, s.in_flight_at_end
    )?;
    if let Some(c) = &s.churn {
        writeln!(
            out,
            "  churn       {} reconnects (after {} requests): {} closes, {} half-closes, {} \
             resets ({} requests abandoned)",
            c.reconnects, c.reconnect_after, c.closes, c.half_closes, c.resets, c.abandoned
        )?;
    }
    writeln!(out, "  errors      {}", s.errors.total)?;
    for kind in ErrorKind::ALL {
        let n = s.errors.by_kind.get(kind.name()).copied().unwrap_or(0);
        if n > 0 {
            let first = s.error_details.get(kind.name()).map_or("", String::as_str);
            writeln!(out, "    {:<15} {n:>8}  first: {first}", kind.name())?;
        }
    }
    let l = &s.latency_us;
    writeln!(
        out,
        "  latency us  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  p99.99 {:.1}  max {:.1}",
        l.p50, l.p90, l.p99, l.p99_9, l.p99_99, l.max
    )?;
    writeln!(
        out,
        "              min {:.1}  mean {:.1}  stddev {:.1}",
        l.min, l.mean, l.stddev
    )?;
    if let Some(lag) = &s.send_lag_us {
        writeln!(
            out,
            "  send lag us p50 {:.1}  p99 {:.1}  max {:.1}  (how late requests left vs. the schedule)",
            lag.p50, lag.p99, lag.max
        )?;
    }
    let c = &s.client_cpu;
    writeln!(
        out,
        "  client cpu  user {:.2} s + sys {:.2} s = {:.0}% of one core ({} threads)",
        c.user_s, c.sys_s, c.percent_of_one_core, s.threads
    )?;
    if c.percent_of_one_core > 90.0 * s.threads as f64 {
        writeln!(
            out,
            "  note        the client threads were busy nearly all the time: the client, not \
             the server, may have been the limit"
        )?;
    }
    if let (Some(rate), true) = (s.rate, s.measured_s > 0.0) {
        if s.throughput_rps < 0.95 * rate {
            writeln!(
                out,
                "  note        {:.0} req/s is below the {rate:.0} req/s asked for",
                s.throughput_rps
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_of_a_histogram() {
        let mut h = crate::worker::new_histogram();
        for v in 1..=1000_u64 {
            h.record(v * 1000).unwrap();
        }
        let l = Latency::of(&h);
        assert_eq!(l.p50, h.value_at_quantile(0.5) as f64 / 1000.0);
        assert!((l.p50 - 500.0).abs() <= 0.5, "{l:?}");
        assert!((l.p99 - 990.0).abs() <= 1.0, "{l:?}");
        assert!(l.max >= 1000.0 && l.max < 1001.0, "{l:?}");
        assert_eq!(l.min, 1.0);
        assert_eq!(
            Latency::of(&crate::worker::new_histogram()),
            Latency::default()
        );
    }

    #[test]
    fn short_times() {
        assert_eq!(short_time(812), "812ns");
        assert_eq!(short_time(45_100), "45.1us");
        assert_eq!(short_time(3_200_000), "3.20ms");
        assert_eq!(short_time(1_250_000_000), "1.250s");
    }

    #[test]
    fn json_has_flat_error_kinds_and_dotted_percentiles() {
        let mut e = ErrorCounts::default();
        e.add(&crate::errors::Failure::new(ErrorKind::Mismatch, "x"));
        let v = serde_json::to_value(Errors::of(&e)).unwrap();
        assert_eq!(v["total"], 1);
        assert_eq!(v["mismatch"], 1);
        assert_eq!(v["reset"], 0);
        let l = serde_json::to_value(Latency::default()).unwrap();
        assert!(l.get("p99.9").is_some() && l.get("p99.99").is_some());
    }
}
