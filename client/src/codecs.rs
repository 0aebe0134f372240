//! The codecs the client negotiates (Opus and VP8 to publish; VP9 and every H.264 profile
//! browsers send, to receive) and their payload types; never touches a connection.

use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};

pub(crate) fn client_codecs() -> Vec<(RTCRtpCodecParameters, RtpCodecKind)> {
    let mut codecs = vec![
        (
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: PAYLOAD_TYPE_OPUS,
            },
            RtpCodecKind::Audio,
        ),
        (
            RTCRtpCodecParameters {
                rtp_codec: vp8(),
                payload_type: 96,
            },
            RtpCodecKind::Video,
        ),
        // Received only (we publish VP8): rooms may carry these from browsers.
        (
            RTCRtpCodecParameters {
                rtp_codec: video_codec(MIME_TYPE_VP9, ""),
                payload_type: PAYLOAD_TYPE_VP9,
            },
            RtpCodecKind::Video,
        ),
    ];
    // Every H.264 profile browsers send, in both packetization modes.
    let mut payload_type = PAYLOAD_TYPE_H264;
    for profile in ["42001f", "42e01f", "4d001f", "64001f"] {
        for mode in [1, 0] {
            let fmtp = format!(
                "level-asymmetry-allowed=1;packetization-mode={mode};profile-level-id={profile}"
            );
            codecs.push((
                RTCRtpCodecParameters {
                    rtp_codec: video_codec(MIME_TYPE_H264, &fmtp),
                    payload_type,
                },
                RtpCodecKind::Video,
            ));
            payload_type += 1;
        }
    }
    codecs
}

pub(crate) const PAYLOAD_TYPE_OPUS: u8 = 111;
pub(crate) const PAYLOAD_TYPE_VP8: u8 = 96;
pub(crate) const PAYLOAD_TYPE_VP9: u8 = 98;
/// The first of the H.264 payload types (one per profile and packetization mode).
pub(crate) const PAYLOAD_TYPE_H264: u8 = 102;

pub(crate) fn video_codec(mime_type: &str, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime_type.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: vec![],
    }
}

pub(crate) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

pub(crate) fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}
