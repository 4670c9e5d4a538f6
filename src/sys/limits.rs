//! Resource limits and the cores this process may run on.

use super::cvt;
use std::io;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Returns `(previous, now)`.
///
/// # Errors
/// The `getrlimit`/`setrlimit` error.
pub(crate) fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads one rlimit from `lim`.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    }
    Ok((before, lim.rlim_cur))
}

/// The soft `RLIMIT_MEMLOCK` in bytes (`u64::MAX` when unlimited).
pub(crate) fn memlock_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    match cvt(unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) }) {
        Ok(_) if lim.rlim_cur == libc::RLIM_INFINITY => u64::MAX,
        Ok(_) => lim.rlim_cur,
        Err(_) => 0,
    }
}

/// The CPU ids this process may run on (its affinity mask), ascending.
pub(crate) fn allowed_cores() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids
}
