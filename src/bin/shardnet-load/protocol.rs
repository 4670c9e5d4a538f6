//! Request writers and reply checkers for echo, RESP and HTTP/1.1.
//!
//! Requests are written into a connection's send buffer without allocating: payloads are
//! slices of one pattern made at start-up, so no request needs to be remembered beyond a
//! [`Tag`] of 8 bytes. Replies are checked as they stream in by a [`ReplyParser`], a small
//! state machine per connection that never buffers a body.
//!
//! - echo: request `n` is `--size` bytes of the pattern from offset `37 n mod 251`; the reply
//!   must be the same bytes.
//! - resp: `SET key value` or `GET key` with `key = load:<size, 8 digits>:<n, 12 digits>`,
//!   `n` uniform in `0..--keys`. The value of a key is a function of the key (pattern from
//!   offset `n mod 251`), so a GET by any connection can be checked: it must be nil or exactly
//!   that value. Putting the size in the key keeps runs with other sizes apart.
//! - http: `GET <path> HTTP/1.1` with a Host header; the reply must have status 200 and a
//!   Content-Length, and the body is skipped by that length (pipelined replies follow it
//!   directly). Chunked replies are a protocol error.

use crate::cli::ProtocolKind;
use crate::errors::{ErrorKind, Failure};

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

/// What a reply checker needs to know about the request it answers: the echo payload offset,
/// or the RESP key and whether it was a SET.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tag(u64);

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
    size: usize,
    pattern: Box<[u8]>,
    http_request: Box<[u8]>,
    keys: u64,
    set_threshold: u64,
}

impl Protocol {
    /// A protocol sending `size`-byte payloads; `keys` and `set_ratio` are for RESP, `path` and
    /// `host` for HTTP.
    pub fn new(
        kind: ProtocolKind,
        size: usize,
        keys: u64,
        set_ratio: f64,
        path: &str,
        host: &str,
    ) -> Protocol {
        let mut rng = Rng::new(0x0070_6174_7465_726e);
        let pattern: Box<[u8]> = (0..size + OFFSETS as usize)
            .map(|_| 0x21 + (rng.next_u64() % 94) as u8) // visible ASCII, for readable errors
            .collect();
        let http_request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")
            .into_bytes()
            .into_boxed_slice();
        Protocol {
            kind,
            size,
            pattern,
            http_request,
            keys: keys.max(1),
            set_threshold: (set_ratio.clamp(0.0, 1.0) * u64::MAX as f64) as u64,
        }
    }

    /// Longest request this protocol writes, in bytes.
    pub fn max_request_len(&self) -> usize {
        match self.kind {
            ProtocolKind::Echo => self.size,
            ProtocolKind::Resp => SET_PREFIX.len() + KEY_LEN + 2 + 1 + 20 + 2 + self.size + 2,
            ProtocolKind::Http => self.http_request.len(),
        }
    }

    /// Appends request number `seq` to `out` if it fits in `out`'s spare capacity (so `out`
    /// never reallocates), returning its tag; `None` if it does not fit. No allocation.
    pub fn write_request(&self, seq: u64, rng: &mut Rng, out: &mut Vec<u8>) -> Option<Tag> {
        if out.capacity() - out.len() < self.max_request_len() {
            return None;
        }
        match self.kind {
            ProtocolKind::Echo => {
                let off = (seq.wrapping_mul(37) % OFFSETS) as usize;
                out.extend_from_slice(&self.pattern[off..off + self.size]);
                Some(Tag(off as u64))
            }
            ProtocolKind::Resp => {
                let key = rng.below(self.keys);
                let set = rng.next_u64() < self.set_threshold;
                out.extend_from_slice(if set { SET_PREFIX } else { GET_PREFIX });
                self.put_key(key, out);
                out.extend_from_slice(b"\r\n");
                if set {
                    out.push(b'$');
                    put_decimal(self.size as u64, 0, out);
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(self.value(key));
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
        put_decimal(self.size as u64, 8, out);
        out.push(b':');
        put_decimal(key, 12, out);
    }

    fn key_string(&self, key: u64) -> String {
        let mut v = Vec::with_capacity(KEY_LEN);
        self.put_key(key, &mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    /// The echo payload starting at pattern offset `off`.
    fn payload(&self, off: u64) -> &[u8] {
        let off = (off % OFFSETS) as usize;
        &self.pattern[off..off + self.size]
    }

    /// The RESP value of `key`.
    fn value(&self, key: u64) -> &[u8] {
        self.payload(key % OFFSETS)
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
}

impl Default for ReplyParser {
    fn default() -> Self {
        ReplyParser {
            state: State::Start,
        }
    }
}

impl ReplyParser {
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
        let expected = p.payload(tag.0);
        let (n, complete) = check_bytes(expected, done, input).map_err(|(at, got)| {
            Failure::new(
                ErrorKind::Mismatch,
                format!(
                    "echo reply byte {at} of {}: got {:?}, expected {:?}",
                    p.size,
                    char::from(got),
                    char::from(expected[at])
                ),
            )
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
                            if len != p.size as i64 {
                                return Err(mismatch(&format!(
                                    "a value of {len} bytes (expected {}):",
                                    p.size
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
                        check_bytes(expected, done, &input[pos..]).map_err(|(at, got)| {
                            Failure::new(
                                ErrorKind::Mismatch,
                                format!(
                                    "GET {} value byte {at} of {}: got {:?}, expected {:?}",
                                    p.key_string(key),
                                    p.size,
                                    char::from(got),
                                    char::from(expected[at])
                                ),
                            )
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

    fn proto(kind: ProtocolKind, size: usize) -> Protocol {
        Protocol::new(kind, size, 100, 0.5, "/p", "h:1")
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
            .map(|i| p.write_request(i, &mut rng, &mut out).unwrap())
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
        while p.write_request(written, &mut rng, &mut out).is_some() {
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
                out.extend_from_slice(format!("${}\r\n", p.size).as_bytes());
                out.extend_from_slice(p.value(key));
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(b"$-1\r\n");
            }
        }
        out
    }

    #[test]
    fn resp_requests_are_well_formed() {
        let p = Protocol::new(ProtocolKind::Resp, 5, 10, 1.0, "/", "h");
        let mut out = Vec::with_capacity(1000);
        let tag = p.write_request(0, &mut Rng::new(9), &mut out).unwrap();
        let key = tag.0 >> 1;
        let expected = format!(
            "*3\r\n$3\r\nSET\r\n$26\r\nload:00000005:{key:012}\r\n$5\r\n{}\r\n",
            String::from_utf8_lossy(p.value(key))
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        let g = Protocol::new(ProtocolKind::Resp, 5, 10, 0.0, "/", "h");
        let mut out = Vec::with_capacity(1000);
        let tag = g.write_request(0, &mut Rng::new(9), &mut out).unwrap();
        assert_eq!(tag.0 & 1, 0);
        assert!(out.starts_with(b"*2\r\n$3\r\nGET\r\n$26\r\nload:00000005:"));
    }

    #[test]
    fn resp_accepts_correct_replies_in_any_split() {
        let p = Protocol::new(ProtocolKind::Resp, 40, 8, 0.5, "/", "h");
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
        let p = Protocol::new(ProtocolKind::Resp, 4, 8, 0.0, "/", "h");
        let get = Tag(3 << 1);
        let set = Tag(3 << 1 | 1);
        let check = |tag, bytes: &[u8]| feed_all(&p, &[tag], bytes, 3).map_err(|e| e.kind);
        let mut good = b"$4\r\n".to_vec();
        good.extend_from_slice(p.value(3));
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
