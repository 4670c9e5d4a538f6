//! Pool unit tests: take/release, exhaustion, FIFO wake-up order, cancellation, stats.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Wake;

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn waker() -> (Arc<CountingWaker>, Waker) {
    let w = Arc::new(CountingWaker(AtomicUsize::new(0)));
    (w.clone(), Waker::from(w))
}

fn pool(slabs: usize) -> Pool {
    Pool::new(
        &PoolConfig {
            slab_size: 128,
            slabs,
            ..PoolConfig::default()
        },
        8,
    )
    .expect("small pool maps")
}

fn poll<F: Future + Unpin>(f: &mut F, w: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(w))
}

#[test]
fn take_and_release_distinct_slabs() {
    let p = pool(3);
    let mut a = p.try_take().unwrap();
    let mut b = p.try_take().unwrap();
    assert_ne!(a.index(), b.index());
    assert_eq!(a.len(), 128);
    a.fill(0xAA);
    b.fill(0x55);
    assert!(a.iter().all(|&x| x == 0xAA), "slabs do not overlap");
    assert_eq!(p.in_use(), 2);
    assert_eq!(p.available(), 1);
    drop(a);
    assert_eq!(p.in_use(), 1);
    let s = p.stats();
    assert_eq!(s.high_water, 2);
    assert_eq!(s.takes, 2);
    assert_eq!(s.waits, 0);
}

#[test]
fn lifo_reuse_of_the_last_released_slab() {
    let p = pool(4);
    let a = p.try_take().unwrap();
    let idx = a.index();
    drop(a);
    assert_eq!(p.try_take().unwrap().index(), idx);
}

#[test]
fn exhaustion_returns_none_and_never_allocates_more() {
    let p = pool(2);
    let held: Vec<Slab> = (0..2).map(|_| p.try_take().unwrap()).collect();
    assert!(p.try_take().is_none());
    assert_eq!(p.in_use(), 2);
    assert_eq!(p.stats().slabs_total, 2);
    drop(held);
    assert_eq!(p.in_use(), 0);
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let p = pool(1);
    let held = p.try_take().unwrap();
    let (c1, w1) = waker();
    let (c2, w2) = waker();
    let (c3, w3) = waker();
    let mut t1 = p.take();
    let mut t2 = p.take();
    let mut t3 = p.take();
    assert!(poll(&mut t1, &w1).is_pending());
    assert!(poll(&mut t2, &w2).is_pending());
    assert!(poll(&mut t3, &w3).is_pending());
    assert_eq!(p.stats().waits, 3);

    drop(held);
    assert_eq!(c1.0.load(Ordering::SeqCst), 1, "first waiter woken");
    assert_eq!(c2.0.load(Ordering::SeqCst), 0);
    // A newcomer cannot overtake the woken waiter.
    assert!(p.try_take().is_none());
    // The second waiter, polled early, is still queued.
    assert!(poll(&mut t2, &w2).is_pending());
    let s1 = match poll(&mut t1, &w1) {
        Poll::Ready(s) => s,
        Poll::Pending => panic!("woken waiter must get the slab"),
    };
    drop(s1);
    assert_eq!(c2.0.load(Ordering::SeqCst), 1, "second waiter woken next");
    assert_eq!(c3.0.load(Ordering::SeqCst), 0);
    let s2 = match poll(&mut t2, &w2) {
        Poll::Ready(s) => s,
        Poll::Pending => panic!("second waiter must get the slab"),
    };
    drop(s2);
    let s3 = match poll(&mut t3, &w3) {
        Poll::Ready(s) => s,
        Poll::Pending => panic!("third waiter must get the slab"),
    };
    drop(s3);
    assert_eq!(p.in_use(), 0);
    assert_eq!(p.available(), 1);
    assert_eq!(
        p.wait_histogram().len(),
        3,
        "each completed wait is recorded"
    );
}

#[test]
fn cancelled_waiter_leaves_the_queue() {
    let p = pool(1);
    let held = p.try_take().unwrap();
    let (_c1, w1) = waker();
    let (c2, w2) = waker();
    let mut t1 = p.take();
    let mut t2 = p.take();
    assert!(poll(&mut t1, &w1).is_pending());
    assert!(poll(&mut t2, &w2).is_pending());
    drop(t1); // gives up its place
    drop(held);
    assert_eq!(c2.0.load(Ordering::SeqCst), 1, "next waiter woken instead");
    assert!(poll(&mut t2, &w2).is_ready());
}

#[test]
fn woken_but_dropped_waiter_passes_the_slab_on() {
    let p = pool(1);
    let held = p.try_take().unwrap();
    let (c1, w1) = waker();
    let (c2, w2) = waker();
    let mut t1 = p.take();
    let mut t2 = p.take();
    assert!(poll(&mut t1, &w1).is_pending());
    assert!(poll(&mut t2, &w2).is_pending());
    drop(held);
    assert_eq!(c1.0.load(Ordering::SeqCst), 1);
    drop(t1); // woken, never took its reserved slab
    assert_eq!(
        c2.0.load(Ordering::SeqCst),
        1,
        "reservation moved to the next waiter"
    );
    let s = match poll(&mut t2, &w2) {
        Poll::Ready(s) => s,
        Poll::Pending => panic!("reservation was passed on"),
    };
    drop(s);
    drop(t2);
    assert_eq!(p.available(), 1);
    assert!(p.try_take().is_some());
}

#[test]
fn slabs_outlive_the_pool_handle() {
    let p = pool(2);
    let mut s = p.try_take().unwrap();
    drop(p);
    s[0] = 7; // the region stays mapped while a slab holds it
    assert_eq!(s[0], 7);
}

#[test]
fn config_validation() {
    let ok = PoolConfig::default();
    assert_eq!(ok.validate(), Ok(16 * 1024 * 4096));
    let bad = PoolConfig {
        slab_size: 16,
        ..PoolConfig::default()
    };
    assert_eq!(bad.validate(), Err(PoolConfigError::SlabSize(16)));
    let bad = PoolConfig {
        slabs: 0,
        ..PoolConfig::default()
    };
    assert_eq!(bad.validate(), Err(PoolConfigError::SlabCount(0)));
    // Valid on paper (64 PiB), refused by the kernel: a clean error, not a crash.
    let huge = PoolConfig {
        slab_size: 16 * 1024 * 1024,
        slabs: u32::MAX as usize,
        ..PoolConfig::default()
    };
    assert!(Pool::new(&huge, 1).is_err());
}
