//! [`Slab`]: exclusive ownership of one fixed-size piece of a pool's region.

use super::Inner;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

/// One slab of a shard's pool: `slab_size` bytes, owned exclusively until dropped.
///
/// Derefs to the whole slab (its full capacity). Dropping it returns the slab to its pool's
/// free list (O(1), no allocation) and hands it to the oldest waiter, if any. A `Slab` is
/// `!Send`: it never leaves the shard whose pool it came from.
pub struct Slab {
    pool: Rc<Inner>,
    index: u32,
}

impl Slab {
    /// Wraps index `index`, just popped from the free list.
    pub(super) fn new(pool: Rc<Inner>, index: u32) -> Slab {
        Slab { pool, index }
    }

    /// The slab's index in its pool's region.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Bytes in the slab.
    pub fn capacity(&self) -> usize {
        self.pool.slab_size
    }
}

impl Deref for Slab {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `slab_ptr` is in bounds for `slab_size` bytes of the live region (this
        // handle holds the pool, which holds the region). The region was zero-filled by mmap,
        // so the bytes are initialised. No other handle to this index exists while `self`
        // lives (an index leaves the free list for exactly one `Slab`), so no `&mut` aliases.
        unsafe { std::slice::from_raw_parts(self.pool.slab_ptr(self.index), self.pool.slab_size) }
    }
}

impl DerefMut for Slab {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only live reference to the bytes.
        unsafe {
            std::slice::from_raw_parts_mut(self.pool.slab_ptr(self.index), self.pool.slab_size)
        }
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        self.pool.release(self.index);
    }
}

impl fmt::Debug for Slab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slab")
            .field("index", &self.index)
            .field("capacity", &self.pool.slab_size)
            .finish()
    }
}
