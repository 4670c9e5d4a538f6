//! Raw glommio 0.9, no framework: one `LocalExecutor` per core, glommio's own sockets.

use crate::common::{self, BUF_SIZE};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;

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

/// Per core, an executor pinned with `Placement::Fixed` that binds with
/// `TcpListener::bind` (`SO_REUSEPORT`, backlog 1024) and accepts forever.
pub fn run(addr: SocketAddr, cores: &[usize]) -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for &core in cores {
        let tx: common::Ready = tx.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(core))
            .name(&format!("glommio-{core}"))
            .spawn(move || async move {
                let listener = match TcpListener::bind(addr) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = tx.send(Err(format!("core {core}: {e}")));
                        return;
                    }
                };
                let _ = tx.send(Ok(()));
                loop {
                    match listener.accept().await {
                        Ok(stream) => {
                            common::count_accept();
                            glommio::spawn_local(echo(stream)).detach();
                        }
                        Err(e) => {
                            eprintln!("baseline-echo: accept: {e}");
                            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                        }
                    }
                }
            })
            .map_err(|e| io::Error::other(format!("core {core}: {e}")))?;
        handles.push(handle);
    }
    drop(tx);
    common::wait_ready(&rx, cores.len(), "glommio", addr, cores)?;
    for h in handles {
        h.join().map_err(|e| io::Error::other(e.to_string()))?;
    }
    Ok(())
}
