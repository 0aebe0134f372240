//! What a client publishes ([`Outgoing`]): its tracks, each sent as one RTP stream or, with
//! simulcast, as one stream per layer (rid `q`, `h` or `f`, its own SSRC, its own source);
//! writing the packets that are due, with the `sdes:mid` and `rtp-stream-id` header extensions
//! on a layer's first packets; keyframe requests passed to the stream they name; and the layers
//! the SFU says nobody receives paused (`subscribedLayers`). It never touches a socket.

use std::time::{Duration, Instant};

use bytes::Bytes;
use protocol::Layer;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverId};
use rtc::sdp::extmap::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI};

use crate::codecs::{PAYLOAD_TYPE_OPUS, PAYLOAD_TYPE_VP8, opus, vp8};
use crate::error::ClientError;
use crate::media::{MediaPacket, MediaSource};

/// How long after its first packet a simulcast layer carries its mid and rid. The SFU learns
/// the layer's SSRC from the first packet that arrives; browsers likewise stop tagging once
/// the receiver's reports show the stream arrived.
const TAG_FOR: Duration = Duration::from_secs(2);

/// What to publish as video: one source, or one per simulcast layer.
pub(crate) type VideoEncodings = Vec<(Option<Layer>, Box<dyn MediaSource>)>;

/// One RTP stream: a whole track, or one simulcast layer of it.
struct Stream {
    ssrc: u32,
    layer: Option<Layer>,
    sequence: u16,
    source: Box<dyn MediaSource>,
    /// False while the SFU says nobody receives this layer: nothing is sent.
    active: bool,
    first_sent: Option<Instant>,
}

/// The negotiated header extension ids a simulcast track tags its first packets with.
#[derive(Clone)]
struct Tags {
    mid_id: u8,
    mid: Bytes,
    rid_id: u8,
}

/// One published track.
struct Track {
    sender: RTCRtpSenderId,
    /// The track's id (the msid's track id), which `subscribedLayers` names.
    track_id: String,
    payload_type: u8,
    streams: Vec<Stream>,
    /// Looked up once the answer has arrived; simulcast tracks only.
    tags: Option<Tags>,
}

/// Everything a client publishes, and a buffer for the packets due.
#[derive(Default)]
pub(crate) struct Outgoing {
    tracks: Vec<Track>,
    due: Vec<MediaPacket>,
}

impl Outgoing {
    /// Adds an Opus track fed by `audio` and a VP8 track with `video`'s encodings (either may
    /// be absent) to `pc`, in one new stream; the caller offers them.
    pub(crate) fn add(
        &mut self,
        pc: &mut RTCPeerConnection,
        audio: Option<Box<dyn MediaSource>>,
        video: VideoEncodings,
    ) -> Result<(), ClientError> {
        let stream_id = format!("stream-{}", rand::random::<u32>());
        if let Some(source) = audio {
            let track = add_track(
                pc,
                &stream_id,
                RtpCodecKind::Audio,
                opus(),
                PAYLOAD_TYPE_OPUS,
                vec![(None, source)],
            )?;
            self.tracks.push(track);
        }
        if !video.is_empty() {
            let track = add_track(
                pc,
                &stream_id,
                RtpCodecKind::Video,
                vp8(),
                PAYLOAD_TYPE_VP8,
                video,
            )?;
            self.tracks.push(track);
        }
        Ok(())
    }

    /// When the next packet of an active stream is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.streams().map(|s| s.source.next_due()).min()
    }

    fn streams(&self) -> impl Iterator<Item = &Stream> {
        self.tracks.iter().flat_map(|t| t.streams.iter())
    }

    /// Writes the packets due at `now` on every stream. A paused layer's source is polled all
    /// the same (its clock runs on) and its packets dropped.
    pub(crate) fn send_due(&mut self, pc: &mut RTCPeerConnection, now: Instant) {
        for track in &mut self.tracks {
            let simulcast = track.streams.iter().any(|s| s.layer.is_some());
            if simulcast && track.tags.is_none() {
                track.tags = negotiated_tags(pc, track.sender);
            }
            for stream in &mut track.streams {
                self.due.clear();
                stream.source.poll(now, &mut self.due);
                if !stream.active || self.due.is_empty() {
                    continue;
                }
                let first_sent = *stream.first_sent.get_or_insert(now);
                let tag = match (&track.tags, stream.layer) {
                    (Some(tags), Some(layer)) if now < first_sent + TAG_FOR => {
                        Some((tags, Bytes::from_static(layer.rid().as_bytes())))
                    }
                    _ => None,
                };
                let Some(mut sender) = pc.rtp_sender(track.sender) else {
                    continue;
                };
                for packet in self.due.drain(..) {
                    stream.sequence = stream.sequence.wrapping_add(1);
                    let mut header = rtc::rtp::header::Header {
                        version: 2,
                        marker: packet.marker,
                        payload_type: track.payload_type,
                        sequence_number: stream.sequence,
                        timestamp: packet.timestamp,
                        ssrc: stream.ssrc,
                        ..Default::default()
                    };
                    if let Some((tags, rid)) = &tag {
                        let tagged = header
                            .set_extension(tags.mid_id, tags.mid.clone())
                            .and_then(|()| header.set_extension(tags.rid_id, rid.clone()));
                        if let Err(e) = tagged {
                            tracing::warn!(error = %e, "cannot tag a simulcast packet");
                        }
                    }
                    let rtp = rtc::rtp::Packet {
                        header,
                        payload: packet.payload,
                    };
                    if let Err(e) = sender.write_rtp(now, rtp) {
                        tracing::debug!(error = %e, ssrc = stream.ssrc, "RTP write refused");
                    }
                }
            }
        }
    }

    /// The SFU asked for a keyframe on `ssrc`: its source makes the next frame one. Returns
    /// the stream's layer (`Some(None)` for a single-layer track), `None` for an SSRC we do
    /// not send.
    pub(crate) fn keyframe_requested(&mut self, ssrc: u32) -> Option<Option<Layer>> {
        let stream = self
            .tracks
            .iter_mut()
            .flat_map(|t| t.streams.iter_mut())
            .find(|s| s.ssrc == ssrc)?;
        stream.source.request_keyframe();
        Some(stream.layer)
    }

    /// The SFU named the layers of track `track_id` that someone receives: the others pause.
    /// A layer that resumes starts with a keyframe.
    pub(crate) fn set_active_layers(&mut self, track_id: &str, layers: &[Layer]) {
        let Some(track) = self.tracks.iter_mut().find(|t| t.track_id == track_id) else {
            return;
        };
        for stream in &mut track.streams {
            let Some(layer) = stream.layer else {
                continue;
            };
            let active = layers.contains(&layer);
            if active && !stream.active {
                stream.source.request_keyframe();
            }
            stream.active = active;
        }
    }
}

/// Adds one track with one encoding per source (a rid each when there are several).
fn add_track(
    pc: &mut RTCPeerConnection,
    stream_id: &str,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    payload_type: u8,
    sources: VideoEncodings,
) -> Result<Track, ClientError> {
    let streams: Vec<Stream> = sources
        .into_iter()
        .map(|(layer, source)| Stream {
            ssrc: rand::random(),
            layer,
            sequence: rand::random(),
            source,
            active: true,
            first_sent: None,
        })
        .collect();
    let track_id = format!("{kind}-{}", streams.first().map_or(0, |s| s.ssrc));
    let encodings = streams
        .iter()
        .map(|s| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: s.layer.map(|l| l.rid().to_owned()).unwrap_or_default(),
                ssrc: Some(s.ssrc),
                ..Default::default()
            },
            active: true,
            codec: codec.clone(),
            ..Default::default()
        })
        .collect();
    let track = MediaStreamTrack::new(
        stream_id.to_owned(),
        track_id.clone(),
        format!("{kind}"),
        kind,
        encodings,
    );
    Ok(Track {
        sender: pc.add_track(track)?,
        track_id,
        payload_type,
        streams,
        tags: None,
    })
}

/// The sender's negotiated `sdes:mid` and `rtp-stream-id` extension ids and its mid (`None`
/// before the answer, or when the SFU declined them).
fn negotiated_tags(pc: &mut RTCPeerConnection, sender: RTCRtpSenderId) -> Option<Tags> {
    let mid = pc
        .rtp_transceiver(RTCRtpTransceiverId::from(sender))?
        .mid()
        .clone()?;
    let mut sender = pc.rtp_sender(sender)?;
    let extensions = &sender.get_parameters().rtp_parameters.header_extensions;
    let id_of = |uri: &str| {
        extensions
            .iter()
            .find(|e| e.uri == uri)
            .and_then(|e| u8::try_from(e.id).ok())
    };
    Some(Tags {
        mid_id: id_of(SDES_MID_URI)?,
        rid_id: id_of(SDES_RTP_STREAM_ID_URI)?,
        mid: Bytes::from(mid.into_bytes()),
    })
}
