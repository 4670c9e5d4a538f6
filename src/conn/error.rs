//! What can end a connection operation, and why a connection closed.

use std::fmt;
use std::io;

/// Why a connection ended, as counted in the shard's stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The peer closed its side (a receive returned end of stream).
    PeerClosed,
    /// The peer reset the connection (`ECONNRESET`, `EPIPE`).
    Reset,
    /// A receive or send timeout fired.
    TimedOut,
    /// An I/O error, a handler error or a handler panic.
    Error,
    /// The server shut down.
    Shutdown,
    /// The handler finished or dropped the connection while the peer was still open.
    Local,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::PeerClosed => "peer closed",
            CloseReason::Reset => "reset",
            CloseReason::TimedOut => "timed out",
            CloseReason::Error => "error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Local => "closed by handler",
        })
    }
}

/// An error of a receive or send on a [`Connection`](crate::Connection).
///
/// Converts into `io::Error` (with the matching `ErrorKind`) so codecs written against
/// `AsyncRead`/`AsyncWrite` see ordinary I/O errors.
#[derive(Debug)]
pub enum ConnError {
    /// The receive timeout (no data for too long) or the send timeout (the peer stopped
    /// reading) fired. The connection should be dropped.
    TimedOut,
    /// The peer reset the connection.
    Reset,
    /// The server is shutting down: there is no more data to receive now, or the drain
    /// deadline passed.
    Shutdown,
    /// Another I/O error.
    Io(io::Error),
}

impl ConnError {
    /// Classifies an OS error of a receive or send.
    pub(crate) fn from_io(e: io::Error) -> ConnError {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => ConnError::Reset,
            io::ErrorKind::TimedOut => ConnError::TimedOut,
            _ => ConnError::Io(e),
        }
    }

    /// The close reason this error implies.
    pub fn close_reason(&self) -> CloseReason {
        match self {
            ConnError::TimedOut => CloseReason::TimedOut,
            ConnError::Reset => CloseReason::Reset,
            ConnError::Shutdown => CloseReason::Shutdown,
            ConnError::Io(_) => CloseReason::Error,
        }
    }
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::TimedOut => f.write_str("connection timed out"),
            ConnError::Reset => f.write_str("connection reset by peer"),
            ConnError::Shutdown => f.write_str("server shutting down"),
            ConnError::Io(e) => write!(f, "connection I/O error: {e}"),
        }
    }
}

impl std::error::Error for ConnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConnError> for io::Error {
    fn from(e: ConnError) -> io::Error {
        match e {
            ConnError::TimedOut => io::ErrorKind::TimedOut.into(),
            ConnError::Reset => io::ErrorKind::ConnectionReset.into(),
            ConnError::Shutdown => io::Error::other(ConnError::Shutdown),
            ConnError::Io(e) => e,
        }
    }
}
