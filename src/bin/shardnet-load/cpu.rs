//! The client's own CPU use, so a reader can tell when the load generator, not the server, was
//! the limit.

use std::time::{Duration, Instant};

use crate::sys;

/// A reading of the process's CPU time and the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct CpuSample {
    user: Duration,
    sys: Duration,
    at: Instant,
}

/// CPU used between two samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuUse {
    /// User-mode CPU seconds.
    pub user_s: f64,
    /// Kernel-mode CPU seconds (the sends and receives).
    pub sys_s: f64,
    /// Wall-clock seconds between the samples.
    pub wall_s: f64,
}

impl CpuSample {
    /// Reads the process's CPU times now. A failed read (never seen in practice) reads as zero,
    /// which shows as 0% rather than ending the run.
    pub fn now() -> CpuSample {
        let (user, sys) = sys::process_cpu_times().unwrap_or_default();
        CpuSample {
            user,
            sys,
            at: Instant::now(),
        }
    }

    /// The CPU used from `earlier` to `self`.
    pub fn since(&self, earlier: &CpuSample) -> CpuUse {
        CpuUse {
            user_s: self.user.saturating_sub(earlier.user).as_secs_f64(),
            sys_s: self.sys.saturating_sub(earlier.sys).as_secs_f64(),
            wall_s: self.at.saturating_duration_since(earlier.at).as_secs_f64(),
        }
    }
}

impl CpuUse {
    /// User plus system time as a percentage of one core over the wall time (200% = two cores
    /// busy). 0 when no wall time passed.
    pub fn percent_of_one_core(&self) -> f64 {
        if self.wall_s > 0.0 {
            100.0 * (self.user_s + self.sys_s) / self.wall_s
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_cpu_over_wall() {
        let u = CpuUse {
            user_s: 0.25,
            sys_s: 0.5,
            wall_s: 1.5,
        };
        assert_eq!(u.percent_of_one_core(), 50.0);
        assert_eq!(CpuUse::default().percent_of_one_core(), 0.0);
    }

    #[test]
    fn a_busy_loop_shows_up() {
        let a = CpuSample::now();
        let mut x = 1_u64;
        while a.at.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.rotate_left(3) ^ 0x9e37);
        }
        let u = CpuSample::now().since(&a);
        assert!(u.user_s + u.sys_s > 0.0);
        assert!(u.percent_of_one_core() > 10.0, "{u:?}");
    }
}
