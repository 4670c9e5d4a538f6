//! Lingering close: shut down the write side, then read and discard until the peer closes.
//!
//! When a server closes a connection whose peer is still sending, the kernel answers the
//! unread bytes with a reset, and a reset can destroy replies the peer has not read yet. So a
//! connection the server ends (a handler that finishes first, a protocol error, a drain) is
//! handed to a small task that sends FIN after every queued byte and keeps reading — into a
//! stack buffer, discarded — until the peer's EOF or the linger time runs out. The task holds
//! no slab; the shard's drain waits for lingering closes too.

use crate::shard::ShardCore;
use crate::sys::runtime::{self, Stream};
use crate::sys::socket;
use std::future::poll_fn;
use std::rc::Rc;
use std::time::Duration;

/// Closes `stream` gracefully in the background, for at most `linger`.
pub(crate) fn spawn(core: Rc<ShardCore>, stream: Stream, linger: Duration) {
    core.linger_started();
    runtime::spawn(async move {
        let mut stream = stream;
        if socket::shutdown_write(stream.fd()).is_ok() {
            let drain = async {
                let mut buf = [0u8; 2048];
                loop {
                    let r = poll_fn(|cx| stream.poll_read(cx, &mut buf)).await;
                    if !matches!(r, Ok(n) if n > 0) {
                        break; // EOF or error: the peer is done
                    }
                }
            };
            futures_lite::future::or(drain, runtime::sleep(linger)).await;
        }
        drop(stream);
        core.linger_ended();
    });
}
