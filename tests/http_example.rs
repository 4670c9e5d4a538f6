//! The http example as a process, driven by real clients: curl for every path and error code
//! (exact bodies and headers, keep-alive, HTTP/1.0), wrk with a pipelining script (no non-2xx
//! responses, no socket errors), and a raw socket for garbage and a pipeline in one write.

mod clients;
mod util;

use clients::{connect, read_until_closed, run, run_ok};
use std::io::{BufRead, Read, Write};
use std::process::Command;
use std::time::Duration;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

fn start() -> util::ExampleServer {
    clients::require("curl", "curl");
    clients::require("wrk", "wrk");
    let shards = util::shards().to_string();
    util::ExampleServer::start("http", &["--shards", &shards, "--slabs", "512"])
}

fn stop(server: util::ExampleServer) {
    let (status, stdout, stderr) = server.stop();
    assert!(
        status.success(),
        "http exits 0 after SIGTERM: {status:?}\n{stderr}"
    );
    assert!(
        stdout.contains("handler panics=0"),
        "no handler panicked:\n{stdout}"
    );
}

/// A response as curl printed it with `-si`: status, headers (lower-case names), body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_responses(text: &str) -> Vec<Response> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("HTTP/1.1 ") {
        rest = &rest[start..];
        let (head, after) = rest.split_once("\r\n\r\n").expect("end of head");
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let body_len = len.min(after.len());
        out.push(Response {
            status,
            headers,
            body: after[..body_len].to_string(),
        });
        rest = &after[body_len..];
    }
    out
}

fn curl(args: &[&str]) -> Vec<Response> {
    let mut cmd = Command::new("curl");
    cmd.args(["-si", "--max-time", "30"]).args(args);
    let out = run(&mut cmd, b"", CLIENT_TIMEOUT);
    parse_responses(&String::from_utf8_lossy(&out.stdout))
}

fn curl_one(args: &[&str]) -> Response {
    let mut r = curl(args);
    assert_eq!(r.len(), 1, "one response to curl {args:?}: {r:?}");
    r.remove(0)
}

fn check_common(r: &Response, status: u16, content_type: &str, body: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("server"), Some("shardnet"));
    assert_eq!(r.header("content-type"), Some(content_type));
    assert_eq!(
        r.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(r.body, body);
    let date = r.header("date").expect("a Date header");
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
    assert_eq!(date.len(), 29, "{date:?}");
    assert!(
        date.ends_with(" GMT") && date.as_bytes()[3] == b',',
        "{date:?}"
    );
}

#[test]
fn curl_gets_every_path_and_error_code() {
    let server = start();
    let base = format!("http://{}", server.addr);
    let plaintext = format!("{base}/plaintext");
    let json = format!("{base}/json");

    let r = curl_one(&[&plaintext]);
    check_common(&r, 200, "text/plain", "Hello, World!");
    assert_eq!(
        r.header("connection"),
        None,
        "HTTP/1.1 keeps the connection by default"
    );
    let r = curl_one(&[&json]);
    check_common(
        &r,
        200,
        "application/json",
        r#"{"message":"Hello, World!"}"#,
    );
    let r = curl_one(&[&format!("{json}?x=1")]);
    check_common(
        &r,
        200,
        "application/json",
        r#"{"message":"Hello, World!"}"#,
    );

    // Keep-alive: curl reuses one connection for both URLs.
    let out = run_ok(
        Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "30",
                "-w",
                " connects=%{num_connects}\n",
            ])
            .args([&plaintext, &json]),
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(out.contains("Hello, World! connects=1"), "{out}");
    assert!(
        out.contains(r#"{"message":"Hello, World!"} connects=0"#),
        "{out}"
    );

    let r = curl_one(&[&format!("{base}/nope")]);
    check_common(&r, 404, "text/plain", "Not Found");
    let r = curl_one(&["-X", "POST", "-d", "x=1", &json]);
    check_common(&r, 405, "text/plain", "Method Not Allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = curl_one(&["-X", "DELETE", &plaintext]);
    assert_eq!(r.status, 405);
    // A body larger than a pool slab is received whole before the 405 (and the connection
    // stays usable: curl sends a GET on it next); one over the 1 MiB default gets 413.
    let dir = std::env::temp_dir().join(format!("shardnet-http-body-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("body");
    std::fs::write(&body, vec![b'b'; 100_000]).unwrap();
    let data = format!("@{}", body.display());
    let rs = curl(&[
        "-H",
        "Expect:",
        "--data-binary",
        &data,
        &json,
        "--next",
        "-si",
        &plaintext,
    ]);
    assert_eq!(rs.len(), 2, "{rs:?}");
    assert_eq!((rs[0].status, rs[1].status), (405, 200));
    std::fs::write(&body, vec![b'b'; 2 << 20]).unwrap();
    let r = curl_one(&["-H", "Expect:", "--data-binary", &data, &json]);
    check_common(&r, 413, "text/plain", "Content Too Large");
    let _ = std::fs::remove_dir_all(&dir);

    // HEAD: the GET headers, no body.
    let out = run_ok(
        Command::new("curl").args(["-sI", "--max-time", "30", &plaintext]),
        b"",
        CLIENT_TIMEOUT,
    );
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.contains("Content-Length: 13\r\n") && out.ends_with("\r\n\r\n"),
        "{out}"
    );

    // Malformed request line (a space in the target), and HTTP/1.1 without Host: 400, close.
    for args in [
        vec!["--request-target", "/plain text", plaintext.as_str()],
        vec!["-H", "Host:", plaintext.as_str()],
    ] {
        let r = curl_one(&args);
        check_common(&r, 400, "text/plain", "Bad Request");
        assert_eq!(r.header("connection"), Some("close"), "{args:?}");
    }
    // Headers over the 8 KiB default: 431, close.
    let big = format!("X-Big: {}", "a".repeat(10_000));
    let r = curl_one(&["-H", &big, &plaintext]);
    check_common(&r, 431, "text/plain", "Request Header Fields Too Large");
    assert_eq!(r.header("connection"), Some("close"));

    // HTTP/1.0: closes by default; keeps the connection when asked.
    let r = curl_one(&["-0", &json]);
    check_common(
        &r,
        200,
        "application/json",
        r#"{"message":"Hello, World!"}"#,
    );
    assert_eq!(r.header("connection"), Some("close"));
    let r = curl_one(&["-0", "-H", "Connection: keep-alive", &plaintext]);
    check_common(&r, 200, "text/plain", "Hello, World!");
    assert_eq!(r.header("connection"), Some("keep-alive"));
    stop(server);
}

#[test]
fn the_date_header_is_refreshed_every_second() {
    let server = start();
    let url = format!("http://{}/plaintext", server.addr);
    let first = curl_one(&[&url]).header("date").unwrap().to_string();
    std::thread::sleep(Duration::from_millis(2100));
    let second = curl_one(&[&url]).header("date").unwrap().to_string();
    assert_ne!(first, second, "the Date changed after two seconds");
    stop(server);
}

#[test]
fn wrk_pipelined_plaintext_has_no_errors() {
    let server = start();
    let dir = std::env::temp_dir().join(format!("shardnet-http-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("pipeline.lua");
    std::fs::write(
        &script,
        "init = function(args)\n\
         \x20 local depth = tonumber(args[1]) or 1\n\
         \x20 local r = {}\n\
         \x20 for i = 1, depth do r[i] = wrk.format() end\n\
         \x20 req = table.concat(r)\n\
         end\n\
         request = function() return req end\n",
    )
    .unwrap();
    let url = format!("http://{}/plaintext", server.addr);
    for (conns, depth) in [("16", "16"), ("8", "1")] {
        let out = run_ok(
            Command::new("wrk")
                .args(["-t", "1", "-c", conns, "-d", "3s", "--timeout", "10s", "-s"])
                .arg(&script)
                .args([&url, "--", depth]),
            b"",
            CLIENT_TIMEOUT,
        );
        let requests: u64 = out
            .lines()
            .find_map(|l| {
                l.trim()
                    .split_once(" requests in ")
                    .map(|(n, _)| n.to_string())
            })
            .unwrap_or_else(|| panic!("wrk printed a request count:\n{out}"))
            .parse()
            .unwrap();
        assert!(requests > 1000, "wrk completed {requests} requests:\n{out}");
        assert!(!out.contains("Non-2xx"), "no non-2xx responses:\n{out}");
        assert!(!out.contains("Socket errors"), "no socket errors:\n{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    stop(server);
}

#[test]
fn raw_garbage_gets_400_and_pipelines_are_answered_in_order() {
    let server = start();
    // Garbage: 400 and close; the requests before it are answered first.
    let (mut s, mut r) = connect(server.addr);
    s.write_all(b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n\x00\x01garbage\xff\r\n\r\n")
        .unwrap();
    let (bytes, _) = read_until_closed(&mut r);
    let text = String::from_utf8_lossy(&bytes);
    let responses = parse_responses(&text);
    assert_eq!(responses.len(), 2, "{text}");
    assert_eq!(responses[0].status, 200);
    assert_eq!(responses[1].status, 400);

    // 64 pipelined requests in one write (mixed paths), written again split byte by byte at
    // the head's end: every response, in order.
    let (mut s, mut r) = connect(server.addr);
    let paths = ["/plaintext", "/json", "/nope"];
    let mut pipeline = Vec::new();
    for i in 0..64 {
        pipeline.extend(format!("GET {} HTTP/1.1\r\nHost: a\r\n\r\n", paths[i % 3]).bytes());
    }
    s.write_all(&pipeline).unwrap();
    let one = b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n";
    for b in one.iter() {
        s.write_all(std::slice::from_ref(b)).unwrap();
    }
    let mut statuses = Vec::new();
    for _ in 0..65 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        statuses.push(line[9..12].to_string());
        let mut len = 0;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.strip_prefix("Content-Length: ") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
    }
    let want: Vec<&str> = (0..65)
        .map(|i| {
            if i == 64 {
                "200"
            } else {
                ["200", "200", "404"][i % 3]
            }
        })
        .collect();
    assert_eq!(statuses, want);
    drop((s, r));
    stop(server);
}
