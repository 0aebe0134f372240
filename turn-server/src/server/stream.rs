//! TCP and TLS: the accept loop within the connection limit, and one task per connection
//! that frames the byte stream and owns that client's allocation. Reading never waits on a client's
//! writes: replies are queued, and a client that stops reading is disconnected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::link::{LinkSource, StreamQueue};
use super::shared::Shared;
use super::table::{AllocationTable, SWEEP_INTERVAL};
use crate::stats::RelayStats;
use crate::wire;

/// A stream connection with no allocation is closed after this long.
const IDLE_STREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// A stream client that does not take a frame within this long is disconnected.
const STREAM_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts TCP connections (TLS ones when `tls` is set) within the connection limit and
/// serves each on its own task.
pub(super) async fn accept_streams(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let transport = if tls.is_some() { "TLS" } else { "TCP" };
    loop {
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, client) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, transport, "TURN accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&shared.stream_slots).try_acquire_owned() else {
            debug!(%client, transport, "connection refused: the stream connection limit is reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = tls else {
                return serve_stream(stream, client, shared).await;
            };
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(tls)) => serve_stream(tls, client, shared).await,
                Ok(Err(error)) => debug!(%client, %error, "TLS handshake failed"),
                Err(_) => debug!(%client, "TLS handshake timed out"),
            }
        });
    }
}

/// One TCP or TLS client: frames the byte stream and owns that client's allocation.
async fn serve_stream<S>(stream: S, client: SocketAddr, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (frames, mut queued) = StreamQueue::new();
    // The writer gives up on a client that stops reading, and closes the connection.
    let writer_gone = CancellationToken::new();
    let mut writer_task = tokio::spawn({
        let queued_bytes = frames.byte_counter();
        let writer_gone = writer_gone.clone();
        async move {
            while let Some(frame) = queued.recv().await {
                let written = tokio::time::timeout(STREAM_WRITE_TIMEOUT, writer.write_all(&frame));
                queued_bytes.fetch_sub(frame.len(), std::sync::atomic::Ordering::Relaxed);
                if !matches!(written.await, Ok(Ok(()))) {
                    debug!(%client, "stream client stopped reading; closing");
                    break;
                }
            }
            writer_gone.cancel();
            let _ = writer.shutdown().await;
        }
    });
    let mut table = AllocationTable::new(Arc::clone(&shared));
    let source = LinkSource::Stream(&frames);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    let mut last_allocation = Instant::now();
    let cancelled = shared.cancel.cancelled();
    let writer_stopped = writer_gone.cancelled();
    tokio::pin!(cancelled, writer_stopped);
    'connection: loop {
        tokio::select! {
            biased;
            _ = &mut cancelled => break,
            _ = &mut writer_stopped => break,
            _ = sweep.tick() => {
                let now = Instant::now();
                table.sweep(now);
                if !table.allocations.is_empty() {
                    last_allocation = now;
                } else if now.duration_since(last_allocation) > IDLE_STREAM_TIMEOUT {
                    debug!(%client, "closing a stream connection without an allocation");
                    break;
                }
            }
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                loop {
                    let frame_len = match wire::stream_frame_len(&buf) {
                        Ok(Some(len)) => len,
                        Ok(None) => break,
                        Err(error) => {
                            RelayStats::count(&shared.stats.malformed);
                            debug!(%client, %error, "closing a stream that is not TURN");
                            break 'connection;
                        }
                    };
                    let frame = buf.split_to(frame_len);
                    if let Some(reply) = table.handle(client, &frame, &source, Instant::now()) {
                        // A client this far behind is not reading; the writer's timeout ends it.
                        frames.push(reply);
                    }
                }
            }
        }
    }
    // Dropping the allocations stops their relay tasks, the last holders of the queue; the
    // writer then flushes what is left and ends.
    drop(table);
    drop(frames);
    if tokio::time::timeout(Duration::from_secs(2), &mut writer_task)
        .await
        .is_err()
    {
        writer_task.abort();
    }
}
