//! Cross-shard messaging: a full mesh of bounded single-producer channels between shards.
//!
//! Shared-nothing servers send *work* between shards, never share data: a shard that receives
//! a request for a key another shard owns forwards it over the mesh and gets the answer back
//! the same way. This is the only sanctioned way for data to cross shards; it is off the
//! receive path (a chunk never crosses — copy what you forward).
//!
//! Built on glommio's channel mesh (lock-free SPSC rings between each pair of executors, an
//! eventfd wake-up when the receiver sleeps in glommio). Each message is moved, not shared:
//! `T: Send`. With the io_uring backend a shard may instead be waiting in its own ring, where
//! glommio's wake-up does not reach; so every send from a shard also posts a completion into
//! the receiver's ring (`IORING_OP_MSG_RING`, submitted with the sender's next batch), which
//! makes the receiver's driver give glommio a turn at once.
//!
//! ```no_run
//! use shardnet::mesh::Mesh;
//! use shardnet::{Server, ServerConfig};
//!
//! let config = ServerConfig::default();
//! let shards = config.resolve_cores().unwrap().len();
//! let mesh: Mesh<String> = Mesh::new(shards, 1024);
//! let server = Server::start_with_state(
//!     config,
//!     move |info| {
//!         let mesh = mesh.clone();
//!         async move { mesh.join(info.id).await.expect("mesh join") }
//!     },
//!     |_conn, _shard| async {},
//! )
//! .unwrap();
//! # drop(server);
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

type Builder<T> =
    glommio::channels::channel_mesh::MeshBuilder<T, glommio::channels::channel_mesh::Full>;

/// A mesh under construction: clone it into every shard's state factory and
/// [`join`](Mesh::join) it there, once per shard. `Send + Sync + Clone`.
///
/// glommio's mesh builder is cloned through a plain `Rc` and only marked `Send`; cloning it
/// on several threads at once would race on that count. So every shard's copy is made here,
/// in [`Mesh::new`], on one thread, and each shard *takes* its own copy when it joins: copies
/// only ever move between threads, they are never cloned there.
pub struct Mesh<T: Send + 'static> {
    builders: Arc<Mutex<Vec<Option<Builder<T>>>>>,
    shards: usize,
}

impl<T: Send + 'static> Clone for Mesh<T> {
    fn clone(&self) -> Self {
        Mesh {
            builders: self.builders.clone(),
            shards: self.shards,
        }
    }
}

impl<T: Send + 'static> fmt::Debug for Mesh<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mesh")
            .field("shards", &self.shards)
            .finish()
    }
}

/// Why joining a mesh failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshError {
    /// This shard already joined, or its id is not below the mesh's shard count.
    AlreadyJoined(usize),
    /// The runtime refused the join (more executors joined than the mesh was built for).
    Full,
    /// The runtime numbered this shard differently from the server (`shard` joined as
    /// `peer`): the mesh was joined from something other than the server's shards in order.
    IdMismatch {
        /// The shard that joined.
        shard: usize,
        /// The peer number it got.
        peer: usize,
    },
}

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeshError::AlreadyJoined(s) => {
                write!(
                    f,
                    "shard {s} already joined the mesh, or is out of its range"
                )
            }
            MeshError::Full => f.write_str("the mesh already has all its shards"),
            MeshError::IdMismatch { shard, peer } => {
                write!(f, "shard {shard} joined the mesh as peer {peer}")
            }
        }
    }
}

impl std::error::Error for MeshError {}

impl<T: Send + 'static> Mesh<T> {
    /// A mesh for `shards` shards; each channel buffers `capacity` messages.
    pub fn new(shards: usize, capacity: usize) -> Self {
        let first = Builder::full(shards, capacity.max(1));
        let mut builders: Vec<Option<Builder<T>>> =
            (1..shards).map(|_| Some(first.clone())).collect();
        builders.insert(0, Some(first));
        Mesh {
            builders: Arc::new(Mutex::new(builders)),
            shards,
        }
    }

    /// Joins from shard `shard` (call from the state factory, on that shard). Resolves when
    /// every shard has joined.
    ///
    /// # Errors
    /// [`MeshError`] when the mesh is full or numbered differently from the server's shards.
    pub async fn join(self, shard: usize) -> Result<MeshPort<T>, MeshError> {
        let builder = self
            .builders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(shard)
            .and_then(Option::take)
            .ok_or(MeshError::AlreadyJoined(shard))?;
        let (senders, receivers) = builder.join().await.map_err(|_| MeshError::Full)?;
        // glommio numbers peers by executor creation order, which is shard order.
        let peer = senders.peer_id();
        if peer != shard {
            return Err(MeshError::IdMismatch { shard, peer });
        }
        Ok(MeshPort {
            senders,
            receivers: Some(receivers),
            shard,
        })
    }
}

/// One shard's end of the mesh: send to any other shard, receive from each.
pub struct MeshPort<T: Send + 'static> {
    senders: glommio::channels::channel_mesh::Senders<T>,
    receivers: Option<glommio::channels::channel_mesh::Receivers<T>>,
    shard: usize,
}

impl<T: Send + 'static> fmt::Debug for MeshPort<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshPort")
            .field("shard", &self.shard)
            .finish()
    }
}

impl<T: Send + 'static> MeshPort<T> {
    /// This shard's id.
    pub fn shard_id(&self) -> usize {
        self.shard
    }

    /// Shards in the mesh (this one included).
    pub fn shards(&self) -> usize {
        self.senders.nr_consumers()
    }

    /// Sends `msg` to shard `to`, waiting while that channel is full.
    ///
    /// # Errors
    /// Gives `msg` back when `to` is this shard or out of range, or its end is closed.
    pub async fn send(&self, to: usize, msg: T) -> Result<(), T> {
        if to == self.shard || to >= self.shards() {
            return Err(msg);
        }
        self.senders.send_to(to, msg).await.map_err(give_back)?;
        crate::shard::poke_from_current(to);
        Ok(())
    }

    /// Sends without waiting.
    ///
    /// # Errors
    /// Gives `msg` back when the channel is full, `to` is invalid, or its end is closed.
    pub fn try_send(&self, to: usize, msg: T) -> Result<(), T> {
        if to == self.shard || to >= self.shards() {
            return Err(msg);
        }
        self.senders.try_send_to(to, msg).map_err(give_back)?;
        crate::shard::poke_from_current(to);
        Ok(())
    }

    /// Takes the receiving ends, one per other shard (call once; later calls return none).
    /// Run one task per receiver.
    pub fn take_receivers(&mut self) -> Vec<MeshReceiver<T>> {
        let Some(mut r) = self.receivers.take() else {
            return Vec::new();
        };
        r.streams()
            .into_iter()
            .map(|(from, rx)| MeshReceiver { from, rx })
            .collect()
    }
}

/// The message inside a channel error. `to` is checked before sending, so the channel errors
/// (closed, full) are the only ones, and both carry the message.
fn give_back<T>(e: glommio::GlommioError<T>) -> T {
    use glommio::{GlommioError, ResourceType};
    match e {
        GlommioError::Closed(ResourceType::Channel(t))
        | GlommioError::WouldBlock(ResourceType::Channel(t))
        | GlommioError::CanNotBeClosed(ResourceType::Channel(t), _) => t,
        other => unreachable!("channel send failed without returning the message: {other}"),
    }
}

/// Messages from one other shard.
pub struct MeshReceiver<T: Send + 'static> {
    from: usize,
    rx: glommio::channels::shared_channel::ConnectedReceiver<T>,
}

impl<T: Send + 'static> fmt::Debug for MeshReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshReceiver")
            .field("from", &self.from)
            .finish()
    }
}

impl<T: Send + 'static> MeshReceiver<T> {
    /// The sending shard.
    pub fn from(&self) -> usize {
        self.from
    }

    /// The next message; `None` once the sender is gone.
    pub async fn recv(&self) -> Option<T> {
        self.rx.recv().await
    }
}
