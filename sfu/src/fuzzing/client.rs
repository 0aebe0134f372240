//! The client side of a fuzzed call: an `rtc` peer connection set up as a browser's would be
//! (Opus and VP8, the default interceptors, one host candidate), and the VP8 packets a
//! publisher sends. Used only by the fuzzing harness; it never opens a socket itself.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};

/// The VP8 payload type the client registers (the server's too).
pub(crate) const VP8_PAYLOAD_TYPE: u8 = 96;

/// Why the client side could not be set up.
pub(crate) type SetupError = String;

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

/// A client's peer connection with `address` as its one host candidate.
pub(crate) fn client_pc(address: SocketAddr) -> Result<RTCPeerConnection, SetupError> {
    let mut media_engine = MediaEngine::default();
    let opus = RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    };
    for (rtp_codec, payload_type, kind) in [
        (opus, 111, RtpCodecKind::Audio),
        (vp8(), VP8_PAYLOAD_TYPE, RtpCodecKind::Video),
    ] {
        media_engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec,
                    payload_type,
                },
                kind,
            )
            .map_err(|e| format!("codec: {e}"))?;
    }
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)
        .map_err(|e| format!("interceptors: {e}"))?;
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(
            SettingEngineBuilder::new()
                .with_multicast_dns_mode(MulticastDnsMode::Disabled)
                .build(),
        )
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .build(Instant::now())
        .map_err(|e| format!("peer connection: {e}"))?;
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: address.ip().to_string(),
            port: address.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .map_err(|e| format!("host candidate: {e}"))?;
    let init = RTCIceCandidate::from(&candidate)
        .to_json()
        .map_err(|e| format!("candidate: {e}"))?;
    pc.add_local_candidate(init)
        .map_err(|e| format!("local candidate: {e}"))?;
    pc.add_local_candidate(RTCIceCandidateInit::default())
        .map_err(|e| format!("end of candidates: {e}"))?;
    Ok(pc)
}

/// A sendonly VP8 track with a fixed SSRC.
pub(crate) fn video_track(ssrc: u32) -> MediaStreamTrack {
    MediaStreamTrack::new(
        "fuzz-stream".to_owned(),
        "fuzz-video".to_owned(),
        "video".to_owned(),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: vp8(),
            ..Default::default()
        }],
    )
}

/// Numbers the publisher's packets.
pub(crate) struct Vp8Source {
    pub ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl Vp8Source {
    pub fn new(ssrc: u32) -> Self {
        Vp8Source {
            ssrc,
            sequence: 1000,
            timestamp: 0,
        }
    }

    /// The next packet: a small one-packet VP8 keyframe (640x480), as a browser starts with.
    pub fn keyframe(&mut self) -> rtc::rtp::Packet {
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(3000);
        // VP8 payload descriptor (S=1, partition 0), then a keyframe's tag, start code and size.
        let mut payload = vec![
            0x10, 0x50, 0x2f, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01,
        ];
        payload.extend((payload.len()..200).map(|i| i as u8));
        rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: true,
                payload_type: VP8_PAYLOAD_TYPE,
                sequence_number: self.sequence,
                timestamp: self.timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        }
    }
}

/// The value of the first `a=<name>:` line of an SDP.
pub(crate) fn sdp_attribute(sdp: &str, name: &str) -> Option<String> {
    let prefix = format!("a={name}:");
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix(&prefix))
        .map(str::to_owned)
}
