//! Helpers for driving the example servers with real clients (redis-cli, redis-benchmark,
//! curl, wrk) and with a raw socket: every external command runs with a deadline, and a
//! missing client is a failure naming the package to install, never a skip.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Fails the test unless `tool` is on the PATH.
pub fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is required by this test: apt-get install {package} (scripts/test.sh installs it)"
    );
}

/// Runs `cmd` with `stdin` fed to it, killing it after `timeout`; returns its output.
///
/// # Panics
/// When it cannot be started or does not finish in time.
pub fn run(cmd: &mut Command, stdin: &[u8], timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let input = stdin.to_vec();
    let mut child_in = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = child_in.write_all(&input);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for the client") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Like [`run`], and fails unless the command exits 0; returns its stdout as text.
pub fn run_ok(cmd: &mut Command, stdin: &[u8], timeout: Duration) -> String {
    let out = run(cmd, stdin, timeout);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One command in RESP (an array of bulk strings), as `redis-cli --pipe` reads it.
pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A RESP2 reply, read by [`read_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+...`
    Simple(String),
    /// `-...`
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$n ...` (`None` for `$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*n ...`
    Array(Vec<Reply>),
}

/// Reads one RESP2 reply from `r`.
///
/// # Panics
/// On a read error, end of stream or a malformed reply.
pub fn read_reply(r: &mut BufReader<TcpStream>) -> Reply {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).expect("read a reply line");
    assert!(
        line.ends_with(b"\r\n"),
        "reply line not terminated: {:?}",
        String::from_utf8_lossy(&line)
    );
    let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    match line[0] {
        b'+' => Reply::Simple(text),
        b'-' => Reply::Error(text),
        b':' => Reply::Integer(text.parse().expect("integer reply")),
        b'$' => {
            let n: i64 = text.parse().expect("bulk length");
            if n < 0 {
                return Reply::Bulk(None);
            }
            let mut data = vec![0; n as usize + 2];
            r.read_exact(&mut data).expect("read bulk data");
            assert_eq!(&data[n as usize..], b"\r\n");
            data.truncate(n as usize);
            Reply::Bulk(Some(data))
        }
        b'*' => {
            let n: i64 = text.parse().expect("array length");
            Reply::Array((0..n.max(0)).map(|_| read_reply(r)).collect())
        }
        other => panic!("unexpected reply type byte {other:?} in {text:?}"),
    }
}

/// Connects to `addr` with generous timeouts, buffered for reading replies.
pub fn connect(addr: std::net::SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

/// Reads until the peer closes (or 20 s pass); returns what came and whether it was a clean
/// end of stream.
pub fn read_until_closed(r: &mut BufReader<TcpStream>) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    match r.read_to_end(&mut out) {
        Ok(_) => (out, true),
        Err(_) => (out, false),
    }
}
