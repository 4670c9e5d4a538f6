//! Random sequences of pool operations — take, take-and-wait, release, poll a waiter, cancel
//! a waiter — checked against a model after every step:
//! - a slab index is never handed out twice at once, and slab memory never overlaps;
//! - slabs in use equal the slabs the model holds, and never exceed the capacity;
//! - waiters are served first come, first served: a waiter that gets a slab is the oldest
//!   one still waiting among those the pool has woken;
//! - once everything is released and every waiter is gone, all slabs are free.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardnet::pool::{Pool, PoolConfig, Slab, Take};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A taker that got a slab without waiting must not have overtaken anyone: every earlier
/// waiter must already hold a grant. Polls them all (taking their slabs).
fn all_granted<'a>(
    waiters: &mut Vec<(u64, Pin<Box<Take<'a>>>)>,
    held: &mut Vec<Slab>,
    cx: &mut Context<'_>,
    who: &str,
) {
    for (n, mut w) in waiters.drain(..) {
        match w.as_mut().poll(cx) {
            Poll::Ready(s) => held.push(s),
            Poll::Pending => panic!("{who} overtook waiter {n}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, ops)) = data.split_first() else {
        return;
    };
    let slabs = 1 + (first % 8) as usize;
    let pool = Pool::new(
        &PoolConfig {
            slab_size: 64,
            slabs,
            ..PoolConfig::default()
        },
        16,
    )
    .expect("a small pool maps");
    let mut held: Vec<Slab> = Vec::new();
    // Waiters in the order they started waiting, with their arrival number.
    let mut waiters: Vec<(u64, Pin<Box<Take<'_>>>)> = Vec::new();
    let mut arrivals = 0u64;
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);

    for pair in ops.chunks(2) {
        let op = pair[0] % 5;
        let arg = *pair.get(1).unwrap_or(&0) as usize;
        match op {
            0 => {
                if let Some(s) = pool.try_take() {
                    held.push(s);
                    all_granted(&mut waiters, &mut held, &mut cx, "try_take");
                }
            }
            1 => {
                let mut t = Box::pin(pool.take());
                match t.as_mut().poll(&mut cx) {
                    Poll::Ready(s) => {
                        held.push(s);
                        all_granted(&mut waiters, &mut held, &mut cx, "a new take");
                    }
                    Poll::Pending => {
                        waiters.push((arrivals, t));
                        arrivals += 1;
                    }
                }
            }
            2 => {
                if !held.is_empty() {
                    held.swap_remove(arg % held.len());
                }
            }
            3 => {
                if !waiters.is_empty() {
                    let i = arg % waiters.len();
                    if let Poll::Ready(s) = waiters[i].1.as_mut().poll(&mut cx) {
                        held.push(s);
                        waiters.remove(i);
                        // Grants go front first: every older waiter must hold one too.
                        for (n, mut older) in waiters.drain(..i) {
                            match older.as_mut().poll(&mut cx) {
                                Poll::Ready(s) => held.push(s),
                                Poll::Pending => panic!("waiter {n} was overtaken"),
                            }
                        }
                    }
                }
            }
            _ => {
                if !waiters.is_empty() {
                    let i = arg % waiters.len();
                    waiters.remove(i); // cancels: leaves the queue or passes its slab on
                }
            }
        }
        let indices: HashSet<u32> = held.iter().map(Slab::index).collect();
        assert_eq!(indices.len(), held.len(), "a slab was handed out twice");
        assert_eq!(
            pool.in_use(),
            held.len(),
            "pool and model disagree on slabs in use"
        );
        assert!(pool.in_use() <= pool.capacity());
        for s in &held {
            assert_eq!(s.len(), 64);
        }
    }
    waiters.clear();
    held.clear();
    assert_eq!(pool.in_use(), 0);
    assert_eq!(pool.available(), slabs, "every slab is free at the end");
});
