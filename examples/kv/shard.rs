//! One shard of the key-value server: its partition of the keyspace, its ends of the two
//! forwarding meshes, the mailboxes of its connections, and the background tasks it runs.
//!
//! Built once per shard, on that shard, by the server's state factory ([`KvShard::start`]):
//! it joins both meshes (waiting until every shard has), then spawns one task per peer shard
//! for each mesh (see [`crate::forward`]) and the periodic expiry sweep. Nothing in it is
//! shared with another thread: the store is a `RefCell` borrowed only between awaits.

use crate::forward::{route_answers, serve_forwards, Answer, Forward, Mailbox};
use shardnet::mesh::{Mesh, MeshPort};
use shardnet::protocol::kv_store::Store;
use shardnet::protocol::resp::Limits;
use shardnet::ShardInfo;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How often each shard removes expired keys that nobody touched.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// Most keys one sweep step removes before letting other tasks run.
const SWEEP_BUDGET: usize = 256;

/// Per-connection limits, the same on every shard.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// RESP framing limits (bulk, array, inline).
    pub limits: Limits,
    /// Most unparsed bytes one connection may hold for a request that outgrew a slab.
    pub max_request: usize,
}

/// One shard's state (see the module docs).
#[derive(Debug)]
pub struct KvShard {
    /// This shard's index.
    pub id: usize,
    /// How many shards own a partition.
    pub shards: usize,
    /// This shard's partition.
    pub store: RefCell<Store>,
    /// Sends forwards to the other shards (`None` with one shard).
    pub forwards: Option<MeshPort<Forward>>,
    /// Sends answers back (`None` with one shard).
    pub answers: Option<MeshPort<Answer>>,
    /// The mailboxes of this shard's connections, by token.
    pub mailboxes: RefCell<HashMap<u64, Rc<Mailbox>>>,
    /// The next mailbox token.
    pub next_token: Cell<u64>,
    /// Limits.
    pub settings: Settings,
}

impl KvShard {
    /// Builds shard `info.id`'s state: joins both meshes and spawns the peer and sweep tasks.
    ///
    /// # Panics
    /// If a mesh cannot be joined (it was built for a different number of shards): the shard
    /// then fails to start and the server reports it.
    pub async fn start(
        info: ShardInfo,
        forwards: Mesh<Forward>,
        answers: Mesh<Answer>,
        settings: Settings,
    ) -> Rc<KvShard> {
        let (mut forward_port, mut answer_port) = (None, None);
        if info.shards > 1 {
            let f = forwards.join(info.id).await;
            let a = answers.join(info.id).await;
            match (f, a) {
                (Ok(f), Ok(a)) => (forward_port, answer_port) = (Some(f), Some(a)),
                (Err(e), _) | (_, Err(e)) => panic!("kv shard {}: mesh join: {e}", info.id),
            }
        }
        let forward_rx = forward_port.as_mut().map(MeshPort::take_receivers);
        let answer_rx = answer_port.as_mut().map(MeshPort::take_receivers);
        let shard = Rc::new(KvShard {
            id: info.id,
            shards: info.shards,
            store: RefCell::new(Store::new()),
            forwards: forward_port,
            answers: answer_port,
            mailboxes: RefCell::new(HashMap::new()),
            next_token: Cell::new(0),
            settings,
        });
        for rx in forward_rx.into_iter().flatten() {
            shardnet::task::spawn(serve_forwards(shard.clone(), rx));
        }
        for rx in answer_rx.into_iter().flatten() {
            shardnet::task::spawn(route_answers(shard.clone(), rx));
        }
        shardnet::task::spawn(sweep_expired(shard.clone()));
        shard
    }
}

/// Removes expired keys that are never read again, a bounded number per step.
async fn sweep_expired(shard: Rc<KvShard>) {
    loop {
        shardnet::task::sleep(SWEEP_EVERY).await;
        loop {
            let removed = shard.store.borrow_mut().sweep(Instant::now(), SWEEP_BUDGET);
            if removed < SWEEP_BUDGET {
                break;
            }
            shardnet::task::yield_if_needed().await;
        }
    }
}
