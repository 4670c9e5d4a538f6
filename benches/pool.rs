//! Buffer acquisition: a shardnet pool slab against heap allocation of the same size.
//!
//! ```text
//! cargo bench --bench pool
//! ```
//!
//! Each iteration gets one 16 KiB buffer (the default slab size) and gives it back: with
//! `Pool::try_take` and a drop (a free-list pop and push, no allocation), with
//! `Vec::with_capacity` and a drop (malloc and free), with `vec![0; n]` (calloc, which zeroes),
//! and with `BytesMut::with_capacity`. The `batch64` variants hold 64
//! buffers at once before releasing them, as 64 in-flight receives would. No executor is
//! needed: the pool is plain single-threaded code. Pin it for steadier numbers:
//! `taskset -c 0 cargo bench --bench pool`.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use shardnet::pool::{Pool, PoolConfig};
use std::hint::black_box;

const SIZE: usize = 16 * 1024;
const BATCH: usize = 64;

fn pool() -> Pool {
    let config = PoolConfig {
        slab_size: SIZE,
        slabs: 1024,
        ..PoolConfig::default()
    };
    Pool::new(&config, 16).expect("a 16 MiB pool")
}

fn single(c: &mut Criterion) {
    let mut g = c.benchmark_group("buffer_16k");
    let p = pool();
    g.bench_function("pool_take_release", |b| {
        b.iter(|| {
            let slab = p.try_take().expect("the pool has free slabs");
            black_box(&slab);
        })
    });
    g.bench_function("vec_with_capacity", |b| {
        b.iter(|| {
            let v: Vec<u8> = Vec::with_capacity(black_box(SIZE));
            black_box(&v);
        })
    });
    g.bench_function("vec_zeroed", |b| {
        b.iter(|| {
            let v = vec![0u8; black_box(SIZE)];
            black_box(&v);
        })
    });
    g.bench_function("bytesmut_with_capacity", |b| {
        b.iter(|| {
            let v = BytesMut::with_capacity(black_box(SIZE));
            black_box(&v);
        })
    });
    g.finish();
}

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("buffer_16k_batch64");
    let p = pool();
    let mut slabs = Vec::with_capacity(BATCH);
    g.bench_function("pool_take_release", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                slabs.push(p.try_take().expect("the pool has free slabs"));
            }
            black_box(&slabs);
            slabs.clear();
        })
    });
    let mut vecs: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    g.bench_function("vec_with_capacity", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                vecs.push(Vec::with_capacity(black_box(SIZE)));
            }
            black_box(&vecs);
            vecs.clear();
        })
    });
    let mut bufs: Vec<BytesMut> = Vec::with_capacity(BATCH);
    g.bench_function("bytesmut_with_capacity", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                bufs.push(BytesMut::with_capacity(black_box(SIZE)));
            }
            black_box(&bufs);
            bufs.clear();
        })
    });
    g.finish();
}

criterion_group!(benches, single, batch);
criterion_main!(benches);
