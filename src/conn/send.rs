//! The send side of a connection: the bounded queue of pending bytes and the sync-first send.
//!
//! Pending send data lives in pool slabs, never in heap buffers: bytes written with
//! [`Connection::write`](crate::Connection::write) are copied into slabs, and received chunks
//! pushed with [`Connection::push`](crate::Connection::push) are queued as they are (no copy).
//! The queue holds at most [`QUEUE_SLOTS`] slabs and `max_pending_send` bytes; beyond that a
//! write first waits until the peer has taken data, so a peer that never reads cannot make the
//! server buffer without limit (and the send timeout closes it).
//!
//! A send first tries one non-blocking `sendmsg` of everything queued (vectored, up to
//! [`QUEUE_SLOTS`] + 8 slices); only when the socket buffer is full does it wait for
//! writability on the reactor. Each completed send counts as *sync* (finished by the first
//! attempt) or *async* (had to wait).

use super::Chunk;
use crate::pool::Slab;
use std::io::IoSlice;

/// Slabs a connection's send queue can hold.
pub const QUEUE_SLOTS: usize = 8;

/// Most slices handed to one `sendmsg`.
pub(crate) const MAX_IOV: usize = 16;

/// One queued piece: `start..end` of a slab.
#[derive(Debug)]
pub(crate) struct OutBuf {
    slab: Slab,
    start: u32,
    end: u32,
}

impl OutBuf {
    fn bytes(&self) -> &[u8] {
        &self.slab[self.start as usize..self.end as usize]
    }

    fn spare(&self) -> usize {
        self.slab.capacity() - self.end as usize
    }
}

/// The bounded queue of bytes written but not yet taken by the kernel.
///
/// Owns up to [`QUEUE_SLOTS`] slabs (inline array, no heap allocation).
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    bufs: [Option<OutBuf>; QUEUE_SLOTS],
    len: usize,
    bytes: usize,
}

impl OutQueue {
    /// Bytes queued.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no new slab can be queued.
    pub(crate) fn slots_full(&self) -> bool {
        self.len == QUEUE_SLOTS
    }

    /// Room left in the last queued slab.
    pub(crate) fn tail_spare(&self) -> usize {
        match self.len {
            0 => 0,
            n => self.bufs[n - 1].as_ref().map_or(0, OutBuf::spare),
        }
    }

    /// Copies as much of `data` as fits into the last slab's spare room; returns the count.
    pub(crate) fn append_to_tail(&mut self, data: &[u8]) -> usize {
        let Some(Some(tail)) = self.len.checked_sub(1).map(|i| self.bufs[i].as_mut()) else {
            return 0;
        };
        let n = data.len().min(tail.spare());
        let end = tail.end as usize;
        tail.slab[end..end + n].copy_from_slice(&data[..n]);
        tail.end += n as u32;
        self.bytes += n;
        n
    }

    /// Queues an empty slab to be filled by [`OutQueue::append_to_tail`].
    /// The caller checks [`OutQueue::slots_full`] first.
    pub(crate) fn push_slab(&mut self, slab: Slab) {
        debug_assert!(self.len < QUEUE_SLOTS);
        self.bufs[self.len] = Some(OutBuf {
            slab,
            start: 0,
            end: 0,
        });
        self.len += 1;
    }

    /// Queues a received chunk as it is (no copy). The caller checks [`OutQueue::slots_full`].
    pub(crate) fn push_chunk(&mut self, chunk: Chunk) {
        debug_assert!(self.len < QUEUE_SLOTS);
        let (start, end) = chunk.range();
        self.bytes += (end - start) as usize;
        self.bufs[self.len] = Some(OutBuf {
            slab: chunk.into_slab(),
            start,
            end,
        });
        self.len += 1;
    }

    /// The first non-empty queued piece: its address and length.
    pub(crate) fn front(&self) -> Option<(*const u8, usize)> {
        self.bufs[..self.len]
            .iter()
            .flatten()
            .find(|b| b.end > b.start)
            .map(|b| (b.bytes().as_ptr(), b.bytes().len()))
    }

    /// Fills `iov` with the queued bytes, front first; returns how many slices were used.
    pub(crate) fn fill_iov<'a>(&'a self, iov: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for b in self.bufs[..self.len].iter().flatten() {
            if n == iov.len() {
                break;
            }
            if b.end > b.start {
                iov[n] = IoSlice::new(b.bytes());
                n += 1;
            }
        }
        n
    }

    /// Drops `n` sent bytes from the front, returning emptied slabs to the pool.
    pub(crate) fn consume(&mut self, mut n: usize) {
        self.bytes -= n.min(self.bytes);
        let mut drained = 0;
        for b in self.bufs[..self.len].iter_mut().flatten() {
            let len = (b.end - b.start) as usize;
            if n < len {
                b.start += n as u32;
                break;
            }
            n -= len;
            drained += 1;
            if n == 0 {
                // A slab with spare room at the end of the queue stays for more writes.
                if drained == self.len && b.spare() > 0 {
                    b.start = 0;
                    b.end = 0;
                    drained -= 1;
                }
                break;
            }
        }
        if drained > 0 {
            for b in &mut self.bufs[..drained] {
                *b = None; // back to the pool
            }
            self.bufs[..self.len].rotate_left(drained);
            self.len -= drained;
        }
    }

    /// Drops everything queued (slabs back to the pool); returns the bytes dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let dropped = self.bytes;
        for b in &mut self.bufs[..self.len] {
            *b = None;
        }
        self.len = 0;
        self.bytes = 0;
        dropped
    }
}

/// Fills `iov` from `bufs`, skipping the first `skip` bytes; returns the slices used.
pub(crate) fn fill_iov_from<'a>(
    bufs: &[&'a [u8]],
    mut skip: usize,
    iov: &mut [IoSlice<'a>],
) -> usize {
    let mut n = 0;
    for b in bufs {
        if n == iov.len() {
            break;
        }
        if skip >= b.len() {
            skip -= b.len();
            continue;
        }
        iov[n] = IoSlice::new(&b[skip..]);
        skip = 0;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_iov_from_skips_sent_bytes() {
        let a: &[u8] = b"hello";
        let b: &[u8] = b"";
        let c: &[u8] = b"world";
        let mut iov = [IoSlice::new(&[]); 4];
        let n = fill_iov_from(&[a, b, c], 0, &mut iov);
        assert_eq!(n, 2);
        assert_eq!(&*iov[0], b"hello");
        let n = fill_iov_from(&[a, b, c], 7, &mut iov);
        assert_eq!(n, 1);
        assert_eq!(&*iov[0], b"rld");
        assert_eq!(fill_iov_from(&[a, b, c], 10, &mut iov), 0);
    }
}
