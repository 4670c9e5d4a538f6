//! The shard's own io_uring instance (through the `io-uring` crate).
//!
//! One ring per shard, used only from the shard's thread: socket receives (into the pool's
//! provided-buffer ring), sends, accepts and timeouts are submitted here and reaped by the
//! shard driver. It is created with `COOP_TASKRUN | TASKRUN_FLAG` (completion work runs when
//! we enter the ring, not through signal IPIs) — or `DEFER_TASKRUN` (it runs only in our
//! waits) — and `SINGLE_ISSUER`.
//!
//! Owns: the ring's mappings (SQ, CQ, SQE array) and its descriptor, plus an eventfd the kernel
//! signals on completions while notifications are enabled (used only when the driver parks
//! through glommio). No allocation after creation.

use io_uring::{cqueue, squeue, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A completion, copied out of the CQ.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completion {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
}

impl Completion {
    /// The provided buffer the kernel picked for this receive, if any.
    pub(crate) fn buffer(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }

    /// More completions will follow for this (multishot) request.
    pub(crate) fn more(&self) -> bool {
        cqueue::more(self.flags)
    }
}

/// The ring.
pub(crate) struct Uring {
    ring: IoUring,
    eventfd: OwnedFd,
    /// Enters so far (for the stats and the sync-send accounting).
    enters: u64,
}

impl std::fmt::Debug for Uring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uring")
            .field("fd", &self.ring.as_raw_fd())
            .field("enters", &self.enters)
            .finish()
    }
}

impl Uring {
    /// Creates a ring with `entries` submission slots (and 4× as many completion slots).
    ///
    /// # Errors
    /// The `io_uring_setup` error (`ENOSYS` without io_uring, `EPERM` under a seccomp filter,
    /// `ENOMEM` when locked memory is short), or the eventfd's.
    pub(crate) fn new(entries: u32, defer_taskrun: bool) -> io::Result<Uring> {
        let mut b = IoUring::builder();
        if defer_taskrun {
            b.setup_defer_taskrun();
        } else {
            b.setup_coop_taskrun();
        }
        let ring = b
            .setup_taskrun_flag()
            .setup_single_issuer()
            .setup_cqsize(entries.saturating_mul(4))
            .setup_clamp()
            .build(entries)?;
        // SAFETY: eventfd returns a new descriptor or -1.
        let efd = super::cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })?;
        // SAFETY: `efd` is a fresh descriptor nobody else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(efd) };
        ring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        let mut u = Uring {
            ring,
            eventfd,
            enters: 0,
        };
        u.ring.completion().disable_eventfd();
        Ok(u)
    }

    /// The ring's descriptor.
    pub(crate) fn fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// The eventfd the kernel signals while notifications are enabled.
    pub(crate) fn eventfd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// Turns completion notifications through the eventfd on or off.
    pub(crate) fn set_eventfd_notifications(&mut self, on: bool) {
        if on {
            self.ring.completion().enable_eventfd();
        } else {
            self.ring.completion().disable_eventfd();
        }
    }

    /// Enters so far.
    pub(crate) fn enters(&self) -> u64 {
        self.enters
    }

    /// Queues `entry`, submitting first if the queue is full.
    ///
    /// # Safety
    /// Every buffer and structure `entry` points to must stay valid until its completion is
    /// reaped (the kernel may read or write it until then).
    pub(crate) unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: forwarded from our caller.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            self.submit()?;
        }
    }

    /// True when entries are queued but not submitted, or the kernel has completion work
    /// waiting for an enter.
    pub(crate) fn needs_enter(&mut self) -> bool {
        let sq = self.ring.submission();
        !sq.is_empty() || sq.taskrun() || sq.cq_overflow()
    }

    /// Submits what is queued (and runs pending completion work) without waiting.
    ///
    /// # Errors
    /// The `io_uring_enter` error other than `EINTR`/`EBUSY` (which just mean "try later").
    pub(crate) fn submit(&mut self) -> io::Result<()> {
        self.enters += 1;
        match self.ring.submit() {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Submits what is queued and waits for one completion, however long it takes.
    ///
    /// # Errors
    /// As for [`Uring::submit`]; a signal is not an error.
    pub(crate) fn submit_and_wait_any(&mut self) -> io::Result<()> {
        self.enters += 1;
        match self.ring.submit_and_wait(1) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Submits what is queued and waits for one completion, at most `timeout`.
    ///
    /// # Errors
    /// As for [`Uring::submit`]; a timeout or a signal is not an error.
    #[allow(dead_code)] // the driver's waits are bounded by its tick instead (no timer per wait)
    pub(crate) fn submit_and_wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.enters += 1;
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Copies up to `out.len()` completions out of the CQ; returns how many.
    pub(crate) fn reap(&mut self, out: &mut [Completion]) -> usize {
        let mut n = 0;
        let mut cq = self.ring.completion();
        cq.sync();
        for (slot, e) in out.iter_mut().zip(&mut cq) {
            *slot = Completion {
                user_data: e.user_data(),
                result: e.result(),
                flags: e.flags(),
            };
            n += 1;
        }
        n
    }

    /// True when the kernel has completion work for us (we must enter to collect it) or
    /// completions already wait in the CQ: a userspace check, no syscall.
    pub(crate) fn work_pending(&mut self) -> bool {
        if self.ring.submission().taskrun() {
            return true;
        }
        self.has_completions()
    }

    /// True when completions are waiting in the CQ.
    pub(crate) fn has_completions(&mut self) -> bool {
        let mut cq = self.ring.completion();
        cq.sync();
        !cq.is_empty()
    }

    /// Registers a provided-buffer ring of `entries` descriptors at `addr` as group `bgid`.
    ///
    /// # Safety
    /// `addr` must point to `entries` page-aligned `BufRingEntry` descriptors that stay mapped
    /// until [`Uring::unregister_buf_ring`] or the ring's drop, and every buffer they describe
    /// must stay valid as long as the kernel may write into it.
    pub(crate) unsafe fn register_buf_ring(
        &self,
        addr: u64,
        entries: u16,
        bgid: u16,
    ) -> io::Result<()> {
        // SAFETY: forwarded from our caller.
        unsafe {
            self.ring
                .submitter()
                .register_buf_ring_with_flags(addr, entries, bgid, 0)
        }
    }

    /// Unregisters buffer group `bgid`.
    ///
    /// # Errors
    /// The `io_uring_register` error.
    pub(crate) fn unregister_buf_ring(&self, bgid: u16) -> io::Result<()> {
        self.ring.submitter().unregister_buf_ring(bgid)
    }
}
