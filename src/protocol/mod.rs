//! Wire protocols for the example servers: RESP2 (Redis) and HTTP/1.1.
//!
//! Everything here is pure, synchronous and runtime-free: byte buffers in, byte
//! buffers out. The servers in `examples/` own the sockets and call into these
//! modules; the fuzz targets in `fuzz/` drive the same entry points.
//!
//! | module | concept |
//! |---|---|
//! | [`resp`] | RESP2 request framing (incremental, zero-copy) and reply encoding |
//! | [`command`] | typed Redis commands: names, arity, options, local replies |
//! | [`kv_store`] | one shard's keyspace: strings with optional expiry |
//! | [`partition`] | which shard owns a key; splitting multi-key commands and gathering replies |
//! | [`exec`] | executing commands against a [`kv_store::Store`], locally or as owned per-shard operations |
//! | [`http`] | HTTP/1.1 request parsing (httparse), routing and response writing |
//! | [`http_date`] | the per-shard cached `Date` header value |
//!
//! Rules every module follows: a peer's bytes never cause a panic, and never an
//! allocation sized by a number the peer sent; parsers borrow from the caller's
//! buffer; writers append to a caller-provided `Vec<u8>` and allocate nothing
//! else.

pub mod command;
pub mod exec;
pub mod http;
pub mod http_date;
pub mod kv_store;
pub mod partition;
pub mod resp;

/// Appends the decimal digits of `n`. O(digits), no allocation beyond `out`.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Appends `n` in decimal with a leading `-` when negative.
pub(crate) fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Parses a signed 64-bit decimal integer with Redis' strict rules: an
/// optional `-`, then digits with no leading zero (except `0` itself), no `+`,
/// no spaces, no overflow. `None` when `s` is anything else.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some(_) => (false, s),
        None => return None,
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut acc: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        acc = acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if neg {
        // -(2^63) is the one value whose magnitude does not fit in i64.
        if acc == 1u64 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(acc).ok().map(|v| -v)
        }
    } else {
        i64::try_from(acc).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trip_at_the_edges() {
        for n in [0i64, 1, -1, 9, 10, -10, 12345, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_i64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
            assert_eq!(parse_i64(&out), Some(n));
        }
        let mut out = Vec::new();
        push_u64(&mut out, u64::MAX);
        assert_eq!(out, u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn strict_integer_rejects_what_redis_rejects() {
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"42"), Some(42));
        assert_eq!(parse_i64(b"-42"), Some(-42));
    }
}
