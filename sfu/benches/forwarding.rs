//! The per-packet forwarding path: one publisher RTP packet to N subscriptions, without a
//! network.
//!
//! Run with `cargo bench -p switchyard-sfu --bench forwarding`.
//!
//! # Setup (not timed)
//!
//! A real room ([`MemoryRoom`]: the room logic and its `rtc` peer connections, with the
//! sockets and the task's channels left out) and N + 1 clients that are real `rtc` peer
//! connections too. The bench plays the network and the signaling connections: it carries
//! every datagram a client's `poll_write` yields to the room, and every datagram the room sends
//! to the client it is addressed to, and passes offers, answers and candidates along. So the
//! clients go through the whole join: offer/answer, ICE, DTLS and SRTP keys, the subscriber
//! renegotiation when the publisher's VP8 track appears, keyframes to start each down-track.
//! Then one more packet is sent and every subscriber client must decrypt it with the
//! publisher's payload, so the datagrams the timed loop produces are known to be valid SRTP.
//!
//! # The timed loop (`forward_rtp/subscribers/N`)
//!
//! The publisher client's packets are made in batches beforehand (its `write_rtp`, SRTP
//! protect, `poll_write`: client work, not timed): 1,100-byte VP8 payloads, each one a delta
//! frame with the marker bit, consecutive sequence numbers, timestamps 3,000 apart. Timed is
//! handing each SRTP datagram to [`MemoryRoom::datagram`], which is one turn of the room task
//! for a media datagram:
//!
//! - the publisher connection's `handle_read`: demultiplexing, SRTP authentication and
//!   decryption, the interceptor chain (`rtc`'s defaults, as in the server: NACK generator,
//!   receiver-report statistics, TWCC recorder);
//! - draining that connection (`poll_write`, `poll_event`, `poll_read`), which hands the RTP
//!   packet to the room's forwarding step: keyframe detection, receive statistics, counters,
//!   then for each of the N down-tracks the forwarder's decision, a copy of the packet (the
//!   payload is shared) with its header rewritten (SSRC, payload type, sequence number,
//!   timestamp; extensions were dropped once), the subscriber connection's `write_rtp`
//!   (marshalling, the interceptor chain: NACK responder's buffer, sender-report statistics),
//!   SRTP encryption and authentication, `poll_write` and the hand-over to the outbox that
//!   stands in for the UDP socket (a mutex and two counters: datagrams are counted, not
//!   kept);
//! - what the room task does after each input: removing failed participants and working out
//!   its next deadline.
//!
//! Not timed: the UDP `recvfrom` and `sendto` system calls, the socket task's routing and its
//! channel to the room task, the task wake-up; the room's timers and everything they drive
//! (RTCP reports, TWCC feedback, ICE keep-alives), which run between batches, as does carrying
//! feedback between the clients and the room.
//!
//! Throughput is set to N elements, so criterion's `thrpt` is forwarded packets per second;
//! time per forwarded packet is the reported time divided by N.
//!
//! # `forwarder/decision`
//!
//! The [`Forwarder`]'s decision alone for one in-order packet of a started video down-track.

use std::collections::HashMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use protocol::{Grants, ServerMessage, Target};
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
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use switchyard_sfu::memory::{MemberKey, MemoryRoom};
use switchyard_sfu::{Forwarder, RoomId, SessionCommand, SfuConfig};

/// Subscriber counts benched.
const SUBSCRIBERS: [usize; 3] = [1, 10, 50];
/// RTP payload size of the benched video packets.
const PAYLOAD_LEN: usize = 1100;
/// Packets made ahead of one timed stretch; timers and feedback are serviced in between.
const BATCH: u64 = 2048;
/// Longest a setup may take.
const SETUP_LIMIT: Duration = Duration::from_secs(60);
const VP8_PAYLOAD_TYPE: u8 = 96;

/// No datagram leaves the process; the addresses only name the endpoints.
fn room_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7882))
}

fn client_address(index: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 2], 20000 + index as u16))
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

/// A client's peer connection, configured like `switchyard-client`'s, with `address` as its
/// one host candidate.
fn client_pc(address: SocketAddr) -> RTCPeerConnection {
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
            .expect("codec");
    }
    let registry =
        register_default_interceptors(Registry::new(), &mut media_engine).expect("interceptors");
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
            address: address.ip().to_string(),
            port: address.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .expect("host candidate");
    pc.add_local_candidate(
        RTCIceCandidate::from(&candidate)
            .to_json()
            .expect("candidate"),
    )
    .expect("local candidate");
    pc.add_local_candidate(RTCIceCandidateInit::default())
        .expect("end of candidates");
    pc
}

/// One client connection: a participant's publisher or subscriber side.
struct Client {
    member: MemberKey,
    target: Target,
    address: SocketAddr,
    pc: RTCPeerConnection,
    connected: bool,
    /// Payloads of the RTP packets received, oldest first.
    received: Vec<Bytes>,
}

impl Client {
    fn new(member: MemberKey, target: Target, index: usize) -> Self {
        let address = client_address(index);
        Client {
            member,
            target,
            address,
            pc: client_pc(address),
            connected: false,
            received: Vec::new(),
        }
    }

    /// Reads everything the connection has for the application. True if there was anything.
    fn drain(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.pc.poll_event() {
            any = true;
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                self.connected = state == RTCPeerConnectionState::Connected;
            }
        }
        while let Some(message) = self.pc.poll_read() {
            any = true;
            if let RTCMessage::RtpPacket(_, packet) = message.message {
                self.received.push(packet.payload);
            }
        }
        any
    }

    /// Acts on a signaling message from the room; returns the reply to send, if any.
    fn on_message(&mut self, message: ServerMessage) -> Option<SessionCommand> {
        match message {
            ServerMessage::Answer { target, sdp } if target == self.target => {
                let answer = RTCSessionDescription::answer(sdp).expect("answer");
                self.pc
                    .set_remote_description(Instant::now(), answer)
                    .expect("remote answer");
                None
            }
            ServerMessage::Offer { target, sdp } if target == self.target => {
                let offer = RTCSessionDescription::offer(sdp).expect("offer");
                let now = Instant::now();
                self.pc
                    .set_remote_description(now, offer)
                    .expect("remote offer");
                let answer = self.pc.create_answer(None).expect("create answer");
                self.pc
                    .set_local_description(now, answer.clone())
                    .expect("local answer");
                Some(SessionCommand::SubscriberAnswer(answer.sdp))
            }
            ServerMessage::Candidate {
                target,
                candidate: Some(candidate),
            } if target == self.target => {
                // Our candidates are in the SDP too; a repeated one is refused, harmlessly.
                let _ = self.pc.add_remote_candidate(RTCIceCandidateInit {
                    candidate: candidate.candidate,
                    ..Default::default()
                });
                None
            }
            _ => None,
        }
    }
}

/// Makes the publisher's RTP packets.
struct Source {
    sender: RTCRtpSenderId,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl Source {
    /// The next packet: a one-packet VP8 frame, a keyframe or a delta frame.
    fn next(&mut self, keyframe: bool) -> rtc::rtp::Packet {
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(3000);
        // VP8 payload descriptor (S=1, partition 0), then a frame tag: P=0 on a keyframe,
        // with the start code and a 640x480 size; P=1 on a delta frame.
        let mut payload = if keyframe {
            vec![
                0x10, 0x50, 0x2f, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01,
            ]
        } else {
            vec![0x10, 0x51, 0x2f, 0x00]
        };
        payload.extend((payload.len()..PAYLOAD_LEN).map(|i| i as u8));
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

/// A room with one publisher and N subscribers, all connected.
struct Call {
    room: MemoryRoom,
    /// The publisher's publisher connection, then each subscriber's subscriber connection.
    clients: Vec<Client>,
    by_address: HashMap<SocketAddr, usize>,
    source: Source,
}

impl Call {
    fn new(subscribers: usize) -> Call {
        let config = SfuConfig {
            max_participants: subscribers + 1,
            ..SfuConfig::default()
        };
        let mut room = MemoryRoom::new(
            RoomId::new("bench").expect("room name"),
            room_address(),
            config,
        );
        let publisher = room.join("publisher", Grants::default()).expect("join");
        let mut clients = vec![Client::new(publisher, Target::Publisher, 0)];
        for i in 0..subscribers {
            let grants = Grants {
                can_publish: false,
                ..Grants::default()
            };
            let member = room.join(&format!("subscriber-{i}"), grants).expect("join");
            clients.push(Client::new(member, Target::Subscriber, i + 1));
        }
        let ssrc = 0x5eed_0001;
        let track = MediaStreamTrack::new(
            "publisher-stream".to_owned(),
            "video-track".to_owned(),
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
        );
        let pc = &mut clients[0].pc;
        let sender = pc.add_track(track).expect("add track");
        let offer = pc.create_offer(None).expect("offer");
        pc.set_local_description(Instant::now(), offer.clone())
            .expect("local offer");
        room.command(
            publisher,
            SessionCommand::PublisherOffer {
                sdp: offer.sdp,
                sources: Default::default(),
            },
        );
        let by_address = clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.address, i))
            .collect();
        let mut call = Call {
            room,
            clients,
            by_address,
            source: Source {
                sender,
                ssrc,
                sequence: 1000,
                timestamp: 0,
            },
        };
        call.connect();
        call
    }

    /// Runs the call until every subscriber receives the publisher's video, sending a
    /// keyframe every 20 ms once the publisher is connected.
    fn connect(&mut self) {
        let start = Instant::now();
        let mut last_keyframe: Option<Instant> = None;
        loop {
            let subscribers = &self.clients[1..];
            if subscribers
                .iter()
                .all(|c| c.connected && !c.received.is_empty())
            {
                break;
            }
            assert!(
                start.elapsed() < SETUP_LIMIT,
                "setup did not finish: {} of {} subscribers connected, {} receiving",
                subscribers.iter().filter(|c| c.connected).count(),
                subscribers.len(),
                subscribers
                    .iter()
                    .filter(|c| !c.received.is_empty())
                    .count(),
            );
            if self.clients[0].connected
                && last_keyframe.is_none_or(|t| t.elapsed() >= Duration::from_millis(20))
            {
                last_keyframe = Some(Instant::now());
                let packet = self.source.next(true);
                self.write_rtp(packet);
            }
            if !self.pump() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.settle();
    }

    fn write_rtp(&mut self, packet: rtc::rtp::Packet) {
        let sender = self.source.sender;
        self.clients[0]
            .pc
            .rtp_sender(sender)
            .expect("sender")
            .write_rtp(Instant::now(), packet)
            .expect("write_rtp");
    }

    /// One round of carrying datagrams and messages both ways, and of due timers. True if
    /// anything moved.
    fn pump(&mut self) -> bool {
        let mut moved = false;
        let now = Instant::now();
        for client in &mut self.clients {
            while let Some(out) = client.pc.poll_write() {
                moved = true;
                self.room.datagram(
                    client.member,
                    client.target,
                    out.transport.local_addr,
                    out.message,
                    now,
                );
            }
        }
        for sent in self.room.take_sent() {
            moved = true;
            let Some(&i) = self.by_address.get(&sent.to) else {
                continue;
            };
            let _ = self.clients[i].pc.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: sent.to,
                    peer_addr: sent.from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(&sent.data[..]),
            });
        }
        for i in 0..self.clients.len() {
            let client = &mut self.clients[i];
            moved |= client.drain();
            for message in self.room.messages(client.member) {
                moved = true;
                if let Some(reply) = client.on_message(message) {
                    self.room.command(client.member, reply);
                }
            }
        }
        let now = Instant::now();
        for client in &mut self.clients {
            if client.pc.poll_timeout().is_some_and(|t| t <= now) {
                moved = true;
                let _ = client.pc.handle_timeout(now);
            }
        }
        if self.room.next_deadline() <= now {
            moved = true;
            self.room.timers(now);
        }
        moved
    }

    /// Pumps until nothing moves (timers that are due included), at most 100 rounds.
    fn settle(&mut self) {
        for _ in 0..100 {
            if !self.pump() {
                break;
            }
        }
        for client in &mut self.clients {
            client.received.clear();
        }
    }

    /// Sends one delta frame through and checks that each subscriber decrypts it.
    fn verify(&mut self) {
        let packet = self.source.next(false);
        let payload = packet.payload.clone();
        self.write_rtp(packet);
        self.pump();
        self.pump();
        for (i, client) in self.clients.iter().enumerate().skip(1) {
            assert_eq!(
                client.received.last(),
                Some(&payload),
                "subscriber {i} did not receive the packet"
            );
        }
        self.settle();
    }

    /// Makes `count` publisher datagrams, ready for the room.
    fn make_datagrams(&mut self, count: u64) -> Vec<BytesMut> {
        let mut datagrams = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let packet = self.source.next(false);
            self.write_rtp(packet);
            while let Some(out) = self.clients[0].pc.poll_write() {
                datagrams.push(out.message);
            }
        }
        datagrams
    }

    /// Hands `datagrams` from the publisher to the room; returns the time it took.
    fn forward(&mut self, datagrams: Vec<BytesMut>, now: Instant) -> Duration {
        let publisher = &self.clients[0];
        let (member, from) = (publisher.member, publisher.address);
        let start = Instant::now();
        for datagram in datagrams {
            black_box(
                self.room
                    .datagram(member, Target::Publisher, from, datagram, now),
            );
        }
        start.elapsed()
    }
}

fn forward_rtp(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward_rtp");
    for subscribers in SUBSCRIBERS {
        let mut call = Call::new(subscribers);
        call.verify();
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(BenchmarkId::new("subscribers", subscribers), |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let count = left.min(BATCH);
                    left -= count;
                    let datagrams = call.make_datagrams(count);
                    call.room.keep_sent(false);
                    call.room.take_sent_counts();
                    elapsed += call.forward(datagrams, Instant::now());
                    let (sent, _) = call.room.take_sent_counts();
                    call.room.keep_sent(true);
                    assert!(
                        sent >= count * subscribers as u64,
                        "{sent} datagrams out for {count} packets in to {subscribers} subscribers"
                    );
                    call.settle();
                }
                elapsed
            });
        });
    }
    group.finish();
}

fn forwarder_decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("forwarder");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decision", |b| {
        let mut forwarder = Forwarder::new(true, 1000, 5000);
        let (mut sequence, mut timestamp) = (40_000u16, 0u32);
        forwarder.forward(7, sequence, timestamp, true);
        b.iter(|| {
            sequence = sequence.wrapping_add(1);
            timestamp = timestamp.wrapping_add(3000);
            black_box(forwarder.forward(
                black_box(7),
                black_box(sequence),
                black_box(timestamp),
                false,
            ))
        });
    });
    group.finish();
}

criterion_group!(benches, forward_rtp, forwarder_decision);
criterion_main!(benches);
