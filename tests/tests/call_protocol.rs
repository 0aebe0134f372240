//! The signaling protocol and media path with Rust-side webrtc-rs clients (no browser): join,
//! publish, subscribe, renegotiation when a third participant arrives, leave.

use std::collections::HashMap;
use std::time::Duration;

use client::{Client, ClientEvent};
use protocol::{Grants, LeaveReason, ServerMessage, TrackKind};
use std::net::{IpAddr, Ipv4Addr};

use switchyard_tests::{eventually, start_server, ws_url};

const WAIT: Duration = Duration::from_secs(10);

async fn joined(server: &switchyard_tests::Server, identity: &str, room: &str) -> (Client, String) {
    let mut c = Client::connect(&ws_url(server)).await.expect("connect");
    c.join(room, &server.token(identity, room, Grants::default()));
    let id = c
        .wait_message(WAIT, |m| match m {
            ServerMessage::Joined { you, .. } => Some(you.id.clone()),
            _ => None,
        })
        .await
        .expect("joined");
    (c, id)
}

/// Counts RTP packets per (publisher participant id, kind) until every wanted pair has at
/// least `min` packets.
async fn receive_from(
    c: &mut Client,
    wanted: &[(String, TrackKind)],
    min: usize,
) -> HashMap<(String, TrackKind), usize> {
    let mut counts: HashMap<(String, TrackKind), usize> = HashMap::new();
    let done = c
        .wait_for(Duration::from_secs(20), |e| {
            if let ClientEvent::Rtp {
                participant_id,
                kind,
                ..
            } = e
            {
                *counts.entry((participant_id.clone(), *kind)).or_default() += 1;
            }
            wanted
                .iter()
                .all(|w| counts.get(w).copied().unwrap_or(0) >= min)
                .then_some(())
        })
        .await;
    assert!(
        done.is_some(),
        "did not receive {min} packets of each of {wanted:?}; got {counts:?}"
    );
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_subscribe_renegotiate_and_leave() {
    let server = start_server(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), |c| {
        c.empty_room_timeout = Duration::from_secs(1);
    })
    .await;
    let room = "protocol-room";

    let (a, a_id) = joined(&server, "alice", room).await;
    a.publish(true, true);
    let (mut b, b_id) = joined(&server, "bob", room).await;
    b.publish(true, true);

    // Bob receives Alice's audio and video through the SFU, rewritten to its own SSRCs.
    let wanted = vec![
        (a_id.clone(), TrackKind::Audio),
        (a_id.clone(), TrackKind::Video),
    ];
    receive_from(&mut b, &wanted, 30).await;

    // A third participant arrives: everyone renegotiates and gets its tracks.
    let (mut c, c_id) = joined(&server, "carol", room).await;
    c.publish(true, true);
    let wanted = vec![
        (a_id.clone(), TrackKind::Video),
        (b_id.clone(), TrackKind::Video),
        (a_id.clone(), TrackKind::Audio),
        (b_id.clone(), TrackKind::Audio),
    ];
    receive_from(&mut c, &wanted, 20).await;
    let wanted = vec![
        (c_id.clone(), TrackKind::Video),
        (c_id.clone(), TrackKind::Audio),
    ];
    receive_from(&mut b, &wanted, 20).await;

    // Mute and unmute are announced to the others with the track they concern.
    for muted in [true, false] {
        c.send(protocol::ClientMessage::Mute {
            kind: TrackKind::Video,
            muted,
        });
        let seen = b
            .wait_message(WAIT, |m| match m {
                ServerMessage::TrackMuted {
                    participant_id,
                    muted,
                    ..
                } if *participant_id == c_id => Some(*muted),
                _ => None,
            })
            .await;
        assert_eq!(seen, Some(muted));
    }

    // Alice leaves: the others are told at once, with the reason.
    a.leave();
    let left = b
        .wait_message(WAIT, |m| match m {
            ServerMessage::ParticipantLeft {
                participant_id,
                reason,
                ..
            } if *participant_id == a_id => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(left, Some(LeaveReason::Left));
    // Carol, who received Alice's audio and video, is told that both tracks went away
    // (`trackUnpublished`) and that Alice left.
    let (mut unpublished, mut alice_left) = (Vec::new(), false);
    let told = c
        .wait_message(WAIT, |m| {
            match m {
                ServerMessage::TrackUnpublished {
                    participant_id,
                    track_id,
                } if *participant_id == a_id => unpublished.push(track_id.clone()),
                ServerMessage::ParticipantLeft { participant_id, .. }
                    if *participant_id == a_id =>
                {
                    alice_left = true;
                }
                _ => {}
            }
            (unpublished.len() == 2 && alice_left).then_some(())
        })
        .await;
    assert!(
        told.is_some(),
        "Carol was not told of Alice's departure: trackUnpublished for {unpublished:?} \
         (want her 2 tracks), participantLeft: {alice_left}"
    );

    // The call goes on between Bob and Carol.
    let wanted = vec![(c_id.clone(), TrackKind::Video)];
    receive_from(&mut b, &wanted, 30).await;

    // When the last participant has left, the room closes after the configured timeout.
    assert_eq!(server.room_count(), 1);
    b.leave();
    c.leave();
    let closed = eventually(Duration::from_secs(5), || async {
        (server.room_count() == 0).then_some(())
    })
    .await;
    assert!(closed.is_some(), "the empty room was never closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_limit_what_a_token_allows() {
    let server = switchyard_tests::start_local_server().await;
    let room = "grants-room";
    let (a, a_id) = joined(&server, "speaker", room).await;
    a.publish(true, true);

    // A viewer may not publish media, but still receives.
    let viewer_grants = Grants {
        can_publish: false,
        ..Grants::default()
    };
    let mut viewer = Client::connect(&ws_url(&server)).await.unwrap();
    viewer.join(room, &server.token("viewer", room, viewer_grants));
    viewer
        .wait_message(WAIT, |m| {
            matches!(m, ServerMessage::Joined { .. }).then_some(())
        })
        .await
        .expect("joined");
    viewer.publish(true, true);
    let refused = viewer
        .wait_message(WAIT, |m| match m {
            ServerMessage::Error { code, .. } => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(refused, Some(protocol::ErrorCode::PermissionDenied));
    receive_from(&mut viewer, &[(a_id.clone(), TrackKind::Video)], 20).await;

    // A hidden participant sees the room but nobody is told about it.
    let (mut watcher, _) = joined(&server, "watcher", room).await;
    let hidden_grants = Grants {
        hidden: true,
        can_publish: false,
        ..Grants::default()
    };
    let mut hidden = Client::connect(&ws_url(&server)).await.unwrap();
    hidden.join(room, &server.token("recorder", room, hidden_grants));
    let others = hidden
        .wait_message(WAIT, |m| match m {
            ServerMessage::Joined { participants, .. } => Some(participants.len()),
            _ => None,
        })
        .await;
    assert_eq!(
        others,
        Some(3),
        "the hidden participant sees speaker, viewer and watcher"
    );
    receive_from(&mut hidden, &[(a_id.clone(), TrackKind::Audio)], 20).await;
    hidden.leave();
    // The watcher hears of neither its arrival nor its departure; a later visible join still
    // arrives, so the silence above is not just a dead connection.
    let (_late, _) = joined(&server, "late", room).await;
    let first_news = watcher
        .wait_message(WAIT, |m| match m {
            ServerMessage::ParticipantJoined { participant } => Some(participant.identity.clone()),
            ServerMessage::ParticipantLeft { identity, .. } => Some(identity.clone()),
            _ => None,
        })
        .await;
    assert_eq!(first_news.as_deref(), Some("late"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_trickles_its_candidates_on_both_connections() {
    let server = switchyard_tests::start_local_server().await;
    let room = "trickle-room";
    let (mut a, _) = joined(&server, "a", room).await;
    a.publish(true, true);
    let (mut b, _) = joined(&server, "b", room).await;
    for (client, target) in [
        (&mut a, protocol::Target::Publisher),
        (&mut b, protocol::Target::Subscriber),
    ] {
        let candidate = client
            .wait_message(WAIT, |m| match m {
                ServerMessage::Candidate {
                    target: t,
                    candidate: Some(c),
                } if *t == target => Some(c.candidate.clone()),
                _ => None,
            })
            .await
            .unwrap_or_else(|| panic!("no {target:?} candidate from the server"));
        assert!(
            candidate.starts_with("candidate:") && candidate.contains("127.0.0.1"),
            "{candidate}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_from_a_participant_disturb_nobody() {
    let server = switchyard_tests::start_local_server().await;
    let room = "garbage-room";
    let (a, a_id) = joined(&server, "a", room).await;
    a.publish(true, true);
    let (mut b, _) = joined(&server, "b", room).await;
    receive_from(&mut b, &[(a_id.clone(), TrackKind::Video)], 20).await;

    // Datagrams that look like the start of each protocol sharing the port (STUN, DTLS, RTP,
    // RTCP) with random or truncated bodies, from the publisher's own address.
    let mut seed: u32 = 0x9e37_79b9;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut garbage = Vec::new();
    for i in 0..2000u32 {
        let first = [0x00, 0x01, 0x14, 0x16, 0x17, 0x80, 0x81, 0x90, 0xc8, 0xff][(i % 10) as usize];
        let len = (next() % 1400) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(b0) = d.first_mut() {
            *b0 = first;
        }
        if first == 0x00 && d.len() >= 8 {
            d[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        }
        garbage.push(d);
    }
    garbage.push(Vec::new());
    let total = garbage.len();
    let mut a = a;
    a.send_raw_datagrams(garbage);
    let sent = a
        .wait_for(WAIT, |e| match e {
            ClientEvent::RawDatagramsSent { count } => Some(*count),
            _ => None,
        })
        .await;
    assert_eq!(sent, Some(total), "the garbage did not go out");

    // Alice is still in the room and her media still reaches Bob: only packets Bob receives
    // from now on count, not those that queued up while the garbage was going out.
    let mut before = 0;
    while b.events.try_recv().is_ok() {
        before += 1;
    }
    println!("{before} events reached Bob before the garbage was all out; counting afresh");
    receive_from(
        &mut b,
        &[(a_id.clone(), TrackKind::Video), (a_id, TrackKind::Audio)],
        60,
    )
    .await;
    let mut c = Client::connect(&ws_url(&server)).await.unwrap();
    c.join(room, &server.token("c", room, Grants::default()));
    let present = c
        .wait_message(WAIT, |m| match m {
            ServerMessage::Joined { participants, .. } => {
                let mut ids: Vec<String> =
                    participants.iter().map(|p| p.identity.clone()).collect();
                ids.sort();
                Some(ids)
            }
            _ => None,
        })
        .await;
    assert_eq!(present, Some(vec!["a".to_string(), "b".to_string()]));
    assert_eq!(server.room_count(), 1);
}
