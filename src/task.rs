//! Tasks and time on the current shard, for handlers and state factories.
//!
//! Thin wrappers over the shard's executor (glommio), so user code needs no runtime of its
//! own and the framework stays free to change what runs underneath. Everything here must be
//! called on a shard's thread (from a handler, a state factory, or a task they spawned).
//!
//! With the io_uring backend the shard's driver may wait in its own ring for up to
//! `driver_block` (default 1 ms) while the shard is idle; a [`sleep`] that ends during such a
//! wait is served when it ends — so sleeps are at most that much late.

use std::future::Future;
use std::time::Duration;

/// Runs `fut` on the current shard, detached: it runs until it completes, even if nobody
/// waits for it. Allocates the task.
///
/// # Panics
/// Outside a shard's thread (there is no executor to run it).
pub fn spawn<F: Future<Output = ()> + 'static>(fut: F) {
    crate::sys::runtime::spawn(fut)
}

/// Waits `d` on the current shard without blocking it (one runtime timer).
pub async fn sleep(d: Duration) {
    crate::sys::runtime::sleep(d).await
}

/// Lets the shard's other tasks run if this one has run for a while (call it in long loops).
pub async fn yield_if_needed() {
    crate::sys::runtime::yield_if_needed().await
}
