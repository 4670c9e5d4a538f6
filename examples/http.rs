//! An HTTP/1.1 server for the TechEmpower plaintext and json tests, one shard per core.
//!
//! * `GET /plaintext` → `Hello, World!` (`text/plain`); `GET /json` →
//!   `{"message":"Hello, World!"}` (`application/json`); `HEAD` of either gets the same
//!   headers. Every response has `Server`, `Date`, `Content-Type` and `Content-Length`; the
//!   `Date` value is formatted once a second per shard by a timer task.
//! * Keep-alive (HTTP/1.1 by default, HTTP/1.0 with `Connection: keep-alive`) and pipelining:
//!   every complete request in what was received is answered into one buffer, and one
//!   `sendmsg` sends them all, straight from it.
//! * Errors: unknown path → 404; another method on a known path → 405 with `Allow`;
//!   malformed request (or HTTP/1.1 without `Host`) → 400 and close; head over
//!   `--max-header-bytes` → 431 and close; body over `--max-body-bytes` → 413 and close;
//!   `Transfer-Encoding` → 501 and close. Requests are framed by `httparse` (see
//!   `shardnet::protocol::http`).
//!
//! Run it:
//!
//! ```text
//! cargo run --release --example http -- --addr 127.0.0.1:8080 [--cores 0,1]
//! ```
//!
//! Try and load it (Debian: `apt-get install curl wrk`):
//!
//! ```text
//! curl -i http://127.0.0.1:8080/plaintext
//! curl -i http://127.0.0.1:8080/json
//! wrk -t 1 -c 64 -d 10s http://127.0.0.1:8080/plaintext
//! wrk -t 1 -c 64 -d 10s -s pipeline.lua http://127.0.0.1:8080/plaintext -- 16
//! cargo run --release --bin shardnet-load -- --addr 127.0.0.1:8080 --protocol http \
//!     --path /plaintext --connections 50 --duration 10s
//! ```
//!
//! (`pipeline.lua` is the usual wrk pipelining script: `init` builds `wrk.format()` N times
//! into one request string and `request` returns it; `scripts/compare-examples.sh` writes
//! one.) Stop it with Ctrl-C or `kill -TERM <pid>`; `kill -USR1 <pid>` prints stats.

#[path = "common/mod.rs"]
mod common;
#[path = "support/recv_buf.rs"]
mod recv_buf;

use clap::Parser;
use recv_buf::{FillError, RecvBuf};
use shardnet::protocol::http::{respond, DateCache, HttpError, HttpLimits, HttpParser};
use shardnet::{ConnError, Connection, Server, ShardContext, ShardInfo};
use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Responses are sent in pieces of about this size, so a long pipeline never builds a large
/// buffer.
const WRITE_PIECE: usize = 64 * 1024;
/// How long a connection the server closes keeps reading what the peer still sends.
const LINGER: Duration = Duration::from_secs(1);

#[derive(Parser, Debug)]
#[command(about = "shardnet HTTP/1.1 server (TechEmpower plaintext and json)")]
struct Args {
    #[command(flatten)]
    server: common::ServerArgs,
    /// Longest request head (request line and headers) accepted, in bytes; longer gets 431.
    #[arg(long, default_value_t = HttpLimits::default().max_header_bytes)]
    max_header_bytes: usize,
    /// Largest request body accepted, in bytes; larger gets 413.
    #[arg(long, default_value_t = HttpLimits::default().max_body_bytes)]
    max_body_bytes: usize,
}

/// One shard's state: the limits and its `Date` header value.
#[derive(Debug)]
struct HttpShard {
    limits: HttpLimits,
    /// Most unparsed bytes a connection may hold: one full request plus one slab.
    max_buffered: usize,
    date: RefCell<DateCache>,
}

impl HttpShard {
    /// Builds a shard's state and starts its once-a-second `Date` refresh.
    fn start(limits: HttpLimits, max_buffered: usize) -> Rc<HttpShard> {
        let shard = Rc::new(HttpShard {
            limits,
            max_buffered,
            date: RefCell::new(DateCache::new(SystemTime::now())),
        });
        shardnet::task::spawn(refresh_date(shard.clone()));
        shard
    }
}

/// Refreshes the shard's `Date` value just after every second boundary.
async fn refresh_date(shard: Rc<HttpShard>) {
    loop {
        let now = SystemTime::now();
        shard.date.borrow_mut().refresh(now);
        let into_second = now.duration_since(UNIX_EPOCH).map_or(Duration::ZERO, |d| {
            Duration::from_nanos(u64::from(d.subsec_nanos()))
        });
        shardnet::task::sleep(Duration::from_secs(1) - into_second + Duration::from_millis(1))
            .await;
    }
}

/// Serves one connection: answers every complete request received with one send, waits for
/// more; closes after a request without keep-alive or an error response.
async fn serve(mut conn: Connection, ctx: ShardContext<Rc<HttpShard>>) -> Result<(), ConnError> {
    let shard = ctx.state().clone();
    let mut parser = HttpParser::new(shard.limits);
    let mut input = RecvBuf::new(shard.max_buffered);
    let mut out = Vec::new();
    loop {
        // Answer what is complete, in pieces of at most about WRITE_PIECE bytes.
        let mut close = false;
        loop {
            let mut parsed = 0;
            let mut more = false;
            {
                let date = shard.date.borrow();
                loop {
                    match parser.parse(&input.bytes()[parsed..]) {
                        Ok(Some((req, n))) => {
                            parsed += n;
                            if !respond(&req, &date, &mut out) {
                                close = true;
                                break;
                            }
                            if out.len() >= WRITE_PIECE {
                                more = true;
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            e.write_response(&mut out, &date);
                            close = true;
                            break;
                        }
                    }
                }
            }
            input.consume(parsed);
            if close {
                conn.write(&out).await?;
                conn.close(LINGER).await?;
                return Ok(());
            }
            if !out.is_empty() {
                conn.send(&out).await?;
                out.clear();
            }
            if !more {
                break;
            }
        }
        match input.fill(&mut conn).await {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(FillError::TooLarge { .. }) => {
                HttpError::PayloadTooLarge.write_response(&mut out, &shard.date.borrow());
                conn.write(&out).await?;
                conn.close(LINGER).await?;
                return Ok(());
            }
            Err(FillError::Conn(ConnError::Shutdown)) => return Ok(()),
            Err(FillError::Conn(e)) => return Err(e),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args.server.config("127.0.0.1:8080") {
        Ok(c) => c,
        Err(e) => {
            eprintln!("http: {e}");
            return ExitCode::from(2);
        }
    };
    let limits = HttpLimits {
        max_header_bytes: args.max_header_bytes,
        max_body_bytes: args.max_body_bytes,
    };
    let max_buffered = limits
        .max_header_bytes
        .saturating_add(limits.max_body_bytes)
        .saturating_add(config.pool.slab_size);
    let server = Server::start_with_state(
        config,
        move |_: ShardInfo| async move { HttpShard::start(limits, max_buffered) },
        serve,
    );
    match server {
        Ok(server) => common::run("http", server, &args.server),
        Err(e) => {
            eprintln!("http: {e}");
            ExitCode::FAILURE
        }
    }
}
