//! glommio, reached from one place.
//!
//! shardnet uses glommio for its executor (one `LocalExecutor` per pinned core), its io_uring
//! reactor (readiness waits for sockets), its timers and task spawning. Nothing outside this
//! file names a glommio type, so the receive path can move onto a shard-owned ring without
//! touching the public API.
//!
//! Costs worth knowing: glommio allocates an `Rc` for every readiness wait (`Source::new`) and
//! one task allocation per spawned task; timers allocate an `Rc` each. shardnet therefore keeps
//! one timer per shard (the connection sweeper), not one per receive.

use futures_lite::{AsyncRead, AsyncWrite};
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Settings of one shard's executor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExecutorSettings {
    /// The CPU to pin the thread to.
    pub cpu: usize,
    /// glommio's registered I/O memory (storage I/O only; shardnet's sockets do not use it).
    pub io_memory: usize,
    /// Depth of glommio's io_uring rings.
    pub ring_depth: usize,
}

/// A running shard thread.
#[derive(Debug)]
pub(crate) struct ShardThread<T: Send + 'static>(glommio::ExecutorJoinHandle<T>);

impl<T: Send + 'static> ShardThread<T> {
    /// Waits for the thread to end.
    ///
    /// # Errors
    /// The executor's start error (for example a memlock limit too low for its rings) or the
    /// panic message of the thread, as text.
    pub(crate) fn join(self) -> Result<T, String> {
        self.0.join().map_err(|e| e.to_string())
    }
}

/// Starts an executor thread named `name`, pinned to `settings.cpu`, running `fut_gen()`.
///
/// # Errors
/// The thread could not be spawned, or the placement is invalid. Errors creating the
/// executor itself surface later, from [`ShardThread::join`].
pub(crate) fn spawn_executor<G, F, T>(
    name: &str,
    settings: ExecutorSettings,
    fut_gen: G,
) -> io::Result<ShardThread<T>>
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(settings.cpu))
        .name(name)
        .io_memory(settings.io_memory)
        .ring_depth(settings.ring_depth)
        .spawn(fut_gen)
        .map(ShardThread)
        .map_err(io::Error::from)
}

/// Spawns a detached task on the current shard.
pub(crate) fn spawn<F: Future<Output = ()> + 'static>(fut: F) {
    glommio::spawn_local(fut).detach();
}

/// A task on the current shard that is cancelled when this handle is dropped.
#[derive(Debug)]
pub(crate) struct TaskHandle(#[allow(dead_code)] glommio::Task<()>);

/// Spawns a task that lives as long as the returned handle.
pub(crate) fn spawn_owned<F: Future<Output = ()> + 'static>(fut: F) -> TaskHandle {
    TaskHandle(glommio::spawn_local(fut))
}

/// Yields to the shard's other tasks if this one has run past glommio's preemption timer.
pub(crate) async fn yield_if_needed() {
    glommio::yield_if_needed().await
}

/// Sleeps on the current shard (one glommio timer).
pub(crate) async fn sleep(d: Duration) {
    glommio::timer::sleep(d).await
}

/// A connected TCP stream, read and written through glommio's reactor.
///
/// Reads go straight into the caller's buffer: a non-blocking `recv` first, then a one-shot
/// readiness poll on io_uring; the buffer is borrowed only for the duration of a poll.
#[derive(Debug)]
pub(crate) struct Stream(glommio::net::TcpStream);

impl Stream {
    /// The socket's descriptor (owned by the stream).
    pub(crate) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Reads into `buf`, or arms a readiness wait and returns `Pending`. `Ok(0)` is EOF.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }

    /// Writes some of `buf` (non-blocking send first), or arms a writability wait.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
}

/// A listening socket of one shard.
#[derive(Debug)]
pub(crate) struct Listener(glommio::net::TcpListener);

impl Listener {
    /// Wraps an already bound and listening socket. Must be called on the shard's thread.
    pub(crate) fn from_fd(fd: OwnedFd) -> Self {
        use std::os::fd::FromRawFd;
        // SAFETY: `fd` is an open, bound, listening TCP socket whose ownership moves here.
        Listener(unsafe { glommio::net::TcpListener::from_raw_fd(fd.into_raw_fd()) })
    }

    /// Accepts the next connection (a non-blocking `accept` first, then io_uring).
    ///
    /// # Errors
    /// The accept error: `EMFILE`/`ENFILE` when out of descriptors, `ECONNABORTED`, ...
    pub(crate) async fn accept(&self) -> io::Result<Stream> {
        self.0.accept().await.map(Stream).map_err(io::Error::from)
    }
}

/// The shard's end of a cross-thread wake-up socket.
#[derive(Debug)]
pub(crate) struct WakeReceiver(glommio::net::UnixStream);

impl WakeReceiver {
    /// Wraps the receiving end of [`super::socket::wake_pair`]. Must be called on the shard.
    pub(crate) fn from_fd(fd: OwnedFd) -> Self {
        use std::os::fd::FromRawFd;
        // SAFETY: `fd` is an open Unix stream socket whose ownership moves here.
        WakeReceiver(unsafe { glommio::net::UnixStream::from_raw_fd(fd.into_raw_fd()) })
    }

    /// Waits until another thread writes to the other end, then discards what was written.
    ///
    /// # Errors
    /// `UnexpectedEof` when the other end was closed.
    pub(crate) async fn wait(&mut self) -> io::Result<()> {
        use futures_lite::AsyncReadExt;
        let mut buf = [0u8; 64];
        match self.0.read(&mut buf).await? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }
}

/// Reads an eventfd through glommio's reactor (an io_uring read that completes when the
/// eventfd is signalled), so a task can sleep until another ring signals it.
#[derive(Debug)]
pub(crate) struct EventfdReader(glommio::io::BufferedFile);

impl EventfdReader {
    /// Watches `fd` (a duplicate is taken; `fd` stays the caller's).
    ///
    /// # Errors
    /// The `dup` error.
    pub(crate) fn new(fd: RawFd) -> io::Result<EventfdReader> {
        use std::os::fd::FromRawFd;
        // SAFETY: dup of a descriptor we were given; the copy is owned by the file below.
        let dup = super::cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
        // SAFETY: `dup` is a fresh descriptor owned by nobody else.
        Ok(EventfdReader(unsafe {
            glommio::io::BufferedFile::from_raw_fd(dup)
        }))
    }

    /// Waits until the eventfd is signalled, and resets it.
    ///
    /// # Errors
    /// The read error.
    pub(crate) async fn read(&mut self) -> io::Result<()> {
        self.0
            .read_at(0, 8)
            .await
            .map(|_| ())
            .map_err(io::Error::from)
    }
}
