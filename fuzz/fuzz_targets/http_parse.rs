//! Arbitrary bytes through the HTTP/1.1 request parser and the responder.
//!
//! Checks, for every input: nothing panics, every `consumed` is within the
//! buffer, and parsing the input as one buffer and as a stream cut at
//! input-chosen points gives the same requests and the same final error.
#![no_main]

use std::time::UNIX_EPOCH;

use libfuzzer_sys::fuzz_target;
use shardnet::protocol::http::{respond, DateCache, HttpError, HttpLimits, HttpParser};

const LIMITS: HttpLimits = HttpLimits {
    max_header_bytes: 512,
    max_body_bytes: 64,
};

type Parsed = (Vec<String>, Option<HttpError>);

fn parse_stream(buf: &[u8], cuts: &[usize], date: &DateCache) -> Parsed {
    let mut parser = HttpParser::new(LIMITS);
    let mut requests = Vec::new();
    let mut start = 0;
    let mut out = Vec::new();
    for &end in cuts.iter().chain(std::iter::once(&buf.len())) {
        loop {
            let window = &buf[start..end];
            match parser.parse(window) {
                Ok(Some((req, n))) => {
                    assert!(
                        n > 0 && n <= window.len(),
                        "consumed {n} of {}",
                        window.len()
                    );
                    out.clear();
                    let keep = respond(&req, date, &mut out);
                    assert!(out.starts_with(b"HTTP/1.1 "));
                    requests.push(format!(
                        "{} {} {:?} {} {:?} {keep}",
                        req.method, req.target, req.version, req.keep_alive, req.body
                    ));
                    start += n;
                }
                Ok(None) => break,
                Err(e) => {
                    out.clear();
                    e.write_response(&mut out, date);
                    return (requests, Some(e));
                }
            }
        }
    }
    (requests, None)
}

fuzz_target!(|data: &[u8]| {
    let date = DateCache::new(UNIX_EPOCH);
    let (cut_seed, buf) = match data {
        [a, b, rest @ ..] => (usize::from(*a) << 8 | usize::from(*b), rest),
        _ => (0, data),
    };
    let whole = parse_stream(buf, &[], &date);
    let mut cuts = Vec::new();
    if !buf.is_empty() {
        let step = cut_seed % 61 + 1;
        let mut at = cut_seed % buf.len();
        while at < buf.len() {
            cuts.push(at);
            at += step;
        }
    }
    let streamed = parse_stream(buf, &cuts, &date);
    assert_eq!(whole, streamed, "stream cut at {cuts:?}");
});
