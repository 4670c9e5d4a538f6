//! Helpers for the load generator's tests: small std-thread servers on 127.0.0.1:0 and a
//! bounded runner for the `shardnet-load` binary.
//!
//! Every server thread and every wait here is bounded: servers stop when dropped (their
//! threads poll a stop flag every 20 ms), and a load run that outlives its deadline is killed
//! and fails the test.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Shared state of a test server, visible to its connection handlers and to the test.
#[derive(Debug, Default)]
pub struct Shared {
    /// Set when the server is dropped.
    pub stop: AtomicBool,
    /// When the first connection was accepted.
    pub first_accept: OnceLock<Instant>,
    /// Free-form counters a handler may bump (requests seen, hits, ...).
    pub counters: Mutex<HashMap<&'static str, u64>>,
    /// A flag a handler may use once (e.g. "already corrupted one byte").
    pub once: AtomicBool,
    /// Bytes handled by all connections.
    pub bytes: AtomicU64,
}

impl Shared {
    /// Adds `n` to counter `name`.
    pub fn bump(&self, name: &'static str, n: u64) {
        *self.counters.lock().unwrap().entry(name).or_default() += n;
    }

    /// Value of counter `name`.
    pub fn counter(&self, name: &'static str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0)
    }
}

/// A thread-per-connection test server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared state.
    pub shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

type Handler = dyn Fn(&mut TcpStream, &Shared) + Send + Sync;

impl TestServer {
    /// Starts a server whose connections are each served by `handler` on a thread. The
    /// handler's stream has a 20 ms read timeout; it should return when `shared.stop` is set
    /// or the peer closes.
    pub fn start(handler: impl Fn(&mut TcpStream, &Shared) + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new(Shared::default());
        let handler: Arc<Handler> = Arc::new(handler);
        let s = Arc::clone(&shared);
        let accept = thread::spawn(move || {
            let mut conns = Vec::new();
            while !s.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = s.first_accept.set(Instant::now());
                        s.bump("accepted", 1);
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_millis(20)))
                            .unwrap();
                        let _ = stream.set_nodelay(true);
                        let (h, s2) = (Arc::clone(&handler), Arc::clone(&s));
                        conns.push(thread::spawn(move || h(&mut stream, &s2)));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        TestServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `--addr` value.
    pub fn addr_arg(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Reads into `buf`; `None` when the handler should stop (peer closed, error, or stop flag),
/// `Some(0)` on a read timeout.
pub fn read_some(stream: &mut TcpStream, buf: &mut [u8], shared: &Shared) -> Option<usize> {
    if shared.stop.load(Ordering::Relaxed) {
        return None;
    }
    match stream.read(buf) {
        Ok(0) => None,
        Ok(n) => Some(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Some(0),
        Err(_) => None,
    }
}

/// How the echo server misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Echo {
    /// Echo every byte.
    Correct,
    /// Flip one bit of the byte at this offset of the first connection that gets that far
    /// (once for the whole server).
    CorruptAt(u64),
    /// Stop answering for `stall`, once, starting `after` the first connection.
    StallOnce { after: Duration, stall: Duration },
}

/// An echo server.
pub fn echo_server(mode: Echo) -> TestServer {
    TestServer::start(move |stream, shared| {
        let mut buf = vec![0_u8; 64 * 1024];
        let mut offset = 0_u64;
        while let Some(n) = read_some(stream, &mut buf, shared) {
            if n == 0 {
                continue;
            }
            match mode {
                Echo::Correct => {}
                Echo::CorruptAt(at) => {
                    if at >= offset
                        && at < offset + n as u64
                        && !shared.once.swap(true, Ordering::SeqCst)
                    {
                        buf[(at - offset) as usize] ^= 0x01;
                    }
                }
                Echo::StallOnce { after, stall } => {
                    let start = *shared.first_accept.get().unwrap() + after;
                    let end = start + stall;
                    let now = Instant::now();
                    if now >= start && now < end {
                        shared.bump("stalled", 1);
                        thread::sleep(end - now);
                    }
                }
            }
            offset += n as u64;
            shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
            if stream.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    })
}

/// How a churn test server misbehaves with connections that come and go.
#[derive(Clone, Copy, Debug)]
pub enum Churning {
    /// Echoes, and closes after the peer's EOF; counts `eof` (orderly ends) and `reset`.
    Correct,
    /// Once, on the second connection accepted, answers the first request with the first
    /// bytes the first connection sent: the reply of a stale connection, as a server that
    /// mixed up reused sockets would send.
    StaleOnce,
    /// Holds each chunk for one read (up to the 20 ms read timeout) and, if the peer's EOF
    /// comes first, closes without sending it: replies lost after a half-close.
    DropsTailOnHalfClose,
    /// Never closes after the peer's EOF (until the server stops).
    NeverCloses,
}

/// An echo server for churn tests.
pub fn churn_server(mode: Churning) -> TestServer {
    let first: Arc<Mutex<Vec<u8>>> = Arc::default();
    TestServer::start(move |stream, shared| {
        let nth = shared.counter("accepted");
        let mut buf = vec![0_u8; 64 * 1024];
        let mut held: Vec<u8> = Vec::new();
        let mut seen = 0_usize;
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            let n = match stream.read(&mut buf) {
                Ok(0) => {
                    shared.bump("eof", 1);
                    if let Churning::NeverCloses = mode {
                        while !shared.stop.load(Ordering::Relaxed) {
                            thread::sleep(Duration::from_millis(20));
                        }
                    }
                    return; // DropsTailOnHalfClose: `held` is never sent
                }
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if !held.is_empty() && stream.write_all(&held).is_err() {
                        return;
                    }
                    held.clear();
                    continue;
                }
                Err(_) => {
                    shared.bump("reset", 1);
                    return;
                }
            };
            if nth == 1 {
                let mut f = first.lock().unwrap();
                let room = 4096_usize.saturating_sub(f.len()).min(n);
                f.extend_from_slice(&buf[..room]);
            }
            let mut out = buf[..n].to_vec();
            match mode {
                Churning::StaleOnce if nth == 2 && seen == 0 => {
                    let f = first.lock().unwrap();
                    let k = n.min(f.len());
                    out[..k].copy_from_slice(&f[..k]);
                    shared.bump("stale", 1);
                }
                Churning::DropsTailOnHalfClose => {
                    // send what was held, hold this one
                    std::mem::swap(&mut held, &mut out);
                }
                _ => {}
            }
            seen += n;
            shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
            if stream.write_all(&out).is_err() {
                return;
            }
        }
    })
}

/// A server that reads everything and never answers.
pub fn silent_server() -> TestServer {
    TestServer::start(|stream, shared| {
        let mut buf = vec![0_u8; 16 * 1024];
        while read_some(stream, &mut buf, shared).is_some() {}
    })
}

/// Splits complete RESP commands (arrays of bulk strings) off the front of `buf`.
fn take_resp_command(buf: &mut Vec<u8>) -> Option<Vec<Vec<u8>>> {
    fn line(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = b[at..].windows(2).position(|w| w == b"\r\n")? + at;
        Some((&b[at..end], end + 2))
    }
    let (head, mut at) = line(buf, 0)?;
    let n: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut parts = Vec::with_capacity(n);
    for _ in 0..n {
        let (len, next) = line(buf, at)?;
        let len: usize = std::str::from_utf8(len.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        if buf.len() < next + len + 2 {
            return None;
        }
        parts.push(buf[next..next + len].to_vec());
        at = next + len + 2;
    }
    buf.drain(..at);
    Some(parts)
}

/// A RESP server for SET and GET. With `correct == false` every GET answers a 3-byte value.
pub fn resp_server(correct: bool) -> TestServer {
    let store: Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>> = Arc::default();
    TestServer::start(move |stream, shared| {
        let mut buf = vec![0_u8; 64 * 1024];
        let mut pending = Vec::new();
        while let Some(n) = read_some(stream, &mut buf, shared) {
            pending.extend_from_slice(&buf[..n]);
            let mut out = Vec::new();
            while let Some(cmd) = take_resp_command(&mut pending) {
                match (cmd.first().map(Vec::as_slice), cmd.len()) {
                    (Some(b"SET"), 3) => {
                        shared.bump("set", 1);
                        store.lock().unwrap().insert(cmd[1].clone(), cmd[2].clone());
                        out.extend_from_slice(b"+OK\r\n");
                    }
                    (Some(b"GET"), 2) => {
                        shared.bump("get", 1);
                        if !correct {
                            out.extend_from_slice(b"$3\r\nabc\r\n");
                            continue;
                        }
                        match store.lock().unwrap().get(&cmd[1]) {
                            Some(v) => {
                                shared.bump("hit", 1);
                                out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
                                out.extend_from_slice(v);
                                out.extend_from_slice(b"\r\n");
                            }
                            None => out.extend_from_slice(b"$-1\r\n"),
                        }
                    }
                    _ => out.extend_from_slice(b"-ERR unknown command\r\n"),
                }
            }
            if !out.is_empty() && stream.write_all(&out).is_err() {
                return;
            }
        }
    })
}

/// An HTTP/1.1 server answering every request (pipelined too) with `status` and `body`;
/// counts requests whose path is `/hello`.
pub fn http_server(status: u16, body: &'static str) -> TestServer {
    TestServer::start(move |stream, shared| {
        let mut buf = vec![0_u8; 64 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        while let Some(n) = read_some(stream, &mut buf, shared) {
            pending.extend_from_slice(&buf[..n]);
            let mut out = Vec::new();
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                if pending.starts_with(b"GET /hello ") {
                    shared.bump("hello", 1);
                }
                pending.drain(..end + 4);
                out.extend_from_slice(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
            if !out.is_empty() && stream.write_all(&out).is_err() {
                return;
            }
        }
    })
}

/// What a load run printed and how it ended.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time of the run.
    pub took: Duration,
}

/// Runs `shardnet-load` with `args`, killing it (and failing) after `limit`.
pub fn run_load(args: &[&str], limit: Duration) -> Outcome {
    run_program(env!("CARGO_BIN_EXE_shardnet-load"), args, limit)
}

/// Runs `shardnet-trickle` with `args`, killing it (and failing) after `limit`.
pub fn run_trickle(args: &[&str], limit: Duration) -> Outcome {
    run_program(env!("CARGO_BIN_EXE_shardnet-trickle"), args, limit)
}

/// A server that closes a connection after `quiet` without a byte from it (a receive
/// timeout), echoing what it gets; counts `timed_out`.
pub fn quiet_closing_server(quiet: Duration) -> TestServer {
    TestServer::start(move |stream, shared| {
        let mut buf = [0_u8; 1024];
        let mut last = Instant::now();
        while let Some(n) = read_some(stream, &mut buf, shared) {
            if n > 0 {
                last = Instant::now();
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            } else if last.elapsed() >= quiet {
                shared.bump("timed_out", 1);
                return;
            }
        }
    })
}

fn run_program(program: &str, args: &[&str], limit: Duration) -> Outcome {
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shardnet-load");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {args:?} ran longer than {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Outcome {
        code: status.code(),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
        took: start.elapsed(),
    }
}

/// A path in the temp dir unique to this process and `name`, removed on drop.
pub struct TempPath(pub PathBuf);

impl TempPath {
    /// `<tmp>/shardnet-load-<pid>-<name>`.
    pub fn new(name: &str) -> TempPath {
        TempPath(std::env::temp_dir().join(format!("shardnet-load-{}-{name}", std::process::id())))
    }

    /// As an argument.
    pub fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// The file's text.
    pub fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_else(|e| panic!("{}: {e}", self.0.display()))
    }

    /// The file as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.read()).unwrap()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One interval of an `.hlog`, decoded.
pub struct LoggedInterval {
    /// Offset from the log's base time.
    pub start: Duration,
    /// Length.
    pub length: Duration,
    /// The histogram.
    pub hist: hdrhistogram::Histogram<u64>,
}

/// Reads an interval log with the hdrhistogram crate's reader and deserializer.
pub fn read_hlog(bytes: &[u8]) -> Vec<LoggedInterval> {
    use base64::Engine as _;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    let mut de = Deserializer::new();
    IntervalLogIterator::new(bytes)
        .map(|e| e.expect("valid interval log"))
        .filter_map(|e| match e {
            LogEntry::Interval(i) => Some(i),
            _ => None,
        })
        .map(|i| {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(i.encoded_histogram())
                .unwrap();
            LoggedInterval {
                start: i.start_timestamp(),
                length: i.duration(),
                hist: de.deserialize(&mut raw.as_slice()).unwrap(),
            }
        })
        .collect()
}
