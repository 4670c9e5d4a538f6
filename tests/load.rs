//! Tests of the `shardnet-load` binary against small test servers on loopback.
//!
//! Each run is short (about 1 to 3 s), bounded by a kill deadline, and asserts on the
//! machine-readable outputs (`--json`, `--hgrm`, `--hlog`), so the tests hold on a loaded
//! 2-core machine.

mod load_support;
use load_support as util;

use std::time::Duration;

use shardnet::hgrm::Distribution;
use util::{
    churn_server, echo_server, http_server, quiet_closing_server, resp_server, run_load,
    run_trickle, silent_server, Churning, Echo, TempPath,
};

const LIMIT: Duration = Duration::from_secs(60);

fn json_f64(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut x = v;
    for p in path {
        x = &x[p];
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {v}"))
}

fn json_u64(v: &serde_json::Value, path: &[&str]) -> u64 {
    let mut x = v;
    for p in path {
        x = &x[p];
    }
    x.as_u64()
        .unwrap_or_else(|| panic!("no integer at {path:?} in {v}"))
}

#[test]
fn echo_run_verifies_payloads_and_exits_zero() {
    let server = echo_server(Echo::Correct);
    let json = TempPath::new("echo-ok.json");
    let addr = server.addr_arg();
    let out = run_load(
        &[
            "--addr",
            &addr,
            "--protocol",
            "echo",
            "-c",
            "4",
            "--pipeline",
            "4",
            "--size",
            "300",
            "-d",
            "1",
            "-w",
            "200ms",
            "--json",
            json.arg(),
        ],
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let j = json.json();
    let requests = json_u64(&j, &["requests"]);
    assert!(requests > 100, "{j}");
    assert_eq!(json_u64(&j, &["errors", "total"]), 0, "{j}");
    assert_eq!(j["mode"], "closed");
    // Every answered request was echoed in full: the server saw at least as many bytes.
    let seen = server
        .shared
        .bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        seen >= requests * 300,
        "{seen} bytes for {requests} requests"
    );
    assert!(out.stdout.contains("errors      0"), "{}", out.stdout);
    assert!(
        out.stderr.contains("req/s"),
        "no progress line: {}",
        out.stderr
    );
    assert!(out.stdout.contains("client cpu"), "{}", out.stdout);
}

#[test]
fn a_corrupted_byte_is_a_mismatch_and_exit_status_one() {
    let server = echo_server(Echo::CorruptAt(5_000));
    let json = TempPath::new("echo-corrupt.json");
    let addr = server.addr_arg();
    let out = run_load(
        &[
            "--addr",
            &addr,
            "-c",
            "2",
            "--size",
            "64",
            "-d",
            "1",
            "-w",
            "0",
            "--json",
            json.arg(),
        ],
        LIMIT,
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    let j = json.json();
    // exactly one byte was corrupted, on one connection, which is then closed
    assert_eq!(json_u64(&j, &["errors", "mismatch"]), 1, "{j}");
    assert_eq!(json_u64(&j, &["errors", "total"]), 1, "{j}");
    let detail = j["error_details"]["mismatch"].as_str().unwrap();
    // 5000 = 78 * 64 + 8: byte 8 of a reply
    assert!(detail.contains("echo reply byte 8 of 64"), "{detail}");
    assert!(out.stdout.contains("mismatch"), "{}", out.stdout);
    // the other connection went on
    assert!(json_u64(&j, &["requests"]) > 100, "{j}");
}

/// Latencies of at least 100 ms recorded in an `.hlog`, read back with the crate's reader.
fn slow_samples(hlog: &TempPath) -> (u64, u64) {
    let bytes = std::fs::read(&hlog.0).unwrap();
    let intervals = util::read_hlog(&bytes);
    assert!(!intervals.is_empty());
    let slow: u64 = intervals
        .iter()
        .map(|i| i.hist.count_between(100_000_000, u64::MAX))
        .sum();
    let all: u64 = intervals.iter().map(|i| i.hist.len()).sum();
    (slow, all)
}

#[test]
fn open_loop_shows_a_stall_that_closed_loop_hides() {
    let stall = Echo::StallOnce {
        after: Duration::from_millis(800),
        stall: Duration::from_millis(200),
    };
    let run = |name: &str, extra: &[&str]| {
        let server = echo_server(stall);
        let (hlog, json) = (
            TempPath::new(&format!("{name}.hlog")),
            TempPath::new(&format!("{name}.json")),
        );
        let addr = server.addr_arg();
        let mut args = vec![
            "--addr",
            &addr,
            "-c",
            "4",
            "-d",
            "2500ms",
            "-w",
            "0",
            "--hlog",
            hlog.arg(),
            "--json",
            json.arg(),
            "-q",
        ];
        args.extend_from_slice(extra);
        let out = run_load(&args, LIMIT);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(
            server.shared.counter("stalled") > 0,
            "the server never stalled"
        );
        let (slow, all) = slow_samples(&hlog);
        (slow, all, json.json())
    };
    let (open_slow, open_all, open) = run("co-open", &["--rate", "2000"]);
    let (closed_slow, closed_all, closed) = run("co-closed", &[]);
    eprintln!(
        "samples >= 100 ms: open loop {open_slow} of {open_all}, closed loop {closed_slow} of \
         {closed_all}"
    );

    // Open loop: every request scheduled during the first half of the 200 ms stall waited
    // at least 100 ms from its intended send time: about 200 of them at 2000 req/s.
    assert!(
        open_slow >= 100,
        "open loop: {open_slow} of {open_all} samples >= 100 ms"
    );
    assert!(
        json_f64(&open, &["latency_us", "p99"]) >= 100_000.0,
        "{open}"
    );
    // Closed loop: only the requests in flight when the stall began (one per connection)
    // saw it, so the tail percentiles hide it.
    assert!(
        (1..=12).contains(&closed_slow),
        "closed loop: {closed_slow} of {closed_all} samples >= 100 ms"
    );
    assert!(
        json_f64(&closed, &["latency_us", "max"]) >= 100_000.0,
        "{closed}"
    );
    assert!(
        json_f64(&closed, &["latency_us", "p99"]) < 100_000.0,
        "{closed}"
    );
    assert!(
        open_slow >= 10 * closed_slow,
        "{open_slow} vs {closed_slow}"
    );
    // the open-loop run kept its schedule (throughput near the rate)
    let rps = json_f64(&open, &["throughput_rps"]);
    assert!((1500.0..=2100.0).contains(&rps), "{rps}");
    assert_eq!(open_all, json_u64(&open, &["requests"]));
    assert_eq!(closed_all, json_u64(&closed, &["requests"]));
}

#[test]
fn hgrm_matches_the_summary_and_hlog_counts_match() {
    let server = echo_server(Echo::Correct);
    let (hgrm, hlog, json) = (
        TempPath::new("m.hgrm"),
        TempPath::new("m.hlog"),
        TempPath::new("m.json"),
    );
    let addr = server.addr_arg();
    let out = run_load(
        &[
            "--addr",
            &addr,
            "-c",
            "2",
            "-d",
            "1500ms",
            "-w",
            "300ms",
            "--hgrm",
            hgrm.arg(),
            "--hlog",
            hlog.arg(),
            "--json",
            json.arg(),
        ],
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let j = json.json();
    let requests = json_u64(&j, &["requests"]);
    assert!(requests > 100, "{j}");

    let text = hgrm.read();
    assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    let d = Distribution::parse(&text).unwrap();
    assert_eq!(d.footer.total_count, requests);
    assert_eq!(d.rows.last().unwrap().total_count, requests);
    assert_eq!(d.rows.last().unwrap().percentile, 1.0);
    let lat = |k: &str| json_f64(&j, &["latency_us", k]);
    assert!(
        (d.footer.max - lat("max")).abs() < 0.001,
        "{} vs {}",
        d.footer.max,
        lat("max")
    );
    assert!((d.footer.mean - lat("mean")).abs() < 0.001);
    // 50% and 90% are ticks of the distribution: same value, to the bucket.
    for (q, key) in [(0.5, "p50"), (0.9, "p90")] {
        let v = d.value_at_percentile(q).unwrap();
        assert!(
            (v - lat(key)).abs() <= v * 0.002 + 0.001,
            "{key}: hgrm {v} json {}",
            lat(key)
        );
    }
    // Other percentiles fall between the rows around them.
    for (q, key) in [(0.99, "p99"), (0.999, "p99.9"), (0.9999, "p99.99")] {
        let below = d.rows.iter().rfind(|r| r.percentile <= q).unwrap();
        let above = d.rows.iter().find(|r| r.percentile >= q).unwrap();
        let v = lat(key);
        assert!(
            below.value <= v + 0.001 && v <= above.value + 0.001,
            "{key} {v} not within [{}, {}]",
            below.value,
            above.value
        );
    }

    let intervals = util::read_hlog(&std::fs::read(&hlog.0).unwrap());
    let starts: Vec<u64> = intervals
        .iter()
        .map(|i| i.start.as_millis() as u64)
        .collect();
    assert_eq!(
        starts,
        [0, 1000],
        "one interval per second from the end of warmup"
    );
    assert!(intervals[0].length >= Duration::from_millis(990));
    assert!(intervals[1].length <= Duration::from_millis(510));
    let counted: u64 = intervals.iter().map(|i| i.hist.len()).sum();
    assert_eq!(counted, requests, "interval histograms vs the run's count");
    let log = hlog.read();
    assert!(log.contains("#[StartTime: "), "{log}");
    assert!(log.contains("#[Histogram log format version 1.3]"), "{log}");
}

#[test]
fn resp_smoke_and_wrong_values() {
    let server = resp_server(true);
    let json = TempPath::new("resp.json");
    let addr = server.addr_arg();
    let out = run_load(
        &[
            "--addr",
            &addr,
            "--protocol",
            "resp",
            "-c",
            "3",
            "--pipeline",
            "2",
            "--keys",
            "50",
            "--set-ratio",
            "0.5",
            "--size",
            "32",
            "-d",
            "1",
            "-w",
            "0",
            "--json",
            json.arg(),
        ],
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let j = json.json();
    assert!(json_u64(&j, &["requests"]) > 50, "{j}");
    // both commands were sent and GETs returned values that were checked
    assert!(server.shared.counter("set") > 10);
    assert!(server.shared.counter("hit") > 10);

    let wrong = resp_server(false);
    let json = TempPath::new("resp-wrong.json");
    let addr = wrong.addr_arg();
    let out = run_load(
        &[
            "--addr",
            &addr,
            "--protocol",
            "resp",
            "-c",
            "2",
            "--set-ratio",
            "0",
            "-d",
            "1",
            "-w",
            "0",
            "--json",
            json.arg(),
        ],
        LIMIT,
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    let j = json.json();
    assert_eq!(json_u64(&j, &["errors", "mismatch"]), 2, "{j}");
    assert!(j["error_details"]["mismatch"]
        .as_str()
        .unwrap()
        .contains("a value of 3 bytes"));
}

#[test]
fn http_smoke_and_wrong_status() {
    let server = http_server(200, "hello world");
    let json = TempPath::new("http.json");
    let addr = server.addr_arg();
    let out = run_load(
        &[
            "--addr",
            &addr,
            "--protocol",
            "http",
            "--path",
            "/hello",
            "-c",
            "2",
            "--pipeline",
            "4",
            "-d",
            "1",
            "-w",
            "0",
            "--json",
            json.arg(),
        ],
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let j = json.json();
    let requests = json_u64(&j, &["requests"]);
    assert!(requests > 50, "{j}");
    assert!(server.shared.counter("hello") >= requests);

    let wrong = http_server(500, "oops");
    let json = TempPath::new("http-wrong.json");
    let addr = wrong.addr_arg();
    let out = run_load(
        &[
            "--addr",
            &addr,
            "--protocol",
            "http",
            "-c",
            "2",
            "-d",
            "1",
            "-w",
            "0",
            "--json",
            json.arg(),
        ],
        LIMIT,
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    let j = json.json();
    assert_eq!(json_u64(&j, &["errors", "mismatch"]), 2, "{j}");
    assert!(j["error_details"]["mismatch"]
        .as_str()
        .unwrap()
        .contains("HTTP status 500"));
    // every connection failed, so the run stopped early instead of idling to the end
    assert_eq!(j["ended_early"], true, "{j}");
}

#[test]
fn a_refused_connection_ends_the_run_with_an_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let out = run_load(&["--addr", &addr, "-c", "3", "-d", "30"], LIMIT);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("connect_refused 3"), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(20), "took {:?}", out.took);
}

#[test]
fn unanswered_requests_time_out() {
    let server = silent_server();
    let json = TempPath::new("timeout.json");
    let addr = server.addr_arg();
    let out = run_load(
        &[
            "--addr",
            &addr,
            "-c",
            "2",
            "-d",
            "20",
            "-w",
            "0",
            "--timeout",
            "300ms",
            "--json",
            json.arg(),
        ],
        LIMIT,
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    let j = json.json();
    assert_eq!(json_u64(&j, &["errors", "timeout"]), 2, "{j}");
    assert_eq!(json_u64(&j, &["requests"]), 0, "{j}");
    assert!(out.took < Duration::from_secs(15), "took {:?}", out.took);
}

#[test]
fn bad_arguments_are_rejected_without_a_panic() {
    for args in [
        &["--duration", "abc"][..],
        &["--duration", "-1"],
        &["--connections", "0"],
        &["--rate", "0"],
        &["--protocol", "ftp"],
        &["--path", "no-slash"],
        &["--set-ratio", "2"],
        &["--cores", "x"],
        &["--size", "10..5"],
        &["--reconnect-after", "0"],
        &["--reset", "0.5"],
        &[
            "--reconnect-after",
            "5",
            "--reset",
            "0.6",
            "--half-close",
            "0.6",
        ],
        &["--nope"],
        &["plot"],
    ] {
        let out = run_load(args, LIMIT);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
    // Addresses that cannot be used fail before any lookup or connection.
    for addr in ["127.0.0.1", "127.0.0.1:99999"] {
        let out = run_load(&["--addr", addr, "-d", "1"], LIMIT);
        assert_eq!(out.code, Some(2), "{addr}: {out:?}");
        assert!(out.stderr.contains("cannot resolve"), "{}", out.stderr);
    }
}

#[test]
fn plot_draws_one_curve_per_file() {
    use hdrhistogram::Histogram;
    let (a, b, svg) = (
        TempPath::new("a.hgrm"),
        TempPath::new("b.hgrm"),
        TempPath::new("ab.svg"),
    );
    for (path, scale) in [(&a, 1_u64), (&b, 3)] {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in 1..=2000_u64 {
            h.record(v * 1000 * scale).unwrap();
        }
        let mut f = std::fs::File::create(&path.0).unwrap();
        shardnet::hgrm::write_percentile_distribution(&h, &mut f, 5, 1000.0).unwrap();
    }
    let out = run_load(&["plot", "--out", svg.arg(), a.arg(), b.arg()], LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
    let text = svg.read();
    assert_eq!(text.matches("<polyline").count(), 2, "{text}");
    let stem = |p: &TempPath| p.0.file_stem().unwrap().to_str().unwrap().to_owned();
    assert!(text.contains(&stem(&a)) && text.contains(&stem(&b)));
    assert!(text.contains(">99.9%<"));

    std::fs::write(&b.0, "1.0 x 3\n").unwrap();
    let out = run_load(&["plot", "--out", svg.arg(), a.arg(), b.arg()], LIMIT);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("line 1"), "{}", out.stderr);
}

/// Runs churn load against `addr` with `extra` arguments; returns the outcome and the JSON.
fn churn_run(addr: &str, extra: &[&str], name: &str) -> (util::Outcome, serde_json::Value) {
    let json = TempPath::new(name);
    let mut args = vec!["--addr", addr, "-w", "0", "--json", json.arg()];
    args.extend_from_slice(extra);
    let out = run_load(&args, LIMIT);
    let j = json.json();
    (out, j)
}

#[test]
fn churn_reconnects_ends_every_way_and_checks_every_reply() {
    let server = churn_server(Churning::Correct);
    let (out, j) = churn_run(
        &server.addr_arg(),
        &[
            "-c",
            "4",
            "-p",
            "2",
            "--size",
            "16..2000",
            "--reconnect-after",
            "1..40",
            "--half-close",
            "0.3",
            "--reset",
            "0.2",
            "-d",
            "1.5",
        ],
        "churn-ok.json",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(json_u64(&j, &["errors", "total"]), 0, "{j}");
    let reconnects = json_u64(&j, &["reconnects"]);
    assert!(reconnects > 20, "{j}");
    assert_eq!(json_u64(&j, &["churn", "reconnects"]), reconnects, "{j}");
    let ends: u64 = ["closes", "half_closes", "resets"]
        .iter()
        .map(|k| {
            let n = json_u64(&j, &["churn", k]);
            assert!(n > 0, "no {k}: {j}");
            n
        })
        .sum();
    // Every end starts a connect; the last few may not have completed when the run stopped.
    assert!(ends >= reconnects && ends <= reconnects + 4, "{j}");
    assert_eq!(j["stamped"], true);
    assert_eq!(
        (json_u64(&j, &["size_min"]), json_u64(&j, &["size"])),
        (16, 2000)
    );
    assert_eq!(j["churn"]["reconnect_after"], "1..40");
    assert!(json_u64(&j, &["requests"]) > 100, "{j}");
    // The server saw each connection: the first four and every reconnect.
    assert!(server.shared.counter("accepted") >= 4 + reconnects, "{j}");
    assert!(
        out.stdout
            .contains(&format!("churn       {reconnects} reconnects")),
        "{}",
        out.stdout
    );
}

#[test]
fn a_stale_reply_on_a_new_connection_is_a_named_mismatch() {
    let server = churn_server(Churning::StaleOnce);
    let (out, j) = churn_run(
        &server.addr_arg(),
        &[
            "-c",
            "1",
            "--size",
            "64",
            "--reconnect-after",
            "3",
            "-d",
            "1",
        ],
        "churn-stale.json",
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(server.shared.counter("stale"), 1);
    assert_eq!(json_u64(&j, &["errors", "mismatch"]), 1, "{j}");
    let detail = j["error_details"]["mismatch"].as_str().unwrap();
    // Connection 0's second life (generation 1) starts with request 3 and got the bytes of
    // its first life's request 0.
    assert!(
        detail.contains("request 3 of connection 0, generation 1"),
        "{detail}"
    );
    assert!(
        detail.contains("the reply has the stamp of connection 0, generation 0, request 0"),
        "{detail}"
    );
}

#[test]
fn replies_lost_after_a_half_close_are_errors() {
    let server = churn_server(Churning::DropsTailOnHalfClose);
    let (out, j) = churn_run(
        &server.addr_arg(),
        &[
            "-c",
            "2",
            "--reconnect-after",
            "2..5",
            "--half-close",
            "1",
            "-d",
            "1",
        ],
        "churn-halfclose.json",
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(json_u64(&j, &["errors", "closed_by_peer"]), 2, "{j}");
    let detail = j["error_details"]["closed_by_peer"].as_str().unwrap();
    assert!(
        detail.contains("1 requests unanswered after the client's half-close"),
        "{detail}"
    );
}

#[test]
fn a_server_that_never_closes_after_a_half_close_times_out() {
    let server = churn_server(Churning::NeverCloses);
    let (out, j) = churn_run(
        &server.addr_arg(),
        &[
            "-c",
            "1",
            "--reconnect-after",
            "3",
            "--half-close",
            "1",
            "--timeout",
            "300ms",
            "-d",
            "10",
        ],
        "churn-neverclose.json",
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(json_u64(&j, &["errors", "timeout"]), 1, "{j}");
    let detail = j["error_details"]["timeout"].as_str().unwrap();
    assert!(detail.contains("did not close the connection"), "{detail}");
    assert_eq!(json_u64(&j, &["reconnects"]), 0, "{j}");
    assert!(out.took < Duration::from_secs(8), "took {:?}", out.took);
}

#[test]
fn resp_churn_with_a_value_size_range() {
    let server = resp_server(true);
    let (out, j) = churn_run(
        &server.addr_arg(),
        &[
            "--protocol",
            "resp",
            "-c",
            "3",
            "-p",
            "2",
            "--keys",
            "40",
            "--set-ratio",
            "0.5",
            "--size",
            "16..500",
            "--reconnect-after",
            "1..30",
            "--reset",
            "0.2",
            "--half-close",
            "0.2",
            "-d",
            "1.5",
        ],
        "churn-resp.json",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(json_u64(&j, &["reconnects"]) > 10, "{j}");
    assert!(
        server.shared.counter("hit") > 10,
        "GETs returned no values to check"
    );
}

#[test]
fn trickle_holds_its_connections_and_counts_the_servers_closes() {
    let server = quiet_closing_server(Duration::from_millis(300));
    let json = TempPath::new("trickle.json");
    let addr = server.addr_arg();
    let out = run_trickle(
        &[
            "--addr",
            &addr,
            "-c",
            "20",
            "--every",
            "500ms",
            "-d",
            "1.5s",
            "--reconnect",
            "--json",
            json.arg(),
        ],
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let j = json.json();
    let closed = json_u64(&j, &["closed_by_server"]);
    // Each connection sends a byte every 500 ms and the server gives up after 300 ms of
    // silence, so each life lasts about 300 ms: 20 connections for 1.5 s close 60 to 100 times.
    assert!((40..=120).contains(&closed), "{j}");
    // Every close is replaced; a replacement may still be connecting when the run ends.
    let connected = json_u64(&j, &["connected"]);
    assert!(
        connected <= 20 + closed && connected + 5 >= 20 + closed,
        "{j}"
    );
    // The server counted its timeouts; the client saw them all (give the handlers a moment).
    std::thread::sleep(Duration::from_millis(100));
    assert!(server.shared.counter("timed_out") >= closed, "{j}");
    let quiet = json_f64(&j, &["silence_before_close", "mean_s"]);
    assert!((0.25..0.45).contains(&quiet), "{j}");
    assert!((15..=20).contains(&json_u64(&j, &["still_open"])), "{j}");
    assert!(json_u64(&j, &["bytes_sent"]) >= 20, "{j}");
    assert!(out.stdout.contains("by the server"), "{}", out.stdout);
}
