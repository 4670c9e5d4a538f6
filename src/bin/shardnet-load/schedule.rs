//! Time plans: the open-loop send schedule and the one-second reporting ticks.
//!
//! Times are nanoseconds since the run's epoch (the moment all connections were up).

/// Open loop: request `k` of connection `c` (of `C`) is due at `(c + k C) / R` seconds, so each
/// connection sends every `C / R` seconds and together they send evenly every `1 / R`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    interval_ns: f64,
    connections: u64,
}

impl Schedule {
    /// `rate` requests per second in total over `connections` connections.
    pub fn new(rate: f64, connections: u64) -> Schedule {
        Schedule {
            interval_ns: 1e9 / rate,
            connections: connections.max(1),
        }
    }

    /// When request `k` of connection `conn` should leave.
    pub fn due_ns(&self, conn: u64, k: u64) -> u64 {
        let n = conn as f64 + k as f64 * self.connections as f64;
        (n * self.interval_ns) as u64
    }
}

/// A reporting tick: the end of a reporting interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// When the interval ends.
    pub at_ns: u64,
    /// Whether the interval is measured (after the warmup).
    pub measured: bool,
}

/// Ticks every second through the warmup (the last one at its end), then every second of the
/// measured time (the last at its end, so a fractional duration ends in a short interval).
pub fn ticks(warmup_ns: u64, duration_ns: u64) -> Vec<Tick> {
    const SECOND: u64 = 1_000_000_000;
    let mut out = Vec::new();
    let mut t = 0;
    while t < warmup_ns {
        t = (t + SECOND).min(warmup_ns);
        out.push(Tick {
            at_ns: t,
            measured: false,
        });
    }
    let end = warmup_ns + duration_ns;
    while t < end {
        t = (t + SECOND).min(end);
        out.push(Tick {
            at_ns: t,
            measured: true,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_interleaves_connections_evenly() {
        let s = Schedule::new(2000.0, 4);
        let mut all: Vec<u64> = (0..4)
            .flat_map(|c| (0..100).map(move |k| s.due_ns(c, k)))
            .collect();
        all.sort_unstable();
        for (i, t) in all.iter().enumerate() {
            assert!((*t as i64 - i as i64 * 500_000).abs() <= 1, "{i}: {t}");
        }
        assert_eq!(s.due_ns(1, 1), 2_500_000);
    }

    #[test]
    fn ticks_cover_warmup_then_measurement() {
        let t = ticks(1_500_000_000, 2_250_000_000);
        let at: Vec<_> = t
            .iter()
            .map(|t| (t.at_ns / 1_000_000, t.measured))
            .collect();
        assert_eq!(
            at,
            [
                (1000, false),
                (1500, false),
                (2500, true),
                (3500, true),
                (3750, true)
            ]
        );
        assert_eq!(ticks(0, 1_000_000_000).len(), 1);
        assert!(ticks(0, 0).is_empty());
    }
}
