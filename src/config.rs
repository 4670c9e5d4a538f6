//! Server configuration: where to listen, which cores, how much memory, which limits.
//!
//! Every capacity is fixed at start; none grows with the number of clients. The README has a
//! table of every setting and its default.

use crate::error::StartError;
use crate::pool::{PoolConfig, PoolConfigError};
use crate::sys::limits;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Which cores run shards (one shard per core).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Cores {
    /// Every core this process may run on (its affinity mask).
    #[default]
    All,
    /// The first `n` allowed cores.
    Count(usize),
    /// Exactly these CPU ids, one shard each, in this order.
    List(Vec<usize>),
}

impl std::str::FromStr for Cores {
    type Err = String;

    /// Parses `all`, or a CPU list like `taskset -c` takes: `0`, `0,1`, `0-3`, `0,2-3`.
    /// (A bare number is a CPU id, not a count: use [`Cores::Count`] for counts.)
    fn from_str(s: &str) -> Result<Cores, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Cores::All);
        }
        let mut list = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let bad = || format!("bad core list {s:?}: expected e.g. 0,1 or 0-3 or all");
            match part.split_once('-') {
                Some((a, b)) => {
                    let a: usize = a.trim().parse().map_err(|_| bad())?;
                    let b: usize = b.trim().parse().map_err(|_| bad())?;
                    if a > b || b - a > 4096 {
                        return Err(bad());
                    }
                    list.extend(a..=b);
                }
                None => list.push(part.parse().map_err(|_| bad())?),
            }
        }
        Ok(Cores::List(list))
    }
}

/// How connections' sockets are driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoBackend {
    /// The shard's own io_uring ring: receives into the pool's provided-buffer ring, sends
    /// and accepts on the ring, driven by the shard driver (Linux 6.0 or later).
    #[default]
    Ring,
    /// glommio's stream types: a non-blocking `recv` into a slab, then a readiness poll on
    /// glommio's reactor; sync-first `sendmsg`.
    Glommio,
}

impl std::str::FromStr for IoBackend {
    type Err = String;

    fn from_str(s: &str) -> Result<IoBackend, String> {
        match s {
            "ring" | "uring" | "io_uring" => Ok(IoBackend::Ring),
            "glommio" => Ok(IoBackend::Glommio),
            _ => Err(format!(
                "unknown I/O backend {s:?}: expected ring or glommio"
            )),
        }
    }
}

/// Everything a [`Server`](crate::Server) needs to start.
///
/// All fields are public; start from [`ServerConfig::default`] and change what you need.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address every shard listens on (one `SO_REUSEPORT` socket per shard). Port 0 picks a
    /// free port, shared by all shards. Default `127.0.0.1:0`.
    pub addr: SocketAddr,
    /// Cores to run shards on. Default: all allowed cores.
    pub cores: Cores,
    /// How sockets are driven. Default: the shard's own io_uring ring.
    pub io_backend: IoBackend,
    /// Ring backend: how long an idle driver waits in its own ring (one syscall per wake-up)
    /// before it parks through glommio. While it waits, glommio's own timers and I/O are
    /// served up to this late. Zero always parks through glommio. Default 1 ms.
    pub driver_block: Duration,
    /// Ring backend: the longest an idle driver spins (checking its ring from userspace, no
    /// syscall) before it waits in the ring. It spins only while recent idle gaps were shorter
    /// than this — then a spin costs less CPU than a sleep and a wake-up, and answers sooner.
    /// Zero never spins. Default 5 µs, about what a sleep and a wake-up cost here, so spinning
    /// never costs more CPU than it saves. Longer spins buy latency with CPU: at 25 µs one
    /// connection's round trip falls from ~50 µs to ~20 µs, but under partial load the shard
    /// spends its idle time spinning (BENCHMARKS.md, "Attempts log").
    pub driver_spin: Duration,
    /// Ring backend: create the ring with `DEFER_TASKRUN` (completions are processed only when
    /// the driver enters its ring) instead of `COOP_TASKRUN`. Default false.
    pub defer_taskrun: bool,
    /// Each shard's buffer pool. Default 4096 slabs of 16 KiB (64 MiB per shard).
    pub pool: PoolConfig,
    /// Connections per shard; more are accepted and closed at once (and counted). This also
    /// sizes the shard's connection table, allocated at start. Default 16384.
    pub max_connections: usize,
    /// Close a connection whose receive has waited this long without data. Default 60 s.
    /// `None` disables it. Handlers can change it per connection.
    pub recv_timeout: Option<Duration>,
    /// Close a connection whose send has made no progress for this long (a peer that stopped
    /// reading). Default 30 s. `None` disables it.
    pub send_timeout: Option<Duration>,
    /// Bytes a connection may have queued for sending (written but not yet taken by the
    /// kernel) before a write waits for the socket. Default 64 KiB.
    pub max_pending_send: usize,
    /// How long a graceful shutdown lets open connections finish. Default 5 s.
    pub drain_timeout: Duration,
    /// How long a connection the server closes while the peer may still be sending keeps
    /// reading (and discarding) after its FIN, so a reset cannot destroy replies in flight.
    /// Default 1 s; zero closes at once.
    pub linger: Duration,
    /// Resolution of the connection timeouts (the period of each shard's sweeper). Default 50 ms.
    pub timer_resolution: Duration,
    /// Listen backlog per shard. Default 1024.
    pub backlog: u32,
    /// Set `TCP_NODELAY` on accepted connections. Default true.
    pub nodelay: bool,
    /// Raise the soft `RLIMIT_NOFILE` to the hard limit at start. Default true.
    pub raise_nofile_limit: bool,
    /// glommio's registered I/O memory per shard (used only for storage I/O). Kept small so
    /// `shards × 3 × io_memory` fits an 8 MiB memlock limit. Default 256 KiB.
    pub io_memory: usize,
    /// Depth of glommio's io_uring rings. Default 128.
    pub ring_depth: usize,
    /// How long start waits for every shard to report ready. Default 10 s.
    pub start_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            cores: Cores::All,
            io_backend: IoBackend::Ring,
            driver_block: Duration::from_millis(1),
            driver_spin: Duration::from_micros(5),
            defer_taskrun: false,
            pool: PoolConfig::default(),
            max_connections: 16384,
            recv_timeout: Some(Duration::from_secs(60)),
            send_timeout: Some(Duration::from_secs(30)),
            max_pending_send: 64 * 1024,
            drain_timeout: Duration::from_secs(5),
            linger: Duration::from_secs(1),
            timer_resolution: Duration::from_millis(50),
            backlog: 1024,
            nodelay: true,
            raise_nofile_limit: true,
            io_memory: 256 * 1024,
            ring_depth: 128,
            start_timeout: Duration::from_secs(10),
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The pool settings are out of range.
    Pool(PoolConfigError),
    /// `max_connections` is 0 or above 2^24.
    MaxConnections(usize),
    /// A timeout is zero (use `None` to disable it).
    ZeroTimeout(&'static str),
    /// `timer_resolution` is outside 1 ms ..= 10 s.
    TimerResolution(Duration),
    /// `backlog` is 0 or above `i32::MAX`.
    Backlog(u32),
    /// `Cores::Count(0)` or an empty list.
    NoCores,
    /// The same core is listed twice.
    DuplicateCore(usize),
    /// `max_pending_send` is below 1 byte.
    MaxPendingSend(usize),
    /// `driver_block` is above 1 s.
    DriverBlock(Duration),
    /// `driver_spin` is above 10 ms.
    DriverSpin(Duration),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Pool(e) => write!(f, "pool: {e}"),
            ConfigError::MaxConnections(n) => {
                write!(f, "max_connections {n} is outside 1 ..= 16777216")
            }
            ConfigError::ZeroTimeout(name) => write!(f, "{name} is zero; use None to disable it"),
            ConfigError::TimerResolution(d) => {
                write!(f, "timer_resolution {d:?} is outside 1 ms ..= 10 s")
            }
            ConfigError::Backlog(n) => write!(f, "backlog {n} is outside 1 ..= 2^31-1"),
            ConfigError::NoCores => write!(f, "no cores selected"),
            ConfigError::DuplicateCore(c) => write!(f, "core {c} is listed twice"),
            ConfigError::MaxPendingSend(n) => write!(f, "max_pending_send {n} must be at least 1"),
            ConfigError::DriverBlock(d) => write!(f, "driver_block {d:?} is above 1 s"),
            ConfigError::DriverSpin(d) => write!(f, "driver_spin {d:?} is above 10 ms"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ServerConfig {
    /// Checks every value that does not need the system.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.pool.validate().map_err(ConfigError::Pool)?;
        if self.max_connections == 0 || self.max_connections > 1 << 24 {
            return Err(ConfigError::MaxConnections(self.max_connections));
        }
        for (name, t) in [
            ("recv_timeout", self.recv_timeout),
            ("send_timeout", self.send_timeout),
            ("drain_timeout", Some(self.drain_timeout)),
            ("start_timeout", Some(self.start_timeout)),
        ] {
            if t == Some(Duration::ZERO) && name != "drain_timeout" {
                return Err(ConfigError::ZeroTimeout(name));
            }
        }
        if self.timer_resolution < Duration::from_millis(1)
            || self.timer_resolution > Duration::from_secs(10)
        {
            return Err(ConfigError::TimerResolution(self.timer_resolution));
        }
        if self.backlog == 0 || self.backlog > i32::MAX as u32 {
            return Err(ConfigError::Backlog(self.backlog));
        }
        if self.driver_block > Duration::from_secs(1) {
            return Err(ConfigError::DriverBlock(self.driver_block));
        }
        if self.driver_spin > Duration::from_millis(10) {
            return Err(ConfigError::DriverSpin(self.driver_spin));
        }
        if self.io_backend == IoBackend::Ring && self.pool.slabs > 32768 {
            return Err(ConfigError::Pool(PoolConfigError::SlabCount(
                self.pool.slabs,
            )));
        }
        if self.max_pending_send == 0 {
            return Err(ConfigError::MaxPendingSend(self.max_pending_send));
        }
        match &self.cores {
            Cores::Count(0) => return Err(ConfigError::NoCores),
            Cores::List(l) if l.is_empty() => return Err(ConfigError::NoCores),
            Cores::List(l) => {
                for (i, c) in l.iter().enumerate() {
                    if l[..i].contains(c) {
                        return Err(ConfigError::DuplicateCore(*c));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The CPU ids the shards will run on, one per shard, resolved against this process's
    /// affinity mask — what [`Server::start`](crate::Server::start) will use. Useful to size
    /// per-shard structures (such as a [`Mesh`](crate::mesh::Mesh)) before starting.
    ///
    /// # Errors
    /// [`StartError::NoSuchCore`] or [`StartError::NotEnoughCores`].
    pub fn resolve_cores(&self) -> Result<Vec<usize>, StartError> {
        let allowed = limits::allowed_cores();
        if allowed.is_empty() {
            return Err(StartError::NotEnoughCores {
                requested: 1,
                allowed: 0,
            });
        }
        match &self.cores {
            Cores::All => Ok(allowed),
            Cores::Count(n) if *n > allowed.len() => Err(StartError::NotEnoughCores {
                requested: *n,
                allowed: allowed.len(),
            }),
            Cores::Count(n) => Ok(allowed[..*n].to_vec()),
            Cores::List(list) => {
                for c in list {
                    if !allowed.contains(c) {
                        return Err(StartError::NoSuchCore { core: *c, allowed });
                    }
                }
                Ok(list.clone())
            }
        }
    }

    /// Timeout in sweeper ticks (rounded up), 0 for none.
    pub(crate) fn ticks(&self, t: Option<Duration>) -> u32 {
        ticks_for(t, self.timer_resolution)
    }
}

/// `t` in ticks of `resolution`, rounded up; 0 for `None`.
pub(crate) fn ticks_for(t: Option<Duration>, resolution: Duration) -> u32 {
    match t {
        None => 0,
        Some(t) => {
            let r = resolution.as_nanos().max(1);
            t.as_nanos().div_ceil(r).clamp(1, u32::MAX as u128 / 2) as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_parse() {
        assert_eq!("all".parse::<Cores>().unwrap(), Cores::All);
        assert_eq!("2".parse::<Cores>().unwrap(), Cores::List(vec![2]));
        assert_eq!("0,1".parse::<Cores>().unwrap(), Cores::List(vec![0, 1]));
        assert_eq!(
            "0-2,5".parse::<Cores>().unwrap(),
            Cores::List(vec![0, 1, 2, 5])
        );
        assert!("0,x".parse::<Cores>().is_err());
        assert!("3-1".parse::<Cores>().is_err());
        assert!("".parse::<Cores>().is_err());
    }

    #[test]
    fn validate_rejects_bad_values() {
        assert!(ServerConfig::default().validate().is_ok());
        let c = ServerConfig {
            max_connections: 0,
            ..ServerConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::MaxConnections(0)));
        let c = ServerConfig {
            recv_timeout: Some(Duration::ZERO),
            ..ServerConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::ZeroTimeout("recv_timeout")));
        let c = ServerConfig {
            cores: Cores::List(vec![0, 0]),
            ..ServerConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::DuplicateCore(0)));
        let mut c = ServerConfig::default();
        c.pool.slab_size = 1;
        assert!(matches!(c.validate(), Err(ConfigError::Pool(_))));
    }

    #[test]
    fn ticks_round_up() {
        let r = Duration::from_millis(50);
        assert_eq!(ticks_for(None, r), 0);
        assert_eq!(ticks_for(Some(Duration::from_millis(1)), r), 1);
        assert_eq!(ticks_for(Some(Duration::from_millis(100)), r), 2);
        assert_eq!(ticks_for(Some(Duration::from_millis(101)), r), 3);
    }
}
