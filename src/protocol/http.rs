//! HTTP/1.1 server side: request framing with `httparse`, the TechEmpower routes,
//! and response writing into a caller-provided buffer.
//!
//! # Requests
//!
//! [`HttpParser::parse`] frames one request at the front of the receive buffer
//! (call it again for pipelined requests). The head is parsed by `httparse` with
//! a fixed array of [`MAX_HEADERS`] headers on the stack; the parser adds what
//! a server must decide on top: keep-alive (HTTP/1.1 defaults on, HTTP/1.0
//! defaults off, `Connection: close` / `keep-alive` override), the
//! `Content-Length` body (exposed as a slice, waited for before the request is
//! returned), the `Host` rule of RFC 9112 §3.2 and the size limits. While a head
//! is incomplete only the newly arrived bytes are searched for its end, so a
//! client trickling a head in byte by byte does not make the server re-parse
//! it each time.
//!
//! # Errors
//!
//! Every [`HttpError`] is answered with its status ([`HttpError::write_response`])
//! and `Connection: close`, then the connection is closed:
//!
//! | error | status |
//! |---|---|
//! | malformed head, bad or conflicting `Content-Length`, missing or repeated `Host` | 400 |
//! | head over [`HttpLimits::max_header_bytes`], or more than [`MAX_HEADERS`] headers | 431 |
//! | `Content-Length` over [`HttpLimits::max_body_bytes`] | 413 |
//! | any `Transfer-Encoding` (chunked request bodies are not supported) | 501 |
//!
//! # Responses
//!
//! [`respond`] routes a request (`GET`/`HEAD` `/plaintext` and `/json`; 404 for
//! other paths; 405 with `Allow` for other methods) and appends the response.
//! Every response carries `Server`, `Date` (from a [`DateCache`]),
//! `Content-Type` and `Content-Length`, and `Connection: close` when the
//! connection is to be closed.

use std::fmt;

pub use super::http_date::DateCache;
use super::push_u64;

/// Headers parsed per request; a request with more gets 431.
pub const MAX_HEADERS: usize = 32;

/// Size limits for requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest request head (request line and headers, with the blank line),
    /// in bytes. Default 8 KiB.
    pub max_header_bytes: usize,
    /// Largest accepted `Content-Length`. Default 1 MiB.
    pub max_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_header_bytes: 8 << 10,
            max_body_bytes: 1 << 20,
        }
    }
}

/// The protocol version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// One framed request, borrowing from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method token, as sent (methods are case-sensitive).
    pub method: &'a str,
    /// The request target, as sent (`/json?x=1`).
    pub target: &'a str,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The body (`Content-Length` bytes; empty without one).
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// The target without its query string. O(target length).
    pub fn path(&self) -> &'a str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }
}

/// Why a request is refused; the connection closes after the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// 400: the request is malformed.
    BadRequest,
    /// 431: the head is over the size limit or has too many headers.
    HeaderFieldsTooLarge,
    /// 413: the declared body is over the size limit.
    PayloadTooLarge,
    /// 501: the request uses a transfer coding this server does not implement.
    NotImplemented,
}

impl HttpError {
    /// The status code. O(1).
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest => 400,
            HttpError::HeaderFieldsTooLarge => 431,
            HttpError::PayloadTooLarge => 413,
            HttpError::NotImplemented => 501,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            HttpError::BadRequest => "Bad Request",
            HttpError::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            HttpError::PayloadTooLarge => "Content Too Large",
            HttpError::NotImplemented => "Not Implemented",
        }
    }

    /// Appends the error response, with `Connection: close`. O(1), no
    /// allocation beyond `out`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::http::{DateCache, HttpError};
    /// use std::time::UNIX_EPOCH;
    /// let mut out = Vec::new();
    /// HttpError::HeaderFieldsTooLarge.write_response(&mut out, &DateCache::new(UNIX_EPOCH));
    /// assert!(out.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    /// assert!(out.windows(19).any(|w| w == b"Connection: close\r\n"));
    /// ```
    pub fn write_response(&self, out: &mut Vec<u8>, date: &DateCache) {
        let body = self.reason().as_bytes();
        let head = Head {
            status: self.status(),
            reason: self.reason(),
            content_type: TEXT,
            content_length: body.len(),
            connection: Connection::Close,
            allow: false,
        };
        head.write(out, date);
        out.extend_from_slice(body);
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.reason())
    }
}

impl std::error::Error for HttpError {}

/// Where an unfinished request stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The first `scanned` bytes hold no end of head.
    Head { scanned: usize },
    /// The head is valid; the request is complete at `total` bytes.
    Body { total: usize },
}

/// An HTTP/1.1 request parser; one per connection. Holds two words of state.
#[derive(Debug, Clone)]
pub struct HttpParser {
    limits: HttpLimits,
    state: State,
}

impl Default for HttpParser {
    fn default() -> Self {
        HttpParser::new(HttpLimits::default())
    }
}

impl HttpParser {
    /// A parser enforcing `limits`. O(1), no allocation.
    pub fn new(limits: HttpLimits) -> Self {
        HttpParser {
            limits,
            state: State::Head { scanned: 0 },
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// Forgets a partially received request (see [`parse`](Self::parse)).
    pub fn reset(&mut self) {
        self.state = State::Head { scanned: 0 };
    }

    /// Frames the first request in `buf`.
    ///
    /// `Ok(Some((request, consumed)))` when `buf` starts with a complete request
    /// (head and body) of `consumed <= buf.len()` bytes; `Ok(None)` when more bytes
    /// are needed. After `Ok(None)` the next call must pass a buffer starting with
    /// the same bytes (more appended), or call [`reset`](Self::reset) first.
    ///
    /// Cost: O(new bytes) while the head is incomplete, one `httparse` pass over
    /// the head (at most `max_header_bytes`) once it is, O(1) while waiting for a
    /// body. No allocation.
    ///
    /// # Errors
    ///
    /// [`HttpError`] (see the [module docs](self)); respond with it and close. The
    /// parser is reset.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::http::{HttpParser, Version};
    /// let mut p = HttpParser::default();
    /// let buf = b"GET /json HTTP/1.0\r\nHost: x\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    /// let (req, n) = p.parse(buf).unwrap().unwrap();
    /// assert_eq!((req.target, req.version, req.keep_alive), ("/json", Version::Http10, false));
    /// let (req, m) = p.parse(&buf[n..]).unwrap().unwrap();
    /// assert_eq!((req.target, req.keep_alive, n + m), ("/plaintext", true, buf.len()));
    /// ```
    pub fn parse<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(Request<'a>, usize)>, HttpError> {
        let result = self.step(buf);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn step<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(Request<'a>, usize)>, HttpError> {
        let max = self.limits.max_header_bytes;
        // Where the search for the end of the head resumes if httparse still
        // wants more bytes.
        let mut retry_from = 0;
        match self.state {
            State::Body { total } if buf.len() < total => return Ok(None),
            State::Body { .. } => {}
            State::Head { scanned } => {
                // Empty lines before the request line are skipped (RFC 9112 §2.2),
                // so they are not mistaken for the end of the head.
                let lead = buf
                    .iter()
                    .take(max)
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
                // The end-of-head marker is at most 3 bytes; it may straddle the
                // old and new bytes.
                // Only the first `max` bytes may hold the head.
                let window = &buf[..buf.len().min(max)];
                let from = scanned.saturating_sub(2).max(lead).min(window.len());
                if !has_head_end(&window[from..]) {
                    return self.incomplete_head(buf, buf.len());
                }
                retry_from = from;
            }
        }
        let window = &buf[..buf.len().min(max)];
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(window) {
            Ok(httparse::Status::Complete(n)) => n,
            // The marker is past the size limit (so outside the window), or
            // httparse disagrees about it: search from the same place next time so
            // httparse runs again on the longer input.
            Ok(httparse::Status::Partial) => return self.incomplete_head(buf, retry_from),
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeaderFieldsTooLarge),
            Err(_) => return Err(HttpError::BadRequest),
        };
        let version = match req.version {
            Some(0) => Version::Http10,
            Some(1) => Version::Http11,
            _ => return Err(HttpError::BadRequest),
        };
        let mut content_length: Option<u64> = None;
        let mut transfer_encoding = false;
        let (mut close, mut keep) = (false, false);
        let mut hosts = 0;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = parse_content_length(h.value).ok_or(HttpError::BadRequest)?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(HttpError::BadRequest);
                }
                content_length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encoding = true;
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',').map(trim_ows) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if h.name.eq_ignore_ascii_case("host") {
                hosts += 1;
            }
        }
        if transfer_encoding {
            // With a Content-Length as well, the framing is ambiguous (request
            // smuggling): 400. Alone, it is a coding we do not decode: 501.
            return Err(if content_length.is_some() {
                HttpError::BadRequest
            } else {
                HttpError::NotImplemented
            });
        }
        if hosts > 1 || (version == Version::Http11 && hosts == 0) {
            return Err(HttpError::BadRequest);
        }
        let body_len = content_length.unwrap_or(0);
        if body_len > self.limits.max_body_bytes as u64 {
            return Err(HttpError::PayloadTooLarge);
        }
        // body_len <= max_body_bytes fits in usize.
        let total = head_len.saturating_add(body_len as usize);
        let Some(body) = buf.get(head_len..total) else {
            self.state = State::Body { total };
            return Ok(None);
        };
        self.state = State::Head { scanned: 0 };
        let keep_alive = match version {
            Version::Http11 => !close,
            Version::Http10 => keep && !close,
        };
        Ok(Some((
            Request {
                method: req.method.unwrap_or(""),
                target: req.path.unwrap_or(""),
                version,
                keep_alive,
                body,
            },
            total,
        )))
    }

    /// Answers "need more bytes" (or 431 once the head cannot fit), resuming
    /// the end-of-head search at `scanned` next time.
    fn incomplete_head<'a>(
        &mut self,
        buf: &[u8],
        scanned: usize,
    ) -> Result<Option<(Request<'a>, usize)>, HttpError> {
        if buf.len() >= self.limits.max_header_bytes {
            return Err(HttpError::HeaderFieldsTooLarge);
        }
        self.state = State::Head { scanned };
        Ok(None)
    }
}

/// `true` if `bytes` contain an empty line (`\n\n` or `\n\r\n`), which ends a head.
fn has_head_end(bytes: &[u8]) -> bool {
    bytes.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'\n' && (w[1] == b'\n' || (w[1] == b'\r' && bytes.get(i + 2) == Some(&b'\n')))
    })
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6), with optional whitespace around.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    let digits = trim_ows(value);
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// What a request is routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/plaintext`: `Hello, World!` as text/plain.
    Plaintext,
    /// `/json`: `{"message":"Hello, World!"}` as application/json.
    Json,
    /// Any other path: 404.
    NotFound,
    /// A known path with a method other than GET or HEAD: 405.
    MethodNotAllowed,
}

/// Routes `req` by path, then method. O(path length).
///
/// # Examples
///
/// ```
/// use shardnet::protocol::http::{route, Request, Route, Version};
/// let req = Request { method: "POST", target: "/json", version: Version::Http11, keep_alive: true, body: b"" };
/// assert_eq!(route(&req), Route::MethodNotAllowed);
/// ```
pub fn route(req: &Request<'_>) -> Route {
    let known = match req.path() {
        "/plaintext" => Route::Plaintext,
        "/json" => Route::Json,
        _ => return Route::NotFound,
    };
    match req.method {
        "GET" | "HEAD" => known,
        _ => Route::MethodNotAllowed,
    }
}

const TEXT: &str = "text/plain";
const PLAINTEXT_BODY: &[u8] = b"Hello, World!";
const JSON_BODY: &[u8] = br#"{"message":"Hello, World!"}"#;
const NOT_FOUND_BODY: &[u8] = b"Not Found";
const NOT_ALLOWED_BODY: &[u8] = b"Method Not Allowed";

/// Routes `req` and appends its response; returns `true` to keep the connection
/// open (the request's keep-alive). HEAD gets the headers GET would, without the
/// body. O(response size), no allocation beyond `out`.
///
/// # Examples
///
/// ```
/// use shardnet::protocol::http::{respond, DateCache, HttpParser};
/// use std::time::UNIX_EPOCH;
/// let date = DateCache::new(UNIX_EPOCH);
/// let mut p = HttpParser::default();
/// let (req, _) = p.parse(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n").unwrap().unwrap();
/// let mut out = Vec::new();
/// assert!(respond(&req, &date, &mut out));
/// assert_eq!(
///     out,
///     &b"HTTP/1.1 200 OK\r\nServer: shardnet\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\
/// Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"[..]
/// );
/// ```
pub fn respond(req: &Request<'_>, date: &DateCache, out: &mut Vec<u8>) -> bool {
    let (status, reason, content_type, body, allow) = match route(req) {
        Route::Plaintext => (200, "OK", TEXT, PLAINTEXT_BODY, false),
        Route::Json => (200, "OK", "application/json", JSON_BODY, false),
        Route::NotFound => (404, "Not Found", TEXT, NOT_FOUND_BODY, false),
        Route::MethodNotAllowed => (405, "Method Not Allowed", TEXT, NOT_ALLOWED_BODY, true),
    };
    let connection = match (req.keep_alive, req.version) {
        (false, _) => Connection::Close,
        (true, Version::Http10) => Connection::KeepAlive,
        (true, Version::Http11) => Connection::Default,
    };
    Head {
        status,
        reason,
        content_type,
        content_length: body.len(),
        connection,
        allow,
    }
    .write(out, date);
    if req.method != "HEAD" {
        out.extend_from_slice(body);
    }
    req.keep_alive
}

/// The `Connection` header a response carries.
#[derive(Clone, Copy)]
enum Connection {
    /// None: HTTP/1.1 persistent by default.
    Default,
    /// `keep-alive`: an HTTP/1.0 client asked to keep the connection.
    KeepAlive,
    /// `close`.
    Close,
}

/// A response head.
struct Head {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    content_length: usize,
    connection: Connection,
    allow: bool,
}

impl Head {
    fn write(&self, out: &mut Vec<u8>, date: &DateCache) {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_u64(out, u64::from(self.status));
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\nServer: shardnet\r\nDate: ");
        out.extend_from_slice(date.as_bytes());
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(self.content_type.as_bytes());
        out.extend_from_slice(b"\r\nContent-Length: ");
        push_u64(out, self.content_length as u64);
        out.extend_from_slice(b"\r\n");
        if self.allow {
            out.extend_from_slice(b"Allow: GET, HEAD\r\n");
        }
        match self.connection {
            Connection::Default => {}
            Connection::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            Connection::Close => out.extend_from_slice(b"Connection: close\r\n"),
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::time::{Duration, UNIX_EPOCH};

    fn date() -> DateCache {
        DateCache::new(UNIX_EPOCH + Duration::from_secs(784_111_777))
    }

    /// Parses one complete request and returns its response text and keep-alive.
    fn roundtrip(raw: &str) -> (String, bool) {
        let mut p = HttpParser::default();
        let (req, n) = p.parse(raw.as_bytes()).unwrap().expect("complete");
        assert_eq!(n, raw.len());
        let mut out = Vec::new();
        let keep = respond(&req, &date(), &mut out);
        (String::from_utf8(out).unwrap(), keep)
    }

    fn error_of(raw: &[u8]) -> HttpError {
        HttpParser::default()
            .parse(raw)
            .expect_err(&String::from_utf8_lossy(raw))
    }

    const D: &str = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

    #[test]
    fn plaintext_and_json() {
        let (r, keep) = roundtrip("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            r,
            format!(
                "HTTP/1.1 200 OK\r\nServer: shardnet\r\n{D}Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
            )
        );
        assert!(keep);
        let (r, _) = roundtrip("GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            r,
            format!(
                "HTTP/1.1 200 OK\r\nServer: shardnet\r\n{D}Content-Type: application/json\r\nContent-Length: 27\r\n\r\n{{\"message\":\"Hello, World!\"}}"
            )
        );
        // A query string does not change the route.
        assert!(roundtrip("GET /json?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .0
            .starts_with("HTTP/1.1 200 OK"));
    }

    #[test]
    fn head_has_headers_only() {
        let (r, _) = roundtrip("HEAD /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.ends_with("Content-Length: 13\r\n\r\n"), "{r}");
        let (r, _) = roundtrip("HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            r.starts_with("HTTP/1.1 404 Not Found\r\n") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
    }

    #[test]
    fn not_found_and_method_not_allowed() {
        let (r, keep) = roundtrip("GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            r,
            format!("HTTP/1.1 404 Not Found\r\nServer: shardnet\r\n{D}Content-Type: text/plain\r\nContent-Length: 9\r\n\r\nNot Found")
        );
        assert!(keep);
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
            let (r, keep) = roundtrip(&format!("{method} /json HTTP/1.1\r\nHost: x\r\n\r\n"));
            assert!(
                r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
                "{method}: {r}"
            );
            assert!(r.contains("\r\nAllow: GET, HEAD\r\n"), "{r}");
            assert!(r.ends_with("\r\n\r\nMethod Not Allowed"));
            assert!(keep);
        }
        // Unknown path with an unknown method is still 404.
        assert!(roundtrip("POST /x HTTP/1.1\r\nHost: x\r\n\r\n")
            .0
            .starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn keep_alive_rules() {
        let cases = [
            ("GET /json HTTP/1.1\r\nHost: x\r\n\r\n", true, None),
            (
                "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                false,
                Some("close"),
            ),
            (
                "GET /json HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
                false,
                Some("close"),
            ),
            ("GET /json HTTP/1.0\r\n\r\n", false, Some("close")),
            (
                "GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                true,
                Some("keep-alive"),
            ),
            (
                "GET /json HTTP/1.0\r\nConnection: upgrade , keep-alive\r\n\r\n",
                true,
                Some("keep-alive"),
            ),
            (
                "GET /json HTTP/1.0\r\nConnection: close\r\n\r\n",
                false,
                Some("close"),
            ),
        ];
        for (raw, want_keep, header) in cases {
            let (r, keep) = roundtrip(raw);
            assert_eq!(keep, want_keep, "{raw}");
            match header {
                None => assert!(!r.contains("Connection:"), "{r}"),
                Some(v) => assert!(
                    r.contains(&format!("\r\nConnection: {v}\r\n")),
                    "{raw} -> {r}"
                ),
            }
        }
    }

    const PIPELINE: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n\
POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
GET /json HTTP/1.1\nHost: a\n\n\
HEAD /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\
GET /missing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

    fn summarize(req: &Request<'_>) -> String {
        format!(
            "{} {} {:?} {} {}",
            req.method,
            req.target,
            req.version,
            req.keep_alive,
            String::from_utf8_lossy(req.body)
        )
    }

    fn expected_pipeline() -> Vec<String> {
        vec![
            "GET /plaintext Http11 true ".to_string(),
            "POST /json Http11 true hello".to_string(),
            "GET /json Http11 true ".to_string(),
            "HEAD /plaintext Http10 true ".to_string(),
            "GET /missing Http11 false ".to_string(),
        ]
    }

    /// Feeds `buf` as a growing stream cut at `cuts`, consuming requests.
    fn streamed(buf: &[u8], cuts: &[usize]) -> Result<Vec<String>, HttpError> {
        let mut p = HttpParser::default();
        let mut got = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&buf.len())) {
            while let Some((req, n)) = p.parse(&buf[start..end])? {
                got.push(summarize(&req));
                start += n;
            }
        }
        assert_eq!(start, buf.len());
        Ok(got)
    }

    #[test]
    fn pipelined_requests() {
        assert_eq!(streamed(PIPELINE, &[]).unwrap(), expected_pipeline());
        // And the responses come out in order.
        let mut p = HttpParser::default();
        let mut out = Vec::new();
        let mut off = 0;
        let mut keeps = Vec::new();
        while let Some((req, n)) = p.parse(&PIPELINE[off..]).unwrap() {
            keeps.push(respond(&req, &date(), &mut out));
            off += n;
        }
        assert_eq!(keeps, [true, true, true, true, false]);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("HTTP/1.1 ").count(), 5);
        assert!(text.find("405").unwrap() < text.find("404").unwrap());
    }

    #[test]
    fn split_anywhere() {
        let want = expected_pipeline();
        for cut in 0..=PIPELINE.len() {
            assert_eq!(streamed(PIPELINE, &[cut]).unwrap(), want, "cut {cut}");
        }
        let every: Vec<usize> = (1..PIPELINE.len()).collect();
        assert_eq!(streamed(PIPELINE, &every).unwrap(), want);
    }

    #[test]
    fn oversize_head_is_431() {
        let big = format!(
            "GET /json HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(9000)
        );
        assert_eq!(error_of(big.as_bytes()), HttpError::HeaderFieldsTooLarge);
        // Also when it arrives in pieces, as soon as the limit is passed.
        let mut p = HttpParser::default();
        let mut err_at = None;
        for end in (0..big.len()).step_by(100) {
            if let Err(e) = p.parse(&big.as_bytes()[..end]) {
                err_at = Some((end, e));
                break;
            }
        }
        assert_eq!(err_at, Some((8200, HttpError::HeaderFieldsTooLarge)));
        // 33 headers: too many.
        let mut many = String::from("GET /json HTTP/1.1\r\nHost: x\r\n");
        for i in 0..32 {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(error_of(many.as_bytes()), HttpError::HeaderFieldsTooLarge);
        // A head just under the limit is fine.
        let fits = format!(
            "GET /json HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(8000)
        );
        assert!(HttpParser::default()
            .parse(fits.as_bytes())
            .unwrap()
            .is_some());
    }

    #[test]
    fn bodies_and_their_limits() {
        let mut p = HttpParser::default();
        let raw = b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nab";
        assert_eq!(p.parse(raw), Ok(None));
        let full = b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET";
        let (req, n) = p.parse(full).unwrap().unwrap();
        assert_eq!((req.body, n), (&b"abc"[..], full.len() - 3));
        assert_eq!(
            error_of(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n"),
            HttpError::PayloadTooLarge
        );
        assert_eq!(
            error_of(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"
            ),
            HttpError::BadRequest
        );
        for bad_cl in ["-1", "1.0", "", "0x10", "+5", "1, 2"] {
            let raw = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {bad_cl}\r\n\r\n");
            assert_eq!(
                error_of(raw.as_bytes()),
                HttpError::BadRequest,
                "{bad_cl:?}"
            );
        }
        assert_eq!(
            error_of(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
            ),
            HttpError::BadRequest
        );
        // Repeated identical values are allowed.
        let same =
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\ncontent-length:  1 \r\n\r\na";
        assert_eq!(
            HttpParser::default().parse(same).unwrap().unwrap().0.body,
            b"a"
        );
        assert_eq!(
            error_of(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HttpError::NotImplemented
        );
        assert_eq!(
            error_of(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            HttpError::BadRequest
        );
    }

    #[test]
    fn malformed_is_400() {
        for raw in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /json HTTP/2.0\r\nHost: x\r\n\r\n",
            b"GET /json HTTP/1.1\r\n\r\n",
            b"GET /json HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET /json HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET  /json HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
            b"GET /json HTTP/1.1\r\nHost: \x01\r\n\r\n",
        ] {
            assert_eq!(
                error_of(raw),
                HttpError::BadRequest,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let mut out = Vec::new();
        HttpError::BadRequest.write_response(&mut out, &date());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "HTTP/1.1 400 Bad Request\r\nServer: shardnet\r\n{D}Content-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request"
            )
        );
        for (e, status) in [
            (HttpError::HeaderFieldsTooLarge, 431),
            (HttpError::PayloadTooLarge, 413),
            (HttpError::NotImplemented, 501),
        ] {
            let mut out = Vec::new();
            e.write_response(&mut out, &date());
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
            assert!(text.contains("\r\nConnection: close\r\n"));
            assert!(e.to_string().starts_with(&status.to_string()));
        }
    }

    #[test]
    fn split_input_gives_the_same_error_as_whole_input() {
        // Found by the http_parse fuzz target: leading empty lines looked like the
        // end of a head; after httparse said "partial", later bytes were never
        // parsed, so a split stream waited where the whole input got 400.
        assert_eq!(HttpParser::default().parse(b"\n\n-\n"), Ok(None));
        let raw = b"\n\n-\n\n";
        assert_eq!(error_of(raw), HttpError::BadRequest);
        for cut in 0..raw.len() {
            let mut p = HttpParser::default();
            assert_eq!(p.parse(&raw[..cut]), Ok(None), "cut {cut}");
            assert_eq!(p.parse(raw), Err(HttpError::BadRequest), "cut {cut}");
        }
    }

    #[test]
    fn leading_blank_lines_are_skipped() {
        let raw = b"\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..raw.len() {
            let mut p = HttpParser::default();
            let first = p.parse(&raw[..cut]).unwrap();
            assert!(first.is_none());
            let (req, n) = p.parse(raw).unwrap().unwrap();
            assert_eq!((req.target, n), ("/json", raw.len()), "cut {cut}");
        }
    }

    #[test]
    fn seeded_garbage_never_panics() {
        let mut rng = SmallRng::seed_from_u64(99);
        let templates: &[&[u8]] = &[
            b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HEAD /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
            b"GET /x HTTP/1.1\nHost: x\nConnection: close\n\n",
        ];
        let alphabet = b"GET /:\r\n HTTP/1.01Content-Length";
        let (mut ok, mut err, mut more) = (0, 0, 0);
        for _ in 0..20_000 {
            // A pipeline of valid requests, then a few random edits.
            let mut buf = Vec::new();
            for _ in 0..rng.gen_range(1..4) {
                buf.extend_from_slice(templates[rng.gen_range(0..templates.len())]);
            }
            for _ in 0..rng.gen_range(0..4) {
                let at = rng.gen_range(0..buf.len());
                match rng.gen_range(0..4) {
                    0 => buf[at] = rng.gen(),
                    1 => buf[at] = alphabet[rng.gen_range(0..alphabet.len())],
                    2 => buf.insert(at, alphabet[rng.gen_range(0..alphabet.len())]),
                    _ => buf.truncate(at.max(1)),
                }
            }
            let mut p = HttpParser::new(HttpLimits {
                max_header_bytes: 64,
                max_body_bytes: 2,
            });
            let mut off = 0;
            loop {
                match p.parse(&buf[off..]) {
                    Ok(Some((req, n))) => {
                        assert!(n > 0 && n <= buf.len() - off);
                        let mut out = Vec::new();
                        respond(&req, &date(), &mut out);
                        off += n;
                        ok += 1;
                    }
                    Ok(None) => {
                        more += 1;
                        break;
                    }
                    Err(_) => {
                        err += 1;
                        break;
                    }
                }
            }
        }
        assert!(ok > 100 && err > 100 && more > 100, "{ok} {err} {more}");
    }
}
