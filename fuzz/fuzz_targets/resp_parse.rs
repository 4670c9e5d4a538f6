//! Arbitrary bytes through the RESP parser, the command parser and both
//! execution paths.
//!
//! Checks, for every input:
//! - nothing panics, and every `consumed` is within the buffer;
//! - parsing the input as one buffer and as a stream cut at input-chosen points
//!   gives the same requests and the same final error;
//! - executing the parsed commands on one store and on three sharded stores
//!   (split, forwarded as owned ops, gathered) gives byte-identical replies.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use shardnet::protocol::command::Command;
use shardnet::protocol::exec::{apply, execute, gather_all, gather_multi, ShardOp, ShardReply};
use shardnet::protocol::kv_store::Store;
use shardnet::protocol::partition::{shard_for_key, KeySplit};
use shardnet::protocol::resp::{Limits, Parser, ProtocolError};

const LIMITS: Limits = Limits {
    max_bulk_len: 1024,
    max_array_len: 64,
    max_inline_len: 256,
};
const SHARDS: usize = 3;

type Parsed = (Vec<Vec<Vec<u8>>>, Option<ProtocolError>);

/// Parses `buf` as it would arrive cut at `cuts` (ascending), consuming
/// complete requests from the front.
fn parse_stream(buf: &[u8], cuts: &[usize]) -> Parsed {
    let mut parser = Parser::new(LIMITS);
    let mut requests = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&buf.len())) {
        loop {
            let window = &buf[start..end];
            match parser.parse(window) {
                Ok(Some((req, n))) => {
                    assert!(
                        n > 0 && n <= window.len(),
                        "consumed {n} of {}",
                        window.len()
                    );
                    requests.push(req.args().iter().map(<[u8]>::to_vec).collect());
                    start += n;
                }
                Ok(None) => break,
                Err(e) => return (requests, Some(e)),
            }
        }
    }
    (requests, None)
}

fn run(requests: &[Vec<Vec<u8>>]) {
    let now = Instant::now();
    let mut single = Store::new();
    let mut shards: Vec<Store> = (0..SHARDS).map(|_| Store::new()).collect();
    let mut split = KeySplit::new(SHARDS);
    let (mut local_out, mut sharded_out) = (Vec::new(), Vec::new());
    let mut parser = Parser::new(LIMITS);
    let mut wire = Vec::new();
    for args in requests {
        // Re-encode the request so the command parser sees a real Request.
        wire.clear();
        shardnet::protocol::resp::write_array_header(&mut wire, args.len());
        for a in args {
            shardnet::protocol::resp::write_bulk(&mut wire, a);
        }
        let Ok(Some((req, _))) = parser.parse(&wire) else {
            panic!("a parsed request must re-parse");
        };
        let cmd = match Command::parse(&req) {
            Ok(cmd) => cmd,
            Err(e) => {
                e.write_reply(&mut local_out);
                e.write_reply(&mut sharded_out);
                continue;
            }
        };
        execute(&mut single, &cmd, now, 1, &mut local_out);
        match cmd {
            Command::Empty => {}
            Command::Local(l) => {
                l.write_reply(&mut sharded_out, 1);
            }
            Command::Key(k) => {
                let owner = shard_for_key(k.key(), SHARDS);
                apply(&mut shards[owner], &ShardOp::from_key(&k), now)
                    .write_reply(&mut sharded_out);
            }
            Command::Multi(m) => {
                split.split(m.keys());
                let mut replies: Vec<Option<ShardReply>> = vec![None; SHARDS];
                for (s, reply) in replies.iter_mut().enumerate() {
                    if !split.group(s).is_empty() {
                        *reply = Some(apply(
                            &mut shards[s],
                            &ShardOp::for_shard(&m, &split, s),
                            now,
                        ));
                    }
                }
                gather_multi(&m, &split, &mut replies, &mut sharded_out).expect("gather");
            }
            Command::AllShards(a) => {
                let op = ShardOp::from_all(a);
                let replies: Vec<ShardReply> =
                    shards.iter_mut().map(|s| apply(s, &op, now)).collect();
                gather_all(a, &replies, &mut sharded_out).expect("gather");
            }
        }
    }
    assert_eq!(
        local_out, sharded_out,
        "sharded replies differ from local ones"
    );
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose where the stream is cut.
    let (cut_seed, buf) = match data {
        [a, b, rest @ ..] => (usize::from(*a) << 8 | usize::from(*b), rest),
        _ => (0, data),
    };
    let whole = parse_stream(buf, &[]);
    let mut cuts = Vec::new();
    if !buf.is_empty() {
        let step = cut_seed % 17 + 1;
        let mut at = cut_seed % buf.len();
        while at < buf.len() {
            cuts.push(at);
            at += step;
        }
    }
    let streamed = parse_stream(buf, &cuts);
    assert_eq!(whole, streamed, "stream cut at {cuts:?}");
    if let Some(e) = whole.1 {
        let mut out = Vec::new();
        e.write_reply(&mut out);
        assert!(out.ends_with(b"\r\n") && !out[..out.len() - 2].contains(&b'\n'));
    }
    run(&whole.0);
});
