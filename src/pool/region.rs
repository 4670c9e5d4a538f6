//! One contiguous anonymous mapping: the memory behind a shard's pool.
//!
//! Owns `len` bytes from `mmap` until drop (`munmap`). The pages are populated at creation, so
//! the pool's memory is committed once at start and resident memory does not grow with
//! traffic. Optionally backed by huge pages and locked in RAM where the system allows.

use crate::sys::cvt;
use std::io;
use std::ptr::NonNull;

/// How the region's pages ended up, after the best-effort options were tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegionFlags {
    /// Backed by explicit huge pages (`MAP_HUGETLB`).
    pub huge_pages: bool,
    /// Transparent huge pages were requested with `madvise` (the fallback when explicit huge
    /// pages are not reserved).
    pub transparent_huge_pages: bool,
    /// Locked in RAM with `mlock`.
    pub locked: bool,
}

/// An anonymous private mapping of `len` bytes, page aligned.
#[derive(Debug)]
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    flags: RegionFlags,
}

const HUGE_PAGE: usize = 2 * 1024 * 1024;

impl Region {
    /// Maps and populates `len` bytes (`len > 0`).
    ///
    /// `huge_pages` tries `MAP_HUGETLB` and falls back to ordinary pages with
    /// `MADV_HUGEPAGE`; `lock` tries `mlock` and falls back to unlocked memory. Both fallbacks
    /// are logged and reported in [`Region::flags`].
    ///
    /// # Errors
    /// The `mmap` error (usually `ENOMEM`); `InvalidInput` when `len` is 0.
    pub(crate) fn new(len: usize, huge_pages: bool, lock: bool) -> io::Result<Region> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty region"));
        }
        let mut flags = RegionFlags::default();
        let mut mapped = None;
        if huge_pages {
            let huge_len = len.div_ceil(HUGE_PAGE) * HUGE_PAGE;
            match map(huge_len, libc::MAP_HUGETLB) {
                Ok(ptr) => {
                    flags.huge_pages = true;
                    mapped = Some((ptr, huge_len));
                }
                Err(e) => log::warn!("pool: MAP_HUGETLB failed ({e}); using ordinary pages"),
            }
        }
        let (ptr, len) = match mapped {
            Some(m) => m,
            None => (map(len, 0)?, len),
        };
        let mut region = Region { ptr, len, flags };
        if huge_pages && !region.flags.huge_pages {
            // SAFETY: the range is exactly our mapping; madvise only changes paging policy.
            let r = unsafe { libc::madvise(region.ptr.as_ptr().cast(), len, libc::MADV_HUGEPAGE) };
            region.flags.transparent_huge_pages = r == 0;
        }
        if lock {
            // SAFETY: the range is exactly our mapping.
            match cvt(unsafe { libc::mlock(region.ptr.as_ptr().cast(), len) }) {
                Ok(_) => region.flags.locked = true,
                Err(e) => {
                    log::warn!("pool: mlock of {len} bytes failed ({e}); memory stays unlocked")
                }
            }
        }
        Ok(region)
    }

    /// The first byte of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Mapped length in bytes (rounded up to a huge page when huge pages are used).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// What the best-effort options achieved.
    pub(crate) fn flags(&self) -> RegionFlags {
        self.flags
    }
}

fn map(len: usize, extra_flags: libc::c_int) -> io::Result<NonNull<u8>> {
    // SAFETY: anonymous private mapping at an address of the kernel's choice; no fd involved.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | extra_flags,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping created in `new`, unmapped once here;
        // no slab outlives the region (slabs hold the pool, which holds the region).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
