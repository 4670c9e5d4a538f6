//! Executing parsed commands against [`Store`]s, on one shard or across shards.
//!
//! Two paths produce byte-identical replies (a test checks it):
//!
//! * **Local**: the owning store is at hand (one shard, or every key of the
//!   command is owned by the connection's shard). [`execute`] or the
//!   `execute_*` functions read the borrowed command and write the reply straight
//!   into the output buffer: no copies, no allocation beyond the store's own.
//! * **Forwarded**: a [`ShardOp`] (owned, `Send`) carries the work to the owning
//!   shard, which runs [`apply`] and sends back a [`ShardReply`] (owned, `Send`).
//!   Single-key replies are written with [`ShardReply::write_reply`]; multi-key
//!   and all-shard commands are reassembled with [`gather_multi`] /
//!   [`gather_all`].
//!
//! Forwarded multi-key commands are not atomic across shards: another client may
//! observe an MSET half applied. Per shard, keys are applied in argument order, so
//! repeated keys behave as in Redis (`DEL a a` counts 1, `MSET a 1 a 2` leaves 2).

use std::time::Instant;

use super::command::{AllShards, Command, Flow, KeyCommand, MultiKey, SetOptions};
use super::kv_store::{IncrError, Store};
use super::partition::{GatherError, KeySplit};
use super::resp;

/// Runs `cmd` with every key local to `store` and appends its reply;
/// `client_id` answers `CLIENT ID`. Returns whether to keep the connection.
///
/// Cost: that of the store operations plus the reply bytes; no allocation other
/// than the store's and `out`'s.
///
/// # Examples
///
/// ```
/// use shardnet::protocol::command::Command;
/// use shardnet::protocol::exec::execute;
/// use shardnet::protocol::kv_store::Store;
/// use shardnet::protocol::resp::Parser;
/// use std::time::Instant;
/// let (mut store, mut parser, mut out) = (Store::new(), Parser::default(), Vec::new());
/// let mut buf: &[u8] = b"SET k v\r\nGET k\r\n";
/// while let Some((req, n)) = parser.parse(buf).unwrap() {
///     match Command::parse(&req) {
///         Ok(cmd) => {
///             execute(&mut store, &cmd, Instant::now(), 1, &mut out);
///         }
///         Err(e) => e.write_reply(&mut out),
///     }
///     buf = &buf[n..];
/// }
/// assert_eq!(out, b"+OK\r\n$1\r\nv\r\n");
/// ```
pub fn execute(
    store: &mut Store,
    cmd: &Command<'_>,
    now: Instant,
    client_id: u64,
    out: &mut Vec<u8>,
) -> Flow {
    match cmd {
        Command::Empty => {}
        Command::Local(local) => return local.write_reply(out, client_id),
        Command::Key(k) => execute_key(store, k, now, out),
        Command::Multi(m) => execute_multi(store, m, now, out),
        Command::AllShards(a) => execute_all(store, *a, now, out),
    }
    Flow::Continue
}

/// Runs a single-key command on the owning `store`, appending the reply.
/// O(1) expected; see [`Store`] for allocation.
pub fn execute_key(store: &mut Store, cmd: &KeyCommand<'_>, now: Instant, out: &mut Vec<u8>) {
    match *cmd {
        KeyCommand::Get { key } => resp::write_optional_bulk(out, store.get(key, now)),
        KeyCommand::Set {
            key,
            value,
            options,
        } => write_stored(out, store.set(key, value, options, now)),
        KeyCommand::IncrBy { key, delta } => write_incr(out, store.incr_by(key, delta, now)),
    }
}

/// Runs a multi-key command whose keys are all owned by `store`, appending the
/// reply. O(keys).
pub fn execute_multi(store: &mut Store, cmd: &MultiKey<'_>, now: Instant, out: &mut Vec<u8>) {
    match cmd {
        MultiKey::MGet(keys) => {
            resp::write_array_header(out, keys.len());
            for key in keys.iter() {
                resp::write_optional_bulk(out, store.get(key, now));
            }
        }
        MultiKey::MSet(_) => {
            for i in 0..cmd.key_count() {
                if let (Some(k), Some(v)) = (cmd.key(i), cmd.value(i)) {
                    store.set(k, v, SetOptions::default(), now);
                }
            }
            resp::write_simple(out, b"OK");
        }
        MultiKey::Del(keys) => {
            let n = keys.iter().filter(|k| store.del(k, now)).count();
            resp::write_integer(out, n as i64);
        }
        MultiKey::Exists(keys) => {
            let n = keys.iter().filter(|k| store.exists(k, now)).count();
            resp::write_integer(out, n as i64);
        }
    }
}

/// Runs DBSIZE or FLUSHALL on a server with this one store. See [`gather_all`]
/// for several shards.
pub fn execute_all(store: &mut Store, cmd: AllShards, now: Instant, out: &mut Vec<u8>) {
    match cmd {
        AllShards::DbSize => resp::write_integer(out, store.dbsize(now) as i64),
        AllShards::FlushAll => {
            store.flush_all();
            resp::write_simple(out, b"OK");
        }
    }
}

fn write_stored(out: &mut Vec<u8>, stored: bool) {
    if stored {
        resp::write_simple(out, b"OK");
    } else {
        resp::write_null(out);
    }
}

fn write_incr(out: &mut Vec<u8>, r: Result<i64, IncrError>) {
    match r {
        Ok(n) => resp::write_integer(out, n),
        Err(e) => e.write_reply(out),
    }
}

/// Work for one shard's store, owned so it can be sent to the owning shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardOp {
    /// GET.
    Get(Vec<u8>),
    /// SET with its options.
    Set {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// NX/XX and expiry.
        options: SetOptions,
    },
    /// INCR/DECR/INCRBY/DECRBY.
    IncrBy {
        /// The key.
        key: Vec<u8>,
        /// The amount added.
        delta: i64,
    },
    /// This shard's keys of an MGET, in argument order.
    MGet(Vec<Vec<u8>>),
    /// This shard's pairs of an MSET, in argument order.
    MSet(Vec<(Vec<u8>, Vec<u8>)>),
    /// This shard's keys of a DEL.
    Del(Vec<Vec<u8>>),
    /// This shard's keys of an EXISTS.
    Exists(Vec<Vec<u8>>),
    /// This shard's key count.
    DbSize,
    /// Empty this shard.
    FlushAll,
}

impl ShardOp {
    /// The owned form of a single-key command. Copies the key and value.
    pub fn from_key(cmd: &KeyCommand<'_>) -> ShardOp {
        match *cmd {
            KeyCommand::Get { key } => ShardOp::Get(key.to_vec()),
            KeyCommand::Set {
                key,
                value,
                options,
            } => ShardOp::Set {
                key: key.to_vec(),
                value: value.to_vec(),
                options,
            },
            KeyCommand::IncrBy { key, delta } => ShardOp::IncrBy {
                key: key.to_vec(),
                delta,
            },
        }
    }

    /// The owned form of an all-shards command, to send to every shard. O(1).
    pub fn from_all(cmd: AllShards) -> ShardOp {
        match cmd {
            AllShards::DbSize => ShardOp::DbSize,
            AllShards::FlushAll => ShardOp::FlushAll,
        }
    }

    /// The part of `cmd` that `shard` owns, as grouped by `split` (which must
    /// have been made from `cmd.keys()`). Copies that shard's keys (and values).
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::command::Command;
    /// use shardnet::protocol::exec::ShardOp;
    /// use shardnet::protocol::partition::KeySplit;
    /// use shardnet::protocol::resp::Parser;
    /// let mut p = Parser::default();
    /// let (req, _) = p.parse(b"DEL a b c\r\n").unwrap().unwrap();
    /// let Ok(Command::Multi(m)) = Command::parse(&req) else { unreachable!() };
    /// let mut split = KeySplit::new(1);
    /// split.split(m.keys());
    /// assert_eq!(ShardOp::for_shard(&m, &split, 0), ShardOp::Del(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]));
    /// ```
    pub fn for_shard(cmd: &MultiKey<'_>, split: &KeySplit, shard: usize) -> ShardOp {
        let positions = split.group(shard).iter().map(|&i| i as usize);
        let keys = || {
            positions
                .clone()
                .filter_map(|i| cmd.key(i))
                .map(<[u8]>::to_vec)
                .collect()
        };
        match cmd {
            MultiKey::MGet(_) => ShardOp::MGet(keys()),
            MultiKey::Del(_) => ShardOp::Del(keys()),
            MultiKey::Exists(_) => ShardOp::Exists(keys()),
            MultiKey::MSet(_) => ShardOp::MSet(
                positions
                    .filter_map(|i| Some((cmd.key(i)?.to_vec(), cmd.value(i)?.to_vec())))
                    .collect(),
            ),
        }
    }
}

/// A shard's answer to a [`ShardOp`], owned so it can be sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardReply {
    /// GET: the value, if any.
    Value(Option<Vec<u8>>),
    /// SET: whether it was stored (NX/XX may refuse).
    Stored(bool),
    /// INCR family, DEL and EXISTS counts, DBSIZE.
    Integer(i64),
    /// INCR family failure.
    IncrFailed(IncrError),
    /// MGET: this shard's values, in the order of its keys.
    Values(Vec<Option<Vec<u8>>>),
    /// MSET, FLUSHALL.
    Ok,
}

impl ShardReply {
    /// Appends the client reply for a single-key operation's answer (or any
    /// answer taken alone). O(reply size), no allocation beyond `out`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::exec::ShardReply;
    /// let mut out = Vec::new();
    /// ShardReply::Stored(false).write_reply(&mut out);
    /// ShardReply::Value(Some(b"v".to_vec())).write_reply(&mut out);
    /// assert_eq!(out, b"$-1\r\n$1\r\nv\r\n");
    /// ```
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        match self {
            ShardReply::Value(v) => resp::write_optional_bulk(out, v.as_deref()),
            ShardReply::Stored(stored) => write_stored(out, *stored),
            ShardReply::Integer(n) => resp::write_integer(out, *n),
            ShardReply::IncrFailed(e) => e.write_reply(out),
            ShardReply::Values(vs) => {
                resp::write_array_header(out, vs.len());
                for v in vs {
                    resp::write_optional_bulk(out, v.as_deref());
                }
            }
            ShardReply::Ok => resp::write_simple(out, b"OK"),
        }
    }
}

/// Runs `op` on the owning shard's `store`. Cost: that of the store operations;
/// allocates the reply's copies of values.
///
/// # Examples
///
/// ```
/// use shardnet::protocol::exec::{apply, ShardOp, ShardReply};
/// use shardnet::protocol::kv_store::Store;
/// use std::time::Instant;
/// let (mut s, now) = (Store::new(), Instant::now());
/// assert_eq!(apply(&mut s, &ShardOp::IncrBy { key: b"n".to_vec(), delta: 2 }, now), ShardReply::Integer(2));
/// assert_eq!(apply(&mut s, &ShardOp::Get(b"n".to_vec()), now), ShardReply::Value(Some(b"2".to_vec())));
/// ```
pub fn apply(store: &mut Store, op: &ShardOp, now: Instant) -> ShardReply {
    let count = |n: usize| ShardReply::Integer(n as i64);
    match op {
        ShardOp::Get(key) => ShardReply::Value(store.get(key, now).map(<[u8]>::to_vec)),
        ShardOp::Set {
            key,
            value,
            options,
        } => ShardReply::Stored(store.set(key, value, *options, now)),
        ShardOp::IncrBy { key, delta } => match store.incr_by(key, *delta, now) {
            Ok(n) => ShardReply::Integer(n),
            Err(e) => ShardReply::IncrFailed(e),
        },
        ShardOp::MGet(keys) => ShardReply::Values(
            keys.iter()
                .map(|k| store.get(k, now).map(<[u8]>::to_vec))
                .collect(),
        ),
        ShardOp::MSet(pairs) => {
            for (k, v) in pairs {
                store.set(k, v, SetOptions::default(), now);
            }
            ShardReply::Ok
        }
        ShardOp::Del(keys) => count(keys.iter().filter(|k| store.del(k, now)).count()),
        ShardOp::Exists(keys) => count(keys.iter().filter(|k| store.exists(k, now)).count()),
        ShardOp::DbSize => count(store.dbsize(now)),
        ShardOp::FlushAll => {
            store.flush_all();
            ShardReply::Ok
        }
    }
}

/// Writes the client reply of a forwarded multi-key command from its shards'
/// answers: `replies[s]` is shard `s`'s answer to
/// [`ShardOp::for_shard`]`(cmd, split, s)`, `None` for shards with no keys.
/// MGET values come out in argument order; DEL/EXISTS counts are summed.
///
/// Cost: O(keys + shards); moves the values, allocates one small vector of
/// per-shard iterators for MGET.
///
/// # Errors
///
/// [`GatherError`] when the answers do not match the split (a missing answer,
/// a wrong count or kind); nothing is written then.
pub fn gather_multi(
    cmd: &MultiKey<'_>,
    split: &KeySplit,
    replies: &mut [Option<ShardReply>],
    out: &mut Vec<u8>,
) -> Result<(), GatherError> {
    let shards = split.shards();
    if replies.len() != shards {
        return Err(GatherError::ShardCount {
            got: replies.len(),
            want: shards,
        });
    }
    // Every shard with keys must have answered, and only those.
    for (shard, r) in replies.iter().enumerate() {
        let has_keys = !split.group(shard).is_empty();
        match (has_keys, r.is_some()) {
            (true, false) => return Err(GatherError::Missing { shard }),
            (false, true) => return Err(GatherError::Extra { shard }),
            _ => {}
        }
    }
    match cmd {
        MultiKey::MGet(_) => {
            let mut per_shard = Vec::with_capacity(shards);
            for (shard, r) in replies.iter_mut().enumerate() {
                match r.take() {
                    None => per_shard.push(Vec::new().into_iter()),
                    Some(ShardReply::Values(vs)) => per_shard.push(vs.into_iter()),
                    Some(_) => return Err(GatherError::WrongReply { shard }),
                }
            }
            let start = out.len();
            resp::write_array_header(out, split.len());
            let gathered = split.gather(&mut per_shard, |_, v| {
                resp::write_optional_bulk(out, v.as_deref())
            });
            if gathered.is_err() {
                out.truncate(start);
            }
            gathered
        }
        MultiKey::MSet(_) => {
            for (shard, r) in replies.iter().enumerate() {
                if !matches!(r, None | Some(ShardReply::Ok)) {
                    return Err(GatherError::WrongReply { shard });
                }
            }
            resp::write_simple(out, b"OK");
            Ok(())
        }
        MultiKey::Del(_) | MultiKey::Exists(_) => {
            let total = sum_integers(
                replies
                    .iter()
                    .enumerate()
                    .filter_map(|(s, r)| Some((s, r.as_ref()?))),
            )?;
            resp::write_integer(out, total);
            Ok(())
        }
    }
}

fn sum_integers<'r>(
    replies: impl Iterator<Item = (usize, &'r ShardReply)>,
) -> Result<i64, GatherError> {
    let mut total: i64 = 0;
    for (shard, r) in replies {
        match r {
            ShardReply::Integer(n) => total = total.saturating_add(*n),
            _ => return Err(GatherError::WrongReply { shard }),
        }
    }
    Ok(total)
}

/// Writes the client reply of DBSIZE (sum) or FLUSHALL (`+OK`) from every
/// shard's answer to [`ShardOp::from_all`], `replies[s]` being shard `s`'s.
/// O(shards), no allocation beyond `out`.
///
/// # Errors
///
/// [`GatherError::WrongReply`] if an answer has the wrong kind; nothing is
/// written then.
///
/// # Examples
///
/// ```
/// use shardnet::protocol::command::AllShards;
/// use shardnet::protocol::exec::{gather_all, ShardReply};
/// let mut out = Vec::new();
/// gather_all(AllShards::DbSize, &[ShardReply::Integer(2), ShardReply::Integer(3)], &mut out).unwrap();
/// assert_eq!(out, b":5\r\n");
/// ```
pub fn gather_all(
    cmd: AllShards,
    replies: &[ShardReply],
    out: &mut Vec<u8>,
) -> Result<(), GatherError> {
    match cmd {
        AllShards::DbSize => {
            let total = sum_integers(replies.iter().enumerate())?;
            resp::write_integer(out, total);
        }
        AllShards::FlushAll => {
            if let Some(shard) = replies.iter().position(|r| *r != ShardReply::Ok) {
                return Err(GatherError::WrongReply { shard });
            }
            resp::write_simple(out, b"OK");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::partition::shard_for_key;
    use crate::protocol::resp::Parser;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::time::Duration;

    /// Runs a script of RESP input on one store, returning the replies.
    fn run_local(store: &mut Store, input: &[u8], now: Instant) -> String {
        let mut p = Parser::default();
        let mut out = Vec::new();
        let mut off = 0;
        while let Some((req, n)) = p.parse(&input[off..]).unwrap() {
            match Command::parse(&req) {
                Ok(cmd) => {
                    execute(store, &cmd, now, 7, &mut out);
                }
                Err(e) => e.write_reply(&mut out),
            }
            off += n;
        }
        assert_eq!(off, input.len(), "script must be complete");
        String::from_utf8(out).unwrap()
    }

    /// Runs the same script the way a sharded server does: every keyspace
    /// command is forwarded as ShardOps to `stores` and gathered.
    fn run_sharded(stores: &mut [Store], input: &[u8], now: Instant) -> String {
        let shards = stores.len();
        let mut p = Parser::default();
        let mut split = KeySplit::new(shards);
        let mut out = Vec::new();
        let mut off = 0;
        while let Some((req, n)) = p.parse(&input[off..]).unwrap() {
            match Command::parse(&req) {
                Ok(Command::Empty) => {}
                Ok(Command::Local(l)) => {
                    l.write_reply(&mut out, 7);
                }
                Ok(Command::Key(k)) => {
                    let owner = shard_for_key(k.key(), shards);
                    apply(&mut stores[owner], &ShardOp::from_key(&k), now).write_reply(&mut out);
                }
                Ok(Command::Multi(m)) => {
                    split.split(m.keys());
                    let mut replies: Vec<Option<ShardReply>> = vec![None; shards];
                    let groups: Vec<usize> = split.groups().map(|(s, _)| s).collect();
                    for s in groups {
                        let op = ShardOp::for_shard(&m, &split, s);
                        replies[s] = Some(apply(&mut stores[s], &op, now));
                    }
                    gather_multi(&m, &split, &mut replies, &mut out).unwrap();
                }
                Ok(Command::AllShards(a)) => {
                    let op = ShardOp::from_all(a);
                    let replies: Vec<ShardReply> =
                        stores.iter_mut().map(|s| apply(s, &op, now)).collect();
                    gather_all(a, &replies, &mut out).unwrap();
                }
                Err(e) => e.write_reply(&mut out),
            }
            off += n;
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_keyspace_command_end_to_end() {
        let (mut s, t) = (Store::new(), Instant::now());
        let script = b"SET a 1\r\n\
GET a\r\n\
GET missing\r\n\
SET a 2 NX\r\n\
SET b 2 XX\r\n\
SET b 3 NX\r\n\
INCR a\r\n\
DECR a\r\n\
INCRBY a 10\r\n\
DECRBY a 3\r\n\
INCR b2\r\n\
SET s hello\r\n\
INCR s\r\n\
SET big 9223372036854775807\r\n\
INCR big\r\n\
MSET x 1 y 2 x 3\r\n\
MGET x y nope a\r\n\
EXISTS x y nope x\r\n\
DEL x x y nope\r\n\
DBSIZE\r\n\
FLUSHALL\r\n\
DBSIZE\r\n\
*0\r\n\
\r\n\
PING\r\n";
        let expected = "+OK\r\n$1\r\n1\r\n$-1\r\n$-1\r\n$-1\r\n+OK\r\n:2\r\n:1\r\n:11\r\n:8\r\n:1\r\n+OK\r\n\
-ERR value is not an integer or out of range\r\n+OK\r\n-ERR increment or decrement would overflow\r\n\
+OK\r\n*4\r\n$1\r\n3\r\n$1\r\n2\r\n$-1\r\n$1\r\n8\r\n:3\r\n:2\r\n:5\r\n+OK\r\n:0\r\n+PONG\r\n";
        assert_eq!(run_local(&mut s, script, t), expected);
    }

    #[test]
    fn expiry_through_commands() {
        let (mut s, t) = (Store::new(), Instant::now());
        assert_eq!(
            run_local(&mut s, b"SET k v PX 100\r\nSET j v EX 1\r\n", t),
            "+OK\r\n+OK\r\n"
        );
        assert_eq!(
            run_local(
                &mut s,
                b"GET k\r\nDBSIZE\r\n",
                t + Duration::from_millis(100)
            ),
            "$1\r\nv\r\n:2\r\n"
        );
        assert_eq!(
            run_local(
                &mut s,
                b"GET k\r\nDBSIZE\r\n",
                t + Duration::from_millis(101)
            ),
            "$-1\r\n:1\r\n"
        );
        assert_eq!(
            run_local(&mut s, b"EXISTS j\r\n", t + Duration::from_millis(1001)),
            ":0\r\n"
        );
    }

    #[test]
    fn quit_closes_and_empty_requests_say_nothing() {
        let (mut s, t) = (Store::new(), Instant::now());
        let mut p = Parser::default();
        let mut out = Vec::new();
        let (req, _) = p.parse(b"QUIT\r\n").unwrap().unwrap();
        assert_eq!(
            execute(&mut s, &Command::parse(&req).unwrap(), t, 1, &mut out),
            Flow::Close
        );
        let (req, _) = p.parse(b"\r\n").unwrap().unwrap();
        assert_eq!(
            execute(&mut s, &Command::parse(&req).unwrap(), t, 1, &mut out),
            Flow::Continue
        );
        assert_eq!(out, b"+OK\r\n");
    }

    /// A random script of keyspace commands over a small key set, so keys repeat
    /// and land on every shard.
    fn random_script(rng: &mut SmallRng, commands: usize) -> Vec<u8> {
        let mut script = Vec::new();
        let key = |rng: &mut SmallRng| format!("key:{}", rng.gen_range(0..40));
        for _ in 0..commands {
            let line = match rng.gen_range(0..9) {
                0 => format!("SET {} v{}", key(rng), rng.gen_range(0..100)),
                1 => format!("GET {}", key(rng)),
                2 => format!("INCRBY {} {}", key(rng), rng.gen_range(-5..5)),
                3 => {
                    let n = rng.gen_range(1..8);
                    let keys: Vec<String> = (0..n).map(|_| key(rng)).collect();
                    format!("MGET {}", keys.join(" "))
                }
                4 => {
                    let n = rng.gen_range(1..6);
                    let pairs: Vec<String> =
                        (0..n).map(|i| format!("{} {}", key(rng), i)).collect();
                    format!("MSET {}", pairs.join(" "))
                }
                5 => {
                    let n = rng.gen_range(1..6);
                    let keys: Vec<String> = (0..n).map(|_| key(rng)).collect();
                    format!("DEL {}", keys.join(" "))
                }
                6 => {
                    let n = rng.gen_range(1..6);
                    let keys: Vec<String> = (0..n).map(|_| key(rng)).collect();
                    format!("EXISTS {}", keys.join(" "))
                }
                7 => "DBSIZE".to_string(),
                _ => format!("SET {} x NX", key(rng)),
            };
            script.extend_from_slice(line.as_bytes());
            script.extend_from_slice(b"\r\n");
        }
        script
    }

    #[test]
    fn sharded_execution_matches_local_execution() {
        let t = Instant::now();
        let mut rng = SmallRng::seed_from_u64(42);
        for shards in [1usize, 2, 3, 5] {
            let script = random_script(&mut rng, 2000);
            let mut single = Store::new();
            let mut many: Vec<Store> = (0..shards).map(|_| Store::new()).collect();
            let local = run_local(&mut single, &script, t);
            let sharded = run_sharded(&mut many, &script, t);
            assert_eq!(local, sharded, "{shards} shards");
            // The keys really are partitioned: each lives on its owner only.
            if shards > 1 {
                assert!(many.iter().filter(|s| !s.is_empty()).count() > 1);
            }
            assert!(local.contains("*"), "script exercised MGET");
        }
    }

    #[test]
    fn gather_rejects_mismatched_answers() {
        let mut p = Parser::default();
        let (req, _) = p.parse(b"MGET a b c d e f\r\n").unwrap().unwrap();
        let Ok(Command::Multi(m)) = Command::parse(&req) else {
            panic!()
        };
        let mut split = KeySplit::new(2);
        split.split(m.keys());
        let (g0, g1) = (split.group(0).len(), split.group(1).len());
        assert!(g0 > 0 && g1 > 0);
        let mut out = Vec::new();
        let mut missing = vec![Some(ShardReply::Values(vec![None; g0])), None];
        assert_eq!(
            gather_multi(&m, &split, &mut missing, &mut out),
            Err(GatherError::Missing { shard: 1 })
        );
        let mut short = vec![
            Some(ShardReply::Values(vec![None; g0])),
            Some(ShardReply::Values(vec![None; g1 - 1])),
        ];
        assert_eq!(
            gather_multi(&m, &split, &mut short, &mut out),
            Err(GatherError::Missing { shard: 1 })
        );
        let mut wrong = vec![
            Some(ShardReply::Ok),
            Some(ShardReply::Values(vec![None; g1])),
        ];
        assert_eq!(
            gather_multi(&m, &split, &mut wrong, &mut out),
            Err(GatherError::WrongReply { shard: 0 })
        );
        assert!(out.is_empty(), "nothing written on error");
        assert_eq!(
            gather_all(
                AllShards::FlushAll,
                &[ShardReply::Ok, ShardReply::Integer(1)],
                &mut out
            ),
            Err(GatherError::WrongReply { shard: 1 })
        );
        assert_eq!(
            gather_all(AllShards::DbSize, &[ShardReply::Ok], &mut out),
            Err(GatherError::WrongReply { shard: 0 })
        );
        assert!(out.is_empty());
    }
}
