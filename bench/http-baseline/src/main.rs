//! Baseline for `examples/http.rs`: the TechEmpower plaintext and json responses from a
//! minimal hyper 1 server on one tokio current-thread runtime (one core, like one shardnet
//! shard). Bench-only; `scripts/compare-examples.sh` builds and runs it pinned with taskset.
//!
//! ```text
//! cargo run --release --manifest-path bench/http-baseline/Cargo.toml -- 127.0.0.1:8081
//! ```
//!
//! hyper writes the `Date` header itself (cached once a second) and, with `pipeline_flush`,
//! answers a pipelined batch with one write, as the shardnet example does.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;

const PLAINTEXT: &[u8] = b"Hello, World!";
const JSON: &[u8] = br#"{"message":"Hello, World!"}"#;

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/plaintext") => (StatusCode::OK, "text/plain", PLAINTEXT),
        (&Method::GET | &Method::HEAD, "/json") => (StatusCode::OK, "application/json", JSON),
        (_, "/plaintext" | "/json") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            &b"Method Not Allowed"[..],
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain", &b"Not Found"[..]),
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(SERVER, HeaderValue::from_static("hyper"));
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}

fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_string())
        .parse()
        .expect("usage: http-baseline [ADDR]");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        eprintln!(
            "http-baseline: listening on {} (pid {})",
            listener.local_addr().expect("local address"),
            std::process::id()
        );
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::task::spawn(async move {
                let _ = http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .await;
            });
        }
    });
}
