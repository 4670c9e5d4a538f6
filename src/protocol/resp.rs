//! RESP2 request framing and reply encoding.
//!
//! # Requests
//!
//! Clients send either an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what
//! redis-cli and client libraries send) or an *inline* command, one line of
//! space-separated words ending in `\n` or `\r\n` (`PING\r\n`, what telnet users and
//! redis-benchmark's `PING_INLINE` send). A first byte of `*` selects the array form,
//! anything else the inline form, as in Redis. Inline words are split on ASCII
//! whitespace; quotes are not interpreted (that would need a copy to unescape).
//!
//! [`Parser::parse`] is incremental: it is called with everything received so far,
//! answers `Ok(None)` when the request is not complete yet and remembers how far it
//! got, so a large request that trickles in is not rescanned from its start on every
//! call. The returned [`Request`] borrows its arguments from the caller's buffer; the
//! only memory the parser owns is one reused `Vec<Range<usize>>` of argument
//! positions, which grows with the arguments actually received (never with a count
//! the peer declared) and is trimmed after an unusually large request.
//!
//! # Errors
//!
//! A [`ProtocolError`] means the framing is broken: the parser cannot know where the
//! next request starts, so the stream **cannot be resynchronised**. The server
//! writes [`ProtocolError::write_reply`] and closes, as Redis does. Errors about a
//! well-framed request (unknown command, wrong arity, bad option) are
//! [`CommandError`](super::command::CommandError)s instead; after those the stream
//! continues.
//!
//! # Replies
//!
//! The `write_*` functions append one RESP2 value to a caller-owned `Vec<u8>` and
//! allocate nothing else.

use std::fmt;
use std::ops::Range;

use super::{push_i64, push_u64};

/// Size limits applied while framing requests; every one guards memory against a
/// peer that declares more than it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted bulk string, in bytes. Default 16 MiB.
    pub max_bulk_len: usize,
    /// Most arguments in one request (array elements or inline words). Default 1 Mi.
    pub max_array_len: usize,
    /// Longest inline command line, in bytes, without its line ending. Default 64 KiB.
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 16 << 20,
            max_array_len: 1 << 20,
            max_inline_len: 64 << 10,
        }
    }
}

/// Why a byte stream is not valid RESP. Every variant is fatal to the stream: reply
/// with [`write_reply`](Self::write_reply), then close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The count after `*` is not a non-negative decimal integer (this includes `*-1`).
    InvalidMultibulkLength,
    /// The length after `$` is not a non-negative decimal integer.
    InvalidBulkLength,
    /// An array element did not start with `$`; `found` is the byte seen instead.
    ExpectedBulk {
        /// The byte found where `$` was expected.
        found: u8,
    },
    /// A bulk string's data was not followed by `\r\n`.
    MissingCrlf,
    /// The array declared more elements than [`Limits::max_array_len`].
    ArrayTooLarge {
        /// The declared count.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A bulk string declared more bytes than [`Limits::max_bulk_len`].
    BulkTooLarge {
        /// The declared length.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// An inline command line is longer than [`Limits::max_inline_len`].
    InlineTooLarge {
        /// The configured limit.
        max: usize,
    },
}

impl ProtocolError {
    /// Appends the RESP error reply for this error (`-ERR Protocol error: ...\r\n`),
    /// worded as Redis words it where Redis has the same error.
    ///
    /// O(1), no allocation beyond `out`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::resp::ProtocolError;
    /// let mut out = Vec::new();
    /// ProtocolError::InvalidBulkLength.write_reply(&mut out);
    /// assert_eq!(out, b"-ERR Protocol error: invalid bulk length\r\n");
    /// ```
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"-ERR Protocol error: ");
        match *self {
            ProtocolError::InvalidMultibulkLength => {
                out.extend_from_slice(b"invalid multibulk length")
            }
            ProtocolError::InvalidBulkLength => out.extend_from_slice(b"invalid bulk length"),
            ProtocolError::ExpectedBulk { found } => {
                out.extend_from_slice(b"expected '$', got '");
                push_printable(out, found);
                out.push(b'\'');
            }
            ProtocolError::MissingCrlf => out.extend_from_slice(b"expected CRLF after bulk string"),
            ProtocolError::ArrayTooLarge { len, max } => {
                out.extend_from_slice(b"invalid multibulk length (");
                push_u64(out, len);
                out.extend_from_slice(b" > ");
                push_u64(out, max as u64);
                out.push(b')');
            }
            ProtocolError::BulkTooLarge { len, max } => {
                out.extend_from_slice(b"invalid bulk length (");
                push_u64(out, len);
                out.extend_from_slice(b" > ");
                push_u64(out, max as u64);
                out.push(b')');
            }
            ProtocolError::InlineTooLarge { .. } => {
                out.extend_from_slice(b"too big inline request")
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `b` if it is printable ASCII, else `\xNN`.
fn push_printable(out: &mut Vec<u8>, b: u8) {
    if b.is_ascii_graphic() || b == b' ' {
        out.push(b);
    } else {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 15)],
        ]);
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProtocolError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtocolError::ExpectedBulk { found } => {
                write!(f, "expected '$', got byte 0x{found:02x}")
            }
            ProtocolError::MissingCrlf => f.write_str("expected CRLF after bulk string"),
            ProtocolError::ArrayTooLarge { len, max } => {
                write!(f, "array of {len} elements exceeds the limit of {max}")
            }
            ProtocolError::BulkTooLarge { len, max } => {
                write!(f, "bulk string of {len} bytes exceeds the limit of {max}")
            }
            ProtocolError::InlineTooLarge { max } => {
                write!(f, "inline request longer than the limit of {max} bytes")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The arguments of a request (or a tail of them): byte slices borrowed from the
/// receive buffer. `Copy`; indexing is O(1).
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    /// Number of arguments. O(1).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// `true` when there are no arguments. O(1).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `i`, or `None` past the end. O(1).
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        // Ranges are produced by the parser and always lie inside `buf`; `get`
        // keeps that an invariant rather than a panic site.
        let r = self.ranges.get(i)?;
        self.buf.get(r.clone())
    }

    /// The arguments from `i` on (empty when `i >= len`). O(1).
    pub fn skip(&self, i: usize) -> Args<'a> {
        Args {
            buf: self.buf,
            ranges: self.ranges.get(i..).unwrap_or(&[]),
        }
    }

    /// Iterates over the arguments in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + Clone + 'a {
        let buf = self.buf;
        self.ranges
            .iter()
            .map(move |r| buf.get(r.clone()).unwrap_or(&[]))
    }
}

impl fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|a| String::from_utf8_lossy(a)))
            .finish()
    }
}

impl PartialEq for Args<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Args<'_> {}

/// One framed request: its arguments, the first being the command name.
///
/// A request with no arguments (an empty inline line, or `*0\r\n`) is valid and
/// gets no reply, as in Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    args: Args<'a>,
}

impl<'a> Request<'a> {
    /// All arguments, command name first. O(1).
    pub fn args(&self) -> Args<'a> {
        self.args
    }

    /// Number of arguments including the command name. O(1).
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// `true` for an empty request, which needs no reply. O(1).
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Argument `i` (0 is the command name). O(1).
    pub fn arg(&self, i: usize) -> Option<&'a [u8]> {
        self.args.get(i)
    }
}

/// Where an unfinished request stopped, so the next call resumes there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests.
    Idle,
    /// An inline line whose first `scanned` bytes hold no `\n`.
    Inline { scanned: usize },
    /// An array with `remaining` elements left, the next one starting at `pos`;
    /// the elements before are in `Parser::args`.
    Array { remaining: usize, pos: usize },
}

/// Capacity above which the argument vector is trimmed back after a request.
const ARGS_KEEP: usize = 1024;

/// Longest `*N` / `$N` header line accepted, digits and sign, before its `\r`.
/// Twenty digits hold any u64; anything longer is garbage, not a length.
const MAX_LEN_DIGITS: usize = 20;

/// An incremental, zero-copy RESP2 request parser; one per connection.
///
/// Memory: one `Vec<Range<usize>>` (16 bytes an argument), reused across requests,
/// grown only by arguments actually present in the buffer and trimmed to 1024
/// entries after a larger request.
#[derive(Debug, Clone)]
pub struct Parser {
    limits: Limits,
    args: Vec<Range<usize>>,
    state: State,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(Limits::default())
    }
}

impl Parser {
    /// A parser enforcing `limits`. O(1), no allocation until the first argument.
    pub fn new(limits: Limits) -> Self {
        Parser {
            limits,
            args: Vec::new(),
            state: State::Idle,
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forgets a partially parsed request. Call it if the bytes given to the last
    /// call that returned `Ok(None)` are discarded rather than extended.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.args.clear();
    }

    /// Frames the first request in `buf`.
    ///
    /// Returns `Ok(Some((request, consumed)))` when `buf` starts with a complete
    /// request of `consumed` bytes (`consumed <= buf.len()`; drop that many bytes
    /// and call again for the next pipelined request), or `Ok(None)` when more
    /// bytes are needed. After `Ok(None)` the next call must pass a buffer that
    /// starts with the same bytes (more appended); the parser resumes where it
    /// stopped (call [`reset`](Self::reset) otherwise).
    ///
    /// Cost: O(bytes of headers not yet seen) per call; bulk data is skipped by
    /// length, not scanned. No allocation except growing the reused argument vector.
    ///
    /// # Errors
    ///
    /// [`ProtocolError`] when the framing is invalid or over a [`Limits`] value; the
    /// stream cannot be resynchronised after it. The parser is back to idle.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::resp::Parser;
    /// let mut p = Parser::default();
    /// let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n";
    /// let (req, n) = p.parse(buf).unwrap().unwrap();
    /// assert_eq!((req.arg(0), req.arg(1), n), (Some(&b"GET"[..]), Some(&b"k"[..]), 20));
    /// let (req, n) = p.parse(&buf[20..]).unwrap().unwrap();
    /// assert_eq!((req.arg(0), n), (Some(&b"PING"[..]), 6));
    /// assert!(p.parse(b"*2\r\n$3\r\nGE").unwrap().is_none());
    /// ```
    pub fn parse<'a>(
        &'a mut self,
        buf: &'a [u8],
    ) -> Result<Option<(Request<'a>, usize)>, ProtocolError> {
        match self.step(buf) {
            Ok(Some(consumed)) => {
                let args = Args {
                    buf,
                    ranges: &self.args,
                };
                Ok(Some((Request { args }, consumed)))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    /// Advances the state machine; `Ok(Some(consumed))` leaves the request's
    /// ranges in `self.args`.
    fn step(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if self.state == State::Idle {
            if self.args.capacity() > ARGS_KEEP {
                self.args.truncate(0);
                self.args.shrink_to(ARGS_KEEP);
            }
            self.args.clear();
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            if first == b'*' {
                let Some((n, next)) =
                    parse_len_line(buf, 1).map_err(|()| ProtocolError::InvalidMultibulkLength)?
                else {
                    return Ok(None);
                };
                if n > self.limits.max_array_len as u64 {
                    return Err(ProtocolError::ArrayTooLarge {
                        len: n,
                        max: self.limits.max_array_len,
                    });
                }
                // n <= max_array_len, so it fits in usize.
                self.state = State::Array {
                    remaining: n as usize,
                    pos: next,
                };
            } else {
                self.state = State::Inline { scanned: 0 };
            }
        }
        match self.state {
            State::Idle => Ok(None),
            State::Inline { scanned } => self.inline(buf, scanned),
            State::Array { remaining, pos } => self.array(buf, remaining, pos),
        }
    }

    fn inline(&mut self, buf: &[u8], scanned: usize) -> Result<Option<usize>, ProtocolError> {
        let max = self.limits.max_inline_len;
        // The line may be `max` bytes plus "\r\n"; look no further than that.
        let window_end = buf.len().min(max.saturating_add(2));
        let from = scanned.min(window_end);
        let Some(nl) = buf[from..window_end]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| from + i)
        else {
            if buf.len() > max.saturating_add(1) {
                return Err(ProtocolError::InlineTooLarge { max });
            }
            self.state = State::Inline {
                scanned: window_end,
            };
            return Ok(None);
        };
        let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        if line_end > max {
            return Err(ProtocolError::InlineTooLarge { max });
        }
        let mut i = 0;
        while i < line_end {
            if buf[i].is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let start = i;
            while i < line_end && !buf[i].is_ascii_whitespace() {
                i += 1;
            }
            if self.args.len() == self.limits.max_array_len {
                return Err(ProtocolError::ArrayTooLarge {
                    len: self.args.len() as u64 + 1,
                    max: self.limits.max_array_len,
                });
            }
            self.args.push(start..i);
        }
        self.state = State::Idle;
        Ok(Some(nl + 1))
    }

    fn array(
        &mut self,
        buf: &[u8],
        mut remaining: usize,
        mut pos: usize,
    ) -> Result<Option<usize>, ProtocolError> {
        while remaining > 0 {
            let Some(&marker) = buf.get(pos) else {
                self.state = State::Array { remaining, pos };
                return Ok(None);
            };
            if marker != b'$' {
                return Err(ProtocolError::ExpectedBulk { found: marker });
            }
            let Some((len, data)) =
                parse_len_line(buf, pos + 1).map_err(|()| ProtocolError::InvalidBulkLength)?
            else {
                self.state = State::Array { remaining, pos };
                return Ok(None);
            };
            if len > self.limits.max_bulk_len as u64 {
                return Err(ProtocolError::BulkTooLarge {
                    len,
                    max: self.limits.max_bulk_len,
                });
            }
            // len <= max_bulk_len fits in usize; data < buf.len() + 1.
            let end = data.saturating_add(len as usize);
            let Some(crlf) = buf.get(end..end.saturating_add(2)) else {
                // Not all of the data has arrived; the `$N` header is re-read next
                // time (a few bytes), the data is never scanned.
                self.state = State::Array { remaining, pos };
                return Ok(None);
            };
            if crlf != b"\r\n" {
                return Err(ProtocolError::MissingCrlf);
            }
            self.args.push(data..end);
            pos = end + 2;
            remaining -= 1;
        }
        self.state = State::Idle;
        Ok(Some(pos))
    }
}

/// Parses the `N\r\n` after a `*` or `$` at `buf[at..]`: `Ok(Some((n, index after
/// the \n)))`, `Ok(None)` if incomplete, `Err` if not a non-negative decimal integer
/// (Redis' strict digits) terminated by `\r\n`.
fn parse_len_line(buf: &[u8], at: usize) -> Result<Option<(u64, usize)>, ()> {
    let rest = buf.get(at..).unwrap_or(&[]);
    let window = &rest[..rest.len().min(MAX_LEN_DIGITS + 2)];
    let cr = window.iter().position(|&b| b == b'\r');
    // Fail as soon as a byte that can never be part of a length shows up, and
    // on exactly the same bytes however the input was split.
    if window[..cr.unwrap_or(window.len())]
        .iter()
        .any(|&b| !b.is_ascii_digit())
    {
        return Err(());
    }
    let cr = match cr {
        // More digits than any length has: refuse without waiting for the LF
        // (which would lie outside the window and never be seen).
        Some(cr) if cr > MAX_LEN_DIGITS => return Err(()),
        Some(cr) => cr,
        None if window.len() > MAX_LEN_DIGITS => return Err(()),
        None => return Ok(None),
    };
    let Some(&lf) = window.get(cr + 1) else {
        return Ok(None);
    };
    if lf != b'\n' {
        return Err(());
    }
    let digits = &window[..cr];
    // Digits only, so negative lengths (the null array `*-1`) were refused
    // above; this rejects empty digits, leading zeros and overflow.
    let n = super::parse_i64(digits).ok_or(())?;
    Ok(Some((n as u64, at + cr + 2)))
}

/// Appends `+s\r\n`. CR and LF in `s` become spaces so the reply stays one line.
/// O(len), no allocation beyond `out`.
///
/// # Examples
///
/// ```
/// let mut out = Vec::new();
/// shardnet::protocol::resp::write_simple(&mut out, b"OK");
/// assert_eq!(out, b"+OK\r\n");
/// ```
pub fn write_simple(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'+');
    push_line(out, s);
}

/// Appends `-msg\r\n`; `msg` starts with the error code (`ERR ...`, `WRONGTYPE ...`).
/// CR and LF in `msg` become spaces. O(len), no allocation beyond `out`.
///
/// # Examples
///
/// ```
/// let mut out = Vec::new();
/// shardnet::protocol::resp::write_error(&mut out, b"ERR syntax error");
/// assert_eq!(out, b"-ERR syntax error\r\n");
/// ```
pub fn write_error(out: &mut Vec<u8>, msg: &[u8]) {
    out.push(b'-');
    push_line(out, msg);
}

/// Appends `:n\r\n`. O(1), no allocation beyond `out`.
///
/// # Examples
///
/// ```
/// let mut out = Vec::new();
/// shardnet::protocol::resp::write_integer(&mut out, -7);
/// assert_eq!(out, b":-7\r\n");
/// ```
pub fn write_integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    push_i64(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends `$len\r\ndata\r\n`. O(len), no allocation beyond `out`.
///
/// # Examples
///
/// ```
/// let mut out = Vec::new();
/// shardnet::protocol::resp::write_bulk(&mut out, b"hi");
/// assert_eq!(out, b"$2\r\nhi\r\n");
/// ```
pub fn write_bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    push_u64(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends `data` as a bulk string, or the null bulk string when `None`.
///
/// # Examples
///
/// ```
/// let mut out = Vec::new();
/// shardnet::protocol::resp::write_optional_bulk(&mut out, None);
/// assert_eq!(out, b"$-1\r\n");
/// ```
pub fn write_optional_bulk(out: &mut Vec<u8>, data: Option<&[u8]>) {
    match data {
        Some(d) => write_bulk(out, d),
        None => write_null(out),
    }
}

/// Appends the null bulk string `$-1\r\n` (a missing key). O(1).
///
/// # Examples
///
/// ```
/// let mut out = Vec::new();
/// shardnet::protocol::resp::write_null(&mut out);
/// assert_eq!(out, b"$-1\r\n");
/// ```
pub fn write_null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// Appends `*len\r\n`; the caller then appends `len` values. O(1).
///
/// # Examples
///
/// ```
/// use shardnet::protocol::resp::{write_array_header, write_integer};
/// let mut out = Vec::new();
/// write_array_header(&mut out, 1);
/// write_integer(&mut out, 5);
/// assert_eq!(out, b"*1\r\n:5\r\n");
/// ```
pub fn write_array_header(out: &mut Vec<u8>, len: usize) {
    out.push(b'*');
    push_u64(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

fn push_line(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(
        s.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// Parses every request in `buf` in one go; `Err` on a protocol error, and the
    /// byte count left unparsed at the end.
    fn parse_all(p: &mut Parser, buf: &[u8]) -> (Vec<Vec<Vec<u8>>>, Result<usize, ProtocolError>) {
        let mut out = Vec::new();
        let mut off = 0;
        loop {
            match p.parse(&buf[off..]) {
                Ok(Some((req, n))) => {
                    assert!(n > 0 && n <= buf.len() - off);
                    out.push(req.args().iter().map(<[u8]>::to_vec).collect());
                    off += n;
                }
                Ok(None) => return (out, Ok(buf.len() - off)),
                Err(e) => return (out, Err(e)),
            }
        }
    }

    /// Feeds `buf` as a stream that grows one chunk at a time, as a connection
    /// would, consuming complete requests from the front.
    fn parse_streamed(
        p: &mut Parser,
        buf: &[u8],
        cuts: &[usize],
    ) -> (Vec<Vec<Vec<u8>>>, Result<usize, ProtocolError>) {
        let mut out = Vec::new();
        let mut start = 0;
        let mut ends: Vec<usize> = cuts.to_vec();
        ends.push(buf.len());
        for end in ends {
            loop {
                match p.parse(&buf[start..end]) {
                    Ok(Some((req, n))) => {
                        out.push(req.args().iter().map(<[u8]>::to_vec).collect());
                        start += n;
                    }
                    Ok(None) => break,
                    Err(e) => return (out, Err(e)),
                }
            }
        }
        (out, Ok(buf.len() - start))
    }

    fn v(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    const PIPELINE: &[u8] = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n\
PING\r\n\
*1\r\n$4\r\nPING\r\n\
get  key\n\
*2\r\n$4\r\nECHO\r\n$0\r\n\r\n\
*0\r\n\
\r\n\
*2\r\n$3\r\nGET\r\n$11\r\nbin\r\n\x00\xff\r\n\r\n\r\n";

    fn pipeline_expected() -> Vec<Vec<Vec<u8>>> {
        vec![
            v(&["SET", "key", "value"]),
            v(&["PING"]),
            v(&["PING"]),
            v(&["get", "key"]),
            v(&["ECHO", ""]),
            vec![],
            vec![],
            vec![b"GET".to_vec(), b"bin\r\n\x00\xff\r\n\r\n".to_vec()],
        ]
    }

    #[test]
    fn pipelined_requests_parse_in_order() {
        let mut p = Parser::default();
        let (reqs, rest) = parse_all(&mut p, PIPELINE);
        assert_eq!(rest, Ok(0));
        assert_eq!(reqs, pipeline_expected());
    }

    #[test]
    fn split_at_every_boundary_gives_identical_results() {
        let expected = pipeline_expected();
        for cut in 0..=PIPELINE.len() {
            let mut p = Parser::default();
            let (reqs, rest) = parse_streamed(&mut p, PIPELINE, &[cut]);
            assert_eq!(rest, Ok(0), "cut at {cut}");
            assert_eq!(reqs, expected, "cut at {cut}");
        }
        // Two cuts everywhere too (covers resuming twice inside one request).
        for a in 0..=PIPELINE.len() {
            for b in a..=PIPELINE.len() {
                let mut p = Parser::default();
                let (reqs, rest) = parse_streamed(&mut p, PIPELINE, &[a, b]);
                assert_eq!((reqs, rest), (expected.clone(), Ok(0)), "cuts at {a},{b}");
            }
        }
    }

    #[test]
    fn byte_by_byte_gives_identical_results() {
        let cuts: Vec<usize> = (1..PIPELINE.len()).collect();
        let mut p = Parser::default();
        let (reqs, rest) = parse_streamed(&mut p, PIPELINE, &cuts);
        assert_eq!(rest, Ok(0));
        assert_eq!(reqs, pipeline_expected());
    }

    #[test]
    fn every_strict_prefix_of_a_request_is_incomplete() {
        let one = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
        for end in 0..one.len() {
            let mut p = Parser::default();
            assert_eq!(
                p.parse(&one[..end]).map(|r| r.is_some()),
                Ok(false),
                "prefix {end}"
            );
        }
        let inline = b"ECHO hello\r\n";
        for end in 0..inline.len() {
            let mut p = Parser::default();
            assert_eq!(
                p.parse(&inline[..end]).map(|r| r.is_some()),
                Ok(false),
                "prefix {end}"
            );
        }
    }

    #[test]
    fn oversize_bulk_is_rejected_from_its_header() {
        let limits = Limits {
            max_bulk_len: 10,
            ..Limits::default()
        };
        let mut p = Parser::new(limits);
        assert_eq!(
            p.parse(b"*1\r\n$11\r\n"),
            Err(ProtocolError::BulkTooLarge { len: 11, max: 10 })
        );
        // Exactly at the limit is fine.
        let mut p = Parser::new(limits);
        let (req, _) = p.parse(b"*1\r\n$10\r\n0123456789\r\n").unwrap().unwrap();
        assert_eq!(req.arg(0), Some(&b"0123456789"[..]));
        // The default limit rejects a huge declared size without reserving it.
        let mut p = Parser::default();
        assert_eq!(
            p.parse(b"*1\r\n$9223372036854775807\r\n"),
            Err(ProtocolError::BulkTooLarge {
                len: i64::MAX as u64,
                max: 16 << 20
            })
        );
        assert!(p.args.capacity() <= ARGS_KEEP);
    }

    #[test]
    fn oversize_array_is_rejected_without_reserving() {
        let mut p = Parser::default();
        assert_eq!(
            p.parse(b"*1048577\r\n"),
            Err(ProtocolError::ArrayTooLarge {
                len: 1_048_577,
                max: 1 << 20
            })
        );
        // A count at the limit with nothing behind it is simply incomplete, and
        // reserves nothing.
        assert_eq!(
            p.parse(b"*1048576\r\n$1\r\na\r\n").map(|r| r.is_some()),
            Ok(false)
        );
        assert!(p.args.capacity() < 64, "{}", p.args.capacity());
    }

    #[test]
    fn oversize_inline_is_rejected() {
        let limits = Limits {
            max_inline_len: 8,
            ..Limits::default()
        };
        let mut p = Parser::new(limits);
        assert_eq!(
            p.parse(b"PING 1234\r\n"),
            Err(ProtocolError::InlineTooLarge { max: 8 })
        );
        let mut p = Parser::new(limits);
        assert_eq!(
            p.parse(b"PINGPINGPING"),
            Err(ProtocolError::InlineTooLarge { max: 8 })
        );
        // 8 bytes plus CRLF is accepted; 8 bytes plus CR still waits for its LF.
        let mut p = Parser::new(limits);
        assert_eq!(p.parse(b"PING 123\r").map(|r| r.is_some()), Ok(false));
        let mut p = Parser::new(limits);
        assert_eq!(p.parse(b"PING 123\r\n").unwrap().unwrap().1, 10);
        // A long line sent one byte at a time fails as soon as it is too long.
        let mut p = Parser::new(limits);
        let long = b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let mut failed_at = None;
        for end in 1..=long.len() {
            if p.parse(&long[..end]).is_err() {
                failed_at = Some(end);
                break;
            }
        }
        assert_eq!(failed_at, Some(10));
    }

    #[test]
    fn malformed_framing_is_an_error() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"*-1\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*-5\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*x\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1x", ProtocolError::InvalidMultibulkLength),
            (b"*\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*01\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*+1\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1\rx", ProtocolError::InvalidMultibulkLength),
            (b"*1\n", ProtocolError::InvalidMultibulkLength),
            (
                b"*123456789012345678901234\r\n",
                ProtocolError::InvalidMultibulkLength,
            ),
            (b"*1\r\n$-1\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$abc\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$ 3\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$3\r\nabcXY", ProtocolError::MissingCrlf),
            (b"*1\r\n$3\r\nabc\n\r", ProtocolError::MissingCrlf),
            (b"*1\r\n:3\r\n", ProtocolError::ExpectedBulk { found: b':' }),
            (
                b"*2\r\n$1\r\na\r\n*1\r\n",
                ProtocolError::ExpectedBulk { found: b'*' },
            ),
        ];
        for (input, want) in cases {
            let mut p = Parser::default();
            assert_eq!(
                p.parse(input),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            // The same error however the input is split.
            for cut in 0..input.len() {
                let mut p = Parser::default();
                let (_, res) = parse_streamed(&mut p, input, &[cut]);
                assert_eq!(
                    res,
                    Err(*want),
                    "{:?} cut at {cut}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn error_replies_are_single_lines() {
        let errors = [
            ProtocolError::InvalidMultibulkLength,
            ProtocolError::InvalidBulkLength,
            ProtocolError::ExpectedBulk { found: b'\n' },
            ProtocolError::ExpectedBulk { found: b'x' },
            ProtocolError::MissingCrlf,
            ProtocolError::ArrayTooLarge { len: 5, max: 4 },
            ProtocolError::BulkTooLarge { len: 5, max: 4 },
            ProtocolError::InlineTooLarge { max: 4 },
        ];
        for e in errors {
            let mut out = Vec::new();
            e.write_reply(&mut out);
            assert!(out.starts_with(b"-ERR Protocol error: "), "{e}");
            assert!(out.ends_with(b"\r\n"));
            assert!(
                !out[..out.len() - 2]
                    .iter()
                    .any(|&b| b == b'\r' || b == b'\n'),
                "{e}"
            );
            assert!(!e.to_string().is_empty());
        }
        let mut out = Vec::new();
        ProtocolError::ExpectedBulk { found: 0x07 }.write_reply(&mut out);
        assert_eq!(out, b"-ERR Protocol error: expected '$', got '\\x07'\r\n");
    }

    #[test]
    fn parser_recovers_to_idle_after_error_and_reset() {
        let mut p = Parser::default();
        assert!(p.parse(b"*1\r\n$x").is_err());
        assert_eq!(p.parse(b"PING\r\n").unwrap().unwrap().1, 6);
        assert!(p.parse(b"*2\r\n$3\r\nGET\r\n").unwrap().is_none());
        p.reset();
        assert_eq!(
            p.parse(b"*1\r\n$4\r\nPING\r\n").unwrap().unwrap().0.len(),
            1
        );
    }

    #[test]
    fn large_argument_vector_is_trimmed_afterwards() {
        let mut buf = b"*5000\r\n".to_vec();
        for _ in 0..5000 {
            buf.extend_from_slice(b"$1\r\na\r\n");
        }
        let mut p = Parser::default();
        assert_eq!(p.parse(&buf).unwrap().unwrap().0.len(), 5000);
        assert!(p.args.capacity() >= 5000);
        assert_eq!(p.parse(b"PING\r\n").unwrap().unwrap().0.len(), 1);
        assert!(p.args.capacity() <= ARGS_KEEP);
    }

    #[test]
    fn encoders_produce_resp2() {
        let mut out = Vec::new();
        write_simple(&mut out, b"O\r\nK");
        write_error(&mut out, b"ERR x\ny");
        write_integer(&mut out, i64::MIN);
        write_bulk(&mut out, b"");
        write_optional_bulk(&mut out, Some(b"a"));
        write_null(&mut out);
        write_array_header(&mut out, 0);
        assert_eq!(
            out,
            &b"+O  K\r\n-ERR x y\r\n:-9223372036854775808\r\n$0\r\n\r\n$1\r\na\r\n$-1\r\n*0\r\n"[..]
        );
    }

    #[test]
    fn encoded_arrays_parse_back() {
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..200 {
            let n = rng.gen_range(1..6);
            let args: Vec<Vec<u8>> = (0..n)
                .map(|_| (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect())
                .collect();
            let mut buf = Vec::new();
            write_array_header(&mut buf, n);
            for a in &args {
                write_bulk(&mut buf, a);
            }
            let mut p = Parser::default();
            let (req, used) = p.parse(&buf).unwrap().unwrap();
            assert_eq!(used, buf.len());
            assert_eq!(
                req.args().iter().map(<[u8]>::to_vec).collect::<Vec<_>>(),
                args
            );
        }
    }

    #[test]
    fn seeded_garbage_never_panics_and_consumes_within_bounds() {
        let mut rng = SmallRng::seed_from_u64(0x5eed);
        let alphabet = b"*$:+-\r\n0123456789 aPINGx";
        let limits = Limits {
            max_bulk_len: 64,
            max_array_len: 8,
            max_inline_len: 32,
        };
        let mut outcomes = [0usize; 3];
        for _ in 0..20_000 {
            let len = rng.gen_range(0..64);
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.gen_bool(0.8) {
                        alphabet[rng.gen_range(0..alphabet.len())]
                    } else {
                        rng.gen()
                    }
                })
                .collect();
            let mut p = Parser::new(limits);
            let (_, res) = parse_all(&mut p, &buf);
            match res {
                Ok(0) => outcomes[0] += 1,
                Ok(rest) => {
                    assert!(rest <= buf.len());
                    outcomes[1] += 1
                }
                Err(_) => outcomes[2] += 1,
            }
        }
        // The generator reaches all three outcomes, so the loop tests something.
        assert!(outcomes.iter().all(|&c| c > 100), "{outcomes:?}");
    }

    #[test]
    fn args_views() {
        let mut p = Parser::default();
        let (req, _) = p.parse(b"MGET a bb ccc\r\n").unwrap().unwrap();
        let args = req.args();
        assert_eq!(args.len(), 4);
        assert_eq!(args.get(4), None);
        let keys = args.skip(1);
        assert_eq!(
            keys.iter().collect::<Vec<_>>(),
            vec![&b"a"[..], b"bb", b"ccc"]
        );
        assert!(args.skip(9).is_empty());
        assert_eq!(format!("{keys:?}"), r#"["a", "bb", "ccc"]"#);
    }
}
