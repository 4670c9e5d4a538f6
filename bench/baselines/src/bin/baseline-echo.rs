//! `baseline-echo`: the echo servers that `scripts/compare.sh` measures shardnet against.
//!
//! ```text
//! cargo run --release --manifest-path bench/baselines/Cargo.toml --bin baseline-echo -- \
//!     --impl tokio-ct --addr 127.0.0.1:7000 --cores 0
//! ```
//!
//! Load it like shardnet's own echo example:
//!
//! ```text
//! taskset -c 1 target/release/shardnet-load --addr 127.0.0.1:7000 --protocol echo -c 50
//! ```
//!
//! Every implementation does the same thing: accept, set `TCP_NODELAY`, then per connection
//! read up to 16 KiB into a buffer owned by that connection and write all of it back, until
//! EOF or an error. Implementations:
//!
//! | `--impl`   | shape |
//! |------------|-------|
//! | `tokio-ct` | one current-thread runtime per core, thread pinned, its own `SO_REUSEPORT` listener |
//! | `tokio-mt` | one multi-thread runtime, `worker_threads` = number of cores, workers pinned round-robin, one listener |
//! | `monoio`   | one monoio runtime (io_uring driver) per core, thread pinned, its own `SO_REUSEPORT` listener |
//! | `glommio`  | one glommio `LocalExecutor` per core (`Placement::Fixed`), `glommio::net::TcpListener::bind` (which sets `SO_REUSEPORT`) |
//!
//! It prints `... listening on ADDR ...` to stderr once every listener is bound (the harness
//! waits for that line) and exits 0 on SIGINT or SIGTERM, after printing how many connections
//! it accepted. It raises its soft `RLIMIT_NOFILE` to the hard limit at start.

use shardnet_baselines::{common, glommio_echo, monoio_echo, tokio_echo};

use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "\
usage: baseline-echo --impl tokio-ct|tokio-mt|monoio|glommio [--addr HOST:PORT] [--cores LIST]

  --impl   which runtime serves the echo (required)
  --addr   address to listen on (default 127.0.0.1:7000)
  --cores  CPU ids to run on, like taskset -c: `0`, `0,1`, `0-1` (default 0)

Echo: read up to 16 KiB, write it all back, TCP_NODELAY on. SIGINT/SIGTERM exit 0.";

/// Which runtime serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// One tokio current-thread runtime per core, `SO_REUSEPORT` listeners.
    TokioCt,
    /// One tokio multi-thread runtime, one listener.
    TokioMt,
    /// One monoio io_uring runtime per core, `SO_REUSEPORT` listeners.
    Monoio,
    /// One raw glommio executor per core.
    Glommio,
}

impl Impl {
    fn parse(s: &str) -> Option<Impl> {
        match s {
            "tokio-ct" => Some(Impl::TokioCt),
            "tokio-mt" => Some(Impl::TokioMt),
            "monoio" => Some(Impl::Monoio),
            "glommio" => Some(Impl::Glommio),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Impl::TokioCt => "tokio-ct",
            Impl::TokioMt => "tokio-mt",
            Impl::Monoio => "monoio",
            Impl::Glommio => "glommio",
        }
    }
}

#[derive(Debug)]
struct Args {
    imp: Impl,
    addr: SocketAddr,
    cores: Vec<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut imp = None;
    let mut addr: SocketAddr = "127.0.0.1:7000".parse().expect("literal address");
    let mut cores = vec![0];
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--impl" => {
                imp = Some(Impl::parse(&value).ok_or_else(|| format!("unknown --impl {value}"))?)
            }
            "--addr" => {
                addr = value
                    .parse()
                    .map_err(|e| format!("bad --addr {value}: {e}"))?
            }
            "--cores" => cores = common::parse_cores(&value)?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    let imp = imp.ok_or("--impl is required")?;
    Ok(Args { imp, addr, cores })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("baseline-echo: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = common::raise_nofile_limit() {
        eprintln!("baseline-echo: could not raise RLIMIT_NOFILE: {e}");
    }
    if let Err(e) = common::exit_on_signal() {
        eprintln!("baseline-echo: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let result = match args.imp {
        Impl::TokioCt => tokio_echo::run_per_core(args.addr, &args.cores),
        Impl::TokioMt => tokio_echo::run_multi_thread(args.addr, &args.cores),
        Impl::Monoio => monoio_echo::run(args.addr, &args.cores),
        Impl::Glommio => glommio_echo::run(args.addr, &args.cores),
    };
    match result {
        // The servers run until a signal ends the process, so returning is an error.
        Ok(()) => {
            eprintln!("baseline-echo {}: server threads ended", args.imp.name());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("baseline-echo {}: {e}", args.imp.name());
            ExitCode::FAILURE
        }
    }
}
