//! Building the server's side of a peer connection (webrtc-rs `rtc`, sans-IO) and the codec
//! list it accepts.
//!
//! The codecs are the ones every browser we support can both send and receive (Opus; VP8, VP9,
//! H.264 with packetization-mode 1), without RTX or FEC so that a retransmission arrives on the
//! media SSRC the forwarder already knows. A publisher connection's interceptors ask for
//! missing packets and send transport-wide congestion feedback; a subscriber connection's answer
//! NACKs, send sender reports and estimate the downlink, and nothing more, since each one costs
//! every forwarded packet. It never opens a socket: the caller passes `now` and carries every
//! datagram.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{
    CongestionControlBuilder, NackGeneratorBuilder, NackResponderBuilder, Registry,
    SenderReportBuilder, Slot,
};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, configure_twcc_receiver_only, configure_twcc_sender_only,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::{
    SctpMaxMessageSize, SettingEngineBuilder,
};
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::sdp::extmap::AUDIO_LEVEL_URI;

use crate::downlink_estimator::{DownlinkEstimator, SharedEstimate};
use crate::error::SfuError;
use crate::feedback::KeyframeRequestsToApplication;
use crate::read_hook::ReadSide;
use crate::retransmission_budget::RetransmissionBudget;

/// No answer on the media path this long: `disconnected`.
const ICE_DISCONNECTED_TIMEOUT: Duration = Duration::from_secs(5);
/// Still no path this long after `disconnected`, whatever ICE restarts were tried: `failed`.
pub(crate) const ICE_FAILED_TIMEOUT: Duration = Duration::from_secs(120);

/// Application-most position in a publisher connection's interceptor chain, after every
/// built-in interceptor.
const KEYFRAME_REQUEST_SLOT: usize = 1_000_000;
/// How often a packet missing from a publisher's stream is asked for at most.
const MAX_NACKS_PER_PACKET: u16 = 10;
/// Between the pacer (3,000) and the NACK responder (4,000): NACKs are trimmed before they are
/// answered, after the congestion controller has attached its estimate. A subscriber
/// connection's keyframe-request hook shares this interceptor (see `subscriber_interceptors`).
const RETRANSMISSION_BUDGET_SLOT: usize = 3_500;

fn video_feedback() -> Vec<RTCPFeedback> {
    [
        ("goog-remb", ""),
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
    ]
    .into_iter()
    .map(|(typ, parameter)| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    })
    .collect()
}

/// The codecs Switchyard negotiates, in order of preference.
pub(crate) fn supported_codecs() -> Vec<(RTCRtpCodecParameters, RtpCodecKind)> {
    let video = |mime: &str, fmtp: &str, pt: u8| {
        (
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: mime.to_owned(),
                    clock_rate: 90000,
                    channels: 0,
                    sdp_fmtp_line: fmtp.to_owned(),
                    rtcp_feedback: video_feedback(),
                },
                payload_type: pt,
            },
            RtpCodecKind::Video,
        )
    };
    vec![
        (
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_OPUS.to_owned(),
                    clock_rate: 48000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                    rtcp_feedback: vec![],
                },
                payload_type: 111,
            },
            RtpCodecKind::Audio,
        ),
        video(MIME_TYPE_VP8, "", 96),
        video(
            MIME_TYPE_H264,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            102,
        ),
        video(
            MIME_TYPE_H264,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
            108,
        ),
        video(
            MIME_TYPE_H264,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
            127,
        ),
        video(MIME_TYPE_VP9, "profile-id=0", 98),
    ]
}

/// Whether `video_codecs` (`vp8`, `vp9`, `h264`; empty: all) lets a room use `codec`. Audio is
/// always allowed.
pub(crate) fn codec_allowed(
    codec: &RTCRtpCodecParameters,
    kind: RtpCodecKind,
    video_codecs: &[String],
) -> bool {
    kind != RtpCodecKind::Video
        || video_codecs.is_empty()
        || video_codecs.iter().any(|name| {
            codec
                .rtp_codec
                .mime_type
                .rsplit('/')
                .next()
                .is_some_and(|mime| mime.eq_ignore_ascii_case(name))
        })
}

/// The interceptors of a publisher connection: the defaults (NACK, transport-wide feedback,
/// simulcast header extensions, sender reports) without receiver reports. A receiver report is
/// what tells Chromium that a simulcast layer's SSRC is known, after which it stops sending the
/// layer's mid and rid; but the engine forgets rid-learned SSRCs at every new remote description
/// (a renegotiation: a screen share added, an ICE restart) and can only learn them again from
/// those extensions. Without receiver reports Chromium keeps sending them (a few bytes a packet)
/// and every layer is found again at once.
fn publisher_interceptors(media_engine: &mut MediaEngine) -> Result<Registry, SfuError> {
    let engine = |e: rtc::shared::error::Error| SfuError::Engine(e.to_string());
    // NACK for what publishers send (the codecs carry the `nack` feedback), each missing packet
    // asked for at most 10 times (a second): a layer the publisher pauses right after a loss
    // would otherwise be asked for the same packets forever, and Chromium resends them each time.
    let registry = Registry::new().with(
        Slot::NackGenerator,
        NackGeneratorBuilder::new()
            .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
            .build(),
    );
    configure_simulcast_extension_headers(media_engine).map_err(engine)?;
    let registry = configure_twcc_receiver_only(registry, media_engine).map_err(engine)?;
    Ok(registry.with(Slot::SenderReport, SenderReportBuilder::new().build()))
}

/// The interceptors of a subscriber connection, which carries only what we send: the NACK
/// responder, sender reports, transport-wide sequence numbers and the downlink estimator fed
/// by the browser's feedback. No pacer: forwarded packets go out as they come (the allocator
/// keeps the rate within the estimate by choosing layers). Nothing that only reads what a
/// browser sends on it (a NACK generator, transport-wide feedback, receiver reports): every
/// interceptor in the chain costs each forwarded packet a move in and out of its queues, so the
/// two hooks on what arrives (resends budgeted before the NACK responder sees what is asked,
/// and keyframe requests let through to the room) share one interceptor.
fn subscriber_interceptors(
    media_engine: &mut MediaEngine,
    counters: &std::sync::Arc<crate::counters::MediaCounters>,
    estimate: SharedEstimate,
) -> Result<Registry, SfuError> {
    let engine = |e: rtc::shared::error::Error| SfuError::Engine(e.to_string());
    // The codecs carry `nack` and `nack pli` already (`video_feedback`); the simulcast header
    // extensions keep the SDP as it was (Chromium ignores them on what it receives).
    configure_simulcast_extension_headers(media_engine).map_err(engine)?;
    let registry = configure_twcc_sender_only(Registry::new(), media_engine).map_err(engine)?;
    let hooks = (
        RetransmissionBudget::new(std::sync::Arc::clone(counters), estimate.clone()),
        KeyframeRequestsToApplication::new(std::sync::Arc::clone(counters)),
    );
    Ok(registry
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(Slot::SenderReport, SenderReportBuilder::new().build())
        .with(
            Slot::Custom(RETRANSMISSION_BUDGET_SLOT),
            ReadSide::new(hooks),
        )
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(DownlinkEstimator::new(estimate)).build(),
        ))
}

/// A server-side peer connection and our host candidates.
pub(crate) struct ServerPeer {
    pub pc: RTCPeerConnection,
    /// Our host candidates (`candidate:…` lines), trickled to the client after the first
    /// offer or answer as well as written into it.
    pub candidates: Vec<String>,
}

impl ServerPeer {
    /// Builds a peer connection with our host candidates added. The engine draws its ICE
    /// credentials, and new ones at each ICE restart; the room learns each ufrag from the SDP
    /// we send (see `Transport::learn_local_ufrag`) and routes datagrams by it.
    /// `video_codecs` (`vp8`, `vp9`, `h264`) limits the video codecs; empty allows them all.
    /// `downlink`, for a subscriber connection, receives its bandwidth estimate (transport-wide
    /// sequence numbers on what we send, and an estimator fed by the browser's feedback).
    pub fn new(
        now: Instant,
        candidates: &[SocketAddr],
        video_codecs: &[String],
        counters: &std::sync::Arc<crate::counters::MediaCounters>,
        downlink: Option<SharedEstimate>,
    ) -> Result<Self, SfuError> {
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            // A path that stops answering is `disconnected` after 5 s, but `failed` (terminal:
            // the participant is removed) only after ICE_FAILED_TIMEOUT, so a client has time
            // to restart ICE through an outage (the browser client retries every 10 s).
            .with_ice_timeouts(
                Some(ICE_DISCONNECTED_TIMEOUT),
                Some(ICE_FAILED_TIMEOUT),
                None,
            )
            // The server offers only host candidates and browsers reach it directly, so there is
            // nothing better to wait for: nominate the first working pair of any type. (The
            // engine's defaults wait up to a second for peer-reflexive pairs, which is what a
            // browser's address looks like before its trickled candidate arrives.)
            .with_host_acceptance_min_wait(Some(Duration::ZERO))
            .with_srflx_acceptance_min_wait(Some(Duration::ZERO))
            .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
            .with_relay_acceptance_min_wait(Some(Duration::ZERO))
            // Browsers accept 256 KiB (Chromium) or more (Firefox); the relay's own limit is a
            // little lower so that a delivered frame, whose header names the sender, still fits.
            .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(256 * 1024))
            .build();
        let mut media_engine = MediaEngine::default();
        for (codec, kind) in supported_codecs() {
            if !codec_allowed(&codec, kind, video_codecs) {
                continue;
            }
            media_engine
                .register_codec(codec, kind)
                .map_err(|e| SfuError::Engine(e.to_string()))?;
        }
        // Publishers' audio levels tell who is speaking.
        media_engine
            .register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: AUDIO_LEVEL_URI.to_owned(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .map_err(|e| SfuError::Engine(e.to_string()))?;
        let registry = match downlink {
            Some(estimate) => subscriber_interceptors(&mut media_engine, counters, estimate)?,
            None => publisher_interceptors(&mut media_engine)?.with(
                Slot::Custom(KEYFRAME_REQUEST_SLOT),
                KeyframeRequestsToApplication::interceptor(std::sync::Arc::clone(counters)),
            ),
        };
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(setting_engine)
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(|e| SfuError::Engine(e.to_string()))?;
        let mut trickle = Vec::with_capacity(candidates.len());
        for addr in candidates {
            let candidate = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "udp".to_owned(),
                    address: addr.ip().to_string(),
                    port: addr.port(),
                    component: 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .new_candidate_host()
            .map_err(|e| SfuError::Engine(e.to_string()))?;
            let init = RTCIceCandidate::from(&candidate)
                .to_json()
                .map_err(|e| SfuError::Engine(e.to_string()))?;
            trickle.push(init.candidate.clone());
            pc.add_local_candidate(init)
                .map_err(|e| SfuError::Engine(e.to_string()))?;
        }
        // All our candidates are known up front: gathering is complete.
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(|e| SfuError::Engine(e.to_string()))?;
        Ok(ServerPeer {
            pc,
            candidates: trickle,
        })
    }
}
