//! One client connection: frame every complete request in what was received, batch them,
//! send all replies in order with one `sendmsg`, then wait for more bytes.
//!
//! Errors a client can cause, and what it gets:
//!
//! | input | reply | then |
//! |---|---|---|
//! | unknown command, wrong arity, bad option or integer | `-ERR ...` | next request |
//! | broken framing, bulk over `--max-bulk`, array over `--max-array`, inline line over `--max-inline` | `-ERR Protocol error: ...` | close (the stream cannot be resynchronised) |
//! | one request over `--max-request` bytes | `-ERR Protocol error: request over N bytes` | close |
//!
//! Replies to the requests before the bad one are written first, in order.

use crate::batch::{Batch, BatchError};
use crate::forward::Registration;
use crate::recv_buf::{FillError, RecvBuf};
use crate::shard::KvShard;
use shardnet::protocol::command::Flow;
use shardnet::protocol::resp::{Parser, ProtocolError};
use shardnet::{ConnError, Connection, ShardContext};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a connection closed by the server keeps reading what the peer still sends, so
/// the last replies are not lost to a reset.
const LINGER: Duration = Duration::from_secs(1);

/// Why the server ends a connection itself.
enum End {
    /// QUIT.
    Quit,
    /// The framing broke.
    Protocol(ProtocolError),
}

/// Serves one connection until the peer closes, QUIT, a fatal protocol error, or shutdown.
///
/// # Errors
/// The connection's I/O error, or [`BatchError::MeshClosed`] while the server stops.
pub async fn serve(mut conn: Connection, ctx: ShardContext<Rc<KvShard>>) -> Result<(), BatchError> {
    let shard = ctx.state().clone();
    let reg = Registration::new(&shard);
    let id = conn.id();
    let client_id = id.local * shard.shards as u64 + u64::from(id.shard) + 1;
    let mut parser = Parser::new(shard.settings.limits);
    let mut input = RecvBuf::new(shard.settings.max_request);
    let mut batch = Batch::new(shard.id, shard.shards);
    loop {
        let now = Instant::now();
        let mut parsed = 0;
        let mut end = None;
        loop {
            match parser.parse(&input.bytes()[parsed..]) {
                Ok(Some((req, n))) => {
                    parsed += n;
                    if batch.add(&shard, &req, client_id, now) == Flow::Close {
                        end = Some(End::Quit);
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    end = Some(End::Protocol(e));
                    break;
                }
            }
            if batch.is_full() {
                batch.run(&shard, &reg, &mut conn).await?;
            }
        }
        input.consume(parsed);
        batch.run(&shard, &reg, &mut conn).await?;
        match end {
            Some(End::Quit) => return close(conn, None).await,
            Some(End::Protocol(e)) => {
                let mut reply = Vec::new();
                e.write_reply(&mut reply);
                return close(conn, Some(&reply)).await;
            }
            None => {}
        }
        match input.fill(&mut conn).await {
            Ok(true) => {}
            // End of stream; an unfinished request is dropped.
            Ok(false) => return Ok(()),
            Err(FillError::TooLarge { max }) => {
                let reply = format!("-ERR Protocol error: request over {max} bytes\r\n");
                return close(conn, Some(reply.as_bytes())).await;
            }
            Err(FillError::Conn(ConnError::Shutdown)) => return Ok(()),
            Err(FillError::Conn(e)) => return Err(e.into()),
        }
    }
}

/// Writes `last` after the queued replies, flushes and closes with a linger.
async fn close(mut conn: Connection, last: Option<&[u8]>) -> Result<(), BatchError> {
    if let Some(bytes) = last {
        conn.write(bytes).await?;
    }
    conn.close(LINGER).await?;
    Ok(())
}
