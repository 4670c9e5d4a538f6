//! A batch: the replies of a run of pipelined requests, kept in request order while the
//! parts owned by other shards are forwarded, one message per owner shard.
//!
//! [`Batch::add`] routes each request as it is parsed:
//!
//! * no keyspace (PING, CONFIG, ...), a key this shard owns, or a multi-key command whose keys
//!   are all owned here: executed at once, the reply appended to `local` (no copy of keys);
//! * a key owned by another shard: its [`ShardOp`] (owned copies of key and value) is queued
//!   for that owner, and a slot remembers that the reply comes from there;
//! * a multi-key command over several shards (MGET, MSET, DEL, EXISTS) is split by owner, each
//!   part queued for its owner (this shard's part applied at once), and a slot remembers the
//!   split; DBSIZE and FLUSHALL go to every shard the same way.
//!
//! [`Batch::run`] sends each owner its queue as one [`Forward`], waits for every [`Answer`],
//! then walks the slots in request order, taking each owner's replies in the order they were
//! queued (per-owner cursors: a slot needs no index), gathering the split ones, and sends all
//! replies with one `sendmsg` (straight from the batch's buffer, no copy into the send queue).
//!
//! Per owner the operations run in request order, and every key has exactly one owner, so a
//! connection sees its own writes; across shards a fanned-out MSET is not atomic (as in Redis
//! Cluster). A batch is bounded — at most [`MAX_REQUESTS`] requests or [`MAX_LOCAL`] bytes of
//! local replies — so a long pipeline is run in several batches.

use crate::forward::{Forward, Registration};
use crate::shard::KvShard;
use shardnet::protocol::command::{AllShards, Command, Flow, MultiKey};
use shardnet::protocol::exec::{
    apply, execute_all, execute_key, execute_multi, ShardOp, ShardReply,
};
use shardnet::protocol::partition::{shard_for_key, KeySplit};
use shardnet::protocol::resp::{self, Request};
use shardnet::{ConnError, Connection};
use std::fmt;
use std::ops::Range;
use std::time::Instant;

/// Most requests in one batch.
pub const MAX_REQUESTS: usize = 1024;
/// Most bytes of local replies a batch collects before it is run.
pub const MAX_LOCAL: usize = 256 * 1024;
/// Replies gathered from other shards are sent in pieces of about this size.
const WRITE_PIECE: usize = 64 * 1024;
/// Buffers that grew past this (one huge value) are shrunk back after the batch.
const KEEP_CAPACITY: usize = 1024 * 1024;
/// Splits that held more keys than this are dropped after the batch, not kept.
const KEEP_SPLIT_KEYS: usize = 4096;

/// Why a batch could not be answered.
#[derive(Debug)]
pub enum BatchError {
    /// Writing the replies failed.
    Conn(ConnError),
    /// Another shard's end of the mesh is closed (the server is stopping).
    MeshClosed,
}

impl From<ConnError> for BatchError {
    fn from(e: ConnError) -> Self {
        BatchError::Conn(e)
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Conn(e) => write!(f, "{e}"),
            BatchError::MeshClosed => f.write_str("another shard stopped"),
        }
    }
}

impl std::error::Error for BatchError {}

/// Which multi-key command a split slot gathers.
#[derive(Debug, Clone, Copy)]
enum MultiKind {
    MGet,
    MSet,
    Count,
}

/// Where one request's reply (or a run of local replies) comes from.
#[derive(Debug)]
enum Slot {
    /// Bytes of `local`.
    Local(Range<usize>),
    /// The next reply of that owner shard.
    Key(usize),
    /// One reply from each shard of split `split`, gathered.
    Multi { kind: MultiKind, split: usize },
    /// One reply from every shard, combined.
    All(AllShards),
}

/// A connection's batch; reused for every batch of the connection (see the module docs).
#[derive(Debug)]
pub struct Batch {
    me: usize,
    shards: usize,
    slots: Vec<Slot>,
    remote: bool,
    requests: usize,
    local: Vec<u8>,
    /// Operations queued per owner shard (`ops[me]` stays empty).
    ops: Vec<Vec<ShardOp>>,
    /// This shard's replies to its parts of fanned-out commands, in request order.
    own: Vec<ShardReply>,
    splits: Vec<KeySplit>,
    splits_used: usize,
    // Scratch reused by `run`.
    out: Vec<u8>,
    answers: Vec<std::vec::IntoIter<ShardReply>>,
    values: Vec<std::vec::IntoIter<Option<Vec<u8>>>>,
}

impl Batch {
    /// An empty batch for a connection on shard `me` of `shards`.
    pub fn new(me: usize, shards: usize) -> Self {
        Batch {
            me,
            shards,
            slots: Vec::new(),
            remote: false,
            requests: 0,
            local: Vec::new(),
            ops: (0..shards).map(|_| Vec::new()).collect(),
            own: Vec::new(),
            splits: Vec::new(),
            splits_used: 0,
            out: Vec::new(),
            answers: Vec::new(),
            values: Vec::new(),
        }
    }

    /// True when the batch should be run before more requests are added.
    pub fn is_full(&self) -> bool {
        self.requests >= MAX_REQUESTS || self.local.len() >= MAX_LOCAL
    }

    /// Routes one request (see the module docs); `now` is the batch's clock for local work.
    /// Returns [`Flow::Close`] after QUIT.
    pub fn add(
        &mut self,
        shard: &KvShard,
        req: &Request<'_>,
        client_id: u64,
        now: Instant,
    ) -> Flow {
        self.requests += 1;
        let start = self.local.len();
        let mut flow = Flow::Continue;
        match Command::parse(req) {
            Err(e) => e.write_reply(&mut self.local),
            Ok(Command::Empty) => {}
            Ok(Command::Local(local)) => flow = local.write_reply(&mut self.local, client_id),
            Ok(Command::Key(k)) => {
                let owner = shard_for_key(k.key(), self.shards);
                if owner == self.me {
                    execute_key(&mut shard.store.borrow_mut(), &k, now, &mut self.local);
                } else {
                    self.ops[owner].push(ShardOp::from_key(&k));
                    self.slots.push(Slot::Key(owner));
                    self.remote = true;
                }
            }
            Ok(Command::Multi(m)) => self.add_multi(shard, &m, now),
            Ok(Command::AllShards(a)) => {
                if self.shards == 1 {
                    execute_all(&mut shard.store.borrow_mut(), a, now, &mut self.local);
                } else {
                    for s in 0..self.shards {
                        let op = ShardOp::from_all(a);
                        if s == self.me {
                            self.own
                                .push(apply(&mut shard.store.borrow_mut(), &op, now));
                        } else {
                            self.ops[s].push(op);
                        }
                    }
                    self.slots.push(Slot::All(a));
                    self.remote = true;
                }
            }
        }
        // A request either wrote a local reply or pushed a remote slot, never both.
        let end = self.local.len();
        if end > start {
            match self.slots.last_mut() {
                Some(Slot::Local(r)) if r.end == start => r.end = end,
                _ => self.slots.push(Slot::Local(start..end)),
            }
        }
        flow
    }

    fn add_multi(&mut self, shard: &KvShard, m: &MultiKey<'_>, now: Instant) {
        if self.splits_used == self.splits.len() {
            self.splits.push(KeySplit::new(self.shards));
        }
        let ix = self.splits_used;
        let split = &mut self.splits[ix];
        split.split(m.keys());
        if split.single_owner() == Some(self.me) {
            execute_multi(&mut shard.store.borrow_mut(), m, now, &mut self.local);
            return;
        }
        self.splits_used += 1;
        for (s, _) in split.groups() {
            let op = ShardOp::for_shard(m, split, s);
            if s == self.me {
                self.own
                    .push(apply(&mut shard.store.borrow_mut(), &op, now));
            } else {
                self.ops[s].push(op);
            }
        }
        let kind = match m {
            MultiKey::MGet(_) => MultiKind::MGet,
            MultiKey::MSet(_) => MultiKind::MSet,
            MultiKey::Del(_) | MultiKey::Exists(_) => MultiKind::Count,
        };
        self.slots.push(Slot::Multi { kind, split: ix });
        self.remote = true;
    }

    /// Forwards the queued operations (one message per owner), waits for the answers, and
    /// sends every reply in request order (after anything already queued on `conn`). Leaves
    /// the batch empty for reuse.
    ///
    /// # Errors
    /// [`BatchError`] when a write fails or another shard has stopped.
    pub async fn run(
        &mut self,
        shard: &KvShard,
        reg: &Registration,
        conn: &mut Connection,
    ) -> Result<(), BatchError> {
        let result = if self.remote {
            self.run_remote(shard, reg, conn).await
        } else if !self.local.is_empty() {
            conn.send(&self.local)
                .await
                .map(drop)
                .map_err(BatchError::from)
        } else {
            Ok(())
        };
        self.reset();
        result
    }

    async fn run_remote(
        &mut self,
        shard: &KvShard,
        reg: &Registration,
        conn: &mut Connection,
    ) -> Result<(), BatchError> {
        let port = shard.forwards.as_ref().ok_or(BatchError::MeshClosed)?;
        for s in 0..self.shards {
            if self.ops[s].is_empty() {
                continue;
            }
            let ops = std::mem::take(&mut self.ops[s]);
            reg.mailbox().expect();
            let msg = Forward {
                token: reg.token(),
                ops,
            };
            if port.send(s, msg).await.is_err() {
                return Err(BatchError::MeshClosed);
            }
        }
        reg.mailbox().wait().await;
        self.answers.clear();
        for s in 0..self.shards {
            let replies = if s == self.me {
                std::mem::take(&mut self.own)
            } else {
                reg.mailbox().take(s)
            };
            self.answers.push(replies.into_iter());
        }
        let Batch {
            slots,
            local,
            splits,
            out,
            answers,
            values,
            ..
        } = self;
        out.clear();
        for slot in slots.drain(..) {
            match slot {
                Slot::Local(r) => out.extend_from_slice(&local[r]),
                Slot::Key(owner) => match answers[owner].next() {
                    Some(reply) => reply.write_reply(out),
                    None => internal_error(out, "missing reply"),
                },
                Slot::Multi { kind, split } => gather(kind, &splits[split], answers, values, out),
                Slot::All(a) => combine(a, answers, out),
            }
            if out.len() >= WRITE_PIECE {
                conn.send(out).await?;
                out.clear();
            }
        }
        if !out.is_empty() {
            conn.send(out).await?;
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.slots.clear();
        self.remote = false;
        self.requests = 0;
        self.local.clear();
        self.own.clear();
        for ops in &mut self.ops {
            ops.clear();
        }
        for split in &mut self.splits[..self.splits_used] {
            if split.len() > KEEP_SPLIT_KEYS {
                *split = KeySplit::new(self.shards);
            }
        }
        self.splits_used = 0;
        self.answers.clear();
        self.values.clear();
        for buf in [&mut self.local, &mut self.out] {
            if buf.capacity() > KEEP_CAPACITY {
                buf.clear();
                buf.shrink_to(MAX_LOCAL);
            }
        }
    }
}

/// Writes a fanned-out multi-key reply from its owners' next replies. Every answer is checked
/// against the split before anything is written, so a mismatch (a bug, never peer input)
/// becomes one error reply instead of a malformed one.
fn gather(
    kind: MultiKind,
    split: &KeySplit,
    answers: &mut [std::vec::IntoIter<ShardReply>],
    values: &mut Vec<std::vec::IntoIter<Option<Vec<u8>>>>,
    out: &mut Vec<u8>,
) {
    let mut total: i64 = 0;
    let mut ok = true;
    values.clear();
    for (s, answer) in answers.iter_mut().enumerate() {
        let want = split.group(s).len();
        if want == 0 {
            values.push(Vec::new().into_iter());
            continue;
        }
        match (kind, answer.next()) {
            (MultiKind::MGet, Some(ShardReply::Values(vs))) if vs.len() == want => {
                values.push(vs.into_iter())
            }
            (MultiKind::MSet, Some(ShardReply::Ok)) => {}
            (MultiKind::Count, Some(ShardReply::Integer(n))) => total = total.saturating_add(n),
            _ => ok = false,
        }
    }
    if !ok {
        return internal_error(out, "shard replies do not match the split");
    }
    match kind {
        MultiKind::MGet => {
            resp::write_array_header(out, split.len());
            // The counts were checked above, so gathering cannot fail part-way.
            let _ = split.gather(values, |_, v| resp::write_optional_bulk(out, v.as_deref()));
        }
        MultiKind::MSet => resp::write_simple(out, b"OK"),
        MultiKind::Count => resp::write_integer(out, total),
    }
}

/// Writes DBSIZE (the sum) or FLUSHALL (`+OK`) from every shard's next reply.
fn combine(a: AllShards, answers: &mut [std::vec::IntoIter<ShardReply>], out: &mut Vec<u8>) {
    let mut total: i64 = 0;
    let mut ok = true;
    for answer in answers.iter_mut() {
        match (a, answer.next()) {
            (AllShards::DbSize, Some(ShardReply::Integer(n))) => total = total.saturating_add(n),
            (AllShards::FlushAll, Some(ShardReply::Ok)) => {}
            _ => ok = false,
        }
    }
    match (ok, a) {
        (false, _) => internal_error(out, "shard replies do not match the command"),
        (true, AllShards::DbSize) => resp::write_integer(out, total),
        (true, AllShards::FlushAll) => resp::write_simple(out, b"OK"),
    }
}

fn internal_error(out: &mut Vec<u8>, what: &str) {
    log::error!("kv: {what}");
    out.extend_from_slice(b"-ERR internal error: ");
    out.extend_from_slice(what.as_bytes());
    out.extend_from_slice(b"\r\n");
}
