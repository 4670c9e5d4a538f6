//! Sockets: listener setup and the raw non-blocking calls of the sync-first paths.
//!
//! Listeners are created here, in the thread that starts the server, so bind errors come back
//! synchronously and typed, and so every shard's listener joins the same `SO_REUSEPORT` group
//! even when the caller asked for port 0. Nothing here allocates after setup.

use super::cvt;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

/// Checks that no listener already owns `addr`, by binding a socket *without* `SO_REUSEPORT`.
///
/// `SO_REUSEPORT` would otherwise let us join a stale server's group silently and share its
/// connections. `SO_REUSEADDR` is set so that connections in TIME_WAIT do not count.
///
/// # Errors
/// `AddrInUse` when another socket listens on the address; any bind error otherwise.
fn probe_free(addr: SocketAddr) -> io::Result<()> {
    let probe = new_socket(addr)?;
    probe.set_reuse_address(true)?;
    probe.bind(&SockAddr::from(addr))?;
    // Listening is what conflicts with another listener that has SO_REUSEADDR set.
    probe.listen(1)?;
    Ok(())
}

fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // A `[::]` listener serves only IPv6; an IPv4 listener can be added beside it.
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

/// Binds `count` listening sockets on `addr`, all in one `SO_REUSEPORT` group.
///
/// When `addr` has port 0 the first socket picks the port and the others bind to it. Returns
/// the sockets and the bound address.
///
/// # Errors
/// `AddrInUse` when another process already listens on `addr` (checked first, see
/// [`probe_free`]), or the error of the failing `socket`/`bind`/`listen` call.
pub(crate) fn bind_reuseport_group(
    addr: SocketAddr,
    count: usize,
    backlog: i32,
) -> io::Result<(Vec<OwnedFd>, SocketAddr)> {
    if addr.port() != 0 {
        probe_free(addr)?;
    }
    let mut bound = addr;
    let mut fds = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = new_socket(bound)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&SockAddr::from(bound))?;
        socket.listen(backlog)?;
        if bound.port() == 0 {
            bound = socket
                .local_addr()?
                .as_socket()
                .ok_or_else(|| io::Error::other("listener has no IP address"))?;
        }
        // SAFETY: `into_raw_fd` hands over ownership of an open descriptor exactly once.
        fds.push(unsafe { OwnedFd::from_raw_fd(socket.into_raw_fd()) });
    }
    Ok((fds, bound))
}

/// Sets `TCP_NODELAY` and `FD_CLOEXEC` on an accepted connection.
///
/// # Errors
/// The failing `setsockopt`/`fcntl` error (the caller logs it; the connection stays usable).
pub(crate) fn tune_accepted(fd: RawFd, nodelay: bool) -> io::Result<()> {
    if nodelay {
        let one: libc::c_int = 1;
        // SAFETY: `one` outlives the call and its size is passed; `fd` is an open socket.
        cvt(unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
    }
    // SAFETY: plain fcntl on an open descriptor.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(())
}

/// One non-blocking `sendmsg` of all of `bufs` (`MSG_DONTWAIT | MSG_NOSIGNAL`).
///
/// Returns the bytes the kernel took, which may be fewer than offered.
///
/// # Errors
/// `WouldBlock` is the normal answer when the socket buffer is full. `BrokenPipe` or
/// `ConnectionReset` when the peer is gone (no `SIGPIPE` is raised).
pub(crate) fn send_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is guaranteed ABI-compatible with `iovec` on Unix.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
    // SAFETY: `msg` points at `bufs`, which outlive the call; the kernel only reads them.
    let n = cvt(unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) })?;
    Ok(n as usize)
}

/// One non-blocking `recv` into `buf` (`MSG_DONTWAIT`). `Ok(0)` is end of stream.
///
/// # Errors
/// `WouldBlock` when nothing is queued; `ConnectionReset` when the peer reset.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
    let n = cvt(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) })?;
    Ok(n as usize)
}

/// Shuts down the write side (sends FIN after queued data).
///
/// # Errors
/// `NotConnected` when the peer already went away.
pub(crate) fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain shutdown(2) on a descriptor we own.
    cvt(unsafe { libc::shutdown(fd, libc::SHUT_WR) })?;
    Ok(())
}

/// Bytes queued in the socket's send buffer that the peer has not acknowledged (`SIOCOUTQ`).
///
/// # Errors
/// The `ioctl` error.
pub(crate) fn unsent_bytes(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one c_int into `n`.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) })?;
    Ok(n.max(0) as usize)
}

/// Bytes waiting in the socket's receive queue (`FIONREAD`).
///
/// # Errors
/// The `ioctl` error.
pub(crate) fn readable_bytes(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int into `n`.
    cvt(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) })?;
    Ok(n.max(0) as usize)
}

/// A connected pair of Unix stream sockets, used to wake a shard from another thread.
///
/// # Errors
/// The `socketpair` error (for example `EMFILE`).
pub(crate) fn wake_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Writes one byte to a wake socket; a full socket already guarantees a pending wake-up.
pub(crate) fn wake(fd: &OwnedFd) {
    let byte = 1u8;
    // SAFETY: one byte from a local, non-blocking; errors (EAGAIN: already woken) are fine.
    unsafe {
        libc::send(
            fd.as_raw_fd(),
            (&byte as *const u8).cast(),
            1,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

/// The peer address of a connected socket (`getpeername`).
///
/// # Errors
/// `NotConnected` when the peer is already gone; `InvalidInput` for a non-IP socket.
pub(crate) fn peer_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: try_init hands getpeername a zeroed sockaddr_storage and its length, which is
    // what getpeername expects; it fills at most that many bytes.
    let ((), addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            cvt(libc::getpeername(fd, storage.cast(), len))?;
            Ok(())
        })
    }?;
    addr.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "peer is not an IP socket"))
}
