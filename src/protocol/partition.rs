//! Key ownership: which shard owns a key, and splitting a multi-key command by
//! owner so its per-shard results can be gathered back in argument order.
//!
//! # The hash
//!
//! [`shard_for_key`] hashes the key with 64-bit FNV-1a (offset basis
//! `0xcbf29ce484222325`, prime `0x100000001b3`), then mixes the result with a
//! xor-shift/multiply finalizer (the 64-bit finalizer of MurmurHash3) because FNV's
//! low and high bits alone are weak for short keys that differ in one byte, and
//! finally maps the 64-bit value onto `0..shards` by multiply-high (`(h * shards) >>
//! 64`), which is unbiased enough and avoids a division. The function is fixed:
//! it depends on nothing but the key bytes and the shard count, so every shard
//! (and a client that wants to aim at a shard) computes the same owner.
//!
//! It is not a keyed hash: a client can choose keys that all land on one shard.
//! That only unbalances load; each shard's own table uses std's randomly keyed
//! SipHash, so it cannot be forced into collisions.

use std::fmt;

/// FNV-1a, 64-bit, over `bytes`. O(len), no allocation.
///
/// # Examples
///
/// ```
/// use shardnet::protocol::partition::fnv1a64;
/// assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Spreads every input bit over the whole word.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The shard in `0..shards` that owns `key` (see the [module docs](self) for the
/// hash). `shards == 0` is treated as one shard. O(key length), no allocation.
///
/// # Examples
///
/// ```
/// use shardnet::protocol::partition::shard_for_key;
/// let s = shard_for_key(b"user:42", 4);
/// assert!(s < 4);
/// assert_eq!(s, shard_for_key(b"user:42", 4));
/// assert_eq!(shard_for_key(b"user:42", 1), 0);
/// ```
pub fn shard_for_key(key: &[u8], shards: usize) -> usize {
    let n = shards.max(1) as u128;
    ((u128::from(mix(fnv1a64(key))) * n) >> 64) as usize
}

/// A multi-key command's keys grouped by owning shard, in argument order within
/// each group. Reuse one per connection: after the first few commands,
/// [`split`](Self::split) allocates nothing unless a command has more keys than
/// any before.
///
/// Memory: 4 bytes per key twice (owner and group position) plus one `Vec` per
/// shard.
#[derive(Debug, Clone)]
pub struct KeySplit {
    shards: usize,
    owners: Vec<u32>,
    groups: Vec<Vec<u32>>,
}

/// Gathering found per-shard results that do not match the split: a bug in the
/// server's plumbing, never caused by peer input. Reply with an error instead of
/// guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatherError {
    /// `per_shard` does not have one entry per shard.
    ShardCount {
        /// Entries given.
        got: usize,
        /// Shards in the split.
        want: usize,
    },
    /// A shard returned fewer results than it was given keys.
    Missing {
        /// The shard.
        shard: usize,
    },
    /// A shard returned more results than it was given keys.
    Extra {
        /// The shard.
        shard: usize,
    },
    /// A shard's reply was not the kind the operation produces.
    WrongReply {
        /// The shard.
        shard: usize,
    },
}

impl fmt::Display for GatherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GatherError::ShardCount { got, want } => {
                write!(f, "{got} per-shard results for {want} shards")
            }
            GatherError::Missing { shard } => write!(f, "shard {shard} returned too few results"),
            GatherError::Extra { shard } => write!(f, "shard {shard} returned too many results"),
            GatherError::WrongReply { shard } => {
                write!(f, "shard {shard} returned the wrong kind of reply")
            }
        }
    }
}

impl std::error::Error for GatherError {}

impl KeySplit {
    /// A split over `shards` shards (`0` is treated as 1). Allocates one empty
    /// `Vec` header per shard.
    pub fn new(shards: usize) -> Self {
        let shards = shards.max(1);
        KeySplit {
            shards,
            owners: Vec::new(),
            groups: vec![Vec::new(); shards],
        }
    }

    /// The number of shards. O(1).
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Groups `keys` by owner, replacing the previous split. O(total key bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::partition::{shard_for_key, KeySplit};
    /// let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
    /// let mut split = KeySplit::new(2);
    /// split.split(keys);
    /// assert_eq!(split.len(), 3);
    /// for (shard, positions) in split.groups() {
    ///     for &i in positions {
    ///         assert_eq!(shard_for_key(keys[i as usize], 2), shard);
    ///     }
    /// }
    /// ```
    pub fn split<'k>(&mut self, keys: impl IntoIterator<Item = &'k [u8]>) {
        self.owners.clear();
        for g in &mut self.groups {
            g.clear();
        }
        for key in keys {
            let shard = shard_for_key(key, self.shards);
            let position = self.owners.len() as u32;
            self.owners.push(shard as u32);
            self.groups[shard].push(position);
        }
    }

    /// Number of keys in the current split. O(1).
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// `true` if the current split has no keys. O(1).
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// The shard owning key `i` (argument order). O(1).
    pub fn owner(&self, i: usize) -> Option<usize> {
        self.owners.get(i).map(|&s| s as usize)
    }

    /// Key positions (argument order) owned by `shard`, ascending. O(1).
    pub fn group(&self, shard: usize) -> &[u32] {
        self.groups.get(shard).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The non-empty groups: `(shard, key positions)`, by shard number.
    pub fn groups(&self) -> impl Iterator<Item = (usize, &[u32])> + '_ {
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| !g.is_empty())
            .map(|(s, g)| (s, g.as_slice()))
    }

    /// The one shard owning every key, if there is one (then no fan-out is
    /// needed). O(shards).
    pub fn single_owner(&self) -> Option<usize> {
        let mut it = self.groups();
        let (first, _) = it.next()?;
        it.next().is_none().then_some(first)
    }

    /// Reassembles per-shard results in argument order: `per_shard[s]` yields
    /// shard `s`'s results in the order of [`group(s)`](Self::group), and `emit`
    /// is called once per key with `(position, result)`, positions ascending.
    /// O(keys), no allocation.
    ///
    /// # Errors
    ///
    /// [`GatherError`] if `per_shard.len()` is not the shard count or a shard
    /// yields too few or too many results; `emit` may have run for a prefix.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::partition::KeySplit;
    /// let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("k{i}").into_bytes()).collect();
    /// let mut split = KeySplit::new(3);
    /// split.split(keys.iter().map(Vec::as_slice));
    /// // Each "shard" answers with the keys it was given, uppercased.
    /// let mut per_shard: Vec<_> = (0..3)
    ///     .map(|s| {
    ///         let answers: Vec<Vec<u8>> =
    ///             split.group(s).iter().map(|&i| keys[i as usize].to_ascii_uppercase()).collect();
    ///         answers.into_iter()
    ///     })
    ///     .collect();
    /// let mut gathered = Vec::new();
    /// split.gather(&mut per_shard, |_, v| gathered.push(v)).unwrap();
    /// assert_eq!(gathered, keys.iter().map(|k| k.to_ascii_uppercase()).collect::<Vec<_>>());
    /// ```
    pub fn gather<T, I: Iterator<Item = T>>(
        &self,
        per_shard: &mut [I],
        mut emit: impl FnMut(usize, T),
    ) -> Result<(), GatherError> {
        if per_shard.len() != self.shards {
            return Err(GatherError::ShardCount {
                got: per_shard.len(),
                want: self.shards,
            });
        }
        for (i, &owner) in self.owners.iter().enumerate() {
            let shard = owner as usize;
            let value = per_shard[shard]
                .next()
                .ok_or(GatherError::Missing { shard })?;
            emit(i, value);
        }
        for (shard, it) in per_shard.iter_mut().enumerate() {
            if it.next().is_some() {
                return Err(GatherError::Extra { shard });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn owner_is_stable() {
        // Pinned so that a change to the hash is a deliberate, visible one.
        let owners: Vec<usize> = [
            "",
            "a",
            "key:000000000001",
            "counter:__rand_int__",
            "user:42",
        ]
        .iter()
        .map(|k| shard_for_key(k.as_bytes(), 8))
        .collect();
        assert_eq!(owners, PINNED_OWNERS);
    }

    const PINNED_OWNERS: [usize; 5] = [7, 4, 6, 5, 4];

    #[test]
    fn keys_spread_evenly() {
        for shards in [2usize, 3, 4, 7, 16] {
            let mut counts = vec![0usize; shards];
            // redis-benchmark style keys, which differ only in their last digits.
            let n = 100_000;
            for i in 0..n {
                counts[shard_for_key(format!("key:{i:012}").as_bytes(), shards)] += 1;
            }
            let mean = n / shards;
            for (s, &c) in counts.iter().enumerate() {
                let off = c.abs_diff(mean) as f64 / mean as f64;
                assert!(
                    off < 0.05,
                    "{shards} shards: shard {s} has {c}, mean {mean}"
                );
            }
        }
        assert_eq!(shard_for_key(b"x", 0), 0);
    }

    #[test]
    fn split_groups_and_gathers_in_argument_order() {
        let keys: Vec<Vec<u8>> = (0..50).map(|i| format!("k{i}").into_bytes()).collect();
        let mut split = KeySplit::new(4);
        split.split(keys.iter().map(Vec::as_slice));
        assert_eq!(split.len(), 50);
        assert_eq!(split.groups().map(|(_, g)| g.len()).sum::<usize>(), 50);
        assert!(split.groups().count() > 1);
        assert_eq!(split.single_owner(), None);
        for (shard, group) in split.groups() {
            assert!(group.windows(2).all(|w| w[0] < w[1]));
            for &i in group {
                assert_eq!(split.owner(i as usize), Some(shard));
            }
        }
        // Each shard answers with the positions it was given.
        let mut per_shard: Vec<_> = (0..4)
            .map(|s| split.group(s).to_vec().into_iter())
            .collect();
        let mut seen = Vec::new();
        split
            .gather(&mut per_shard, |i, v| {
                assert_eq!(i as u32, v);
                seen.push(v)
            })
            .unwrap();
        assert_eq!(seen, (0..50).collect::<Vec<u32>>());
        // Reuse for a single-owner split.
        split.split([&b"k1"[..], b"k1"]);
        assert_eq!(split.single_owner(), split.owner(0));
        assert_eq!(split.len(), 2);
        split.split(std::iter::empty());
        assert!(split.is_empty());
        assert_eq!(split.single_owner(), None);
    }

    #[test]
    fn gather_reports_mismatches() {
        let keys: [&[u8]; 8] = [b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"];
        let mut split = KeySplit::new(2);
        split.split(keys);
        let (s0, s1) = (split.group(0).len(), split.group(1).len());
        assert!(s0 > 0 && s1 > 0, "test keys must hit both shards");
        let mut short = [vec![0; s0].into_iter(), vec![0; s1 - 1].into_iter()];
        assert_eq!(
            split.gather(&mut short, |_, _| {}),
            Err(GatherError::Missing { shard: 1 })
        );
        let mut long = [vec![0; s0 + 1].into_iter(), vec![0; s1].into_iter()];
        assert_eq!(
            split.gather(&mut long, |_, _| {}),
            Err(GatherError::Extra { shard: 0 })
        );
        let mut one = [vec![0; 8].into_iter()];
        assert_eq!(
            split.gather(&mut one, |_, _| {}),
            Err(GatherError::ShardCount { got: 1, want: 2 })
        );
        assert!(!GatherError::WrongReply { shard: 3 }.to_string().is_empty());
    }
}
