//! A connection's received-but-unparsed bytes, kept where they landed whenever possible.
//!
//! Requests are parsed straight from the pool chunk they arrived in. When a request is split
//! across receives, the rest is appended into the *same* chunk's spare room with
//! [`Connection::recv_into`] (compacting it first when its room is used up), so a connection
//! never holds more than one slab while it waits — holding one and waiting for another is how
//! many half-received requests would drain the pool. Only when one request outgrows a whole
//! slab are its bytes copied into a per-connection buffer, which then grows by the chunks
//! that follow, up to a fixed maximum (a peer can make it no larger), and shrinks back once
//! it has been parsed empty.
//!
//! ```text
//!   chunk mode:  [consumed | unparsed ......... | spare ]   <- recv_into appends here
//!   spill mode:  Vec [consumed | unparsed ........ ]        <- each new chunk is copied in
//! ```
//!
//! Parsers that resume where they stopped (they are handed the same bytes again with more
//! appended) work unchanged: compacting moves the bytes but keeps them first in the view.
#![allow(dead_code)] // each example uses a different subset

use shardnet::{Chunk, ConnError, Connection};
use std::fmt;

/// Capacity the spill buffer keeps after it has been emptied; more is given back.
const SPILL_KEEP: usize = 64 * 1024;

/// A connection's unparsed input (see the module docs). Holds at most one slab.
#[derive(Debug)]
pub struct RecvBuf {
    /// The chunk being parsed in chunk mode.
    chunk: Option<Chunk>,
    /// In spill mode (non-empty), the unparsed bytes start at `spill_start`.
    spill: Vec<u8>,
    spill_start: usize,
    /// Most unparsed bytes the spill buffer may hold.
    max: usize,
}

/// Why [`RecvBuf::fill`] got no more bytes.
#[derive(Debug)]
pub enum FillError {
    /// The receive failed (timeout, reset, shutdown, I/O error).
    Conn(ConnError),
    /// One request would need more than the configured maximum of unparsed bytes.
    TooLarge {
        /// The maximum.
        max: usize,
    },
}

impl From<ConnError> for FillError {
    fn from(e: ConnError) -> Self {
        FillError::Conn(e)
    }
}

impl fmt::Display for FillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FillError::Conn(e) => write!(f, "{e}"),
            FillError::TooLarge { max } => write!(f, "request over {max} bytes"),
        }
    }
}

impl std::error::Error for FillError {}

impl RecvBuf {
    /// An empty buffer whose spill mode holds at most `max` unparsed bytes. (A chunk holds up
    /// to one slab whatever `max` is.) No allocation.
    pub fn new(max: usize) -> Self {
        RecvBuf {
            chunk: None,
            spill: Vec::new(),
            spill_start: 0,
            max,
        }
    }

    fn spilled(&self) -> bool {
        !self.spill.is_empty()
    }

    /// The unparsed bytes. O(1).
    pub fn bytes(&self) -> &[u8] {
        if self.spilled() {
            &self.spill[self.spill_start..]
        } else {
            self.chunk.as_deref().unwrap_or(&[])
        }
    }

    /// True when nothing is unparsed.
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// Marks the first `n` unparsed bytes as parsed (clamped). O(1). A chunk parsed to its
    /// end goes back to the pool at once; an emptied spill buffer returns to chunk mode and
    /// gives back capacity above 64 KiB.
    pub fn consume(&mut self, n: usize) {
        if self.spilled() {
            self.spill_start = (self.spill_start + n).min(self.spill.len());
            if self.spill_start == self.spill.len() {
                self.spill.clear();
                self.spill_start = 0;
                self.spill.shrink_to(SPILL_KEEP);
            }
        } else if let Some(c) = &mut self.chunk {
            c.advance(n);
            if c.is_empty() {
                self.chunk = None;
            }
        }
    }

    /// Waits for more bytes and appends them after the unparsed ones. `Ok(true)` when some
    /// arrived, `Ok(false)` at end of stream.
    ///
    /// # Errors
    /// [`FillError::Conn`] when the receive fails, [`FillError::TooLarge`] when the unparsed
    /// bytes would exceed the maximum (the bytes received are then dropped).
    pub async fn fill(&mut self, conn: &mut Connection) -> Result<bool, FillError> {
        if !self.spilled() {
            match &mut self.chunk {
                None => {
                    return Ok(match conn.recv().await? {
                        Some(c) => {
                            self.chunk = Some(c);
                            true
                        }
                        None => false,
                    })
                }
                Some(c) => {
                    if c.spare_capacity() == 0 {
                        c.compact();
                    }
                    if c.spare_capacity() > 0 {
                        return Ok(conn.recv_into(c).await? > 0);
                    }
                    // One request fills a whole slab: continue in the spill buffer.
                    if let Some(c) = self.chunk.take() {
                        self.append(&c)?;
                    }
                }
            }
        }
        let Some(c) = conn.recv().await? else {
            return Ok(false);
        };
        self.append(&c)?;
        Ok(true)
    }

    /// Copies `data` after the unparsed bytes of the spill buffer, within the maximum.
    fn append(&mut self, data: &[u8]) -> Result<(), FillError> {
        let live = self.spill.len() - self.spill_start;
        if live.saturating_add(data.len()) > self.max {
            return Err(FillError::TooLarge { max: self.max });
        }
        if self.spill_start > 0 {
            self.spill.drain(..self.spill_start);
            self.spill_start = 0;
        }
        let need = self.spill.len() + data.len();
        if need > self.spill.capacity() {
            // Doubling, but never past the maximum.
            let target = need.max(self.spill.capacity() * 2).min(self.max);
            self.spill.reserve_exact(target - self.spill.len());
        }
        self.spill.extend_from_slice(data);
        Ok(())
    }
}
