//! Errors of starting, running and inspecting a server.

use crate::config::ConfigError;
use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Why [`Server::start`](crate::Server::start) failed. No shard is left running after an error.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// A requested core is not in this process's affinity mask.
    NoSuchCore {
        /// The requested CPU id.
        core: usize,
        /// The CPU ids this process may use.
        allowed: Vec<usize>,
    },
    /// More shards were requested than cores are allowed.
    NotEnoughCores {
        /// Shards requested.
        requested: usize,
        /// Cores this process may use.
        allowed: usize,
    },
    /// The listening address could not be bound (`AddrInUse` when another server owns it).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// A shard's buffer pool could not be mapped.
    Pool {
        /// The shard's index.
        shard: usize,
        /// The OS error (usually `ENOMEM`).
        source: io::Error,
    },
    /// A shard's executor failed to start (for example io_uring setup refused by a memlock
    /// limit that is too low, or the thread could not be spawned).
    Executor {
        /// The shard's index.
        shard: usize,
        /// The CPU it was to be pinned to.
        cpu: usize,
        /// What glommio or the OS reported.
        message: String,
        /// The process's soft `RLIMIT_MEMLOCK`, in bytes, for diagnosis.
        memlock_limit: u64,
    },
    /// A shard's io_uring ring could not be set up (io_uring missing or restricted, an old
    /// kernel without provided-buffer rings, or too little locked memory). The glommio
    /// backend (`IoBackend::Glommio`) does not need it.
    Ring {
        /// The shard's index.
        shard: usize,
        /// The OS error.
        source: io::Error,
    },
    /// A shard did not report ready within `start_timeout`.
    Timeout {
        /// The shard's index.
        shard: usize,
    },
    /// Another setup call failed (creating the cross-thread wake-up sockets).
    Io(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid configuration: {e}"),
            StartError::NoSuchCore { core, allowed } => {
                write!(
                    f,
                    "core {core} is not available (allowed cores: {allowed:?})"
                )
            }
            StartError::NotEnoughCores { requested, allowed } => write!(
                f,
                "{requested} shards requested but only {allowed} cores are available"
            ),
            StartError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            StartError::Pool { shard, source } => {
                write!(f, "shard {shard}: cannot map its buffer pool: {source}")
            }
            StartError::Executor {
                shard,
                cpu,
                message,
                memlock_limit,
            } => {
                write!(
                    f,
                    "shard {shard} (cpu {cpu}): executor failed to start: {message}"
                )?;
                if *memlock_limit != u64::MAX {
                    write!(
                        f,
                        " (RLIMIT_MEMLOCK is {memlock_limit} bytes; glommio's rings and \
                         3 × io_memory per shard must fit in it unless running with CAP_IPC_LOCK)"
                    )?;
                }
                Ok(())
            }
            StartError::Ring { shard, source } => {
                write!(
                    f,
                    "shard {shard}: cannot set up its io_uring ring: {source}"
                )
            }
            StartError::Timeout { shard } => {
                write!(f, "shard {shard} did not become ready in time")
            }
            StartError::Io(e) => write!(f, "server setup failed: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::Bind { source, .. }
            | StartError::Pool { source, .. }
            | StartError::Ring { source, .. } => Some(source),
            StartError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}

/// A shard ended abnormally (its thread panicked, or its executor failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFailure {
    /// The shard's index.
    pub shard: usize,
    /// What happened.
    pub message: String,
}

impl fmt::Display for ShardFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {} failed: {}", self.shard, self.message)
    }
}

impl std::error::Error for ShardFailure {}

/// A live stats request could not be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsError {
    /// The shard has stopped (the server is shut down).
    Stopped {
        /// The shard's index.
        shard: usize,
    },
    /// The shard did not answer within the timeout.
    Timeout {
        /// The shard's index.
        shard: usize,
    },
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsError::Stopped { shard } => write!(f, "shard {shard} has stopped"),
            StatsError::Timeout { shard } => write!(f, "shard {shard} did not answer in time"),
        }
    }
}

impl std::error::Error for StatsError {}
