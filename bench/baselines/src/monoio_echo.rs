//! monoio: one io_uring runtime per core, each with its own `SO_REUSEPORT` listener.

use crate::common::{self, BUF_SIZE};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

/// Echoes one connection until EOF or an error. monoio owns the buffer while the kernel
/// uses it, so it is passed in and handed back by every operation.
async fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut stream = stream;
    let mut buf: Vec<u8> = Vec::with_capacity(BUF_SIZE);
    loop {
        let (res, b) = stream.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        // `write_all` sends the buffer's initialised part: what `read` just filled.
        let (res, b) = stream.write_all(buf).await;
        buf = b;
        if res.is_err() {
            return;
        }
        buf.clear();
    }
}

async fn accept_loop(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                common::count_accept();
                monoio::spawn(echo(stream));
            }
            Err(e) => {
                eprintln!("baseline-echo: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Per core, a pinned thread running a monoio io_uring runtime. Runs until signalled.
pub fn run(addr: SocketAddr, cores: &[usize]) -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for &core in cores {
        let tx: common::Ready = tx.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("monoio-{core}"))
                .spawn(move || -> io::Result<()> {
                    let started = (|| {
                        common::pin(core)?;
                        let rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().build()?;
                        Ok::<_, io::Error>((rt, common::listener(addr, true)?))
                    })();
                    match started {
                        Ok((mut rt, std_listener)) => rt.block_on(async move {
                            let listener = match TcpListener::from_std(std_listener) {
                                Ok(l) => l,
                                Err(e) => {
                                    let _ = tx.send(Err(format!("core {core}: {e}")));
                                    return Err(e);
                                }
                            };
                            let _ = tx.send(Ok(()));
                            accept_loop(listener).await;
                            Ok(())
                        }),
                        Err(e) => {
                            let _ = tx.send(Err(format!("core {core}: {e}")));
                            Err(e)
                        }
                    }
                })?,
        );
    }
    drop(tx);
    common::wait_ready(&rx, cores.len(), "monoio", addr, cores)?;
    common::join_all(handles)
}
