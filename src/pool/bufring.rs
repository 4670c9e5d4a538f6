//! The pool's free slabs, lent to the kernel as an io_uring provided-buffer ring.
//!
//! ```text
//!  descriptor ring (one page-aligned mmap, `entries` × 16 bytes, shared with the kernel)
//!  ┌───────────────┬───────────────┬─────┐   each entry: addr of a slab, its length, its id
//!  │ slab 7        │ slab 3        │ ... │   (the slab index)
//!  └───────────────┴───────────────┴─────┘
//!    ^ kernel head (consumes)         ^ our tail (provides; published with a release store)
//! ```
//!
//! A receive armed with buffer selection takes the next descriptor only when data arrives, so
//! an idle connection holds no slab. The completion names the slab; the pool turns it back
//! into a [`Slab`](super::Slab) handle. Freed slabs are provided again (up to a target that
//! leaves a reserve for writes), so the free list and this ring together always account for
//! every slab that is not in use.

use io_uring::types::BufRingEntry;
use std::cell::Cell;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

/// The descriptor ring. Owns its mapping; the buffers are the pool's slabs.
#[derive(Debug)]
pub(crate) struct BufRing {
    entries: NonNull<BufRingEntry>,
    /// Number of descriptors (a power of two, at least the slab count).
    len: u16,
    map_len: usize,
    tail: Cell<u16>,
    /// Slabs currently provided to the kernel.
    provided: Cell<u32>,
}

impl BufRing {
    /// Maps a descriptor ring with room for `slabs` buffers.
    ///
    /// # Errors
    /// `InvalidInput` above 32768 slabs (the kernel's limit per group); the `mmap` error.
    pub(crate) fn new(slabs: u32) -> io::Result<BufRing> {
        if slabs == 0 || slabs > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the io_uring backend supports 1 ..= 32768 slabs per shard",
            ));
        }
        let len = slabs.next_power_of_two() as u16;
        let map_len = (len as usize * std::mem::size_of::<BufRingEntry>()).max(4096);
        // SAFETY: anonymous private mapping at an address of the kernel's choice.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let entries =
            NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(BufRing {
            entries,
            len,
            map_len,
            tail: Cell::new(0),
            provided: Cell::new(0),
        })
    }

    /// Address of the descriptors, for registration.
    pub(crate) fn addr(&self) -> u64 {
        self.entries.as_ptr() as u64
    }

    /// Number of descriptors.
    pub(crate) fn len(&self) -> u16 {
        self.len
    }

    /// Slabs currently provided to the kernel.
    pub(crate) fn provided(&self) -> u32 {
        self.provided.get()
    }

    /// Provides slab `index` (at `addr`, `slab_len` bytes) and publishes the new tail.
    pub(crate) fn provide(&self, index: u32, addr: *mut u8, slab_len: usize) {
        debug_assert!(self.provided.get() < self.len as u32);
        let tail = self.tail.get();
        let slot = (tail & (self.len - 1)) as usize;
        // SAFETY: `slot < len`, inside our mapping. The kernel reads only entries between its
        // head and the published tail; this one is past the published tail, so nobody else
        // reads it while we write.
        unsafe {
            let e = &mut *self.entries.as_ptr().add(slot);
            e.set_addr(addr as u64);
            e.set_len(slab_len as u32);
            e.set_bid(index as u16);
        }
        let tail = tail.wrapping_add(1);
        self.tail.set(tail);
        // SAFETY: the ring's tail field overlays the reserved field of entry 0 (the kernel's
        // layout); it is a naturally aligned u16 inside our mapping, which the kernel only
        // reads. The release store publishes the entry written above before the new tail.
        unsafe {
            let t = BufRingEntry::tail(self.entries.as_ptr()) as *mut u16;
            AtomicU16::from_ptr(t).store(tail, Ordering::Release);
        }
        self.provided.set(self.provided.get() + 1);
    }

    /// Records that the kernel handed one provided slab to a completion.
    pub(crate) fn consumed(&self) {
        self.provided.set(self.provided.get().saturating_sub(1));
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: exactly our mapping. The pool keeps the ring until it is dropped, and the
        // driver unregisters it (or tears the io_uring down) before the pool can go away.
        unsafe { libc::munmap(self.entries.as_ptr().cast(), self.map_len) };
    }
}
