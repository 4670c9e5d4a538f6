//! Request writers and reply checkers for echo, RESP and HTTP/1.1.
//!
//! Requests are written into a connection's send buffer without allocating: payloads are
//! slices of one pattern made at start-up, so no request needs to be remembered beyond a
//! [`Tag`] of 8 bytes. Replies are checked as they stream in by a [`ReplyParser`], a small
//! state machine per connection that never buffers a body.
//!
//! Sizes are `--size N` or a range `--size A..B`, drawn per request (echo) or per key (RESP).
//! When every payload has room for one (`A >= 16`), payloads start with a [`stamp`]: 16 bytes
//! naming what the payload is, with a check word, so a reply belonging to another request,
//! another connection or an earlier connection of the same number cannot pass.
//!
//! - echo: request `n` is a stamp (connection, generation, `n`) and pattern bytes from an
//!   offset given by the stamp's check word (without a stamp: the pattern from offset
//!   `37 n mod 251`); the reply must be the same bytes, all of them compared.
//! - resp: `SET key value` or `GET key` with `key = load:<size, 8 digits>:<n, 12 digits>`,
//!   `n` uniform in `0..--keys`. The value of a key is a function of the key (its length in
//!   the size range, its stamp and its pattern offset), so a GET by any connection can be
//!   checked: it must be nil or exactly that value. Putting the size in the key keeps runs
//!   with other sizes apart (for a range, the 8 digits are a hash of its bounds).
//! - http: `GET <path> HTTP/1.1` with a Host header; the reply must have status 200 and a
//!   Content-Length, and the body is skipped by that length (pipelined replies follow it
//!   directly). Chunked replies are a protocol error.

use crate::cli::{ProtocolKind, SizeRange};
use crate::errors::{ErrorKind, Failure};
use crate::stamp::{self, Stamp, STAMP_LEN};

/// Distinct payload offsets into the pattern.
const OFFSETS: u64 = 251;
/// Longest RESP reply line accepted before its CRLF.
const MAX_RESP_LINE: usize = 1024;
/// Largest HTTP reply head accepted.
pub const MAX_HTTP_HEAD: usize = 16 * 1024;
/// `load:` + 8 digits + `:` + 12 digits.
const KEY_LEN: usize = 26;
const GET_PREFIX: &[u8] = b"*2\r\n$3\r\nGET\r\n$26\r\n";
const SET_PREFIX: &[u8] = b"*3\r\n$3\r\nSET\r\n$26\r\n";

/// What a reply checker needs to know about the request it answers: the echo payload's length
/// and its request number (or pattern offset without stamps), or the RESP key and whether it
/// was a SET.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tag(u64);

impl Tag {
    fn echo(len: usize, low: u64) -> Tag {
        Tag((len as u64) << 32 | (low & 0xffff_ffff))
    }

    fn echo_len(self) -> usize {
        (self.0 >> 32) as usize
    }

    fn echo_low(self) -> u64 {
        self.0 & 0xffff_ffff
    }
}

/// Which connection a request comes from: its number, and how many times it has reconnected.
/// Stamps carry both, so a reply meant for another connection, or for an earlier connection
/// of the same number, is a mismatch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Connection number in the run.
    pub conn: u64,
    /// Reconnects of that connection so far.
    pub generation: u64,
}

/// The bytes a payload must have: an optional stamp, then a slice of the pattern.
#[derive(Clone, Copy, Debug)]
struct Expected<'a> {
    stamp: Option<Stamp>,
    body: &'a [u8],
}

impl Expected<'_> {
    fn len(&self) -> usize {
        self.stamp.map_or(0, |_| STAMP_LEN) + self.body.len()
    }

    fn byte(&self, at: usize) -> u8 {
        match self.stamp {
            Some(s) if at < STAMP_LEN => s.bytes[at],
            Some(_) => self.body[at - STAMP_LEN],
            None => self.body[at],
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        if let Some(s) = self.stamp {
            out.extend_from_slice(&s.bytes);
        }
        out.extend_from_slice(self.body);
    }

    /// Compares `input` with the payload from byte `done` on: `Ok((consumed, complete))`, or
    /// the payload index and byte of the first difference.
    fn check(&self, done: usize, input: &[u8]) -> Result<(usize, bool), (usize, u8)> {
        let mut at = done;
        let mut used = 0;
        if let Some(s) = self.stamp {
            if at < STAMP_LEN {
                let (n, complete) = check_bytes(&s.bytes, at, input)?;
                at += n;
                used += n;
                if !complete {
                    return Ok((used, false));
                }
            }
            let (n, complete) = check_bytes(self.body, at - STAMP_LEN, &input[used..])
                .map_err(|(i, b)| (i + STAMP_LEN, b))?;
            return Ok((used + n, complete));
        }
        check_bytes(self.body, at, input)
    }
}

/// A small, fast, seeded generator (splitmix64) for keys and SET/GET choices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence depends only on `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6a09_e667_f3bc_c908)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The protocol of a run: shared read-only by all connections.
#[derive(Debug)]
pub struct Protocol {
    kind: ProtocolKind,
    min: usize,
    max: usize,
    stamped: bool,
    /// The 8 digits after `load:` in RESP keys.
    key_size_field: u64,
    pattern: Box<[u8]>,
    http_request: Box<[u8]>,
    keys: u64,
    set_threshold: u64,
}

impl Protocol {
    /// A protocol sending payloads of `size` bytes (drawn per request or key from a range);
    /// `keys` and `set_ratio` are for RESP, `path` and `host` for HTTP.
    pub fn new(
        kind: ProtocolKind,
        size: SizeRange,
        keys: u64,
        set_ratio: f64,
        path: &str,
        host: &str,
    ) -> Protocol {
        let (min, max) = (size.min as usize, size.max as usize);
        let mut rng = Rng::new(0x0070_6174_7465_726e);
        let pattern: Box<[u8]> = (0..max + OFFSETS as usize)
            .map(|_| 0x21 + (rng.next_u64() % 94) as u8) // visible ASCII, for readable errors
            .collect();
        let http_request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")
            .into_bytes()
            .into_boxed_slice();
        Protocol {
            kind,
            min,
            max,
            stamped: min >= STAMP_LEN,
            key_size_field: if min == max {
                max as u64 % 100_000_000
            } else {
                stamp::mix((min as u64) << 32 | max as u64) % 100_000_000
            },
            pattern,
            http_request,
            keys: keys.max(1),
            set_threshold: (set_ratio.clamp(0.0, 1.0) * u64::MAX as f64) as u64,
        }
    }

    /// Longest request this protocol writes, in bytes.
    pub fn max_request_len(&self) -> usize {
        match self.kind {
            ProtocolKind::Echo => self.max,
            ProtocolKind::Resp => SET_PREFIX.len() + KEY_LEN + 2 + 1 + 20 + 2 + self.max + 2,
            ProtocolKind::Http => self.http_request.len(),
        }
    }

    /// Whether payloads carry a [`stamp`] (every payload is at least 16 bytes).
    pub fn stamped(&self) -> bool {
        self.stamped
    }

    /// Appends request number `seq` of connection `origin` to `out` if it fits in `out`'s
    /// spare capacity (so `out` never reallocates), returning its tag; `None` if it does not
    /// fit. No allocation.
    pub fn write_request(
        &self,
        origin: Origin,
        seq: u64,
        rng: &mut Rng,
        out: &mut Vec<u8>,
    ) -> Option<Tag> {
        if out.capacity() - out.len() < self.max_request_len() {
            return None;
        }
        match self.kind {
            ProtocolKind::Echo => {
                let len = if self.max > self.min {
                    self.min + rng.below((self.max - self.min + 1) as u64) as usize
                } else {
                    self.max
                };
                let tag = if self.stamped {
                    Tag::echo(len, seq)
                } else {
                    Tag::echo(len, seq.wrapping_mul(37) % OFFSETS)
                };
                self.echo_payload(origin, tag).write(out);
                Some(tag)
            }
            ProtocolKind::Resp => {
                let key = rng.below(self.keys);
                let set = rng.next_u64() < self.set_threshold;
                out.extend_from_slice(if set { SET_PREFIX } else { GET_PREFIX });
                self.put_key(key, out);
                out.extend_from_slice(b"\r\n");
                if set {
                    let value = self.value(key);
                    out.push(b'$');
                    put_decimal(value.len() as u64, 0, out);
                    out.extend_from_slice(b"\r\n");
                    value.write(out);
                    out.extend_from_slice(b"\r\n");
                }
                Some(Tag(key << 1 | u64::from(set)))
            }
            ProtocolKind::Http => {
                out.extend_from_slice(&self.http_request);
                Some(Tag(0))
            }
        }
    }

    fn put_key(&self, key: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"load:");
        put_decimal(self.key_size_field, 8, out);
        out.push(b':');
        put_decimal(key, 12, out);
    }

    fn key_string(&self, key: u64) -> String {
        let mut v = Vec::with_capacity(KEY_LEN);
        self.put_key(key, &mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    /// `len` bytes of the pattern from offset `off mod 251`.
    fn slice(&self, off: u64, len: usize) -> &[u8] {
        let off = (off % OFFSETS) as usize;
        &self.pattern[off..off + len]
    }

    /// The echo payload of request `tag` of connection `origin`.
    fn echo_payload(&self, origin: Origin, tag: Tag) -> Expected<'_> {
        let len = tag.echo_len();
        if self.stamped {
            let s = stamp::echo(origin.conn, origin.generation, tag.echo_low());
            Expected {
                stamp: Some(s),
                body: self.slice(s.check, len - STAMP_LEN),
            }
        } else {
            Expected {
                stamp: None,
                body: self.slice(tag.echo_low(), len),
            }
        }
    }

    /// The length of the RESP value of `key`: a function of the key within the size range.
    fn value_len(&self, key: u64) -> usize {
        if self.max > self.min {
            self.min
                + (stamp::mix(key ^ 0x6c65_6e67_7468) % (self.max - self.min + 1) as u64) as usize
        } else {
            self.max
        }
    }

    /// The RESP value of `key`.
    fn value(&self, key: u64) -> Expected<'_> {
        let len = self.value_len(key);
        if self.stamped {
            let s = stamp::value(key, len);
            Expected {
                stamp: Some(s),
                body: self.slice(s.check, len - STAMP_LEN),
            }
        } else {
            Expected {
                stamp: None,
                body: self.slice(key, len),
            }
        }
    }
}

/// Appends `n` in decimal, zero-padded to `width` digits. No allocation beyond `out`'s growth.
fn put_decimal(n: u64, width: usize, out: &mut Vec<u8>) {
    let mut digits = [0_u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in (digits.len() - i)..width {
        out.push(b'0');
    }
    out.extend_from_slice(&digits[i..]);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the start of a reply.
    Start,
    /// `done` bytes of an echo reply checked.
    EchoBody { done: usize },
    /// `done` bytes of a RESP bulk value checked.
    RespBulk { done: usize },
    /// A RESP bulk value checked, its CRLF not yet.
    RespTrailer,
    /// `remaining` bytes of an HTTP body to skip.
    HttpBody { remaining: u64 },
}

/// Checks one connection's replies as their bytes arrive.
#[derive(Debug)]
pub struct ReplyParser {
    state: State,
    origin: Origin,
}

impl Default for ReplyParser {
    fn default() -> Self {
        ReplyParser::new(Origin::default())
    }
}

impl ReplyParser {
    /// A parser for the replies to connection `origin`'s requests.
    pub fn new(origin: Origin) -> ReplyParser {
        ReplyParser {
            state: State::Start,
            origin,
        }
    }

    /// Consumes bytes of the reply to the request tagged `tag` from the front of `input`.
    ///
    /// Returns how many bytes it consumed and whether the reply is complete. When it is not,
    /// the bytes left over (if any) are an incomplete line or head: keep them and call again
    /// with more. No allocation unless the reply is wrong.
    ///
    /// # Errors
    ///
    /// A [`Failure`] of kind `Mismatch` (wrong bytes, length, status or reply type) or
    /// `Protocol` (bytes that are not a reply of the protocol). The connection's stream is out
    /// of step after either.
    pub fn feed(&mut self, p: &Protocol, tag: Tag, input: &[u8]) -> Result<(usize, bool), Failure> {
        match p.kind {
            ProtocolKind::Echo => self.feed_echo(p, tag, input),
            ProtocolKind::Resp => self.feed_resp(p, tag, input),
            ProtocolKind::Http => self.feed_http(input),
        }
    }

    fn feed_echo(
        &mut self,
        p: &Protocol,
        tag: Tag,
        input: &[u8],
    ) -> Result<(usize, bool), Failure> {
        let done = match self.state {
            State::EchoBody { done } => done,
            _ => 0,
        };
        let expected = p.echo_payload(self.origin, tag);
        let (n, complete) = expected.check(done, input).map_err(|(at, got)| {
            let mut detail = format!(
                "echo reply byte {at} of {}: got {:?}, expected {:?}",
                expected.len(),
                char::from(got),
                char::from(expected.byte(at))
            );
            if p.stamped {
                let o = self.origin;
                detail.push_str(&format!(
                    " (request {} of connection {}, generation {}",
                    tag.echo_low(),
                    o.conn,
                    o.generation
                ));
                if done == 0 && input.len() >= STAMP_LEN {
                    detail.push_str(&format!("; the reply has {}", stamp::decode(input)));
                }
                detail.push(')');
            }
            Failure::new(ErrorKind::Mismatch, detail)
        })?;
        self.state = if complete {
            State::Start
        } else {
            State::EchoBody { done: done + n }
        };
        Ok((n, complete))
    }

    fn feed_resp(
        &mut self,
        p: &Protocol,
        tag: Tag,
        input: &[u8],
    ) -> Result<(usize, bool), Failure> {
        let key = tag.0 >> 1;
        let is_set = tag.0 & 1 == 1;
        let mut pos = 0;
        loop {
            match self.state {
                State::Start => {
                    let rest = &input[pos..];
                    let Some(lf) = rest
                        .iter()
                        .take(MAX_RESP_LINE + 2)
                        .position(|&b| b == b'\n')
                    else {
                        if rest.len() > MAX_RESP_LINE {
                            return Err(protocol_error(format!(
                                "RESP reply line longer than {MAX_RESP_LINE} bytes"
                            )));
                        }
                        return Ok((pos, false));
                    };
                    if lf == 0 || rest[lf - 1] != b'\r' {
                        return Err(protocol_error(format!(
                            "RESP reply line {} does not end in CRLF",
                            shown(&rest[..lf])
                        )));
                    }
                    let line = &rest[..lf - 1];
                    pos += lf + 1;
                    let command = if is_set { "SET" } else { "GET" };
                    let mismatch = |what: &str| {
                        Failure::new(
                            ErrorKind::Mismatch,
                            format!("{command} {} got {what} {}", p.key_string(key), shown(line)),
                        )
                    };
                    match line.first() {
                        Some(b'+') if is_set && &line[1..] == b"OK" => return Ok((pos, true)),
                        Some(b'+') => return Err(mismatch("the simple string")),
                        Some(b'-') => return Err(mismatch("the error")),
                        Some(b'$') => {
                            let len = std::str::from_utf8(&line[1..])
                                .ok()
                                .and_then(|s| s.parse::<i64>().ok())
                                .ok_or_else(|| {
                                    protocol_error(format!("bad RESP bulk length {}", shown(line)))
                                })?;
                            if is_set {
                                return Err(mismatch("the bulk reply"));
                            }
                            if len == -1 {
                                return Ok((pos, true));
                            }
                            let want = p.value_len(key);
                            if len != want as i64 {
                                return Err(mismatch(&format!(
                                    "a value of {len} bytes (expected {want}):"
                                )));
                            }
                            self.state = State::RespBulk { done: 0 };
                        }
                        Some(b':' | b'*' | b'_' | b'#' | b',' | b'%' | b'~' | b'=') => {
                            return Err(mismatch("the reply"));
                        }
                        _ => {
                            return Err(protocol_error(format!(
                                "not a RESP reply: {}",
                                shown(line)
                            )));
                        }
                    }
                }
                State::RespBulk { done } => {
                    let expected = p.value(key);
                    let (n, complete) =
                        expected.check(done, &input[pos..]).map_err(|(at, got)| {
                            let mut detail = format!(
                                "GET {} value byte {at} of {}: got {:?}, expected {:?}",
                                p.key_string(key),
                                expected.len(),
                                char::from(got),
                                char::from(expected.byte(at))
                            );
                            if p.stamped && done == 0 && input.len() - pos >= STAMP_LEN {
                                detail.push_str(&format!(
                                    " (the value has {})",
                                    stamp::decode(&input[pos..])
                                ));
                            }
                            Failure::new(ErrorKind::Mismatch, detail)
                        })?;
                    pos += n;
                    if !complete {
                        self.state = State::RespBulk { done: done + n };
                        return Ok((pos, false));
                    }
                    self.state = State::RespTrailer;
                }
                State::RespTrailer => {
                    let rest = &input[pos..];
                    if rest.len() < 2 {
                        return Ok((pos, false));
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(protocol_error(format!(
                            "RESP bulk value not followed by CRLF but {}",
                            shown(&rest[..2])
                        )));
                    }
                    self.state = State::Start;
                    return Ok((pos + 2, true));
                }
                State::EchoBody { .. } | State::HttpBody { .. } => self.state = State::Start,
            }
        }
    }

    fn feed_http(&mut self, input: &[u8]) -> Result<(usize, bool), Failure> {
        if let State::HttpBody { remaining } = self.state {
            let take = remaining.min(input.len() as u64);
            let left = remaining - take;
            self.state = if left == 0 {
                State::Start
            } else {
                State::HttpBody { remaining: left }
            };
            return Ok((take as usize, left == 0));
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut reply = httparse::Response::new(&mut headers);
        let head_len = match reply.parse(input) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if input.len() > MAX_HTTP_HEAD {
                    return Err(protocol_error(format!(
                        "HTTP reply head longer than {MAX_HTTP_HEAD} bytes"
                    )));
                }
                return Ok((0, false));
            }
            Err(e) => {
                let end = input.len().min(40);
                return Err(protocol_error(format!(
                    "bad HTTP reply head ({e}): {}",
                    shown(&input[..end])
                )));
            }
        };
        let code = reply.code.unwrap_or(0);
        if code != 200 {
            return Err(Failure::new(
                ErrorKind::Mismatch,
                format!(
                    "HTTP status {code} {} (expected 200)",
                    reply.reason.unwrap_or("")
                ),
            ));
        }
        let mut length: Option<u64> = None;
        for h in reply.headers.iter() {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(protocol_error(
                    "HTTP reply uses Transfer-Encoding (chunked replies are not supported)",
                ));
            }
            if h.name.eq_ignore_ascii_case("content-length") {
                let v = std::str::from_utf8(h.value)
                    .ok()
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| {
                        protocol_error(format!("bad Content-Length {}", shown(h.value)))
                    })?;
                if length.is_some_and(|l| l != v) {
                    return Err(protocol_error(
                        "HTTP reply has two different Content-Lengths",
                    ));
                }
                length = Some(v);
            }
        }
        let Some(length) = length else {
            return Err(protocol_error("HTTP reply has no Content-Length"));
        };
        let body = length.min((input.len() - head_len) as u64);
        let left = length - body;
        self.state = if left == 0 {
            State::Start
        } else {
            State::HttpBody { remaining: left }
        };
        Ok((head_len + body as usize, left == 0))
    }
}

fn protocol_error(detail: impl Into<String>) -> Failure {
    Failure::new(ErrorKind::Protocol, detail)
}

/// Compares `input` with `expected[done..]`: `Ok((consumed, complete))`, or the index in
/// `expected` and the byte of the first difference.
fn check_bytes(expected: &[u8], done: usize, input: &[u8]) -> Result<(usize, bool), (usize, u8)> {
    let want = &expected[done..];
    let n = want.len().min(input.len());
    if want[..n] != input[..n] {
        let i = want[..n]
            .iter()
            .zip(&input[..n])
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err((done + i, input[i]));
    }
    Ok((n, n == want.len()))
}

/// Peer bytes for an error message: at most 60, escaped.
fn shown(bytes: &[u8]) -> String {
    let end = bytes.len().min(60);
    let text: String = bytes[..end].escape_ascii().to_string();
    if bytes.len() > end {
        format!("\"{text}...\"")
    } else {
        format!("\"{text}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sz(n: u32) -> SizeRange {
        SizeRange { min: n, max: n }
    }

    fn proto(kind: ProtocolKind, size: u32) -> Protocol {
        Protocol::new(kind, sz(size), 100, 0.5, "/p", "h:1")
    }

    fn value_bytes(p: &Protocol, key: u64) -> Vec<u8> {
        let mut v = Vec::new();
        p.value(key).write(&mut v);
        v
    }

    /// Feeds `bytes` in pieces of `step`, as a connection would: unconsumed bytes stay.
    fn feed_all(p: &Protocol, tags: &[Tag], bytes: &[u8], step: usize) -> Result<usize, Failure> {
        let mut parser = ReplyParser::default();
        let mut buf: Vec<u8> = Vec::new();
        let mut complete = 0;
        for chunk in bytes.chunks(step) {
            buf.extend_from_slice(chunk);
            while let Some(&tag) = tags.get(complete) {
                let (n, done) = parser.feed(p, tag, &buf)?;
                buf.drain(..n);
                if done {
                    complete += 1;
                } else {
                    break;
                }
            }
        }
        Ok(complete)
    }

    fn requests(p: &Protocol, n: u64) -> (Vec<u8>, Vec<Tag>) {
        let mut out = Vec::with_capacity(p.max_request_len() * n as usize);
        let mut rng = Rng::new(1);
        let tags = (0..n)
            .map(|i| {
                p.write_request(Origin::default(), i, &mut rng, &mut out)
                    .unwrap()
            })
            .collect();
        (out, tags)
    }

    #[test]
    fn echo_accepts_its_own_bytes_in_any_split() {
        let p = proto(ProtocolKind::Echo, 10);
        let (bytes, tags) = requests(&p, 5);
        assert_eq!(bytes.len(), 50);
        for step in [1, 3, 7, 10, 50] {
            assert_eq!(feed_all(&p, &tags, &bytes, step).unwrap(), 5, "step {step}");
        }
    }

    #[test]
    fn echo_reports_the_corrupt_byte() {
        let p = proto(ProtocolKind::Echo, 10);
        let (mut bytes, tags) = requests(&p, 3);
        bytes[23] ^= 0x01;
        let e = feed_all(&p, &tags, &bytes, 4).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Mismatch);
        assert!(e.detail.contains("byte 3 of 10"), "{}", e.detail);
    }

    #[test]
    fn write_request_never_grows_the_buffer() {
        let p = proto(ProtocolKind::Resp, 100);
        let mut out = Vec::with_capacity(p.max_request_len() * 2);
        let cap = out.capacity();
        let mut rng = Rng::new(3);
        let mut written = 0;
        while p
            .write_request(Origin::default(), written, &mut rng, &mut out)
            .is_some()
        {
            written += 1;
        }
        assert!(written >= 2);
        assert_eq!(out.capacity(), cap);
    }

    /// The replies a correct RESP server gives to the requests `tags`.
    fn resp_server(p: &Protocol, tags: &[Tag]) -> Vec<u8> {
        let mut store = std::collections::HashSet::new();
        let mut out = Vec::new();
        for t in tags {
            let key = t.0 >> 1;
            if t.0 & 1 == 1 {
                store.insert(key);
                out.extend_from_slice(b"+OK\r\n");
            } else if store.contains(&key) {
                let v = value_bytes(p, key);
                out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
                out.extend_from_slice(&v);
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(b"$-1\r\n");
            }
        }
        out
    }

    #[test]
    fn resp_requests_are_well_formed() {
        let p = Protocol::new(ProtocolKind::Resp, sz(5), 10, 1.0, "/", "h");
        let mut out = Vec::with_capacity(1000);
        let tag = p
            .write_request(Origin::default(), 0, &mut Rng::new(9), &mut out)
            .unwrap();
        let key = tag.0 >> 1;
        let expected = format!(
            "*3\r\n$3\r\nSET\r\n$26\r\nload:00000005:{key:012}\r\n$5\r\n{}\r\n",
            String::from_utf8_lossy(&value_bytes(&p, key))
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        let g = Protocol::new(ProtocolKind::Resp, sz(5), 10, 0.0, "/", "h");
        let mut out = Vec::with_capacity(1000);
        let tag = g
            .write_request(Origin::default(), 0, &mut Rng::new(9), &mut out)
            .unwrap();
        assert_eq!(tag.0 & 1, 0);
        assert!(out.starts_with(b"*2\r\n$3\r\nGET\r\n$26\r\nload:00000005:"));
    }

    #[test]
    fn resp_accepts_correct_replies_in_any_split() {
        let p = Protocol::new(ProtocolKind::Resp, sz(40), 8, 0.5, "/", "h");
        let (_, tags) = requests(&p, 200);
        let replies = resp_server(&p, &tags);
        assert!(replies.windows(5).any(|w| w == b"$-1\r\n"));
        assert!(replies.windows(4).any(|w| w == b"$40\r"));
        for step in [1, 2, 5, 13, 4096] {
            assert_eq!(
                feed_all(&p, &tags, &replies, step).unwrap(),
                200,
                "step {step}"
            );
        }
    }

    #[test]
    fn resp_rejects_wrong_replies() {
        let p = Protocol::new(ProtocolKind::Resp, sz(4), 8, 0.0, "/", "h");
        let get = Tag(3 << 1);
        let set = Tag(3 << 1 | 1);
        let check = |tag, bytes: &[u8]| feed_all(&p, &[tag], bytes, 3).map_err(|e| e.kind);
        let mut good = b"$4\r\n".to_vec();
        good.extend_from_slice(&value_bytes(&p, 3));
        good.extend_from_slice(b"\r\n");
        assert_eq!(check(get, &good), Ok(1));
        assert_eq!(check(get, b"$-1\r\n"), Ok(1));
        assert_eq!(check(set, b"+OK\r\n"), Ok(1));
        assert_eq!(check(get, b"$4\r\nzzzz\r\n"), Err(ErrorKind::Mismatch));
        assert_eq!(check(get, b"$5\r\nzzzzz\r\n"), Err(ErrorKind::Mismatch));
        assert_eq!(check(get, b"+OK\r\n"), Err(ErrorKind::Mismatch));
        assert_eq!(check(set, b"-ERR no\r\n"), Err(ErrorKind::Mismatch));
        assert_eq!(check(set, b"$-1\r\n"), Err(ErrorKind::Mismatch));
        assert_eq!(check(get, b":1\r\n"), Err(ErrorKind::Mismatch));
        assert_eq!(check(get, b"hello\r\n"), Err(ErrorKind::Protocol));
        assert_eq!(check(get, b"$x\r\n"), Err(ErrorKind::Protocol));
        assert_eq!(check(get, b"+OK\n"), Err(ErrorKind::Protocol));
        let mut bad_trailer = good.clone();
        let n = bad_trailer.len();
        bad_trailer[n - 2] = b'X';
        assert_eq!(check(get, &bad_trailer), Err(ErrorKind::Protocol));
        assert_eq!(check(get, &[b'+'; 2000]), Err(ErrorKind::Protocol));
        // incomplete is not an error
        assert_eq!(check(get, b"$4\r\n"), Ok(0));
    }

    #[test]
    fn http_accepts_pipelined_replies_in_any_split() {
        let p = proto(ProtocolKind::Http, 1);
        let (reqs, tags) = requests(&p, 3);
        assert_eq!(
            &reqs[..reqs.len() / 3],
            b"GET /p HTTP/1.1\r\nHost: h:1\r\n\r\n"
        );
        let mut replies = Vec::new();
        for body in ["hello", "", "a longer body of text"] {
            replies.extend_from_slice(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nServer: t\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
        for step in [1, 4, 17, 1000] {
            assert_eq!(
                feed_all(&p, &tags, &replies, step).unwrap(),
                3,
                "step {step}"
            );
        }
    }

    #[test]
    fn http_rejects_wrong_replies() {
        let p = proto(ProtocolKind::Http, 1);
        let check = |bytes: &[u8]| feed_all(&p, &[Tag(0)], bytes, 5).map_err(|e| e.kind);
        assert_eq!(
            check(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            Err(ErrorKind::Mismatch)
        );
        assert_eq!(check(b"HTTP/1.1 200 OK\r\n\r\n"), Err(ErrorKind::Protocol));
        assert_eq!(
            check(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(ErrorKind::Protocol)
        );
        assert_eq!(
            check(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Err(ErrorKind::Protocol)
        );
        assert_eq!(check(b"garbage\r\n\r\n"), Err(ErrorKind::Protocol));
        let mut huge = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        huge.resize(MAX_HTTP_HEAD + 10, b'a');
        assert_eq!(check(&huge), Err(ErrorKind::Protocol));
        // a body still arriving is not an error
        assert_eq!(
            check(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
            Ok(0)
        );
    }

    fn requests_from(
        p: &Protocol,
        origin: Origin,
        seqs: std::ops::Range<u64>,
    ) -> (Vec<u8>, Vec<Tag>) {
        let mut out = Vec::with_capacity(p.max_request_len() * (seqs.end - seqs.start) as usize);
        let mut rng = Rng::new(origin.conn ^ origin.generation << 20);
        let tags = seqs
            .map(|i| p.write_request(origin, i, &mut rng, &mut out).unwrap())
            .collect();
        (out, tags)
    }

    fn feed_as(p: &Protocol, origin: Origin, tags: &[Tag], bytes: &[u8]) -> Result<usize, Failure> {
        let mut parser = ReplyParser::new(origin);
        let mut at = 0;
        for (i, &tag) in tags.iter().enumerate() {
            let (n, done) = parser.feed(p, tag, &bytes[at..])?;
            at += n;
            if !done {
                return Ok(i);
            }
        }
        Ok(tags.len())
    }

    #[test]
    fn stamped_echo_payloads_have_random_sizes_and_check_every_byte() {
        let p = Protocol::new(
            ProtocolKind::Echo,
            SizeRange { min: 16, max: 300 },
            1,
            0.0,
            "/",
            "h",
        );
        assert!(p.stamped());
        let o = Origin {
            conn: 3,
            generation: 2,
        };
        let (bytes, tags) = requests_from(&p, o, 0..200);
        let lens: Vec<usize> = tags.iter().map(|t| t.echo_len()).collect();
        assert_eq!(lens.iter().sum::<usize>(), bytes.len());
        assert!(lens.iter().all(|l| (16..=300).contains(l)));
        assert!(
            lens.iter().any(|&l| l < 60) && lens.iter().any(|&l| l > 250),
            "{lens:?}"
        );
        assert_eq!(
            stamp::decode(&bytes),
            stamp::Decoded::Echo {
                conn: 3,
                generation: 2,
                seq: 0
            }
        );
        let mut parser = ReplyParser::new(o);
        let mut at = 0;
        for &tag in &tags {
            // in pieces of 7 bytes, as a socket might deliver them
            loop {
                let end = (at + 7).min(bytes.len());
                let (n, done) = parser.feed(&p, tag, &bytes[at..end]).unwrap();
                at += n;
                if done {
                    break;
                }
            }
        }
        assert_eq!(at, bytes.len());
        // Any flipped byte anywhere is found.
        for i in [0, 5, 15, 16, 17, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            let e = feed_as(&p, o, &tags, &bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Mismatch, "byte {i}");
        }
    }

    #[test]
    fn a_reply_meant_for_another_connection_or_generation_is_named() {
        let p = proto(ProtocolKind::Echo, 64);
        let now = Origin {
            conn: 1,
            generation: 4,
        };
        let (_, tags) = requests_from(&p, now, 10..12);
        for other in [
            Origin {
                conn: 1,
                generation: 3,
            },
            Origin {
                conn: 2,
                generation: 4,
            },
        ] {
            // the same request numbers and sizes, sent by another connection
            let (stale, _) = requests_from(&p, other, 10..12);
            let e = feed_as(&p, now, &tags, &stale).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Mismatch);
            let named = format!(
                "the reply has the stamp of connection {}, generation {}, request 10",
                other.conn, other.generation
            );
            assert!(e.detail.contains(&named), "{}", e.detail);
            assert!(
                e.detail
                    .contains("request 10 of connection 1, generation 4"),
                "{}",
                e.detail
            );
        }
        // Without stamps (payloads under 16 bytes) the same bytes would have passed.
        let small = proto(ProtocolKind::Echo, 8);
        assert!(!small.stamped());
        let (a, ta) = requests_from(&small, now, 10..12);
        let (b, _) = requests_from(
            &small,
            Origin {
                conn: 9,
                generation: 0,
            },
            10..12,
        );
        assert_eq!(a, b);
        assert_eq!(feed_as(&small, now, &ta, &b).unwrap(), 2);
    }

    #[test]
    fn resp_values_in_a_size_range_are_a_function_of_the_key() {
        let range = SizeRange { min: 20, max: 2000 };
        let p = Protocol::new(ProtocolKind::Resp, range, 50, 0.5, "/", "h");
        let lens: Vec<usize> = (0..50).map(|k| p.value_len(k)).collect();
        assert!(lens.iter().all(|l| (20..=2000).contains(l)));
        assert!(lens.iter().collect::<std::collections::HashSet<_>>().len() > 30);
        // another protocol instance (another connection, another run) agrees
        let q = Protocol::new(ProtocolKind::Resp, range, 50, 0.5, "/", "h");
        assert!((0..50).all(|k| value_bytes(&p, k) == value_bytes(&q, k)));
        assert_eq!(
            stamp::decode(&value_bytes(&p, 7)),
            stamp::Decoded::Value {
                key: 7,
                len: lens[7] as u64
            }
        );
        // the key's size field is a hash of the range, not the fixed size
        let mut key = Vec::new();
        p.put_key(7, &mut key);
        assert_eq!(key.len(), KEY_LEN);
        assert_ne!(&key[5..13], b"00002000");
        let (_, tags) = requests(&p, 300);
        let replies = resp_server(&p, &tags);
        for step in [1, 9, 4096] {
            assert_eq!(
                feed_all(&p, &tags, &replies, step).unwrap(),
                300,
                "step {step}"
            );
        }
        // A GET answered with another key's value of the same length is named.
        let p = Protocol::new(
            ProtocolKind::Resp,
            SizeRange { min: 20, max: 21 },
            50,
            0.5,
            "/",
            "h",
        );
        let b = (1..50).find(|&k| p.value_len(k) == p.value_len(0)).unwrap();
        let mut reply = format!("${}\r\n", p.value_len(0)).into_bytes();
        reply.extend_from_slice(&value_bytes(&p, b));
        reply.extend_from_slice(b"\r\n");
        let e = feed_all(&p, &[Tag(0)], &reply, 4096).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Mismatch);
        assert!(
            e.detail
                .contains(&format!("the stamp of the value of key {b}")),
            "{}",
            e.detail
        );
    }

    #[test]
    fn decimals_and_rng() {
        let mut v = Vec::new();
        put_decimal(42, 5, &mut v);
        put_decimal(0, 0, &mut v);
        put_decimal(u64::MAX, 3, &mut v);
        assert_eq!(v, b"00042018446744073709551615");
        let mut r = Rng::new(5);
        assert!((0..1000).all(|_| r.below(7) < 7));
        let (mut a, mut b) = (Rng::new(5), Rng::new(5));
        assert_eq!(a.next_u64(), b.next_u64());
    }
}
