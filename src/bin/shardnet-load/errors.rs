//! Error kinds a run counts, and the per-thread counters.

use std::fmt;
use std::io;

/// What went wrong with a connection or a request. Any of them makes the run exit non-zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server refused the connection (nothing listening).
    ConnectRefused,
    /// A connection was not established within `--timeout`.
    ConnectTimeout,
    /// Connecting failed otherwise (unreachable, no route, out of ports...).
    ConnectFailed,
    /// The connection was reset (RST, or a write to a closed peer).
    Reset,
    /// A request went unanswered for `--timeout`.
    Timeout,
    /// The reply was well-formed but wrong: other bytes, another length, another status.
    Mismatch,
    /// The reply could not be parsed as the protocol's reply.
    Protocol,
    /// The server closed the connection during the run.
    ClosedByPeer,
    /// Any other I/O error on an established connection.
    Io,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectTimeout,
        ErrorKind::ConnectFailed,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Mismatch,
        ErrorKind::Protocol,
        ErrorKind::ClosedByPeer,
        ErrorKind::Io,
    ];

    /// Snake-case name, used as the JSON key and in the summary.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::Protocol => "protocol",
            ErrorKind::ClosedByPeer => "closed_by_peer",
            ErrorKind::Io => "io",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Classifies an I/O error of an established connection.
    pub fn of_io(e: &io::Error) -> ErrorKind {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ErrorKind::Reset,
            io::ErrorKind::UnexpectedEof | io::ErrorKind::WriteZero => ErrorKind::ClosedByPeer,
            _ => ErrorKind::Io,
        }
    }

    /// Classifies an error while connecting.
    pub fn of_connect(e: &io::Error) -> ErrorKind {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
            io::ErrorKind::TimedOut => ErrorKind::ConnectTimeout,
            _ => ErrorKind::ConnectFailed,
        }
    }
}

/// An error with what was seen, e.g. which byte differed. Built only when something failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The kind counted.
    pub kind: ErrorKind,
    /// What happened, for the report.
    pub detail: String,
}

impl Failure {
    /// A failure of `kind` described by `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Failure {
        Failure {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

/// Count of each error kind, plus the first failure seen of each kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    counts: [u64; 9],
    first: [Option<String>; 9],
}

impl ErrorCounts {
    /// Counts `f`, keeping its detail if it is the first of its kind.
    pub fn add(&mut self, f: &Failure) {
        let i = f.kind.index();
        self.counts[i] += 1;
        if self.first[i].is_none() {
            self.first[i] = Some(f.detail.clone());
        }
    }

    /// Adds all of `other`'s counts; first details are kept from `self` when both have one.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for i in 0..self.counts.len() {
            self.counts[i] += other.counts[i];
            if self.first[i].is_none() {
                self.first[i].clone_from(&other.first[i]);
            }
        }
    }

    /// Count of `kind`.
    pub fn count(&self, kind: ErrorKind) -> u64 {
        self.counts[kind.index()]
    }

    /// First detail recorded for `kind`.
    pub fn first(&self, kind: ErrorKind) -> Option<&str> {
        self.first[kind.index()].as_deref()
    }

    /// Sum of all counts.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_and_keep_first_detail() {
        let mut a = ErrorCounts::default();
        a.add(&Failure::new(ErrorKind::Mismatch, "first"));
        a.add(&Failure::new(ErrorKind::Mismatch, "second"));
        let mut b = ErrorCounts::default();
        b.add(&Failure::new(ErrorKind::Timeout, "t"));
        b.add(&Failure::new(ErrorKind::Mismatch, "other"));
        a.merge(&b);
        assert_eq!(a.count(ErrorKind::Mismatch), 3);
        assert_eq!(a.count(ErrorKind::Timeout), 1);
        assert_eq!(a.total(), 4);
        assert_eq!(a.first(ErrorKind::Mismatch), Some("first"));
        assert_eq!(a.first(ErrorKind::Timeout), Some("t"));
        assert_eq!(a.first(ErrorKind::Reset), None);
    }

    #[test]
    fn io_errors_are_classified() {
        let e = |k| io::Error::from(k);
        assert_eq!(
            ErrorKind::of_io(&e(io::ErrorKind::ConnectionReset)),
            ErrorKind::Reset
        );
        assert_eq!(
            ErrorKind::of_io(&e(io::ErrorKind::BrokenPipe)),
            ErrorKind::Reset
        );
        assert_eq!(
            ErrorKind::of_connect(&e(io::ErrorKind::ConnectionRefused)),
            ErrorKind::ConnectRefused
        );
        assert_eq!(ErrorKind::ALL.len(), 9);
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
