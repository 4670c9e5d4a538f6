//! tokio: one current-thread runtime per core (`tokio-ct`) and one multi-thread runtime
//! (`tokio-mt`).

use crate::common::{self, BUF_SIZE};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Echoes one connection until EOF or an error.
async fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Accepts forever, one spawned task per connection.
async fn accept_loop(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                common::count_accept();
                tokio::spawn(echo(stream));
            }
            Err(e) => {
                // EMFILE and the like: report and back off briefly (no timer driver here).
                eprintln!("baseline-echo: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// `tokio-ct`: per core, a pinned thread with a current-thread runtime and its own
/// `SO_REUSEPORT` listener. Runs until the process is signalled.
pub fn run_per_core(addr: SocketAddr, cores: &[usize]) -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for &core in cores {
        let tx: common::Ready = tx.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("tokio-ct-{core}"))
                .spawn(move || -> io::Result<()> {
                    let started = (|| {
                        common::pin(core)?;
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_io()
                            .build()?;
                        let std_listener = common::listener(addr, true)?;
                        let listener = {
                            let _guard = rt.enter();
                            TcpListener::from_std(std_listener)?
                        };
                        Ok::<_, io::Error>((rt, listener))
                    })();
                    match started {
                        Ok((rt, listener)) => {
                            let _ = tx.send(Ok(()));
                            rt.block_on(accept_loop(listener));
                            Ok(())
                        }
                        Err(e) => {
                            let _ = tx.send(Err(format!("core {core}: {e}")));
                            Err(e)
                        }
                    }
                })?,
        );
    }
    drop(tx);
    common::wait_ready(&rx, cores.len(), "tokio-ct", addr, cores)?;
    common::join_all(handles)
}

/// `tokio-mt`: one multi-thread runtime with one worker per core (workers pinned
/// round-robin) and one listener, accepting in `block_on` as a `#[tokio::main]` program does.
pub fn run_multi_thread(addr: SocketAddr, cores: &[usize]) -> io::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let pin_cores: Arc<[usize]> = cores.into();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.len())
        .enable_io()
        .on_thread_start(move || {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let core = pin_cores[i % pin_cores.len()];
            if let Err(e) = common::pin(core) {
                eprintln!("baseline-echo tokio-mt: {e}");
            }
        })
        .build()?;
    let listener = {
        let _guard = rt.enter();
        TcpListener::from_std(common::listener(addr, false)?)?
    };
    eprintln!("baseline-echo tokio-mt: listening on {addr} on cores {cores:?}");
    rt.block_on(accept_loop(listener));
    Ok(())
}
