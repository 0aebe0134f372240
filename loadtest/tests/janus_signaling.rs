//! Janus VideoRoom signaling (`loadtest::janus`) against a real Janus started by
//! `scripts/janus` (which installs the Debian package if it is missing), with real SDP from
//! webrtc-rs (`rtc`) peer connections on 127.0.0.1.
//!
//! Janus lets a subscriber in only once the publisher's PeerConnection is up, so the peers
//! here also run ICE and DTLS over loopback (no media): this proves that Janus gathers
//! 127.0.0.1 candidates and that its `webrtcup` events reach their handles.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use loadtest::janus::{JanusError, JanusEvent, JanusSession};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const ROOM: u64 = 4242;
const WEBRTC_TIMEOUT: Duration = Duration::from_secs(20);

/// A Janus started by `scripts/janus start`, stopped (`scripts/janus stop`) when dropped,
/// also when the test fails.
struct Janus {
    dir: PathBuf,
    url: String,
}

impl Janus {
    fn start() -> Janus {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!(
            "switchyard-janus-test-{}-{port}",
            std::process::id()
        ));
        let started = Instant::now();
        let output = Command::new(script())
            .args(["start", "--port", &port.to_string(), "--dir"])
            .arg(&dir)
            .output()
            .expect("run scripts/janus start");
        // From here on the guard stops whatever was started.
        let mut janus = Janus {
            dir,
            url: String::new(),
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "scripts/janus start failed: {}{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        janus.url = stdout
            .lines()
            .find_map(|l| l.strip_prefix("JANUS_URL="))
            .unwrap_or_else(|| panic!("no JANUS_URL in {stdout:?}"))
            .to_owned();
        eprintln!(
            "Janus up at {} in {:?} (log: {})",
            janus.url,
            started.elapsed(),
            janus.dir.join("janus.log").display()
        );
        janus
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        let stopped = Command::new(script())
            .args(["stop", "--dir"])
            .arg(&self.dir)
            .status();
        if !matches!(stopped, Ok(s) if s.success()) {
            eprintln!(
                "scripts/janus stop --dir {}: {stopped:?}",
                self.dir.display()
            );
        }
        if std::thread::panicking() {
            eprintln!("Janus' log is kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/janus")
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

/// A webrtc-rs peer connection (Opus and VP8) with one UDP socket on 127.0.0.1, whose only
/// candidate is that socket's address.
struct Peer {
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
}

impl Peer {
    async fn new() -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let local = socket.local_addr().expect("local address");
        let mut media_engine = MediaEngine::default();
        for (rtp_codec, payload_type, kind) in [
            (opus(), 111, RtpCodecKind::Audio),
            (vp8(), 96, RtpCodecKind::Video),
        ] {
            media_engine
                .register_codec(
                    RTCRtpCodecParameters {
                        rtp_codec,
                        payload_type,
                    },
                    kind,
                )
                .expect("register codec");
        }
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .expect("interceptors");
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
            .expect("peer connection");
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
        .new_candidate_host()
        .expect("host candidate");
        pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json().expect("json"))
            .expect("add candidate");
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .expect("end of candidates");
        Peer { pc, socket, local }
    }

    /// A send-only transceiver for a track of `kind`.
    fn add_sender(&mut self, kind: RtpCodecKind, codec: RTCRtpCodec, ssrc: u32) {
        let track = MediaStreamTrack::new(
            "loadtest".to_owned(),
            format!("{kind}-{ssrc}"),
            format!("{kind}"),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        );
        self.pc
            .add_transceiver_from_track(
                track,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .expect("add transceiver");
    }

    /// Runs the connection (ICE, DTLS, timers) in a task; the watch follows its state.
    fn spawn(self) -> (JoinHandle<()>, watch::Receiver<RTCPeerConnectionState>) {
        let (state_sender, state) = watch::channel(RTCPeerConnectionState::New);
        let task = tokio::spawn(async move {
            let Peer {
                mut pc,
                socket,
                local,
            } = self;
            let mut buf = vec![0u8; 2048];
            loop {
                loop {
                    let mut busy = false;
                    while let Some(out) = pc.poll_write() {
                        busy = true;
                        let _ = socket.send_to(&out.message, out.transport.peer_addr).await;
                    }
                    while let Some(event) = pc.poll_event() {
                        busy = true;
                        if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = event {
                            let _ = state_sender.send(s);
                        }
                    }
                    while pc.poll_read().is_some() {
                        busy = true;
                    }
                    if !busy {
                        break;
                    }
                }
                let now = Instant::now();
                let next = pc
                    .poll_timeout()
                    .unwrap_or(now + Duration::from_millis(100))
                    .min(now + Duration::from_millis(100));
                tokio::select! {
                    r = socket.recv_from(&mut buf) => {
                        if let Ok((n, from)) = r {
                            let _ = pc.handle_read(TaggedBytesMut {
                                now: Instant::now(),
                                transport: TransportContext {
                                    local_addr: local,
                                    peer_addr: from,
                                    ecn: None,
                                    transport_protocol: TransportProtocol::UDP,
                                },
                                message: BytesMut::from(&buf[..n]),
                            });
                        }
                    }
                    _ = tokio::time::sleep_until(next.into()) => {
                        let _ = pc.handle_timeout(Instant::now());
                    }
                }
            }
        });
        (task, state)
    }
}

async fn wait_connected(state: &mut watch::Receiver<RTCPeerConnectionState>, who: &str) {
    let result = tokio::time::timeout(
        WEBRTC_TIMEOUT,
        state.wait_for(|s| {
            matches!(
                s,
                RTCPeerConnectionState::Connected | RTCPeerConnectionState::Failed
            )
        }),
    )
    .await
    .map(|r| r.map(|s| *s));
    assert!(
        matches!(result, Ok(Ok(RTCPeerConnectionState::Connected))),
        "{who}: peer connection not connected after {WEBRTC_TIMEOUT:?}: {result:?}"
    );
}

/// The media kinds of the m-lines of `sdp`, in order.
fn m_lines(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("m="))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

fn candidates(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .filter(|l| l.starts_with("candidate:"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn publish_and_subscribe_through_janus_videoroom() {
    let janus = Janus::start();
    let session = JanusSession::connect(&janus.url).await.expect("connect");

    session
        .create_room(ROOM, 10, 512_000)
        .await
        .expect("create room");
    // Creating it again is fine.
    session
        .create_room(ROOM, 10, 512_000)
        .await
        .expect("room exists");

    // Publisher: Opus + VP8, send only.
    let mut publisher_peer = Peer::new().await;
    publisher_peer.add_sender(RtpCodecKind::Audio, opus(), 0x1111_1111);
    publisher_peer.add_sender(RtpCodecKind::Video, vp8(), 0x2222_2222);
    let offer = publisher_peer.pc.create_offer(None).expect("offer");
    publisher_peer
        .pc
        .set_local_description(Instant::now(), offer.clone())
        .expect("set local offer");
    assert_eq!(m_lines(&offer.sdp), ["audio", "video"], "{}", offer.sdp);

    // Publishing in a room that does not exist is Janus' "no such room" (426).
    match session.publish(ROOM + 1, "nobody", &offer.sdp).await {
        Err(JanusError::Janus { code: 426, .. }) => {}
        other => panic!("publish in a missing room: {other:?}"),
    }

    let mut publisher = session
        .publish(ROOM, "loadtest-publisher", &offer.sdp)
        .await
        .expect("publish");
    let answer = &publisher.answer_sdp;
    assert_eq!(m_lines(answer), ["audio", "video"], "{answer}");
    assert!(answer.contains("opus/48000"), "{answer}");
    assert!(answer.contains("VP8/90000"), "{answer}");
    // Janus gathers on 127.0.0.1 only (scripts/janus), and sends its candidates in the SDP.
    let janus_candidates = candidates(answer);
    assert!(
        !janus_candidates.is_empty() && janus_candidates.iter().all(|c| c.contains(" 127.0.0.1 ")),
        "Janus' candidates: {janus_candidates:?}"
    );
    publisher_peer
        .pc
        .set_remote_description(
            Instant::now(),
            RTCSessionDescription::answer(answer.clone()).expect("answer"),
        )
        .expect("set remote answer");
    // Our candidate was in the offer already: trickling it again, then the end, is harmless.
    let our_candidate = format!(
        "candidate:1 1 udp 2130706431 127.0.0.1 {} typ host",
        publisher_peer.local.port()
    );
    session
        .trickle(publisher.handle, Some((our_candidate, "0".to_owned(), 0)))
        .await
        .expect("trickle");
    session
        .trickle(publisher.handle, None)
        .await
        .expect("trickle completed");

    let (publisher_task, mut publisher_state) = publisher_peer.spawn();
    publisher
        .events
        .wait_webrtcup(WEBRTC_TIMEOUT)
        .await
        .expect("publisher webrtcup");
    wait_connected(&mut publisher_state, "publisher").await;

    let feeds = session.publishers(ROOM).await.expect("list publishers");
    assert_eq!(feeds, [publisher.feed]);

    // A feed that does not exist is Janus' "no such feed" (428).
    match session.subscribe(ROOM, &[publisher.feed + 1]).await {
        Err(JanusError::Janus { code: 428, .. }) => {}
        other => panic!("subscribe to a missing feed: {other:?}"),
    }

    // Subscriber, on a second session as another participant would be.
    let viewer = JanusSession::connect(&janus.url)
        .await
        .expect("connect viewer");
    let mut subscriber = viewer
        .subscribe(ROOM, &[publisher.feed])
        .await
        .expect("subscribe");
    let janus_offer = &subscriber.offer_sdp;
    assert_eq!(m_lines(janus_offer), ["audio", "video"], "{janus_offer}");
    assert_eq!(subscriber.streams.len(), 2, "{:?}", subscriber.streams);
    assert!(
        subscriber
            .streams
            .iter()
            .all(|s| s.feed == Some(publisher.feed)),
        "{:?}",
        subscriber.streams
    );
    let mut subscriber_peer = Peer::new().await;
    subscriber_peer
        .pc
        .set_remote_description(
            Instant::now(),
            RTCSessionDescription::offer(janus_offer.clone()).expect("offer"),
        )
        .expect("set Janus' offer");
    let answer = subscriber_peer.pc.create_answer(None).expect("answer");
    subscriber_peer
        .pc
        .set_local_description(Instant::now(), answer.clone())
        .expect("set local answer");
    assert_eq!(m_lines(&answer.sdp), ["audio", "video"], "{}", answer.sdp);
    viewer
        .start(&subscriber, &answer.sdp)
        .await
        .expect("start subscription");
    let (subscriber_task, mut subscriber_state) = subscriber_peer.spawn();
    subscriber
        .events
        .wait_webrtcup(WEBRTC_TIMEOUT)
        .await
        .expect("subscriber webrtcup");
    wait_connected(&mut subscriber_state, "subscriber").await;

    // Leaving: detaching the subscriber, then destroying the room hangs up the publisher.
    viewer.detach(subscriber.handle).await.expect("detach");
    viewer.close().await;
    session.destroy_room(ROOM).await.expect("destroy room");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match publisher.events.next(left).await {
            Ok(JanusEvent::Hangup { .. }) => break,
            Ok(_) => {}
            Err(e) => panic!("no hangup for the publisher after the room was destroyed: {e}"),
        }
    }
    match session.publishers(ROOM).await {
        Err(JanusError::Janus { code: 426, .. }) => {}
        other => panic!("participants of a destroyed room: {other:?}"),
    }
    publisher_task.abort();
    subscriber_task.abort();
    session.close().await;
}
