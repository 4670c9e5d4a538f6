//! [`Chunk`]: the bytes of one completed receive, still in the slab they landed in.

use crate::pool::Slab;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

/// Identifies a connection: the shard that owns it and a number unique within that shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    /// The owning shard's index.
    pub shard: u32,
    /// Connection number, unique within the shard (counts from 0).
    pub local: u64,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.shard, self.local)
    }
}

/// One received chunk: a slab from the shard's pool holding the bytes of one receive.
///
/// Derefs to the received bytes (the slab's `start..end`); no copy was made to get here —
/// the kernel wrote into the slab. The slab returns to the pool when the chunk is dropped,
/// so holding chunks holds pool memory: release them when done.
///
/// Every chunk carries the shard's sequence stamp, taken when its receive completed: within a
/// connection stamps strictly increase in byte order, across connections of a shard they give
/// completion order. `Chunk` is `!Send`.
pub struct Chunk {
    slab: Slab,
    start: u32,
    end: u32,
    seq: u64,
    conn: ConnId,
    received_at: Instant,
}

impl Chunk {
    /// Wraps `len` bytes received into `slab`.
    pub(crate) fn new(
        slab: Slab,
        len: usize,
        seq: u64,
        conn: ConnId,
        received_at: Instant,
    ) -> Chunk {
        debug_assert!(len <= slab.capacity());
        Chunk {
            slab,
            start: 0,
            end: len as u32,
            seq,
            conn,
            received_at,
        }
    }

    /// The shard-wide sequence stamp of this receive.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The connection it was received on.
    pub fn conn_id(&self) -> ConnId {
        self.conn
    }

    /// The shard that received it.
    pub fn shard_id(&self) -> usize {
        self.conn.shard as usize
    }

    /// When the receive completed.
    pub fn received_at(&self) -> Instant {
        self.received_at
    }

    /// Drops the first `n` bytes from the view (clamped to the length). O(1).
    pub fn advance(&mut self, n: usize) {
        self.start += n.min(self.len()) as u32;
    }

    /// Keeps only the first `n` bytes of the view (clamped). O(1).
    pub fn truncate(&mut self, n: usize) {
        self.end = self.start + n.min(self.len()) as u32;
    }

    /// Bytes of the slab after the received data, free for appending (see [`Chunk::extend_from_slice`]).
    pub fn spare_capacity(&self) -> usize {
        self.slab.capacity() - self.end as usize
    }

    /// Appends as much of `data` as fits after the current bytes; returns how much was copied.
    pub fn extend_from_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.spare_capacity());
        let end = self.end as usize;
        self.slab[end..end + n].copy_from_slice(&data[..n]);
        self.end += n as u32;
        n
    }

    /// Moves the bytes to the start of the slab, so all free room is at the end. O(len).
    pub fn compact(&mut self) {
        if self.start > 0 {
            let (start, end) = (self.start as usize, self.end as usize);
            self.slab.copy_within(start..end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// The free room after the bytes, for a receive to append into.
    pub(crate) fn spare_mut(&mut self) -> &mut [u8] {
        let end = self.end as usize;
        &mut self.slab[end..]
    }

    /// Records `n` bytes received into [`Chunk::spare_mut`], with their stamp.
    pub(crate) fn appended(&mut self, n: usize, seq: u64, at: Instant) {
        debug_assert!(n <= self.spare_capacity());
        self.end += n as u32;
        self.seq = seq;
        self.received_at = at;
    }

    /// Takes the stamp of a later receive whose bytes were appended.
    pub(crate) fn restamp(&mut self, seq: u64, at: Instant) {
        self.seq = seq;
        self.received_at = at;
    }

    /// The underlying slab (its full capacity), giving up the chunk's metadata.
    pub fn into_slab(self) -> Slab {
        self.slab
    }

    pub(crate) fn range(&self) -> (u32, u32) {
        (self.start, self.end)
    }
}

impl Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.slab[self.start as usize..self.end as usize]
    }
}

impl DerefMut for Chunk {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.slab[self.start as usize..self.end as usize]
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("conn", &self.conn)
            .field("seq", &self.seq)
            .field("len", &self.len())
            .field("slab", &self.slab.index())
            .finish()
    }
}
