//! Cross-shard forwarding: the messages, the tasks that serve them, and where a connection
//! waits for its answers.
//!
//! Two meshes, so that forwarding can never deadlock: a connection sends a [`Forward`] (one
//! per owner shard per batch, holding every operation of that batch for that shard, in request
//! order) on the *forward* mesh; the owner's [`serve_forwards`] task applies them to its store
//! and sends one [`Answer`] back on the *answer* mesh. The tasks that read the answer mesh
//! ([`route_answers`]) only hand answers to the waiting connection and never send, so an
//! answer channel always drains, and a forward task blocked on a full answer channel always
//! gets going again.
//!
//! ```text
//!   shard A: conn ──Forward{token, ops}──▶ shard B: serve_forwards ─ apply each op to B's store
//!   shard A: route_answers ◀──Answer{token, replies}── shard B
//!            └▶ mailbox of connection `token` (one answer slot per shard) ─▶ wakes the conn
//! ```
//!
//! A connection registers one [`Mailbox`] for its lifetime under a token unique on its shard;
//! it has at most one forward outstanding per shard (a batch waits for all its answers before
//! the next batch starts). An answer for a connection that is gone finds no mailbox and is
//! dropped.

use crate::shard::KvShard;
use shardnet::mesh::MeshReceiver;
use shardnet::protocol::exec::{apply, ShardOp, ShardReply};
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Instant;

/// A batch's operations for one owner shard, in request order.
#[derive(Debug)]
pub struct Forward {
    /// The sending connection's mailbox token.
    pub token: u64,
    /// The operations, applied in this order.
    pub ops: Vec<ShardOp>,
}

/// The owner's replies to a [`Forward`], one per operation, in the same order.
#[derive(Debug)]
pub struct Answer {
    /// The token of the forward answered.
    pub token: u64,
    /// The replies.
    pub replies: Vec<ShardReply>,
}

/// Where one connection's answers arrive: one slot per shard, and the count still expected.
#[derive(Debug)]
pub struct Mailbox {
    answers: RefCell<Vec<Option<Vec<ShardReply>>>>,
    pending: Cell<usize>,
    waker: RefCell<Option<Waker>>,
}

impl Mailbox {
    fn new(shards: usize) -> Self {
        Mailbox {
            answers: RefCell::new(vec![None; shards]),
            pending: Cell::new(0),
            waker: RefCell::new(None),
        }
    }

    /// Notes that one more answer is due (call before sending its forward).
    pub fn expect(&self) {
        self.pending.set(self.pending.get() + 1);
    }

    fn deliver(&self, from: usize, replies: Vec<ShardReply>) {
        if self.pending.get() == 0 {
            log::debug!("kv: dropping an answer from shard {from} that nobody waits for");
            return;
        }
        if let Some(slot) = self.answers.borrow_mut().get_mut(from) {
            *slot = Some(replies);
        }
        self.pending.set(self.pending.get() - 1);
        if self.pending.get() == 0 {
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// Waits until every expected answer has arrived.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.pending.get() == 0 {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Takes shard `shard`'s answer (empty if it sent none).
    pub fn take(&self, shard: usize) -> Vec<ShardReply> {
        self.answers
            .borrow_mut()
            .get_mut(shard)
            .and_then(Option::take)
            .unwrap_or_default()
    }
}

/// A connection's registered mailbox; unregisters when dropped, however the connection ends.
#[derive(Debug)]
pub struct Registration {
    shard: Rc<KvShard>,
    token: u64,
    mailbox: Rc<Mailbox>,
}

impl Registration {
    /// Registers a new mailbox on `shard`.
    pub fn new(shard: &Rc<KvShard>) -> Self {
        let token = shard.next_token.get();
        shard.next_token.set(token + 1);
        let mailbox = Rc::new(Mailbox::new(shard.shards));
        shard.mailboxes.borrow_mut().insert(token, mailbox.clone());
        Registration {
            shard: shard.clone(),
            token,
            mailbox,
        }
    }

    /// The token answers are addressed to.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The mailbox.
    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shard.mailboxes.borrow_mut().remove(&self.token);
    }
}

/// Serves the forwards one peer shard sends: applies each batch to this shard's store, in
/// order, and answers on the answer mesh. Ends when the peer's end closes.
pub async fn serve_forwards(shard: Rc<KvShard>, rx: MeshReceiver<Forward>) {
    let from = rx.from();
    while let Some(Forward { token, ops }) = rx.recv().await {
        let now = Instant::now();
        let replies: Vec<ShardReply> = {
            let mut store = shard.store.borrow_mut();
            ops.iter().map(|op| apply(&mut store, op, now)).collect()
        };
        let Some(port) = shard.answers.as_ref() else {
            break;
        };
        if port.send(from, Answer { token, replies }).await.is_err() {
            break;
        }
        shardnet::task::yield_if_needed().await;
    }
}

/// Hands the answers one peer shard sends to the connections waiting for them. Never sends,
/// so the answer channel always drains. Ends when the peer's end closes.
pub async fn route_answers(shard: Rc<KvShard>, rx: MeshReceiver<Answer>) {
    let from = rx.from();
    while let Some(Answer { token, replies }) = rx.recv().await {
        let mailbox = shard.mailboxes.borrow().get(&token).cloned();
        match mailbox {
            Some(m) => m.deliver(from, replies),
            None => log::debug!("kv: answer from shard {from} for a closed connection"),
        }
    }
}
