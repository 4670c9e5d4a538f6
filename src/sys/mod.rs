//! The one boundary between shardnet and the outside world.
//!
//! Everything that touches the operating system or the runtime goes through this module, so the
//! receive path can change (for example onto a shard-owned io_uring ring) without touching the
//! public API:
//!
//! * [`socket`]: listener setup (`SO_REUSEPORT`), socket options, the non-blocking `sendmsg`
//!   and `recv` calls of the sync-first paths;
//! * [`runtime`]: glommio — executor threads pinned to cores, the stream and listener types,
//!   timers, task spawning, and a cross-thread wake-up;
//! * [`limits`]: resource limits (`RLIMIT_NOFILE`, `RLIMIT_MEMLOCK`) and the online cores.
//!
//! Memory mapping for the buffer pools lives with the pool (`pool::region`), which owns all
//! pointer arithmetic.

pub(crate) mod limits;
pub(crate) mod runtime;
pub(crate) mod socket;
pub(crate) mod uring;

use std::io;

/// Turns a libc return value into an `io::Result`: `-1` becomes `io::Error::last_os_error()`.
pub(crate) fn cvt<T: IsMinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Integer return types of libc calls that signal failure with `-1`.
pub(crate) trait IsMinusOne {
    fn is_minus_one(&self) -> bool;
}

impl IsMinusOne for libc::c_int {
    fn is_minus_one(&self) -> bool {
        *self == -1
    }
}

impl IsMinusOne for libc::ssize_t {
    fn is_minus_one(&self) -> bool {
        *self == -1
    }
}
