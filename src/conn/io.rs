//! futures-lite `AsyncRead`, `AsyncBufRead` and `AsyncWrite` for [`Connection`], so existing
//! codecs work on it.
//!
//! * `AsyncBufRead` is zero-copy: `fill_buf` lends the current chunk's bytes (still in their
//!   slab), `consume` advances through it and releases the slab when it is used up.
//! * `AsyncRead` copies out of the same chunk (one copy, what the trait asks for).
//! * `AsyncWrite::poll_write` copies into the bounded send queue (pool slabs); `poll_flush`
//!   sends the queue in one vectored `sendmsg`; `poll_close` flushes and shuts down the write
//!   side.

use super::Connection;
use futures_lite::io::{AsyncBufRead, AsyncRead, AsyncWrite};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

impl Connection {
    /// Makes sure a chunk is lent to the reader; `false` at end of stream.
    fn poll_fill_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        loop {
            if let Some(c) = &self.rx_pending {
                if !c.is_empty() {
                    return Poll::Ready(Ok(true));
                }
                self.rx_pending = None;
            }
            match self.poll_recv(cx) {
                Poll::Ready(Ok(Some(c))) => self.rx_pending = Some(c),
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(false)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match this.poll_fill_pending(cx) {
            Poll::Ready(Ok(true)) => {}
            Poll::Ready(Ok(false)) => return Poll::Ready(Ok(0)),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        let chunk = this.rx_pending.as_mut().expect("filled above");
        let n = buf.len().min(chunk.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        chunk.advance(n);
        if chunk.is_empty() {
            this.rx_pending = None;
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncBufRead for Connection {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        match this.poll_fill_pending(cx) {
            Poll::Ready(Ok(true)) => Poll::Ready(Ok(this.rx_pending.as_deref().unwrap_or(&[]))),
            Poll::Ready(Ok(false)) => Poll::Ready(Ok(&[])),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        if let Some(c) = &mut this.rx_pending {
            c.advance(amt);
            if c.is_empty() {
                this.rx_pending = None;
            }
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_queue_write(cx, buf)
            .map_err(io::Error::from)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_flush_queue(cx, false)
            .map(|r| r.map(|_| ()).map_err(io::Error::from))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_flush_queue(cx, false) {
            Poll::Ready(Ok(_)) => Poll::Ready(this.shutdown_write()),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}
