//! One webrtc-rs peer connection with its UDP socket ([`Peer`]), the address it binds to,
//! and feeding it received datagrams; never speaks signaling.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use bytes::BytesMut;
use protocol::TrackKind;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::{
    SctpMaxMessageSize, SettingEngineBuilder,
};
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;

use crate::codecs::client_codecs;
use crate::error::ClientError;
use crate::keyframe_requests::{KEYFRAME_REQUEST_SLOT, KeyframeRequestsToApplication};

/// The address of this host that packets to the signaling server leave from: 127.0.0.1 for a
/// local server, the outgoing interface's address for a remote one. Media goes the same way.
pub(crate) async fn local_ip_towards(url: &str) -> IpAddr {
    let fallback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let Ok(uri) = url.parse::<tokio_tungstenite::tungstenite::http::Uri>() else {
        return fallback;
    };
    let Some(host) = uri.host() else {
        return fallback;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(443);
    let Ok(mut addrs) = tokio::net::lookup_host((host, port)).await else {
        return fallback;
    };
    let Some(server) = addrs.find(SocketAddr::is_ipv4) else {
        return fallback;
    };
    let Ok(probe) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else {
        return fallback;
    };
    if probe.connect(server).await.is_err() {
        return fallback;
    }
    probe.local_addr().map(|a| a.ip()).unwrap_or(fallback)
}

/// One peer connection (publisher or subscriber) and the socket its media goes through.
pub(crate) struct Peer {
    pub(crate) pc: RTCPeerConnection,
    pub(crate) socket: UdpSocket,
    pub(crate) local: SocketAddr,
    pub(crate) buf: Vec<u8>,
    /// Track id → (publisher participant id, kind), for received tracks.
    pub(crate) tracks: std::collections::HashMap<String, (String, TrackKind)>,
    pub(crate) connected: bool,
    /// The last address the ICE agent sent to.
    pub(crate) remote: Option<SocketAddr>,
}

impl Peer {
    pub(crate) async fn new(local_ip: IpAddr) -> Result<Peer, ClientError> {
        let socket = UdpSocket::bind((local_ip, 0)).await?;
        // Transport-wide feedback reports arrival times: the kernel's, not this busy process's.
        crate::arrival::stamp_arrivals(&socket)?;
        let local = socket.local_addr()?;
        let mut media_engine = MediaEngine::default();
        for (codec, kind) in client_codecs() {
            media_engine.register_codec(codec, kind)?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)?.with(
            Slot::Custom(KEYFRAME_REQUEST_SLOT),
            KeyframeRequestsToApplication::default(),
        );
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(
                SettingEngineBuilder::new()
                    .with_multicast_dns_mode(MulticastDnsMode::Disabled)
                    .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(1024 * 1024))
                    .build(),
            )
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .build(Instant::now())?;
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: local.ip().to_string(),
                port: local.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()?;
        pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
        pc.add_local_candidate(RTCIceCandidateInit::default())?;
        Ok(Peer {
            pc,
            socket,
            local,
            buf: vec![0; 2048],
            tracks: Default::default(),
            connected: false,
            remote: None,
        })
    }
}

/// Feeds the `n` bytes received from `from` at `arrival` to the peer connection.
pub(crate) fn read(peer: &mut Peer, n: usize, from: SocketAddr, arrival: Instant) {
    let _ = peer.pc.handle_read(TaggedBytesMut {
        now: arrival,
        transport: TransportContext {
            local_addr: peer.local,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: BytesMut::from(&peer.buf[..n]),
    });
}
