//! What every implementation shares: arguments, listeners, pinning, limits, signals, readiness.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// Bytes read per `read` call at most, and the size of each connection's buffer.
pub const BUF_SIZE: usize = 16 * 1024;

/// Listen backlog of the listeners created here (glommio's `bind` uses its own 1024).
const BACKLOG: i32 = 4096;

/// Connections accepted since start, over all threads (counted once per accept).
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

/// Counts one accepted connection.
pub fn count_accept() {
    ACCEPTED.fetch_add(1, Ordering::Relaxed);
}

/// Parses a CPU list like `taskset -c`: `0`, `0,1`, `0-3,6`.
pub fn parse_cores(text: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("bad core list {text:?} (expected e.g. 0 or 0,1 or 0-3)");
    let mut cores = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once('-') {
            let a: usize = a.trim().parse().map_err(|_| bad())?;
            let b: usize = b.trim().parse().map_err(|_| bad())?;
            if a > b {
                return Err(bad());
            }
            cores.extend(a..=b);
        } else {
            cores.push(part.parse().map_err(|_| bad())?);
        }
    }
    cores.sort_unstable();
    cores.dedup();
    if cores.is_empty() {
        return Err(bad());
    }
    Ok(cores)
}

/// A non-blocking listening socket with `SO_REUSEADDR`, optionally `SO_REUSEPORT`.
pub fn listener(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Pins the calling thread to `core`.
pub fn pin(core: usize) -> io::Result<()> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cannot pin a thread to core {core}"
        )))
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (10,000 idle connections need it).
pub fn raise_nofile_limit() -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads one rlimit from `lim`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Starts a thread that exits the process with status 0 on SIGINT or SIGTERM.
///
/// The servers keep no state worth flushing, so ending the process is the clean shutdown;
/// the harness reads its CPU and memory figures from /proc before it sends the signal.
pub fn exit_on_signal() -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                eprintln!(
                    "baseline-echo: signal {sig}, exiting; {} connections accepted",
                    ACCEPTED.load(Ordering::Relaxed)
                );
                std::process::exit(0);
            }
        })?;
    Ok(())
}

/// Each server thread sends one of these once its listener is bound (or binding failed).
pub type Ready = mpsc::Sender<Result<(), String>>;

/// Waits for `threads` readiness reports, then prints the line the harness waits for.
pub fn wait_ready(
    rx: &mpsc::Receiver<Result<(), String>>,
    threads: usize,
    name: &str,
    addr: SocketAddr,
    cores: &[usize],
) -> io::Result<()> {
    for _ in 0..threads {
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(io::Error::other(e)),
            Err(_) => {
                return Err(io::Error::other(
                    "a server thread ended before it was ready",
                ))
            }
        }
    }
    eprintln!("baseline-echo {name}: listening on {addr} on cores {cores:?}");
    Ok(())
}

/// Joins server threads; any of them ending (they loop forever) is reported.
pub fn join_all(handles: Vec<std::thread::JoinHandle<io::Result<()>>>) -> io::Result<()> {
    for h in handles {
        match h.join() {
            Ok(r) => r?,
            Err(_) => return Err(io::Error::other("a server thread panicked")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_cores;

    #[test]
    fn core_lists() {
        assert_eq!(parse_cores("0"), Ok(vec![0]));
        assert_eq!(parse_cores("1,0"), Ok(vec![0, 1]));
        assert_eq!(parse_cores("0-2,5"), Ok(vec![0, 1, 2, 5]));
        assert!(parse_cores("").is_err());
        assert!(parse_cores("2-1").is_err());
        assert!(parse_cores("x").is_err());
    }
}
