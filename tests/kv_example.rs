//! The kv example as a process, driven by the real Redis clients: redis-cli writes and reads
//! back 10,000 keys spread over every shard (SET, GET, INCR, DEL, MGET, MSET), redis-benchmark
//! runs its pipelined suite without errors and leaves a consistent keyspace, and bad input gets
//! error replies while other clients keep being served. A raw socket checks reply order of a
//! pipeline that spans shards and a request split across receives.

mod clients;
mod util;

use clients::{connect, read_reply, read_until_closed, resp_command, run, run_ok, Reply};
use shardnet::protocol::partition::shard_for_key;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

/// Bound on any one client run; far above what a noisy 2-core machine needs.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

fn start(extra: &[&str]) -> util::ExampleServer {
    clients::require("redis-cli", "redis-tools");
    clients::require("redis-benchmark", "redis-tools");
    let shards = util::shards().to_string();
    let mut args = vec!["--shards", &shards, "--slabs", "512"];
    args.extend_from_slice(extra);
    util::ExampleServer::start("kv", &args)
}

fn redis_cli(port: u16) -> Command {
    let mut c = Command::new("redis-cli");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    c
}

/// Runs redis-cli with one command per line on stdin; returns its output lines.
fn cli_lines(port: u16, commands: &str) -> Vec<String> {
    let out = run_ok(&mut redis_cli(port), commands.as_bytes(), CLIENT_TIMEOUT);
    out.lines().map(str::to_string).collect()
}

/// Sends RESP commands with `redis-cli --pipe` and checks every one got a non-error reply.
fn pipe(port: u16, input: &[u8], commands: usize) {
    let out = run_ok(redis_cli(port).arg("--pipe"), input, CLIENT_TIMEOUT);
    assert!(
        out.contains(&format!("errors: 0, replies: {commands}")),
        "redis-cli --pipe: {out}"
    );
}

fn value_of(i: usize) -> String {
    // Distinct per key, some long, none with spaces (redis-cli prints values raw).
    format!("v{i}-{}", "x".repeat(i % 97))
}

fn stop(server: util::ExampleServer) {
    let (status, stdout, stderr) = server.stop();
    assert!(
        status.success(),
        "kv exits 0 after SIGTERM: {status:?}\n{stderr}"
    );
    assert!(
        stdout.contains("handler panics=0"),
        "no handler panicked:\n{stdout}"
    );
}

#[test]
fn redis_cli_writes_and_reads_back_10000_keys_over_every_shard() {
    let server = start(&[]);
    let port = server.addr.port();
    let n = 10_000;
    let keys: Vec<String> = (0..n).map(|i| format!("key:{i}")).collect();
    let shards = util::shards();
    for s in 0..shards {
        let owned = keys
            .iter()
            .filter(|k| shard_for_key(k.as_bytes(), shards) == s)
            .count();
        assert!(
            owned > n / (4 * shards),
            "shard {s} owns only {owned} of the keys"
        );
    }

    // SET every key (pipelined by redis-cli --pipe), then GET every key back.
    let mut input = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        input.extend(resp_command(&[
            b"SET",
            k.as_bytes(),
            value_of(i).as_bytes(),
        ]));
    }
    pipe(port, &input, n);
    let gets: String = keys.iter().map(|k| format!("GET {k}\n")).collect();
    let values = cli_lines(port, &gets);
    assert_eq!(values.len(), n);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(*v, value_of(i), "GET {}", keys[i]);
    }
    assert_eq!(cli_lines(port, "DBSIZE\n"), [n.to_string()]);

    // INCR: counter i is incremented i % 5 + 1 times, interleaved across counters.
    let counters = 1000;
    let mut input = Vec::new();
    let mut incrs = 0;
    for round in 0..5 {
        for i in 0..counters {
            if round <= i % 5 {
                input.extend(resp_command(&[b"INCR", format!("ctr:{i}").as_bytes()]));
                incrs += 1;
            }
        }
    }
    pipe(port, &input, incrs);
    let gets: String = (0..counters).map(|i| format!("GET ctr:{i}\n")).collect();
    for (i, v) in cli_lines(port, &gets).iter().enumerate() {
        assert_eq!(*v, (i % 5 + 1).to_string(), "ctr:{i}");
    }

    // MSET 100 keys at a time, MGET them back 100 at a time in reverse order: each MGET spans
    // every shard and must answer in argument order.
    let mut mset = String::new();
    let mut mget = String::new();
    for batch in 0..20 {
        let ks: Vec<String> = (0..100).map(|j| format!("m:{batch}:{j}")).collect();
        mset.push_str("MSET");
        for k in &ks {
            mset.push_str(&format!(" {k} val-{k}"));
        }
        mset.push('\n');
        let owners: std::collections::HashSet<usize> = ks
            .iter()
            .map(|k| shard_for_key(k.as_bytes(), shards))
            .collect();
        assert_eq!(owners.len(), shards, "the MGET spans every shard");
        mget.push_str("MGET");
        for k in ks.iter().rev() {
            mget.push_str(&format!(" {k}"));
        }
        mget.push('\n');
    }
    assert!(cli_lines(port, &mset).iter().all(|l| l == "OK"));
    let got = cli_lines(port, &mget);
    assert_eq!(got.len(), 2000);
    let mut line = got.iter();
    for batch in 0..20 {
        for j in (0..100).rev() {
            assert_eq!(line.next().unwrap(), &format!("val-m:{batch}:{j}"));
        }
    }
    // MGET mixing present and missing keys over shards keeps positions.
    let got = cli_lines(port, "MGET key:1 nokey:1 key:2 nokey:2 key:3\n");
    assert_eq!(
        got,
        [
            value_of(1),
            String::new(),
            value_of(2),
            String::new(),
            value_of(3)
        ]
    );

    // DEL the even keys 10 at a time (each DEL spans shards); the counts add up, the odd
    // keys are untouched, and DBSIZE agrees.
    let dels: String = (0..n / 20)
        .map(|b| {
            let ks: Vec<String> = (0..10)
                .map(|j| format!("key:{}", (b * 10 + j) * 2))
                .collect();
            format!("DEL {} nokey\n", ks.join(" "))
        })
        .collect();
    let counts = cli_lines(port, &dels);
    assert_eq!(counts.len(), n / 20);
    assert!(
        counts.iter().all(|c| c == "10"),
        "every DEL removed 10 keys"
    );
    let exists: String = (0..n).map(|i| format!("EXISTS key:{i}\n")).collect();
    for (i, e) in cli_lines(port, &exists).iter().enumerate() {
        assert_eq!(*e, if i % 2 == 0 { "0" } else { "1" }, "EXISTS key:{i}");
    }
    assert_eq!(
        cli_lines(port, "DBSIZE\n"),
        [(n / 2 + counters + 2000).to_string()]
    );

    // A value larger than a pool slab (16 KiB) round-trips (redis-cli -x reads it from stdin).
    let big: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let out = run_ok(
        redis_cli(port).args(["-x", "SET", "big"]),
        big.as_bytes(),
        CLIENT_TIMEOUT,
    );
    assert_eq!(out.trim(), "OK");
    let out = run_ok(redis_cli(port).args(["GET", "big"]), b"", CLIENT_TIMEOUT);
    assert_eq!(out.trim_end_matches('\n'), big);

    assert_eq!(cli_lines(port, "FLUSHALL\nDBSIZE\n"), ["OK", "0"]);
    stop(server);
}

#[test]
fn redis_benchmark_runs_without_errors_and_leaves_a_consistent_keyspace() {
    let server = start(&[]);
    let port = server.addr.port();
    let keys = 1000;
    let requests = 100_000;
    let out = run(
        Command::new("redis-benchmark").args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "ping,set,get,incr,mset",
            "-n",
            &requests.to_string(),
            "-c",
            "50",
            "-P",
            "16",
            "-r",
            &keys.to_string(),
            "-q",
        ]),
        b"",
        CLIENT_TIMEOUT,
    );
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "redis-benchmark failed:\n{text}\n{errors}"
    );
    for test in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "MSET (10 keys)",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second")),
            "redis-benchmark reported {test}:\n{text}"
        );
    }
    assert!(
        !text.contains("ERR") && !errors.contains("ERR") && !errors.contains("rror"),
        "no error replies:\n{text}\n{errors}"
    );

    // Every key the benchmark wrote holds its 3-byte payload (one payload for all), and the
    // counters add up to exactly one per INCR request.
    let gets: String = (0..keys).map(|i| format!("GET key:{i:012}\n")).collect();
    let values = cli_lines(port, &gets);
    assert_eq!(values.len(), keys);
    let present: Vec<&String> = values.iter().filter(|v| !v.is_empty()).collect();
    assert!(present.len() > keys * 9 / 10, "most keys were written");
    assert!(
        present.iter().all(|v| v.len() == 3 && *v == present[0]),
        "one payload: {present:?}"
    );
    let gets: String = (0..keys)
        .map(|i| format!("GET counter:{i:012}\n"))
        .collect();
    let counters = cli_lines(port, &gets);
    let mut sum = 0u64;
    let mut nonzero = 0;
    for c in &counters {
        if !c.is_empty() {
            sum += c.parse::<u64>().expect("a counter is an integer");
            nonzero += 1;
        }
    }
    assert_eq!(sum, requests as u64, "one increment per INCR request");
    assert_eq!(
        cli_lines(port, "DBSIZE\n"),
        [(present.len() + nonzero).to_string()],
        "DBSIZE counts exactly the keys the benchmark wrote"
    );
    stop(server);
}

#[test]
fn bad_input_gets_error_replies_and_others_keep_being_served() {
    let server = start(&["--max-bulk", "1024", "--max-request", "65536"]);
    let addr = server.addr;
    let port = addr.port();
    // A client that stays connected through everything below.
    let (mut bystander, mut bystander_r) = connect(addr);
    let ping = |s: &mut std::net::TcpStream, r: &mut _| {
        s.write_all(b"PING\r\n").unwrap();
        assert_eq!(read_reply(r), Reply::Simple("PONG".into()));
    };
    ping(&mut bystander, &mut bystander_r);

    // Well-framed but wrong requests: an error reply each, and the connection goes on.
    let (mut s, mut r) = connect(addr);
    s.write_all(
        b"NOSUCH a b\r\n*1\r\n$3\r\nGET\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n\x01\x02\xff\r\n",
    )
    .unwrap();
    s.write_all(b"SET k notanumber\r\nINCR k\r\nSET k v EX 0\r\n")
        .unwrap();
    let error = |prefix: &'static str| {
        move |reply: Reply| match reply {
            Reply::Error(e) => assert!(e.starts_with(prefix), "{e:?} starts with {prefix:?}"),
            other => panic!("expected an error starting {prefix:?}, got {other:?}"),
        }
    };
    error("ERR unknown command 'NOSUCH'")(read_reply(&mut r));
    error("ERR wrong number of arguments for 'get'")(read_reply(&mut r));
    assert_eq!(read_reply(&mut r), Reply::Integer(1));
    error("ERR unknown command")(read_reply(&mut r));
    assert_eq!(read_reply(&mut r), Reply::Simple("OK".into()));
    error("ERR value is not an integer")(read_reply(&mut r));
    error("ERR invalid expire time")(read_reply(&mut r));
    ping(&mut s, &mut r);

    // Garbage framing: the replies before it, an error, then the server closes.
    for garbage in [
        &b"*1\r\n+PING\r\n"[..],
        b"*abc\r\n",
        b"*2\r\n$3\r\nGET\r\n$-5\r\n",
        b"*1\r\n$4\r\nPINGxx\r\n",
        b"*99999999999999999999999\r\n",
    ] {
        let (mut s, mut r) = connect(addr);
        s.write_all(b"PING\r\n").unwrap();
        s.write_all(garbage).unwrap();
        assert_eq!(read_reply(&mut r), Reply::Simple("PONG".into()));
        match read_reply(&mut r) {
            Reply::Error(e) => assert!(e.starts_with("ERR Protocol error"), "{e}"),
            other => panic!("garbage {garbage:?}: expected a protocol error, got {other:?}"),
        }
        let (rest, _) = read_until_closed(&mut r);
        assert!(rest.is_empty(), "nothing after the error: {rest:?}");
    }

    // Oversize bulk (over --max-bulk 1024): from redis-cli, and declared on a raw socket.
    let out = run(
        redis_cli(port).args(["-x", "SET", "big"]),
        &[b'z'; 2000],
        CLIENT_TIMEOUT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Protocol error: invalid bulk length (2000 > 1024)"),
        "{text}"
    );
    let (mut s, mut r) = connect(addr);
    s.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\n")
        .unwrap();
    assert!(matches!(read_reply(&mut r), Reply::Error(e) if e.contains("invalid bulk length")));
    assert!(read_until_closed(&mut r).0.is_empty());

    // A request larger than a slab is reassembled (MSET of 50 x 1000-byte values, written in
    // small pieces); one over --max-request (100 KB) is refused and the connection closed.
    let (mut s, mut r) = connect(addr);
    let value = vec![b'q'; 1000];
    let mut args: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
    for i in 0..50 {
        args.push(format!("big:{i}").into_bytes());
        args.push(value.clone());
    }
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let request = resp_command(&refs);
    assert!(request.len() > 16 * 1024);
    for piece in request.chunks(3000) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(read_reply(&mut r), Reply::Simple("OK".into()));
    s.write_all(&resp_command(&[b"GET", b"big:49"])).unwrap();
    assert_eq!(read_reply(&mut r), Reply::Bulk(Some(value.clone())));
    for i in 50..100 {
        args.push(format!("big:{i}").into_bytes());
        args.push(value.clone());
    }
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    s.write_all(&resp_command(&refs)).unwrap();
    assert!(
        matches!(read_reply(&mut r), Reply::Error(e) if e.contains("request over 65536 bytes"))
    );
    assert!(read_until_closed(&mut r).0.is_empty());

    // QUIT: +OK, then the server closes.
    let (mut s, mut r) = connect(addr);
    s.write_all(b"QUIT\r\nPING\r\n").unwrap();
    assert_eq!(read_reply(&mut r), Reply::Simple("OK".into()));
    assert!(read_until_closed(&mut r).0.is_empty());

    // The bystander and new clients are still served.
    ping(&mut bystander, &mut bystander_r);
    assert_eq!(cli_lines(port, "SET after ok\nGET after\n"), ["OK", "ok"]);
    drop(bystander);
    stop(server);
}

#[test]
fn a_pipeline_spanning_shards_is_answered_in_request_order() {
    let server = start(&[]);
    let (mut s, mut r) = connect(server.addr);
    // SET, GET, INCR, MGET and DBSIZE interleaved over many keys (owned by every shard), in
    // one write: every reply must come back in request order.
    let mut pipeline = Vec::new();
    let mut expected = Vec::new();
    let n = 500;
    for i in 0..n {
        let (k, v) = (format!("p:{i}"), format!("{i}"));
        pipeline.extend(resp_command(&[b"SET", k.as_bytes(), v.as_bytes()]));
        expected.push(Reply::Simple("OK".into()));
        pipeline.extend(resp_command(&[b"INCR", k.as_bytes()]));
        expected.push(Reply::Integer(i + 1));
        pipeline.extend(resp_command(&[b"GET", k.as_bytes()]));
        expected.push(Reply::Bulk(Some((i + 1).to_string().into_bytes())));
        if i > 0 {
            let prev = format!("p:{}", i - 1);
            pipeline.extend(resp_command(&[
                b"MGET",
                k.as_bytes(),
                b"none",
                prev.as_bytes(),
            ]));
            expected.push(Reply::Array(vec![
                Reply::Bulk(Some((i + 1).to_string().into_bytes())),
                Reply::Bulk(None),
                Reply::Bulk(Some(i.to_string().into_bytes())),
            ]));
        }
        pipeline.extend(resp_command(&[b"DBSIZE"]));
        expected.push(Reply::Integer(i + 1));
    }
    // Written in uneven pieces, so requests are split across receives everywhere.
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            for piece in pipeline.chunks(7919) {
                s.write_all(piece).unwrap();
            }
        })
    };
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&read_reply(&mut r), want, "reply {i}");
    }
    writer.join().unwrap();
    // A request split in the middle of a bulk, with a pause: reassembled in the same slab.
    s.write_all(b"*3\r\n$3\r\nSET\r\n$5\r\nsp").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"lit\r\n$2\r\nok\r\n*2\r\n$3\r\nGET\r\n$5\r\nsplit\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut r), Reply::Simple("OK".into()));
    assert_eq!(read_reply(&mut r), Reply::Bulk(Some(b"ok".to_vec())));
    drop((s, r));
    stop(server);
}
