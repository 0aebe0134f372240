//! The data-channel relay with Rust clients: delivery to the room and to chosen participants,
//! every refusal with its explicit error, and a slow recipient that neither stalls the fast one
//! nor makes the SFU queue more than its bound.

use std::time::Duration;

use client::{Client, ClientEvent};
use protocol::Grants;
use protocol::ServerMessage;
use protocol::data::SendHeader;
use serde_json::Value;
use switchyard_tests::{Server, start_local_server, ws_url};

const WAIT: Duration = Duration::from_secs(10);

async fn data_member(server: &Server, identity: &str, room: &str, grants: Grants) -> Client {
    let mut c = Client::connect(&ws_url(server)).await.expect("connect");
    c.join(room, &server.token(identity, room, grants));
    c.wait_message(WAIT, |m| {
        matches!(m, ServerMessage::Joined { .. }).then_some(())
    })
    .await
    .expect("joined");
    c.open_data_channels();
    let mut open = 0;
    c.wait_for(WAIT, |e| {
        if matches!(e, ClientEvent::DataOpen { .. }) {
            open += 1;
        }
        (open == 2).then_some(())
    })
    .await
    .expect("both data channels open");
    c
}

/// The next data message (header, payload) this client receives.
async fn next_data(c: &mut Client) -> Option<(Value, Vec<u8>)> {
    c.wait_for(WAIT, |e| match e {
        ClientEvent::Data {
            header, payload, ..
        } => Some((header.clone(), payload.clone())),
        _ => None,
    })
    .await
}

async fn next_error_code(c: &mut Client) -> Option<String> {
    loop {
        let (header, _) = next_data(c).await?;
        if let Some(code) = header["error"]["code"].as_str() {
            return Some(code.to_owned());
        }
    }
}

async fn expect_delivery(b: &mut Client) {
    let (header, payload) = next_data(b).await.expect("delivery");
    assert_eq!(payload, b"still here", "{header}");
}

fn to(ids: &[&str]) -> SendHeader {
    SendHeader {
        to: ids.iter().map(|s| s.to_string()).collect(),
        topic: Some("test".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_the_room_and_chosen_participants() {
    let server = start_local_server().await;
    let a = data_member(&server, "a", "data-room", Grants::default()).await;
    let mut b = data_member(&server, "b", "data-room", Grants::default()).await;
    let mut c = data_member(&server, "c", "data-room", Grants::default()).await;

    a.send_data(true, &to(&[]), b"to everyone");
    for who in [&mut b, &mut c] {
        let (header, payload) = next_data(who).await.expect("room message");
        assert_eq!(payload, b"to everyone");
        assert_eq!(header["from"], "a");
        assert_eq!(header["topic"], "test");
    }
    a.send_data(true, &to(&["c"]), b"only for c");
    a.send_data(true, &to(&[]), b"marker");
    let (_, first_at_b) = next_data(&mut b).await.unwrap();
    assert_eq!(first_at_b, b"marker", "b must not get c's message");
    let (header, payload) = next_data(&mut c).await.unwrap();
    assert_eq!(
        (payload.as_slice(), &header["to"][0]),
        (&b"only for c"[..], &Value::from("c"))
    );

    // The lossy channel relays too (on loopback nothing is lost).
    a.send_data(false, &to(&["b"]), b"fast and loose");
    let (_, payload) = next_data(&mut b).await.unwrap();
    assert_eq!(payload, b"fast and loose");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_gets_explicit_errors_and_the_relay_goes_on() {
    let server = start_local_server().await;
    let room = "bad-data";
    let mut a = data_member(&server, "a", room, Grants::default()).await;
    let mut b = data_member(&server, "b", room, Grants::default()).await;
    let mut mute = data_member(
        &server,
        "mute",
        room,
        Grants {
            can_publish_data: false,
            ..Grants::default()
        },
    )
    .await;

    let relay_still_works = |a: &Client| a.send_data(true, &to(&["b"]), b"still here");

    mute.send_data(true, &to(&[]), b"hi");
    assert_eq!(
        next_error_code(&mut mute).await.as_deref(),
        Some("permission_denied")
    );

    let forged = protocol::data::encode_frame(&serde_json::json!({"from": "b"}), b"I am b");
    a.send_data_raw(true, forged, false);
    assert_eq!(
        next_error_code(&mut a).await.as_deref(),
        Some("forged_sender")
    );
    relay_still_works(&a);
    expect_delivery(&mut b).await;

    a.send_data(true, &to(&["b", "nobody"]), b"still here");
    assert_eq!(
        next_error_code(&mut a).await.as_deref(),
        Some("unknown_recipient")
    );
    expect_delivery(&mut b).await;

    // Under the connection's 256 KiB limit, over what the relay forwards (255 KiB with header).
    a.send_data(true, &to(&["b"]), &vec![7u8; 256 * 1024 - 200]);
    assert_eq!(next_error_code(&mut a).await.as_deref(), Some("too_large"));

    for malformed in [vec![0u8], vec![0, 9, b'{'], b"\x00\x05nope!".to_vec()] {
        a.send_data_raw(true, malformed, false);
        assert_eq!(next_error_code(&mut a).await.as_deref(), Some("bad_frame"));
    }
    a.send_data_raw(true, b"plain text".to_vec(), true);
    assert_eq!(next_error_code(&mut a).await.as_deref(), Some("bad_frame"));

    relay_still_works(&a);
    expect_delivery(&mut b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_recipient_fails_explicitly_and_the_fast_one_gets_everything() {
    const COUNT: u32 = 10_000;
    let server = start_local_server().await;
    let room = "slow-data";
    let sender = data_member(&server, "sender", room, Grants::default()).await;
    let mut fast = data_member(&server, "fast", room, Grants::default()).await;
    let mut slow = data_member(&server, "slow", room, Grants::default()).await;
    slow.pause_data(true);

    for seq in 0..COUNT {
        let mut payload = seq.to_be_bytes().to_vec();
        payload.resize(1024, 0xab);
        sender.send_data(true, &to(&[]), &payload);
    }

    // The fast recipient gets every message, in order.
    let mut expected = 0u32;
    while expected < COUNT {
        let (header, payload) = next_data(&mut fast)
            .await
            .unwrap_or_else(|| panic!("fast recipient stalled at {expected}"));
        assert!(
            header["error"].is_null(),
            "fast recipient got an error: {header}"
        );
        let seq = u32::from_be_bytes(payload[..4].try_into().unwrap());
        assert_eq!(seq, expected, "fast recipient: out of order or gap");
        expected += 1;
    }

    // The slow one, once it reads again: messages in order from 0, then (if it fell behind)
    // an explicit overflow notice, never a silent gap.
    slow.pause_data(false);
    let mut next = 0u32;
    let mut overflow_seen = false;
    while let Some((header, payload)) = next_data(&mut slow).await {
        if let Some(code) = header["error"]["code"].as_str() {
            assert_eq!(code, "recipient_overflow");
            overflow_seen = true;
            break;
        }
        let seq = u32::from_be_bytes(payload[..4].try_into().unwrap());
        assert_eq!(seq, next, "slow recipient: gap before any overflow notice");
        next += 1;
    }
    assert!(
        overflow_seen || next == COUNT,
        "slow recipient got {next} messages and no notice"
    );
    println!("slow recipient: {next} messages in order, overflow notice: {overflow_seen}");

    let bound = 4 * 1024 * 1024;
    let peak = server.data_queue_peak();
    println!("peak bytes queued for one recipient: {peak} (bound {bound})");
    assert!(
        peak <= bound,
        "queued {peak} bytes for one recipient, bound {bound}"
    );
}
