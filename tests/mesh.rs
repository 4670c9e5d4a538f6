//! Cross-shard messages reach a shard whose driver waits in its own io_uring ring.
//!
//! With the io_uring backend an idle shard waits in its ring for up to `driver_block` before
//! parking through glommio, and glommio's own cross-shard wake-up does not reach it there. A
//! mesh send therefore also posts a completion into the receiver's ring (`MSG_RING`). With
//! `driver_block` at its maximum (1 s), each round trip below would otherwise sit in the
//! receiver's ring wait for up to a second; the test allows far less than that per trip on
//! average, while leaving a noisy machine orders of magnitude of slack over what a poked
//! shard needs (well under a millisecond).

mod util;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use shardnet::mesh::{Mesh, MeshPort, MeshReceiver};
use shardnet::{Cores, ServerConfig, ShardContext};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

/// Round trips per connection.
const TRIPS: usize = 40;

/// One shard's state: its end of the request mesh and of the reply mesh, and the replies it
/// got back (one FIFO: each connection has one request out at a time and there is one
/// connection per test).
struct Relay {
    requests: MeshPort<u64>,
    replies: MeshPort<u64>,
    inbox: RefCell<VecDeque<u64>>,
    waiter: RefCell<Option<Waker>>,
}

async fn serve_requests(relay: Rc<Relay>, rx: MeshReceiver<u64>) {
    while let Some(v) = rx.recv().await {
        if relay.replies.send(rx.from(), v + 1).await.is_err() {
            return;
        }
    }
}

async fn collect_replies(relay: Rc<Relay>, rx: MeshReceiver<u64>) {
    while let Some(v) = rx.recv().await {
        relay.inbox.borrow_mut().push_back(v);
        if let Some(w) = relay.waiter.borrow_mut().take() {
            w.wake();
        }
    }
}

async fn next_reply(relay: &Relay) -> u64 {
    std::future::poll_fn(|cx| match relay.inbox.borrow_mut().pop_front() {
        Some(v) => std::task::Poll::Ready(v),
        None => {
            *relay.waiter.borrow_mut() = Some(cx.waker().clone());
            std::task::Poll::Pending
        }
    })
    .await
}

/// Each 8-byte request is sent to the other shard, which answers `v + 1` over the second
/// mesh; the connection's shard writes the answer back.
async fn relay_handler(
    mut conn: shardnet::Connection,
    shard: ShardContext<Rc<Relay>>,
) -> std::io::Result<()> {
    let relay = shard.state().clone();
    let other = (shard.id() + 1) % 2;
    let mut buf = [0u8; 8];
    loop {
        match conn.read_exact(&mut buf).await {
            Ok(()) => {}
            Err(_) => return Ok(()),
        }
        let v = u64::from_le_bytes(buf);
        if relay.requests.send(other, v).await.is_err() {
            return Ok(());
        }
        let answer = next_reply(&relay).await;
        conn.write_all(&answer.to_le_bytes()).await?;
        conn.flush().await?;
    }
}

#[test]
fn cross_shard_round_trips_do_not_wait_for_the_ring_timeout() {
    if util::shards() < 2 {
        eprintln!("one core: no other shard to message");
        return;
    }
    let config = ServerConfig {
        cores: Cores::Count(2),
        driver_block: Duration::from_secs(1),
        ..util::config()
    };
    let requests: Mesh<u64> = Mesh::new(2, 16);
    let replies: Mesh<u64> = Mesh::new(2, 16);
    let server = shardnet::Server::start_with_state(
        config,
        move |info| {
            let (requests, replies) = (requests.clone(), replies.clone());
            async move {
                let mut requests = requests.join(info.id).await.expect("join requests");
                let mut replies = replies.join(info.id).await.expect("join replies");
                let request_rx = requests.take_receivers();
                let reply_rx = replies.take_receivers();
                let relay = Rc::new(Relay {
                    requests,
                    replies,
                    inbox: RefCell::new(VecDeque::new()),
                    waiter: RefCell::new(None),
                });
                for rx in request_rx {
                    shardnet::task::spawn(serve_requests(relay.clone(), rx));
                }
                for rx in reply_rx {
                    shardnet::task::spawn(collect_replies(relay.clone(), rx));
                }
                relay
            }
        },
        relay_handler,
    )
    .expect("server starts");

    let mut s = util::connect(server.local_addr());
    // Let both shards go idle, so that their drivers wait in their rings.
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    for i in 0..TRIPS as u64 {
        s.write_all(&(i * 10).to_le_bytes()).unwrap();
        let mut got = [0u8; 8];
        s.read_exact(&mut got).unwrap();
        assert_eq!(u64::from_le_bytes(got), i * 10 + 1, "trip {i}");
        // A pause between trips lets the other shard go quiet and wait in its ring again.
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = start.elapsed();
    eprintln!("{TRIPS} cross-shard round trips in {took:?}");
    // Unwoken, every trip would wait for the other shard's ring tick (up to 1 s): about
    // TRIPS × 0.5 s = 20 s. Woken, they take TRIPS × (5 ms pause + well under 1 ms).
    assert!(
        took < Duration::from_secs(8),
        "{TRIPS} round trips took {took:?}: the receiving shard was not woken in its ring"
    );
    drop(s);
    server.shutdown();
    server.join().expect("clean stop");
}
