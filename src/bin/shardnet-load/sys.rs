//! The load generator's one boundary to the OS beyond std and mio: process CPU time
//! (`getrusage`), a `timerfd` for sub-millisecond wake-ups, and the thread's timer slack.
//!
//! All `unsafe` of the binary lives here. Each libc call that returns -1 on failure goes through
//! [`cvt`], which turns it into `io::Error::last_os_error()`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// Turns libc's "-1 and errno" convention into an `io::Result`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u32::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
}

/// User and system CPU time used so far by the whole process (all threads).
///
/// # Errors
///
/// The error of `getrusage(2)`, which does not fail for `RUSAGE_SELF` in practice.
pub fn process_cpu_times() -> io::Result<(Duration, Duration)> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory the size of a `rusage`; the kernel fills it.
    cvt(unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) })?;
    // SAFETY: getrusage succeeded, so the struct is initialized (and it was zeroed anyway).
    let usage = unsafe { usage.assume_init() };
    Ok((timeval(usage.ru_utime), timeval(usage.ru_stime)))
}

/// Raises this process's soft limit of open files to `want` (at most the hard limit) if it
/// is lower, and returns the soft limit in force.
///
/// # Errors
///
/// The error of `getrlimit(2)` or `setrlimit(2)`.
pub fn raise_open_file_limit(want: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit on our stack.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    lim.rlim_cur = want.min(lim.rlim_max);
    // SAFETY: `lim` is a valid rlimit that only lowers or keeps the hard limit.
    cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    Ok(lim.rlim_cur)
}

/// Asks the kernel to wake this thread's timers within `ns` nanoseconds of their deadline
/// (the default slack is 50 µs), so open-loop sends leave on time.
///
/// # Errors
///
/// The error of `prctl(PR_SET_TIMERSLACK)`.
pub fn set_timer_slack_ns(ns: u64) -> io::Result<()> {
    let ns = libc::c_ulong::try_from(ns.max(1)).unwrap_or(libc::c_ulong::MAX);
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory of ours.
    cvt(unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns, 0, 0, 0) })?;
    Ok(())
}

/// A non-blocking `CLOCK_MONOTONIC` timerfd, registrable with mio, for wake-ups finer than
/// epoll's millisecond timeout.
///
/// Registered edge-triggered, each expiry is one readable event; re-arming resets its count,
/// so it never needs to be read.
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    /// Creates a disarmed timer.
    ///
    /// # Errors
    ///
    /// The error of `timerfd_create(2)` (e.g. out of file descriptors).
    pub fn new() -> io::Result<TimerFd> {
        // SAFETY: plain syscall with constant flags; on success it returns a new fd we own.
        let fd = cvt(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` was just returned by timerfd_create and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(TimerFd { fd })
    }

    /// Arms the timer to expire once, `after` from now (at least 1 ns: zero would disarm it).
    ///
    /// # Errors
    ///
    /// The error of `timerfd_settime(2)`.
    pub fn arm_after(&self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(
                    i32::try_from(after.subsec_nanos()).unwrap_or(999_999_999),
                ),
            },
        };
        // SAFETY: `spec` is a valid itimerspec on our stack; a null old-value pointer is allowed.
        cvt(unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) })?;
        Ok(())
    }
}

impl Source for TimerFd {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn cpu_times_grow_with_work() {
        let (u0, s0) = process_cpu_times().unwrap();
        let start = Instant::now();
        let mut x = 0_u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let (u1, s1) = process_cpu_times().unwrap();
        assert!(u1 + s1 > u0 + s0, "{u0:?}+{s0:?} -> {u1:?}+{s1:?}");
    }

    #[test]
    fn timerfd_wakes_a_poll() {
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(4);
        let mut t = TimerFd::new().unwrap();
        poll.registry()
            .register(&mut t, Token(7), Interest::READABLE)
            .unwrap();
        let start = Instant::now();
        t.arm_after(Duration::from_micros(300)).unwrap();
        poll.poll(&mut events, Some(Duration::from_secs(2)))
            .unwrap();
        assert_eq!(events.iter().next().map(|e| e.token()), Some(Token(7)));
        assert!(start.elapsed() < Duration::from_secs(1));
        set_timer_slack_ns(1_000).unwrap();
    }

    #[test]
    fn open_file_limit_is_at_least_what_is_asked_when_allowed() {
        let now = raise_open_file_limit(0).unwrap();
        assert!(now > 0);
        assert!(raise_open_file_limit(now).unwrap() >= now);
    }
}
