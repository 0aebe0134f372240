//! The two WebSocket flavours a node link runs on (axum's on the accepting side,
//! tokio-tungstenite's on the dialling side) as one pair of sink and stream of
//! [`Outgoing`] and [`Incoming`] messages, so the handshake and the connection loop are
//! written once. It only converts messages: it never seals, opens or logs.

use axum::extract::ws::{Message as AxumMessage, WebSocket};
use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt, future};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as TungMessage;

/// What a node link sends.
pub(super) enum Outgoing {
    Binary(Bytes),
    Ping,
    Close,
}

/// What a node link receives.
pub(super) enum Incoming {
    Binary(Bytes),
    /// A ping or a pong: proof of life only (pings are answered by the WebSocket layer).
    Control,
    /// A text message: never part of the protocol.
    Text,
    Close,
}

/// A WebSocket failure, in the library's words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct WireError(String);

/// The accepting side's socket as a sink and a stream.
pub(super) fn axum_halves(
    socket: WebSocket,
) -> (
    impl Sink<Outgoing, Error = WireError> + Unpin + Send + 'static,
    impl Stream<Item = Result<Incoming, WireError>> + Unpin + Send + 'static,
) {
    let (tx, rx) = socket.split();
    let tx = tx
        .sink_map_err(|e| WireError(e.to_string()))
        .with(|m: Outgoing| {
            future::ready(Ok::<_, WireError>(match m {
                Outgoing::Binary(b) => AxumMessage::Binary(b),
                Outgoing::Ping => AxumMessage::Ping(Bytes::new()),
                Outgoing::Close => AxumMessage::Close(None),
            }))
        });
    let rx = rx.map(|m| match m {
        Ok(AxumMessage::Binary(b)) => Ok(Incoming::Binary(b)),
        Ok(AxumMessage::Ping(_) | AxumMessage::Pong(_)) => Ok(Incoming::Control),
        Ok(AxumMessage::Text(_)) => Ok(Incoming::Text),
        Ok(AxumMessage::Close(_)) => Ok(Incoming::Close),
        Err(e) => Err(WireError(e.to_string())),
    });
    (tx, rx)
}

/// The dialling side's socket as a sink and a stream.
pub(super) fn tungstenite_halves<S>(
    socket: WebSocketStream<S>,
) -> (
    impl Sink<Outgoing, Error = WireError> + Unpin + Send + 'static,
    impl Stream<Item = Result<Incoming, WireError>> + Unpin + Send + 'static,
)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = socket.split();
    let tx = tx
        .sink_map_err(|e| WireError(e.to_string()))
        .with(|m: Outgoing| {
            future::ready(Ok::<_, WireError>(match m {
                Outgoing::Binary(b) => TungMessage::Binary(b),
                Outgoing::Ping => TungMessage::Ping(Bytes::new()),
                Outgoing::Close => TungMessage::Close(None),
            }))
        });
    let rx = rx.map(|m| match m {
        Ok(TungMessage::Binary(b)) => Ok(Incoming::Binary(b)),
        Ok(TungMessage::Ping(_) | TungMessage::Pong(_) | TungMessage::Frame(_)) => {
            Ok(Incoming::Control)
        }
        Ok(TungMessage::Text(_)) => Ok(Incoming::Text),
        Ok(TungMessage::Close(_)) => Ok(Incoming::Close),
        Err(e) => Err(WireError(e.to_string())),
    });
    (tx, rx)
}

/// The next binary message of a handshake (pings and pongs skipped), or why there is none.
pub(super) async fn next_binary<R>(rx: &mut R) -> Result<Bytes, String>
where
    R: Stream<Item = Result<Incoming, WireError>> + Unpin,
{
    loop {
        match rx.next().await {
            Some(Ok(Incoming::Binary(b))) => return Ok(b),
            Some(Ok(Incoming::Control)) => continue,
            Some(Ok(Incoming::Text)) => return Err("it sent a text message".into()),
            Some(Ok(Incoming::Close)) | None => return Err("it closed the connection".into()),
            Some(Err(e)) => return Err(format!("the connection failed: {e}")),
        }
    }
}
