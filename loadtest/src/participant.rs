//! One simulated participant, from WebSocket open to leaving: joins, publishes (audio, and
//! video as one stream or as simulcast layers), tells the SFU its tile size for each video
//! track it receives (`trackSettings`), and records every packet, layer choice and keyframe it
//! sees. A failure ends only this participant: its error goes into its stats.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use client::media::MediaSource;
use client::{Client, ClientEvent};
use protocol::{ClientMessage, ServerMessage, TrackKind, TrackSettings};
use tokio::sync::watch;

use crate::media::{Clip, ClipSource, OpusSource};
use crate::simulcast::LayerClip;
use crate::stats::{Live, ParticipantStats};
use crate::tiles::TileSize;

/// How long a participant may take to get `joined`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);

/// What a publisher sends as video.
#[derive(Clone)]
pub enum PublishVideo {
    None,
    /// One stream.
    Single(Arc<Clip>),
    /// One stream per simulcast layer.
    Simulcast(Arc<Vec<LayerClip>>),
}

/// Everything one participant needs.
pub struct ParticipantSpec {
    pub ws_url: String,
    pub room: String,
    pub identity: String,
    pub token: Result<String, String>,
    pub publisher: bool,
    pub video: PublishVideo,
    pub opus: Arc<Vec<bytes::Bytes>>,
    /// The tile size it reports for every video track it receives (none: it reports nothing).
    pub tile: Option<TileSize>,
    pub run_start: Instant,
    pub live: Arc<Live>,
    pub measuring: Arc<AtomicBool>,
    pub stop: watch::Receiver<bool>,
}

fn fail(stats: &mut ParticipantStats, live: &Live, error: String) {
    Live::add(&live.errors, 1);
    stats.error = Some(error);
}

/// Runs one participant until the run stops (or it fails), and returns what it saw.
pub async fn participant(mut spec: ParticipantSpec) -> ParticipantStats {
    let mut stats = ParticipantStats {
        identity: spec.identity.clone(),
        ..Default::default()
    };
    stats.downlink.tile = spec.tile;
    let token = match std::mem::replace(&mut spec.token, Err(String::new())) {
        Ok(token) => token,
        Err(e) => {
            fail(&mut stats, &spec.live, format!("token: {e}"));
            return stats;
        }
    };
    let opened = Instant::now();
    // In a cluster a join may be redirected to the room's node: follow (at most 3 times).
    let mut url = spec.ws_url.clone();
    let mut redirects = 0;
    let (mut client, joined) = loop {
        let mut client = match Client::connect(&url).await {
            Ok(client) => client,
            Err(e) => {
                fail(&mut stats, &spec.live, e.to_string());
                return stats;
            }
        };
        client.join(&spec.room, &token);
        let joined = client
            .wait_for(JOIN_TIMEOUT, |event| match event {
                ClientEvent::Message(ServerMessage::Joined { .. }) => Some(Ok(None)),
                ClientEvent::Message(ServerMessage::Redirect { url, .. }) => {
                    Some(Ok(Some(url.clone())))
                }
                ClientEvent::Message(ServerMessage::Error { code, message }) => {
                    Some(Err(format!("join refused ({code:?}): {message}")))
                }
                ClientEvent::Closed { code, reason } => {
                    Some(Err(format!("closed while joining ({code:?}): {reason}")))
                }
                _ => None,
            })
            .await;
        match joined {
            Some(Ok(Some(next))) if redirects < 3 => {
                redirects += 1;
                url = next;
            }
            Some(Ok(Some(_))) => break (client, Some(Err("redirected too often".to_owned()))),
            Some(Ok(None)) => break (client, Some(Ok(()))),
            Some(Err(e)) => break (client, Some(Err(e))),
            None => break (client, None),
        }
    };
    stats.redirected = redirects > 0;
    match joined {
        Some(Ok(())) => Live::add(&spec.live.joined, 1),
        Some(Err(e)) => {
            fail(&mut stats, &spec.live, e);
            return stats;
        }
        None => {
            fail(
                &mut stats,
                &spec.live,
                format!("no `joined` within {JOIN_TIMEOUT:?}"),
            );
            return stats;
        }
    }
    if spec.publisher
        && let Err(e) = publish(&client, &spec)
    {
        fail(&mut stats, &spec.live, e.to_string());
        client.leave();
        return stats;
    }
    loop {
        tokio::select! {
            _ = spec.stop.changed() => break,
            event = client.events.recv() => match event {
                None => {
                    fail(&mut stats, &spec.live, "the client stopped".into());
                    break;
                }
                Some(ClientEvent::Rtp { participant_id, kind, sequence_number, timestamp, payload, .. }) => {
                    let now = Instant::now();
                    let window = spec.measuring.load(Ordering::Relaxed);
                    stats.join_time.get_or_insert(now.duration_since(opened));
                    if kind == TrackKind::Video {
                        stats.downlink.received(&participant_id, &payload, window);
                    }
                    stats.record(
                        spec.run_start,
                        now,
                        &participant_id,
                        kind == TrackKind::Video,
                        sequence_number,
                        timestamp,
                        &payload,
                        window,
                        &spec.live,
                    );
                }
                Some(ClientEvent::TrackOpened { participant_id, track_id, kind: TrackKind::Video, .. }) => {
                    stats.downlink.opened(&participant_id, &track_id);
                    if let Some(tile) = spec.tile {
                        client.send(ClientMessage::TrackSettings(TrackSettings {
                            track_id,
                            visible: true,
                            width: tile.width,
                            height: tile.height,
                            max_layer: None,
                        }));
                    }
                }
                Some(ClientEvent::Message(ServerMessage::DownlinkChanged { estimate_bps, tracks })) => {
                    stats.downlink.changed(estimate_bps, &tracks);
                }
                Some(ClientEvent::PeerState { target, state }) if state == "failed" => {
                    fail(&mut stats, &spec.live, format!("{target:?} peer connection failed"));
                    break;
                }
                Some(ClientEvent::Closed { code, reason }) => {
                    fail(&mut stats, &spec.live, format!("disconnected ({code:?}): {reason}"));
                    break;
                }
                Some(ClientEvent::Message(ServerMessage::Error { code, message })) => {
                    tracing::debug!(?code, %message, "server error");
                }
                Some(_) => {}
            }
        }
    }
    client.leave();
    stats
}

/// Starts publishing audio and, as the spec says, video.
fn publish(client: &Client, spec: &ParticipantSpec) -> Result<(), client::ClientError> {
    let now = Instant::now();
    let audio =
        Some(Box::new(OpusSource::new(Arc::clone(&spec.opus), now)) as Box<dyn MediaSource>);
    match &spec.video {
        PublishVideo::None => client.publish_sources(audio, None),
        PublishVideo::Single(clip) => client.publish_sources(
            audio,
            Some(Box::new(ClipSource::new(Arc::clone(clip), now))),
        ),
        PublishVideo::Simulcast(layers) => {
            let layers = layers
                .iter()
                .map(|l| {
                    let source = ClipSource::new(Arc::clone(&l.clip), now);
                    (l.layer, Box::new(source) as Box<dyn MediaSource>)
                })
                .collect();
            client.publish_simulcast(audio, layers)?;
        }
    }
    Ok(())
}
