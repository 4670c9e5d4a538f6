//! Command-line arguments. Bad input is reported by clap with a usage hint and exit code 2.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// TCP load generator for request/response protocols, with HdrHistogram output.
///
/// Closed loop by default: every connection keeps `--pipeline` requests in flight and sends
/// the next when a reply completes. With `--rate` it runs open loop: requests leave on a fixed
/// schedule spread evenly over the connections, and latency is measured from each request's
/// intended send time, so a server stall shows in the percentiles (no coordinated omission).
#[derive(Debug, Parser)]
#[command(
    name = "shardnet-load",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Exit status: 0 when every request was answered correctly, 1 when any error \
                  was counted or the run could not start, 2 for bad arguments.\n\
                  Example: shardnet-load --addr 127.0.0.1:9000 --connections 8 --rate 20000 \
                  --duration 10s --hgrm run.hgrm\n\
                  Plot: shardnet-load plot --out cmp.svg a.hgrm b.hgrm"
)]
pub struct Cli {
    /// Another action than a load run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The load run.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Draw .hgrm files as latency-by-percentile curves in one SVG, one curve per file.
    Plot(PlotArgs),
}

/// Arguments of `plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// SVG file to write.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Title above the chart.
    #[arg(long, default_value = "Latency by Percentile Distribution")]
    pub title: String,
    /// Unit of the files' values, for the axis label.
    #[arg(long, default_value = "µs")]
    pub unit: String,
    /// The .hgrm files (HdrHistogram percentile distributions); the legend uses their names.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Wire protocol spoken to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProtocolKind {
    /// Send `--size` bytes, expect the same bytes back; every byte is checked.
    Echo,
    /// Redis protocol: SET and GET of random keys; GET must return nil or exactly the value
    /// the key's SET would have written.
    Resp,
    /// HTTP/1.1 `GET --path`; expects status 200 and a body of Content-Length bytes.
    Http,
}

/// Arguments of a load run.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Server address, HOST:PORT.
    #[arg(long, short, default_value = "127.0.0.1:9000")]
    pub addr: String,
    /// Number of TCP connections, spread over the threads.
    #[arg(long, short, default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub connections: u32,
    /// Requests in flight per connection in closed loop.
    #[arg(long, short, default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub pipeline: u32,
    /// Open loop: total requests per second over all connections.
    #[arg(long, short, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Open loop: most requests one connection may have unanswered; when reached, sending
    /// waits (and the wait counts as latency).
    #[arg(long, default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_inflight: u32,
    /// Measured time: `10`, `10s`, `500ms`, `2m`.
    #[arg(long, short, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time before measuring starts; requests sent in it are not recorded.
    #[arg(long, short, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Request size in bytes, the echo payload or the RESP value: `N`, or a range `A..B`
    /// (inclusive, drawn per echo request and per RESP key), 1 to 16 MiB. Payloads of 16 bytes
    /// or more start with a 16-byte stamp naming the connection and request (or the key).
    #[arg(long, short, default_value = "64", value_parser = parse_size)]
    pub size: SizeRange,
    /// Client threads (each one mio event loop, pinned to a core). Default: one per chosen core.
    #[arg(long, short, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Cores to pin the threads to, e.g. `1` or `2-3,5`. Default: the cores the server's
    /// pinned threads do not use, or all cores.
    // Spelled out so clap takes the whole list as one value rather than many `usize`s.
    #[arg(long, value_parser = parse_cores)]
    pub cores: Option<::std::vec::Vec<usize>>,
    /// Protocol.
    #[arg(long, value_enum, default_value_t = ProtocolKind::Echo)]
    pub protocol: ProtocolKind,
    /// resp: number of distinct keys.
    #[arg(long, default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000_000))]
    pub keys: u64,
    /// resp: fraction of requests that are SET (the rest are GET).
    #[arg(long, default_value_t = 0.1, value_parser = parse_fraction)]
    pub set_ratio: f64,
    /// http: request path.
    #[arg(long, default_value = "/", value_parser = parse_path)]
    pub path: String,
    /// Churn: close each connection after this many requests, `N` or a range `A..B` drawn
    /// anew (seeded) for every connection, and connect again. How it closes is drawn too:
    /// `--half-close`, `--reset`, otherwise a close after its last reply. Reconnects are
    /// counted; every reply is still checked.
    #[arg(long, value_parser = parse_count_range)]
    pub reconnect_after: Option<CountRange>,
    /// Churn: fraction of closes that are a half-close after the last request is written;
    /// every reply must still arrive before the server's close.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction, requires = "reconnect_after")]
    pub half_close: f64,
    /// Churn: fraction of closes that are a reset (SO_LINGER 0) right after the last request
    /// is written, leaving its replies unread (counted as abandoned, not as errors).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction, requires = "reconnect_after")]
    pub reset: f64,
    /// A request unanswered this long is a timeout error (also the connect timeout).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Seed of the key and SET/GET choices, for a replayable run.
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
    /// Write the latency distribution (µs) in HdrHistogram .hgrm text.
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Write an HdrHistogram interval log (V2 compressed, ns), one interval per second.
    #[arg(long)]
    pub hlog: Option<PathBuf>,
    /// Write the summary as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the latency-by-percentile plot as SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// No per-second progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Payload sizes: `min..=max` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeRange {
    /// Smallest.
    pub min: u32,
    /// Largest.
    pub max: u32,
}

impl std::fmt::Display for SizeRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.max)
        } else {
            write!(f, "{}..{}", self.min, self.max)
        }
    }
}

/// Requests per connection for churn: `min..=max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountRange {
    /// Fewest.
    pub min: u64,
    /// Most.
    pub max: u64,
}

impl std::fmt::Display for CountRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.max)
        } else {
            write!(f, "{}..{}", self.min, self.max)
        }
    }
}

/// `N` or `A..B` with `lo <= A <= B <= hi`.
fn parse_range(text: &str, lo: u64, hi: u64) -> Result<(u64, u64), String> {
    let number = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{text}` is not a number N or a range A..B"))
    };
    let (a, b) = match text.split_once("..") {
        Some((a, b)) => (number(a)?, number(b.strip_prefix('=').unwrap_or(b))?),
        None => {
            let n = number(text)?;
            (n, n)
        }
    };
    if a > b {
        return Err(format!("`{text}`: the range is empty"));
    }
    if a < lo || b > hi {
        return Err(format!("`{text}` is out of range ({lo} to {hi})"));
    }
    Ok((a, b))
}

fn parse_size(text: &str) -> Result<SizeRange, String> {
    let (min, max) = parse_range(text, 1, 16 * 1024 * 1024)?;
    Ok(SizeRange {
        min: min as u32,
        max: max as u32,
    })
}

fn parse_count_range(text: &str) -> Result<CountRange, String> {
    let (min, max) = parse_range(text, 1, 1 << 40)?;
    Ok(CountRange { min, max })
}

/// Parses `5`, `5s`, `1.5s`, `500ms`, `250us`, `2m`: a non-negative number with an optional
/// unit (seconds without one), at most one day.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        other => return Err(format!("unknown unit `{other}` (use s, ms, us or m)")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 5, 5s or 500ms"))?;
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("`{text}` is out of range (0 to one day)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let r: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of requests per second"))?;
    if r.is_finite() && r > 0.0 && r <= 1e9 {
        Ok(r)
    } else {
        Err(format!(
            "rate must be above 0 and at most 1e9, not `{text}`"
        ))
    }
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    let f: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err(format!("`{text}` is not between 0 and 1"))
    }
}

fn parse_path(text: &str) -> Result<String, String> {
    let ok =
        text.starts_with('/') && text.len() <= 4096 && text.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(text.to_owned())
    } else {
        Err("path must start with `/` and hold only visible ASCII (no spaces)".to_owned())
    }
}

fn parse_cores(text: &str) -> Result<Vec<usize>, String> {
    match crate::affinity::parse_cpu_list(text.trim()) {
        Some(set) if !set.is_empty() && set.iter().all(|&c| c < 4096) => {
            Ok(set.into_iter().collect())
        }
        _ => Err(format!("`{text}` is not a core list like 1 or 0-2,4")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "-1", "abc", "5h", "1e3", "9999999", "1.2.3", "NaN"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_values() {
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("inf").is_err());
        assert_eq!(parse_rate("2000"), Ok(2000.0));
        assert!(parse_fraction("1.5").is_err());
        assert!(parse_path("nope").is_err());
        assert!(parse_path("/a b").is_err());
        assert_eq!(parse_path("/x?y=1"), Ok("/x?y=1".into()));
        assert_eq!(parse_cores("0-1,3"), Ok(vec![0, 1, 3]));
        assert!(parse_cores("").is_err());
        assert_eq!(parse_size("64"), Ok(SizeRange { min: 64, max: 64 }));
        assert_eq!(parse_size("16..4096"), Ok(SizeRange { min: 16, max: 4096 }));
        assert_eq!(parse_size("1..=2"), Ok(SizeRange { min: 1, max: 2 }));
        for bad in ["0", "5..4", "1..", "..3", "x", "1..99999999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_count_range("7"), Ok(CountRange { min: 7, max: 7 }));
        assert!(parse_count_range("0..5").is_err());
        assert_eq!(SizeRange { min: 3, max: 9 }.to_string(), "3..9");
    }

    #[test]
    fn clap_accepts_a_full_line_and_the_plot_subcommand() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "shardnet-load",
            "--addr",
            "127.0.0.1:1",
            "-c",
            "4",
            "--rate",
            "100",
            "-d",
            "2",
            "--warmup",
            "500ms",
            "--protocol",
            "resp",
            "--cores",
            "1",
            "--size",
            "16..64",
            "--reconnect-after",
            "1..50",
            "--reset",
            "0.25",
        ])
        .unwrap();
        assert_eq!(cli.run.connections, 4);
        assert_eq!(cli.run.cores, Some(vec![1]));
        assert_eq!(cli.run.size, SizeRange { min: 16, max: 64 });
        assert_eq!(
            cli.run.reconnect_after,
            Some(CountRange { min: 1, max: 50 })
        );
        assert_eq!(cli.run.reset, 0.25);
        // churn details need churn
        assert!(Cli::try_parse_from(["shardnet-load", "--reset", "0.5"]).is_err());
        assert_eq!(cli.run.warmup, Duration::from_millis(500));
        assert_eq!(cli.run.protocol, ProtocolKind::Resp);
        let plot = Cli::try_parse_from(["shardnet-load", "plot", "--out", "x.svg", "a.hgrm"]);
        assert!(matches!(plot.unwrap().command, Some(Command::Plot(_))));
        assert!(Cli::try_parse_from(["shardnet-load", "--connections", "0"]).is_err());
        assert!(Cli::try_parse_from(["shardnet-load", "plot", "--out", "x.svg"]).is_err());
    }
}
