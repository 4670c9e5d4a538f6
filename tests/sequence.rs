//! Sequence stamps: strictly increasing per connection, unique per shard; connections land on
//! every shard.

mod util;

use shardnet::{ConnError, Connection, Server, ShardContext};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::time::Duration;

/// Replies to every chunk with 24 bytes: its sequence stamp, shard id, length and conn number.
async fn stamp_reporter(mut conn: Connection, _shard: ShardContext<()>) -> Result<(), ConnError> {
    while let Some(chunk) = conn.recv().await? {
        let mut rec = [0u8; 24];
        rec[..8].copy_from_slice(&chunk.seq().to_le_bytes());
        rec[8..12].copy_from_slice(&(chunk.shard_id() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(chunk.len() as u32).to_le_bytes());
        rec[16..24].copy_from_slice(&chunk.conn_id().local.to_le_bytes());
        assert_eq!(chunk.conn_id(), conn.id());
        drop(chunk);
        conn.send(&rec).await?;
    }
    Ok(())
}

#[test]
fn stamps_increase_per_connection_and_connections_reach_every_shard() {
    let server = Server::start(util::config(), stamp_reporter).expect("server starts");
    let shards = server.shard_count();
    let addr = server.local_addr();
    const CONNS: usize = 64;
    const BYTES: usize = 200_000;
    let workers: Vec<_> = (0..CONNS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = util::connect(addr);
                let mut reader = s.try_clone().unwrap();
                let writer = std::thread::spawn(move || {
                    let mut sent = 0;
                    let mut n = 1 + i;
                    while sent < BYTES {
                        let len = (n * 7919 % 9000 + 1).min(BYTES - sent);
                        s.write_all(&vec![i as u8; len]).unwrap();
                        sent += len;
                        n += 1;
                        if n % 5 == 0 {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                    s.shutdown(std::net::Shutdown::Write).unwrap();
                });
                let mut recs = Vec::new();
                let mut buf = Vec::new();
                reader.read_to_end(&mut buf).unwrap();
                writer.join().unwrap();
                assert_eq!(buf.len() % 24, 0);
                for r in buf.chunks_exact(24) {
                    let seq = u64::from_le_bytes(r[..8].try_into().unwrap());
                    let shard = u32::from_le_bytes(r[8..12].try_into().unwrap());
                    let len = u32::from_le_bytes(r[12..16].try_into().unwrap());
                    let conn = u64::from_le_bytes(r[16..24].try_into().unwrap());
                    recs.push((seq, shard, len, conn));
                }
                recs
            })
        })
        .collect();
    let mut per_shard_conns: HashMap<u32, usize> = HashMap::new();
    let mut seen: HashSet<(u32, u64)> = HashSet::new();
    for w in workers {
        let recs = w.join().expect("client thread");
        assert!(!recs.is_empty());
        let shard = recs[0].1;
        let conn = recs[0].3;
        let total: u64 = recs.iter().map(|r| r.2 as u64).sum();
        assert_eq!(total, BYTES as u64, "every byte was received exactly once");
        for pair in recs.windows(2) {
            assert!(
                pair[1].0 > pair[0].0,
                "stamps strictly increase: {:?}",
                pair
            );
        }
        for r in &recs {
            assert_eq!((r.1, r.3), (shard, conn), "one connection, one shard");
            assert!(
                seen.insert((r.1, r.0)),
                "stamp {} reused on shard {}",
                r.0,
                r.1
            );
        }
        *per_shard_conns.entry(shard).or_default() += 1;
    }
    eprintln!("connections per shard: {per_shard_conns:?}");
    assert_eq!(
        per_shard_conns.len(),
        shards,
        "the kernel spread {CONNS} connections over every shard"
    );
    server.shutdown();
    let stats = server.join().unwrap();
    for s in &stats.shards {
        assert_eq!(
            s.counters.connections_accepted as usize,
            per_shard_conns[&(s.shard as u32)]
        );
    }
}
