//! Stamps: the self-describing first 16 bytes of every payload of 16 bytes or more.
//!
//! ```text
//!  echo request   [ stamp: conn 20 | generation 24 | seq 28 | check 24 ][ body: pattern ... ]
//!  RESP value     [ stamp: key 48  | length-1 24               | check 24 ][ body: pattern ... ]
//!                   16 characters '0'..='o', 6 bits each, most significant first
//! ```
//!
//! The check word is a hash of the other fields (salted per layout), and the body starts at
//! a pattern offset taken from it, so the whole payload is a function of the stamp's fields:
//! an echo payload is unique to its connection, to how many times that connection has
//! reconnected, and to its request number; a RESP value is unique to its key. The client
//! still compares every byte with what it sent (a full comparison is stronger than any
//! checksum); what the stamp adds is that payloads of other connections, of an earlier
//! connection on a reused socket, or of other requests never look right, and that a wrong
//! reply can be named ([`decode`]) in the error report. Stamping is O(1): 16 bytes written or
//! compared, no allocation.

/// Bytes of a stamp.
pub const STAMP_LEN: usize = 16;

const SALT_ECHO: u64 = 0x6563_686f_7374_616d; // "echostam"
const SALT_VALUE: u64 = 0x7265_7370_7374_616d; // "respstam"
const M20: u64 = (1 << 20) - 1;
const M24: u64 = (1 << 24) - 1;
const M28: u64 = (1 << 28) - 1;
const M48: u64 = (1 << 48) - 1;

/// The splitmix64 finalizer: a cheap, well-mixing 64-bit hash.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn echo_check(conn: u64, generation: u64, seq: u64) -> u64 {
    mix(conn ^ mix(generation ^ mix(seq ^ SALT_ECHO))) & M24
}

fn value_check(key: u64, len_minus_one: u64) -> u64 {
    mix(key ^ mix(len_minus_one ^ SALT_VALUE)) & M24
}

fn encode(v: u128) -> [u8; STAMP_LEN] {
    let mut out = [0_u8; STAMP_LEN];
    for (i, b) in out.iter_mut().enumerate() {
        *b = 0x30 + ((v >> (6 * (STAMP_LEN - 1 - i))) & 63) as u8;
    }
    out
}

/// A stamp and the check word its payload's body is placed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The 16 bytes.
    pub bytes: [u8; STAMP_LEN],
    /// The check word (24 bits).
    pub check: u64,
}

/// The stamp of echo request `seq` of connection `conn` in its `generation`-th connection
/// (fields are kept to 20, 24 and 28 bits).
pub fn echo(conn: u64, generation: u64, seq: u64) -> Stamp {
    let (c, g, s) = (conn & M20, generation & M24, seq & M28);
    let check = echo_check(c, g, s);
    let v = u128::from(c) << 76 | u128::from(g) << 52 | u128::from(s) << 24 | u128::from(check);
    Stamp {
        bytes: encode(v),
        check,
    }
}

/// The stamp of the RESP value of `key` (kept to 48 bits), `len` bytes long (1 to 2^24).
pub fn value(key: u64, len: usize) -> Stamp {
    let (k, l) = (key & M48, (len as u64).saturating_sub(1) & M24);
    let check = value_check(k, l);
    let v = u128::from(k) << 48 | u128::from(l) << 24 | u128::from(check);
    Stamp {
        bytes: encode(v),
        check,
    }
}

/// What a stamp-sized piece of a reply turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// An echo stamp: connection, generation, request number (as kept in the stamp).
    Echo {
        /// Connection number (20 bits).
        conn: u64,
        /// Reconnect count (24 bits).
        generation: u64,
        /// Request number (28 bits).
        seq: u64,
    },
    /// A RESP value stamp.
    Value {
        /// Key number (48 bits).
        key: u64,
        /// Value length.
        len: u64,
    },
    /// Not a stamp of either layout.
    Invalid,
}

/// Reads `bytes` (at least [`STAMP_LEN`] of them) as a stamp.
pub fn decode(bytes: &[u8]) -> Decoded {
    let Some(bytes) = bytes.get(..STAMP_LEN) else {
        return Decoded::Invalid;
    };
    let mut v: u128 = 0;
    for &b in bytes {
        if !(0x30..0x70).contains(&b) {
            return Decoded::Invalid;
        }
        v = v << 6 | u128::from(b - 0x30);
    }
    let check = (v & u128::from(M24)) as u64;
    let (conn, generation, seq) = (
        (v >> 76) as u64 & M20,
        (v >> 52) as u64 & M24,
        (v >> 24) as u64 & M28,
    );
    if echo_check(conn, generation, seq) == check {
        return Decoded::Echo {
            conn,
            generation,
            seq,
        };
    }
    let (key, l) = ((v >> 48) as u64 & M48, (v >> 24) as u64 & M24);
    if value_check(key, l) == check {
        return Decoded::Value { key, len: l + 1 };
    }
    Decoded::Invalid
}

impl std::fmt::Display for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Decoded::Echo {
                conn,
                generation,
                seq,
            } => write!(
                f,
                "the stamp of connection {conn}, generation {generation}, request {seq}"
            ),
            Decoded::Value { key, len } => {
                write!(f, "the stamp of the value of key {key} ({len} bytes)")
            }
            Decoded::Invalid => write!(f, "no valid stamp"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_are_visible_ascii() {
        let s = echo(99_999, 7, 123_456);
        assert!(s.bytes.iter().all(u8::is_ascii_graphic));
        assert_eq!(
            decode(&s.bytes),
            Decoded::Echo {
                conn: 99_999,
                generation: 7,
                seq: 123_456
            }
        );
        let v = value(987_654_321_012, 4096);
        assert_eq!(
            decode(&v.bytes),
            Decoded::Value {
                key: 987_654_321_012,
                len: 4096
            }
        );
        assert_eq!(
            decode(&value(1, 1 << 24).bytes),
            Decoded::Value {
                key: 1,
                len: 1 << 24
            }
        );
        assert_eq!(decode(b"0123456789abcdef"), Decoded::Invalid);
        assert_eq!(decode(b"short"), Decoded::Invalid);
        assert_eq!(decode(b"\x00123456789abcdef"), Decoded::Invalid);
    }

    #[test]
    fn stamps_differ_by_every_field_and_one_flipped_bit_is_invalid() {
        let base = echo(3, 1, 10);
        assert_ne!(base.bytes, echo(4, 1, 10).bytes);
        assert_ne!(base.bytes, echo(3, 2, 10).bytes);
        assert_ne!(base.bytes, echo(3, 1, 11).bytes);
        assert_ne!(value(5, 16).bytes, value(5, 17).bytes);
        let mut invalid = 0;
        for i in 0..STAMP_LEN {
            for bit in 0..6 {
                let mut b = base.bytes;
                b[i] = 0x30 + ((b[i] - 0x30) ^ (1 << bit));
                if decode(&b) == Decoded::Invalid {
                    invalid += 1;
                }
            }
        }
        // A 24-bit check misses a changed field with probability 2^-24: none of 96 here.
        assert_eq!(invalid, STAMP_LEN * 6);
    }
}
