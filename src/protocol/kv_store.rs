//! One shard's keyspace: byte-string keys to byte-string values with optional
//! expiry, and the single-key semantics of GET, SET, DEL, EXISTS and INCRBY.
//!
//! A `Store` is owned by one shard and used from that shard's thread only (no
//! locks); time is passed in by the caller, which keeps the store deterministic
//! under test.
//!
//! # Expiry
//!
//! Keys with a time to live are also indexed by deadline in a `BTreeMap`. An
//! expired key is removed when it is next touched (lazy expiry), and
//! [`Store::sweep`] removes up to a given number of expired keys from the front of
//! the deadline index, so the server can bound the work per tick. A key is
//! expired once `now` is past its deadline, as in Redis.
//!
//! # Memory
//!
//! Per key: the key and value bytes, a `Vec` header and an optional deadline
//! (about 48 bytes plus the hash table's slot), plus, for keys with a TTL, a second
//! copy of the key in the deadline index. Nothing limits the number of keys; a
//! server that needs a memory cap must refuse writes itself.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use super::command::{SetCondition, SetExpiry, SetOptions};
use super::{parse_i64, push_i64};

/// A deadline plus a sequence number that makes it unique in the index.
type Deadline = (Instant, u64);

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Option<Deadline>,
}

/// Why INCR/DECR/INCRBY/DECRBY failed; the key is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrError {
    /// The stored value is not a 64-bit decimal integer.
    NotInteger,
    /// The result would not fit in a signed 64-bit integer.
    Overflow,
}

impl IncrError {
    /// Appends the Redis error reply. O(1), no allocation beyond `out`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::kv_store::IncrError;
    /// let mut out = Vec::new();
    /// IncrError::Overflow.write_reply(&mut out);
    /// assert_eq!(out, b"-ERR increment or decrement would overflow\r\n");
    /// ```
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self {
            IncrError::NotInteger => b"-ERR value is not an integer or out of range\r\n".as_slice(),
            IncrError::Overflow => b"-ERR increment or decrement would overflow\r\n",
        });
    }
}

impl fmt::Display for IncrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IncrError::NotInteger => "value is not an integer or out of range",
            IncrError::Overflow => "increment or decrement would overflow",
        })
    }
}

impl std::error::Error for IncrError {}

/// A key's time to live, as [`Store::ttl`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist (or has expired).
    Missing,
    /// The key exists and does not expire.
    Persistent,
    /// The key expires after this much more time.
    Remaining(Duration),
}

/// One shard's keyspace. See the [module docs](self) for expiry and memory.
#[derive(Debug, Default)]
pub struct Store {
    map: HashMap<Box<[u8]>, Entry>,
    expiries: BTreeMap<Deadline, Box<[u8]>>,
    next_seq: u64,
}

impl Store {
    /// An empty store. O(1), no allocation.
    pub fn new() -> Self {
        Store::default()
    }

    /// Number of keys held, including expired keys not yet removed. O(1).
    pub fn len_including_expired(&self) -> usize {
        self.map.len()
    }

    /// `true` if no key is held (expired or not). O(1).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of live keys at `now` (DBSIZE). Removes the expired keys first, so
    /// the cost is O(keys expired since the last sweep · log n).
    pub fn dbsize(&mut self, now: Instant) -> usize {
        self.sweep(now, usize::MAX);
        self.map.len()
    }

    /// Removes every key (FLUSHALL). O(n); frees the memory.
    pub fn flush_all(&mut self) {
        self.map = HashMap::new();
        self.expiries = BTreeMap::new();
    }

    /// Removes up to `budget` keys whose deadline is before `now`, soonest first;
    /// returns how many were removed. O(removed · log n). Call it periodically so
    /// keys that are never read again still free their memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::command::{SetExpiry, SetOptions};
    /// use shardnet::protocol::kv_store::Store;
    /// use std::time::{Duration, Instant};
    /// let (mut s, t0) = (Store::new(), Instant::now());
    /// let ttl = SetOptions { expiry: SetExpiry::AfterMillis(10), ..SetOptions::default() };
    /// for k in [b"a", b"b", b"c"] {
    ///     s.set(k, b"v", ttl, t0);
    /// }
    /// let later = t0 + Duration::from_millis(11);
    /// assert_eq!(s.sweep(later, 2), 2);
    /// assert_eq!(s.sweep(later, 2), 1);
    /// assert!(s.is_empty());
    /// ```
    pub fn sweep(&mut self, now: Instant, budget: usize) -> usize {
        let mut removed = 0;
        while removed < budget {
            match self.expiries.first_key_value() {
                Some(((deadline, _), _)) if *deadline < now => {}
                _ => break,
            }
            if let Some((_, key)) = self.expiries.pop_first() {
                self.map.remove(&key);
                removed += 1;
            }
        }
        removed
    }

    /// Removes `key` if it has expired at `now`. One extra lookup, and only when
    /// some key has a TTL.
    fn expire_if_due(&mut self, key: &[u8], now: Instant) {
        if self.expiries.is_empty() {
            return;
        }
        let due =
            matches!(self.map.get(key), Some(Entry { expires: Some((d, _)), .. }) if *d < now);
        if due {
            self.remove(key);
        }
    }

    /// Removes `key` and its index entry; `true` if it was present.
    fn remove(&mut self, key: &[u8]) -> bool {
        match self.map.remove(key) {
            Some(entry) => {
                if let Some(d) = entry.expires {
                    self.expiries.remove(&d);
                }
                true
            }
            None => false,
        }
    }

    /// The value at `key` (GET). O(1) expected, no allocation.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::kv_store::Store;
    /// use std::time::Instant;
    /// let (mut s, now) = (Store::new(), Instant::now());
    /// assert_eq!(s.get(b"k", now), None);
    /// s.set(b"k", b"v", Default::default(), now);
    /// assert_eq!(s.get(b"k", now), Some(&b"v"[..]));
    /// ```
    pub fn get(&mut self, key: &[u8], now: Instant) -> Option<&[u8]> {
        self.expire_if_due(key, now);
        self.map.get(key).map(|e| e.value.as_slice())
    }

    /// Stores `value` at `key` (SET) unless the NX/XX condition says no; returns
    /// whether it was stored. Without KEEPTTL the key's old TTL is replaced.
    ///
    /// Cost: O(1) expected plus O(log n) when a TTL is set or removed; allocates the
    /// key for a new key, and the value unless the old value's buffer fits it.
    pub fn set(&mut self, key: &[u8], value: &[u8], options: SetOptions, now: Instant) -> bool {
        self.expire_if_due(key, now);
        let exists = self.map.contains_key(key);
        match (options.condition, exists) {
            (SetCondition::IfAbsent, true) | (SetCondition::IfPresent, false) => return false,
            _ => {}
        }
        let new_deadline = match options.expiry {
            SetExpiry::Keep => None,
            SetExpiry::Persist => None,
            // A deadline beyond what Instant can represent never comes: no TTL.
            SetExpiry::AfterMillis(ms) => now.checked_add(Duration::from_millis(ms)),
        };
        if let Some(entry) = self.map.get_mut(key) {
            assign(&mut entry.value, value);
            if options.expiry != SetExpiry::Keep {
                if let Some(old) = entry.expires.take() {
                    self.expiries.remove(&old);
                }
                if let Some(at) = new_deadline {
                    let d = (at, self.next_seq);
                    self.next_seq += 1;
                    self.expiries.insert(d, key.into());
                    entry.expires = Some(d);
                }
            }
        } else {
            let expires = new_deadline.map(|at| {
                let d = (at, self.next_seq);
                self.next_seq += 1;
                self.expiries.insert(d, key.into());
                d
            });
            self.map.insert(
                key.into(),
                Entry {
                    value: value.to_vec(),
                    expires,
                },
            );
        }
        true
    }

    /// Removes `key` (one key of DEL); `true` if a live key was removed.
    /// O(1) expected (+ O(log n) for a key with a TTL).
    pub fn del(&mut self, key: &[u8], now: Instant) -> bool {
        self.expire_if_due(key, now);
        self.remove(key)
    }

    /// `true` if `key` holds a live value (one key of EXISTS). O(1) expected.
    pub fn exists(&mut self, key: &[u8], now: Instant) -> bool {
        self.expire_if_due(key, now);
        self.map.contains_key(key)
    }

    /// The time to live of `key` (PTTL). O(1) expected.
    pub fn ttl(&mut self, key: &[u8], now: Instant) -> Ttl {
        self.expire_if_due(key, now);
        match self.map.get(key) {
            None => Ttl::Missing,
            Some(Entry { expires: None, .. }) => Ttl::Persistent,
            Some(Entry {
                expires: Some((at, _)),
                ..
            }) => Ttl::Remaining(at.saturating_duration_since(now)),
        }
    }

    /// Adds `delta` to the integer stored at `key` (a missing key counts as 0)
    /// and returns the new value (INCR, DECR, INCRBY, DECRBY). The TTL is kept.
    /// O(1) expected; no allocation for an existing key.
    ///
    /// # Errors
    ///
    /// [`IncrError::NotInteger`] if the value is not a decimal i64,
    /// [`IncrError::Overflow`] if the sum does not fit; the value is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::kv_store::{IncrError, Store};
    /// use std::time::Instant;
    /// let (mut s, now) = (Store::new(), Instant::now());
    /// assert_eq!(s.incr_by(b"n", 5, now), Ok(5));
    /// assert_eq!(s.incr_by(b"n", -7, now), Ok(-2));
    /// assert_eq!(s.incr_by(b"n", i64::MIN, now), Err(IncrError::Overflow));
    /// ```
    pub fn incr_by(&mut self, key: &[u8], delta: i64, now: Instant) -> Result<i64, IncrError> {
        self.expire_if_due(key, now);
        match self.map.get_mut(key) {
            Some(entry) => {
                let current = parse_i64(&entry.value).ok_or(IncrError::NotInteger)?;
                let next = current.checked_add(delta).ok_or(IncrError::Overflow)?;
                entry.value.clear();
                push_i64(&mut entry.value, next);
                Ok(next)
            }
            None => {
                let mut value = Vec::with_capacity(20);
                push_i64(&mut value, delta);
                self.map.insert(
                    key.into(),
                    Entry {
                        value,
                        expires: None,
                    },
                );
                Ok(delta)
            }
        }
    }
}

/// Overwrites `dst` with `src`, reusing its buffer unless that would keep far more
/// memory than the new value needs.
fn assign(dst: &mut Vec<u8>, src: &[u8]) {
    if dst.capacity() >= src.len() && dst.capacity() <= src.len().max(32) * 2 {
        dst.clear();
        dst.extend_from_slice(src);
    } else {
        *dst = src.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(condition: SetCondition, expiry: SetExpiry) -> SetOptions {
        SetOptions { condition, expiry }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn get_set_overwrite() {
        let (mut s, t) = (Store::new(), Instant::now());
        assert!(s.set(b"k", b"one", SetOptions::default(), t));
        assert!(s.set(b"k", b"two!", SetOptions::default(), t));
        assert_eq!(s.get(b"k", t), Some(&b"two!"[..]));
        // A much smaller value does not keep the big buffer.
        let big = vec![7u8; 10_000];
        s.set(b"k", &big, SetOptions::default(), t);
        s.set(b"k", b"x", SetOptions::default(), t);
        assert_eq!(s.get(b"k", t), Some(&b"x"[..]));
        assert!(s.map[&b"k"[..]].value.capacity() < 100);
        assert_eq!(s.dbsize(t), 1);
    }

    #[test]
    fn nx_and_xx() {
        let (mut s, t) = (Store::new(), Instant::now());
        assert!(!s.set(
            b"k",
            b"v",
            opts(SetCondition::IfPresent, SetExpiry::Persist),
            t
        ));
        assert_eq!(s.get(b"k", t), None);
        assert!(s.set(
            b"k",
            b"v",
            opts(SetCondition::IfAbsent, SetExpiry::Persist),
            t
        ));
        assert!(!s.set(
            b"k",
            b"w",
            opts(SetCondition::IfAbsent, SetExpiry::Persist),
            t
        ));
        assert_eq!(s.get(b"k", t), Some(&b"v"[..]));
        assert!(s.set(
            b"k",
            b"w",
            opts(SetCondition::IfPresent, SetExpiry::Persist),
            t
        ));
        assert_eq!(s.get(b"k", t), Some(&b"w"[..]));
    }

    #[test]
    fn expiry_is_lazy_and_exact() {
        let (mut s, t) = (Store::new(), Instant::now());
        s.set(
            b"k",
            b"v",
            opts(SetCondition::Always, SetExpiry::AfterMillis(100)),
            t,
        );
        assert_eq!(s.ttl(b"k", t + ms(40)), Ttl::Remaining(ms(60)));
        // Alive at the deadline, gone just after it.
        assert_eq!(s.get(b"k", t + ms(100)), Some(&b"v"[..]));
        assert_eq!(s.get(b"k", t + ms(101)), None);
        assert_eq!(s.len_including_expired(), 0);
        assert!(s.expiries.is_empty());
        // NX succeeds on an expired key; XX does not.
        s.set(
            b"e",
            b"v",
            opts(SetCondition::Always, SetExpiry::AfterMillis(1)),
            t,
        );
        assert!(!s.set(
            b"e",
            b"w",
            opts(SetCondition::IfPresent, SetExpiry::Persist),
            t + ms(5)
        ));
        s.set(
            b"e",
            b"v",
            opts(SetCondition::Always, SetExpiry::AfterMillis(1)),
            t,
        );
        assert!(s.set(
            b"e",
            b"w",
            opts(SetCondition::IfAbsent, SetExpiry::Persist),
            t + ms(5)
        ));
        assert_eq!(s.ttl(b"e", t + ms(5)), Ttl::Persistent);
        assert_eq!(s.ttl(b"zz", t), Ttl::Missing);
    }

    #[test]
    fn set_replaces_or_keeps_ttl() {
        let (mut s, t) = (Store::new(), Instant::now());
        let ex = |n| opts(SetCondition::Always, SetExpiry::AfterMillis(n));
        s.set(b"k", b"v", ex(100), t);
        s.set(b"k", b"v", ex(500), t);
        assert_eq!(s.expiries.len(), 1, "the old deadline leaves the index");
        s.set(
            b"k",
            b"v2",
            opts(SetCondition::Always, SetExpiry::Keep),
            t + ms(100),
        );
        assert_eq!(s.ttl(b"k", t + ms(100)), Ttl::Remaining(ms(400)));
        s.set(b"k", b"v3", SetOptions::default(), t);
        assert_eq!(s.ttl(b"k", t), Ttl::Persistent);
        assert!(s.expiries.is_empty());
        // KEEPTTL on a new key: no TTL.
        s.set(b"n", b"v", opts(SetCondition::Always, SetExpiry::Keep), t);
        assert_eq!(s.ttl(b"n", t), Ttl::Persistent);
        // An unrepresentable deadline means no TTL rather than a panic.
        s.set(b"far", b"v", ex(u64::MAX), t);
        assert!(s.exists(b"far", t + Duration::from_secs(1_000_000)));
    }

    #[test]
    fn del_and_exists_count_live_keys_only() {
        let (mut s, t) = (Store::new(), Instant::now());
        s.set(b"a", b"1", SetOptions::default(), t);
        s.set(
            b"b",
            b"1",
            opts(SetCondition::Always, SetExpiry::AfterMillis(5)),
            t,
        );
        assert!(s.exists(b"a", t));
        assert!(s.exists(b"b", t));
        assert!(!s.exists(b"b", t + ms(6)));
        s.set(
            b"b",
            b"1",
            opts(SetCondition::Always, SetExpiry::AfterMillis(5)),
            t,
        );
        assert!(
            !s.del(b"b", t + ms(6)),
            "an expired key is not deleted, it is gone"
        );
        assert!(s.del(b"a", t));
        assert!(!s.del(b"a", t));
        assert!(s.is_empty());
        assert!(s.expiries.is_empty());
    }

    #[test]
    fn incr_semantics() {
        let (mut s, t) = (Store::new(), Instant::now());
        assert_eq!(s.incr_by(b"n", 1, t), Ok(1));
        assert_eq!(s.incr_by(b"n", -1, t), Ok(0));
        assert_eq!(s.get(b"n", t), Some(&b"0"[..]));
        s.set(b"n", b"9223372036854775806", SetOptions::default(), t);
        assert_eq!(s.incr_by(b"n", 1, t), Ok(i64::MAX));
        assert_eq!(s.incr_by(b"n", 1, t), Err(IncrError::Overflow));
        assert_eq!(s.get(b"n", t), Some(&b"9223372036854775807"[..]));
        s.set(b"m", b"-9223372036854775808", SetOptions::default(), t);
        assert_eq!(s.incr_by(b"m", -1, t), Err(IncrError::Overflow));
        for bad in [
            &b"abc"[..],
            b"",
            b" 1",
            b"1.0",
            b"01",
            b"99999999999999999999",
        ] {
            s.set(b"x", bad, SetOptions::default(), t);
            assert_eq!(s.incr_by(b"x", 1, t), Err(IncrError::NotInteger), "{bad:?}");
            assert_eq!(s.get(b"x", t), Some(bad));
        }
        // INCR keeps the TTL.
        s.set(
            b"t",
            b"1",
            opts(SetCondition::Always, SetExpiry::AfterMillis(50)),
            t,
        );
        assert_eq!(s.incr_by(b"t", 1, t), Ok(2));
        assert_eq!(s.ttl(b"t", t), Ttl::Remaining(ms(50)));
        assert_eq!(
            s.incr_by(b"t", 1, t + ms(51)),
            Ok(1),
            "expired: starts again from 0"
        );
        let mut out = Vec::new();
        IncrError::NotInteger.write_reply(&mut out);
        assert_eq!(out, b"-ERR value is not an integer or out of range\r\n");
        assert_eq!(
            IncrError::Overflow.to_string(),
            "increment or decrement would overflow"
        );
    }

    #[test]
    fn sweep_is_bounded_and_ordered() {
        let (mut s, t) = (Store::new(), Instant::now());
        for i in 0..100u64 {
            let key = format!("k{i}");
            s.set(
                key.as_bytes(),
                b"v",
                opts(SetCondition::Always, SetExpiry::AfterMillis(i + 1)),
                t,
            );
        }
        s.set(b"forever", b"v", SetOptions::default(), t);
        assert_eq!(s.sweep(t + ms(50), 10), 10);
        assert!(!s.map.contains_key(&b"k0"[..]) && s.map.contains_key(&b"k10"[..]));
        assert_eq!(
            s.sweep(t + ms(50), 1000),
            39,
            "keys with deadlines 11..=49 ms"
        );
        assert_eq!(
            s.len_including_expired(),
            52,
            "50..=100 ms and the persistent key"
        );
        assert_eq!(s.dbsize(t + ms(1000)), 1);
        assert_eq!(s.sweep(t + ms(1000), 10), 0);
    }

    #[test]
    fn flush_all_empties_everything() {
        let (mut s, t) = (Store::new(), Instant::now());
        s.set(b"a", b"1", SetOptions::default(), t);
        s.set(
            b"b",
            b"1",
            opts(SetCondition::Always, SetExpiry::AfterMillis(5)),
            t,
        );
        s.flush_all();
        assert_eq!(s.dbsize(t), 0);
        assert!(s.expiries.is_empty());
        assert_eq!(s.get(b"a", t), None);
    }
}
