//! The [`Client`] handle: opens the WebSocket and both peers and hands them to a background
//! engine, then turns each call into a command for it and returns its events. Never drives
//! a connection itself.

use std::time::{Duration, Instant};

use protocol::{ClientMessage, Layer, ServerMessage};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::command::Command;
use crate::engine::Engine;
use crate::error::ClientError;
use crate::event::ClientEvent;
use crate::media::{MediaSource, SyntheticAudio, SyntheticVideo};
use crate::peer::{Peer, local_ip_towards};

/// A connected client. Dropping it drops the WebSocket without a goodbye.
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    /// Everything the client observes, in order.
    pub events: mpsc::UnboundedReceiver<ClientEvent>,
    task: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Opens the signaling WebSocket at `url` (for example `ws://127.0.0.1:8080/ws`).
    pub async fn connect(url: &str) -> Result<Client, ClientError> {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|source| ClientError::Connect {
                url: url.to_owned(),
                source,
            })?;
        let local_ip = local_ip_towards(url).await;
        let publisher = Peer::new(local_ip).await?;
        let subscriber = Peer::new(local_ip).await?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut engine = Engine {
                ws,
                publisher,
                subscriber,
                events: event_tx,
                media: Default::default(),
                reliable: None,
                lossy: None,
                data_paused: false,
            };
            engine.run(command_rx).await;
        });
        Ok(Client {
            commands,
            events,
            task,
        })
    }

    /// Sends `join`.
    pub fn join(&self, room: &str, token: &str) {
        self.send(ClientMessage::Join {
            room: room.to_owned(),
            token: token.to_owned(),
        });
    }

    /// Sends any protocol message.
    pub fn send(&self, message: ClientMessage) {
        let _ = self.commands.send(Command::Send(message));
    }

    /// Sends a raw text frame (for testing how the server treats bad input).
    pub fn send_text(&self, text: impl Into<String>) {
        let _ = self.commands.send(Command::SendText(text.into()));
    }

    /// Sends a raw binary frame.
    pub fn send_binary(&self, data: Vec<u8>) {
        let _ = self.commands.send(Command::SendBinary(data));
    }

    /// Adds synthetic tracks (Opus-shaped audio every 20 ms, VP8 keyframes at 30 fps) to the
    /// publisher connection, offers them, and starts sending once connected.
    pub fn publish(&self, audio: bool, video: bool) {
        let now = Instant::now();
        self.publish_sources(
            audio.then(|| Box::new(SyntheticAudio::new(now)) as Box<dyn MediaSource>),
            video.then(|| Box::new(SyntheticVideo::new(now)) as Box<dyn MediaSource>),
        );
    }

    /// Publishes an Opus track fed by `audio` and a VP8 track fed by `video` (either may be
    /// absent), and renegotiates.
    pub fn publish_sources(
        &self,
        audio: Option<Box<dyn MediaSource>>,
        video: Option<Box<dyn MediaSource>>,
    ) {
        let video = video.map(|v| vec![(None, v)]).unwrap_or_default();
        let _ = self.commands.send(Command::Publish { audio, video });
    }

    /// Publishes an Opus track fed by `audio` (if any) and one VP8 track sent as simulcast: one
    /// RTP stream per layer, each with its own SSRC, its rid (`q`, `h`, `f`) and its own
    /// source (which should start with a keyframe and make one when asked), and renegotiates.
    /// The SFU's keyframe requests reach the layer they name; the layers it says nobody
    /// receives (`subscribedLayers`) pause until needed again.
    pub fn publish_simulcast(
        &self,
        audio: Option<Box<dyn MediaSource>>,
        layers: Vec<(Layer, Box<dyn MediaSource>)>,
    ) -> Result<(), ClientError> {
        if layers.len() < 2 {
            return Err(ClientError::Simulcast(
                "simulcast needs at least two layers",
            ));
        }
        let mut seen = Vec::with_capacity(layers.len());
        for (layer, _) in &layers {
            if seen.contains(layer) {
                return Err(ClientError::Simulcast("a simulcast layer appears twice"));
            }
            seen.push(*layer);
        }
        let video = layers.into_iter().map(|(l, s)| (Some(l), s)).collect();
        self.commands
            .send(Command::Publish { audio, video })
            .map_err(|_| ClientError::Stopped)
    }

    /// Opens the `reliable` and `lossy` data channels on the publisher connection (and
    /// renegotiates it).
    pub fn open_data_channels(&self) {
        let _ = self.commands.send(Command::OpenData);
    }

    /// Sends a message through the SFU: `header` addresses it, `payload` is the content.
    pub fn send_data(&self, reliable: bool, header: &protocol::data::SendHeader, payload: &[u8]) {
        let frame = protocol::data::encode_frame(header, payload);
        let _ = self.commands.send(Command::SendData {
            reliable,
            frame,
            text: false,
        });
    }

    /// Sends raw bytes (or text) on a data channel, for testing malformed framing.
    pub fn send_data_raw(&self, reliable: bool, frame: Vec<u8>, text: bool) {
        let _ = self.commands.send(Command::SendData {
            reliable,
            frame,
            text,
        });
    }

    /// Stops (or resumes) reading data-channel messages, as a slow receiver would; media keeps
    /// flowing.
    pub fn pause_data(&self, paused: bool) {
        let _ = self.commands.send(Command::PauseData(paused));
    }

    /// Sends raw datagrams from the publisher connection's socket to the address its ICE
    /// agent talks to (for testing how the server treats garbage from a known peer).
    pub fn send_raw_datagrams(&self, datagrams: Vec<Vec<u8>>) {
        let _ = self.commands.send(Command::RawDatagrams(datagrams));
    }

    /// Says `leave` and closes the WebSocket cleanly.
    pub fn leave(&self) {
        let _ = self.commands.send(Command::Send(ClientMessage::Leave));
        let _ = self.commands.send(Command::Disconnect);
    }

    /// Waits up to `timeout` for an event matching `want`, skipping others.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&ClientEvent) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .ok()??;
            if let Some(t) = want(&event) {
                return Some(t);
            }
        }
    }

    /// Waits for the next server message matching `want`.
    pub async fn wait_message<T>(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&ServerMessage) -> Option<T>,
    ) -> Option<T> {
        self.wait_for(timeout, |e| match e {
            ClientEvent::Message(m) => want(m),
            _ => None,
        })
        .await
    }
}
