//! Heap allocations per echo round trip in steady state, counted by a counting global
//! allocator. Each counted allocation is attributed to the innermost crate on its stack
//! (shardnet, glommio, or other): shardnet's own code must allocate nothing; what the runtime
//! allocates is reported so the performance work knows what is left.
//!
//! This binary holds a single test so no other test's allocations are counted.

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicU64 = AtomicU64::new(0);
static SAMPLED: AtomicU64 = AtomicU64::new(0);
static SAMPLES: Mutex<Vec<String>> = Mutex::new(Vec::new());
const MAX_SAMPLES: u64 = 300;

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

impl Counting {
    fn note(&self) {
        if !ARMED.load(Ordering::Relaxed) {
            return;
        }
        INSIDE.with(|inside| {
            if inside.get() {
                return; // an allocation made by our own bookkeeping
            }
            inside.set(true);
            COUNT.fetch_add(1, Ordering::Relaxed);
            if SAMPLED.fetch_add(1, Ordering::Relaxed) < MAX_SAMPLES {
                let trace = Backtrace::force_capture().to_string();
                SAMPLES.lock().unwrap().push(trace);
            }
            inside.set(false);
        });
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting has no effect
// on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Which of shardnet and glommio is the innermost on the allocation's stack ("other" when
/// neither is: the test's own client code, std's thread start-up).
fn owner(trace: &str) -> &'static str {
    for line in trace.lines() {
        // Frame lines look like "12: crate::module::function" or "12: <T as crate::Trait>::f".
        let Some((num, sym)) = line.trim().split_once(": ") else {
            continue;
        };
        if num.parse::<u32>().is_err() {
            continue;
        }
        let sym = sym.trim_start_matches('<');
        if sym.starts_with("shardnet::") {
            return "shardnet";
        }
        if sym.starts_with("glommio::") {
            return "glommio";
        }
    }
    "other"
}

#[test]
fn steady_state_echo_allocations_are_the_runtimes_not_ours() {
    let mut config = util::config();
    config.cores = shardnet::Cores::Count(1);
    let server = util::start_echo(config);
    let mut s = util::connect(server.local_addr());
    let msg = [0x5Au8; 64];
    let mut buf = Vec::with_capacity(64);
    for _ in 0..3000 {
        util::roundtrip(&mut s, &msg, &mut buf); // warm up: lazy setup, caches, timers
    }
    const ROUNDS: u64 = 5000;
    ARMED.store(true, Ordering::SeqCst);
    for _ in 0..ROUNDS {
        util::roundtrip(&mut s, &msg, &mut buf);
    }
    ARMED.store(false, Ordering::SeqCst);
    let total = COUNT.load(Ordering::SeqCst);
    let samples = SAMPLES.lock().unwrap().clone();
    let mut by_owner = std::collections::BTreeMap::<&str, u64>::new();
    for t in &samples {
        *by_owner.entry(owner(t)).or_default() += 1;
    }
    eprintln!(
        "allocations per echo round trip: {:.3} ({total} in {ROUNDS}); of {} sampled: {by_owner:?}",
        total as f64 / ROUNDS as f64,
        samples.len()
    );
    if let Some(t) = samples.iter().find(|t| owner(t) == "shardnet") {
        panic!("shardnet allocated on the steady-state path:\n{t}");
    }
    if let Some(t) = samples.iter().find(|t| owner(t) != "glommio") {
        eprintln!("example of an allocation not attributed to glommio:\n{t}");
    }
    assert!(!samples.is_empty() || total == 0);
}
