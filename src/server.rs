//! Starting a server, talking to it while it runs, and stopping it.
//!
//! [`Server::start`] validates the configuration, binds one listener per shard (in the calling
//! thread, so bind errors come back typed and synchronously), starts one pinned executor
//! thread per core and waits until every shard reports ready — or returns the first failure,
//! after stopping the shards already started. A [`ServerHandle`] (cheap to clone, `Send`)
//! shuts the server down or asks for live stats from any thread; [`Server::join`] waits for
//! the end and returns each shard's final stats.

use crate::config::ServerConfig;
use crate::control::{Command, Control};
use crate::error::{ShardFailure, StartError, StatsError};
use crate::shard::{self, HandlerResult, ShardContext, ShardInfo, ShardSetup};
use crate::stats::{ShardStats, StatsSnapshot};
use crate::sys::limits;
use crate::sys::runtime::{self, ExecutorSettings, ShardThread};
use crate::sys::socket;
use crate::Connection;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A running server: one shard per selected core.
///
/// Dropping it without [`join`](Server::join) shuts it down (with the configured drain
/// timeout) and waits for the shards to stop.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    cores: Vec<usize>,
    threads: Vec<Option<ShardThread<Option<ShardStats>>>>,
    handle: ServerHandle,
}

/// Shuts a server down or reads its stats, from any thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    controls: Vec<Arc<Control>>,
    drain_timeout: Duration,
    shutting_down: AtomicBool,
}

impl ServerHandle {
    /// Starts a graceful shutdown with the configured drain timeout: every shard stops
    /// accepting, open connections may finish until the deadline, the rest are closed.
    /// Returns at once; [`Server::join`] waits for the end. Calling it again does nothing.
    pub fn shutdown(&self) {
        self.shutdown_with(self.inner.drain_timeout)
    }

    /// Like [`shutdown`](ServerHandle::shutdown) with an explicit drain timeout.
    pub fn shutdown_with(&self, drain: Duration) {
        if self.inner.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        for c in &self.inner.controls {
            c.send(Command::Shutdown { drain });
        }
    }

    /// True once a shutdown was requested.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Asks every shard for its stats and merges nothing yet (see [`StatsSnapshot::merged`]).
    /// Each shard answers between two tasks, so this costs the shards one copy of their
    /// histograms each.
    ///
    /// # Errors
    /// [`StatsError::Stopped`] when a shard has ended, [`StatsError::Timeout`] when one does
    /// not answer within `timeout`.
    pub fn stats(&self, timeout: Duration) -> Result<StatsSnapshot, StatsError> {
        let deadline = Instant::now() + timeout;
        let mut pending = Vec::with_capacity(self.inner.controls.len());
        for c in &self.inner.controls {
            let (tx, rx) = mpsc::channel();
            c.send(Command::Stats(tx));
            pending.push(rx);
        }
        let mut shards = Vec::with_capacity(pending.len());
        for (shard, rx) in pending.into_iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(s) => shards.push(s),
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(StatsError::Timeout { shard }),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(StatsError::Stopped { shard })
                }
            }
        }
        Ok(StatsSnapshot { shards })
    }
}

impl Server {
    /// Starts a server whose handler needs no per-shard state.
    ///
    /// # Errors
    /// See [`Server::start_with_state`].
    pub fn start<H, Fut>(config: ServerConfig, handler: H) -> Result<Server, StartError>
    where
        H: Fn(Connection, ShardContext<()>) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: HandlerResult,
    {
        Server::start_with_state(config, |_| async {}, handler)
    }

    /// Starts a server: `factory` builds each shard's state once, on that shard (it may await,
    /// e.g. to join a cross-shard channel mesh); `handler` runs once per connection, on the
    /// shard that accepted it. Returns when every shard is ready to serve.
    ///
    /// # Errors
    /// [`StartError`] naming the cause: invalid configuration, a core that is not available,
    /// the address in use (or another bind error), a pool that cannot be mapped, an executor
    /// that failed to start (glommio reports a memlock limit that is too low this way), or a
    /// shard that did not become ready within `start_timeout`. Shards already started are
    /// stopped before this returns.
    pub fn start_with_state<S, F, SFut, H, Fut>(
        config: ServerConfig,
        factory: F,
        handler: H,
    ) -> Result<Server, StartError>
    where
        S: 'static,
        F: Fn(ShardInfo) -> SFut + Send + Sync + 'static,
        SFut: Future<Output = S> + 'static,
        H: Fn(Connection, ShardContext<S>) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: HandlerResult,
    {
        config.validate()?;
        let cores = config.resolve_cores()?;
        if config.raise_nofile_limit {
            match limits::raise_nofile_limit() {
                Ok((before, now)) if before != now => {
                    log::info!("raised the soft RLIMIT_NOFILE from {before} to {now}")
                }
                Ok(_) => {}
                Err(e) => log::warn!("could not raise RLIMIT_NOFILE: {e}"),
            }
        }
        let (listeners, addr) =
            socket::bind_reuseport_group(config.addr, cores.len(), config.backlog as i32).map_err(
                |source| StartError::Bind {
                    addr: config.addr,
                    source,
                },
            )?;
        let factory = Arc::new(factory);
        let handler = Arc::new(handler);
        let mut controls = Vec::with_capacity(cores.len());
        let mut threads = Vec::with_capacity(cores.len());
        let mut readies = Vec::with_capacity(cores.len());
        let mut failure = None;
        let rings: crate::driver::RingTable = (0..cores.len())
            .map(|_| std::sync::OnceLock::new())
            .collect();
        for (id, (listener, &cpu)) in listeners.into_iter().zip(&cores).enumerate() {
            let (control, control_fd) = match Control::new() {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(StartError::Io(e));
                    break;
                }
            };
            let (ready_tx, ready_rx) = mpsc::channel();
            let setup = ShardSetup {
                rings: rings.clone(),
                info: ShardInfo {
                    id,
                    cpu,
                    shards: cores.len(),
                },
                config: config.clone(),
                listener,
                control: control.clone(),
                control_fd,
                ready: ready_tx,
            };
            let settings = ExecutorSettings {
                cpu,
                io_memory: config.io_memory,
                ring_depth: config.ring_depth,
            };
            let (factory, handler) = (factory.clone(), handler.clone());
            match runtime::spawn_executor(&format!("shardnet-{id}"), settings, move || {
                shard::run(setup, factory, handler)
            }) {
                Ok(t) => {
                    controls.push(control);
                    threads.push(Some(t));
                    readies.push(ready_rx);
                }
                Err(e) => {
                    failure = Some(executor_error(id, cpu, e.to_string()));
                    break;
                }
            }
        }
        let mut server = Server {
            addr,
            cores: cores.clone(),
            threads,
            handle: ServerHandle {
                inner: Arc::new(HandleInner {
                    controls,
                    drain_timeout: config.drain_timeout,
                    shutting_down: AtomicBool::new(false),
                }),
            },
        };
        if failure.is_none() {
            let deadline = Instant::now() + config.start_timeout;
            for (id, rx) in readies.iter().enumerate() {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        failure = Some(e);
                        break;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        // The executor failed before running the shard: its error is at join.
                        let message = match server.threads[id].take().map(ShardThread::join) {
                            Some(Err(m)) => m,
                            _ => "shard thread ended before it was ready".to_string(),
                        };
                        failure = Some(executor_error(id, cores[id], message));
                        break;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        failure = Some(StartError::Timeout { shard: id });
                        break;
                    }
                }
            }
        }
        match failure {
            None => Ok(server),
            Some(e) => {
                server.handle.shutdown_with(Duration::ZERO);
                server.join_threads();
                Err(e)
            }
        }
    }

    /// The address every shard listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CPU of each shard, in shard order.
    pub fn cores(&self) -> &[usize] {
        &self.cores
    }

    /// How many shards run.
    pub fn shard_count(&self) -> usize {
        self.cores.len()
    }

    /// A handle for shutting down or reading stats from another thread.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Starts a graceful shutdown (see [`ServerHandle::shutdown`]).
    pub fn shutdown(&self) {
        self.handle.shutdown()
    }

    /// Live stats of every shard (see [`ServerHandle::stats`]).
    ///
    /// # Errors
    /// As for [`ServerHandle::stats`].
    pub fn stats(&self, timeout: Duration) -> Result<StatsSnapshot, StatsError> {
        self.handle.stats(timeout)
    }

    /// Waits until every shard has stopped (after a shutdown) and returns their final stats.
    ///
    /// # Errors
    /// [`ShardFailure`] for the first shard whose thread panicked or whose executor failed.
    pub fn join(mut self) -> Result<StatsSnapshot, ShardFailure> {
        let results = self.join_threads();
        let mut shards = Vec::with_capacity(results.len());
        for r in results {
            shards.push(r?);
        }
        Ok(StatsSnapshot { shards })
    }

    fn join_threads(&mut self) -> Vec<Result<ShardStats, ShardFailure>> {
        let mut out = Vec::with_capacity(self.threads.len());
        for (shard, t) in self.threads.iter_mut().enumerate() {
            let Some(t) = t.take() else { continue };
            out.push(match t.join() {
                Ok(Some(stats)) => Ok(stats),
                Ok(None) => Err(ShardFailure {
                    shard,
                    message: "shard setup failed".to_string(),
                }),
                Err(message) => Err(ShardFailure { shard, message }),
            });
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.threads.iter().any(Option::is_some) {
            self.handle.shutdown();
            self.join_threads();
        }
    }
}

fn executor_error(shard: usize, cpu: usize, message: String) -> StartError {
    StartError::Executor {
        shard,
        cpu,
        message,
        memlock_limit: limits::memlock_limit(),
    }
}
