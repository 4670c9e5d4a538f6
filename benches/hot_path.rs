//! Per-request bookkeeping on a shard: the sequence stamp and the latency histogram.
//!
//! ```text
//! cargo bench --bench hot_path
//! ```
//!
//! * `stamp/cell`: the shard's stamp, a `Cell<u64>` read and write (nothing crosses threads);
//!   `stamp/atomic_relaxed` is what a shared counter would cost (`AtomicU64::fetch_add`, a
//!   locked instruction even when uncontended).
//! * `histogram/saturating_record`: one `hdrhistogram` record into the histogram the shard
//!   and shardnet-load use (1 ns ..= 60 s, 3 significant digits), over a fixed, seeded mix of
//!   values from 1 µs to 100 ms so the bucket lookups are not all the same.

use criterion::{criterion_group, criterion_main, Criterion};
use hdrhistogram::Histogram;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

fn stamp(c: &mut Criterion) {
    let mut g = c.benchmark_group("stamp");
    let seq = Cell::new(0u64);
    g.bench_function("cell", |b| {
        b.iter(|| {
            let s = black_box(&seq).get();
            seq.set(s + 1);
            black_box(s)
        })
    });
    let atomic = AtomicU64::new(0);
    g.bench_function("atomic_relaxed", |b| {
        b.iter(|| black_box(&atomic).fetch_add(1, Ordering::Relaxed))
    });
    g.finish();
}

fn histogram(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram");
    let mut rng = SmallRng::seed_from_u64(6);
    // Latencies in ns, log-uniform-ish between 1 µs and 100 ms.
    let values: Vec<u64> = (0..4096)
        .map(|_| {
            let exp: f64 = rng.gen_range(3.0..8.0);
            10f64.powf(exp) as u64
        })
        .collect();
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    let mut i = 0usize;
    g.bench_function("saturating_record", |b| {
        b.iter(|| {
            h.saturating_record(black_box(values[i & 4095]));
            i = i.wrapping_add(1);
        })
    });
    g.finish();
    black_box(h.len());
}

criterion_group!(benches, stamp, histogram);
criterion_main!(benches);
