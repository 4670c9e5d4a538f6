//! Commands from other threads to a shard: shut down, report stats.
//!
//! This is the only place where a shard takes input from another thread. It is off the data
//! path: a mutex-protected queue plus one byte written to a socket pair that the shard awaits
//! through its reactor (so an idle shard sleeps, and wakes only when told).

use crate::stats::ShardStats;
use crate::sys::runtime::WakeReceiver;
use crate::sys::socket;
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request to a shard.
#[derive(Debug)]
pub(crate) enum Command {
    /// Stop accepting, drain open connections for at most `drain`, then stop.
    Shutdown {
        /// The drain deadline, from the moment the shard reads the command.
        drain: Duration,
    },
    /// Send a copy of the shard's stats.
    Stats(mpsc::Sender<ShardStats>),
}

/// The sending side, shared by the server's handles.
#[derive(Debug)]
pub(crate) struct Control {
    queue: Mutex<VecDeque<Command>>,
    wake: OwnedFd,
}

impl Control {
    /// A control channel and the descriptor the shard waits on.
    pub(crate) fn new() -> std::io::Result<(Arc<Control>, OwnedFd)> {
        let (tx, rx) = socket::wake_pair()?;
        Ok((
            Arc::new(Control {
                queue: Mutex::new(VecDeque::new()),
                wake: tx,
            }),
            rx,
        ))
    }

    /// Queues `cmd` and wakes the shard.
    pub(crate) fn send(&self, cmd: Command) {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push_back(cmd);
        socket::wake(&self.wake);
    }

    fn pop(&self) -> Option<Command> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop_front()
    }
}

/// The shard's receiving side.
#[derive(Debug)]
pub(crate) struct ControlReceiver {
    control: Arc<Control>,
    wake: WakeReceiver,
}

impl ControlReceiver {
    /// Wraps the shard's end; must be created on the shard's thread.
    pub(crate) fn new(control: Arc<Control>, fd: OwnedFd) -> Self {
        ControlReceiver {
            control,
            wake: WakeReceiver::from_fd(fd),
        }
    }

    /// Waits for the next command. If the wake-up socket fails (the server's handles are all
    /// gone), that is taken as a shutdown without drain time.
    pub(crate) async fn next(&mut self) -> Command {
        loop {
            if let Some(cmd) = self.control.pop() {
                return cmd;
            }
            if self.wake.wait().await.is_err() {
                return Command::Shutdown {
                    drain: Duration::ZERO,
                };
            }
        }
    }
}
