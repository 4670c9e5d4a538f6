//! The echo example as a process: shardnet-load verifies every echoed byte against it and
//! exits 0; SIGUSR1 prints stats without stopping; SIGTERM drains, prints the per-shard stats
//! and the latency distribution, and exits 0.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn load_generator_verifies_the_echo_example_and_it_exits_cleanly() {
    let server = util::ExampleServer::start("echo", &["--slabs", "512"]);
    let dir = std::env::temp_dir().join(format!("shardnet-echo-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("run.json");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_shardnet-load"))
        .args(["--addr", &server.addr.to_string()])
        .args([
            "--protocol",
            "echo",
            "-c",
            "16",
            "-s",
            "256",
            "-d",
            "2s",
            "-w",
            "500ms",
            "-q",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run shardnet-load");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(
        out.status.success(),
        "shardnet-load failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let requests = summary["requests"]
        .as_u64()
        .expect("requests in the json summary");
    assert!(
        requests > 100,
        "a 2 s run completes more than 100 requests, got {requests}"
    );

    server.signal(10); // SIGUSR1: stats so far, keep serving
    let (status, stdout, stderr) = server.stop();
    assert!(
        status.success(),
        "echo exits 0 after SIGTERM: {status:?}\n{stderr}"
    );
    assert!(
        stderr.contains("stats on SIGUSR1"),
        "SIGUSR1 printed stats:\n{stderr}"
    );
    assert!(
        stdout.contains("service latency: p50="),
        "final stats printed:\n{stdout}"
    );
    assert!(stdout.contains("Value     Percentile TotalCount 1/(1-Percentile)"));
    assert!(stdout.contains("#[Max     ="), "hgrm footer printed");
    let _ = std::fs::remove_dir_all(&dir);
}
