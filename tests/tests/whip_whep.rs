//! WHIP ingest and WHEP playback with real Chromium pages that speak them with plain `fetch`
//! (no client library), next to the web demo's call page; and every refusal of the HTTP
//! side (token, room, content type, SDP, full room, rooms that joins do not open) through a
//! plain HTTP client.

use std::time::{Duration, Instant};

use fantoccini::Client as Page;
use protocol::Grants;
use serde_json::{Value, json};
use switchyard_tests::admin::{self, claims, hs256};
use switchyard_tests::browser::{Driver, eval, media_stats, wait_for_script};
use switchyard_tests::{Server, start_server, wait_for, whip};

/// What the WHIP page publishes: its fake camera and microphone.
const CAMERA: &str = "return navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });";

/// A WHEP client in a page: recvonly audio and video, ICE gathering awaited, the offer POSTed,
/// the answer applied; what arrives plays in a video element.
const WHEP_PLAY: &str = r#"
const [token, url] = arguments;
return (async () => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  window.streamIds = [];
  pc.ontrack = (e) => {
    const stream = e.streams[0] || new MediaStream([e.track]);
    window.streamIds.push(stream.id);
    if (e.track.kind === 'video') {
      const video = document.createElement('video');
      video.autoplay = true; video.muted = true; video.playsInline = true;
      video.srcObject = stream;
      document.body.appendChild(video);
    }
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
  const res = await fetch(url, { method: 'POST', body: pc.localDescription.sdp,
    headers: { 'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token } });
  const body = await res.text();
  const out = { status: res.status, location: res.headers.get('Location'), body };
  if (res.status !== 201) return out;
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  window.peer = pc;
  return out;
})();
"#;

/// What the page's own peer connection receives: video frames decoded and their size, audio
/// packets, and the stream ids its tracks came with.
const RECEIVED: &str = r#"
return (async () => {
  const out = { frames: 0, width: 0, height: 0, audioPackets: 0, streams: window.streamIds || [],
    state: window.peer ? window.peer.connectionState : 'none' };
  if (!window.peer) return out;
  (await window.peer.getStats()).forEach((r) => {
    if (r.type !== 'inbound-rtp') return;
    if (r.kind === 'video') {
      out.frames = r.framesDecoded || 0; out.width = r.frameWidth || 0;
      out.height = r.frameHeight || 0;
    }
    if (r.kind === 'audio') out.audioPackets = r.packetsReceived || 0;
  });
  return out;
})();
"#;

/// The first call page's view of `identity`: (video frames decoded, frame width, audio
/// packets received).
async fn media_from(page: &Page, identity: &str) -> (u64, u64, u64) {
    let mut out = (0, 0, 0);
    for s in media_stats(page).await {
        if s["identity"] != identity {
            continue;
        }
        match s["kind"].as_str() {
            Some("video") => {
                out.0 = out.0.max(s["framesDecoded"].as_u64().unwrap_or(0));
                out.1 = out.1.max(s["frameWidth"].as_u64().unwrap_or(0));
            }
            Some("audio") => out.2 = out.2.max(s["packetsReceived"].as_u64().unwrap_or(0)),
            _ => {}
        }
    }
    out
}

async fn remote_identities(page: &Page) -> Vec<String> {
    eval(page, "return window.switchyard.remoteParticipants()")
        .await
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// A blank page of the server's own origin, where the WHIP or WHEP script runs.
async fn blank_page(driver: &Driver, server: &Server) -> Page {
    let page = driver.browser().await.expect("a browser");
    page.goto(&format!("http://{}/healthz", server.http_addr))
        .await
        .expect("the page loads");
    page
}

fn base(server: &Server) -> String {
    format!("http://{}", server.http_addr)
}

/// Sends `DELETE base+location` with `token`; returns the status.
async fn delete(server: &Server, location: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .delete(format!("{}{location}", base(server)))
        .bearer_auth(token)
        .send()
        .await
        .expect("DELETE")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_page_publishes_into_a_call_and_delete_ends_it() {
    let server = start_server(None, |_| {}).await;
    let driver = Driver::start().await.expect("chromedriver");
    let room = "whip-call";
    let watcher = driver
        .call_pages(server.http_addr.port(), room, &["Watcher"], "")
        .await
        .expect("the call page loads")
        .pop()
        .expect("one page");
    wait_for_script(
        &watcher,
        "the watcher to join",
        Duration::from_secs(20),
        "return !!(window.switchyard && window.switchyard.client.you)",
    )
    .await;

    let token = server.token("encoder", room, Grants::default());
    let encoder = blank_page(&driver, &server).await;
    let started = Instant::now();
    let answer = eval(
        &encoder,
        &whip::publish_script(CAMERA, &token, &format!("/whip/{room}")),
    )
    .await
    .expect("the WHIP script runs");
    assert_eq!(answer["status"], 201, "{answer}");
    assert_eq!(answer["contentType"], "application/sdp");
    let location = answer["location"].as_str().expect("a Location").to_owned();
    let prefix = format!("/whip/{room}/");
    assert!(
        location.starts_with(&prefix) && location.len() >= prefix.len() + 32,
        "{location}"
    );
    let sdp = answer["body"].as_str().unwrap_or_default();
    assert!(
        sdp.lines().any(|l| l.starts_with("a=candidate:")),
        "the answer carries the server's candidates: {sdp}"
    );
    println!("WHIP answered 201 after {:?}", started.elapsed());

    // The watcher decodes the encoder's video and hears its audio.
    let seen = wait_for(
        "the watcher to decode the WHIP publisher",
        Duration::from_secs(30),
        async || {
            let (frames, width, audio) = media_from(&watcher, "encoder").await;
            if frames >= 30 && width > 0 && audio > 0 {
                Ok((frames, width, audio))
            } else {
                Err(format!(
                    "{frames} frames, width {width}, {audio} audio packets"
                ))
            }
        },
    )
    .await;
    println!(
        "watcher decoded {} frames ({} px wide) and {} audio packets from the WHIP publisher \
         {:?} after the POST",
        seen.0,
        seen.1,
        seen.2,
        started.elapsed()
    );
    let more = seen.0 + 30;
    wait_for(
        "the frames to keep coming",
        Duration::from_secs(10),
        async || {
            let (frames, ..) = media_from(&watcher, "encoder").await;
            if frames >= more {
                Ok(())
            } else {
                Err(format!("{frames} frames, waiting for {more}"))
            }
        },
    )
    .await;

    // Someone else's token may not end it; the publisher's own may, once.
    let other = server.token("someone-else", room, Grants::default());
    assert_eq!(delete(&server, &location, &other).await, 403);
    let deleted = Instant::now();
    assert_eq!(delete(&server, &location, &token).await, 200);
    wait_for(
        "the watcher to see the WHIP publisher leave",
        Duration::from_secs(10),
        async || {
            let remotes = remote_identities(&watcher).await;
            if remotes.iter().any(|r| r == "encoder") {
                Err(format!("still listed: {remotes:?}"))
            } else {
                Ok(())
            }
        },
    )
    .await;
    println!(
        "the watcher saw the publisher leave {:?} after DELETE",
        deleted.elapsed()
    );
    assert_eq!(delete(&server, &location, &token).await, 404);
    let _ = encoder.close().await;
    let _ = watcher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_pages_play_a_named_participant_and_the_active_speaker() {
    let server = start_server(None, |_| {}).await;
    let driver = Driver::start().await.expect("chromedriver");
    let room = "whep-call";
    let alice = driver
        .call_pages(server.http_addr.port(), room, &["Alice"], "")
        .await
        .expect("the call page loads")
        .pop()
        .expect("one page");
    let you = wait_for_script(
        &alice,
        "Alice to join",
        Duration::from_secs(20),
        "const c = window.switchyard && window.switchyard.client; \
         return c && c.you ? { id: c.you.id, identity: c.you.identity } : null",
    )
    .await;
    let (alice_id, alice_identity) = (
        you["id"].as_str().unwrap().to_owned(),
        you["identity"].as_str().unwrap().to_owned(),
    );
    // Alice's camera and microphone are published (the admin API lists both tracks).
    let admin = server.token(
        "ops",
        "",
        Grants {
            room_admin: true,
            ..Grants::default()
        },
    );
    wait_for(
        "Alice to publish audio and video",
        Duration::from_secs(20),
        async || {
            let detail: Value = reqwest::Client::new()
                .get(format!("{}/api/rooms/{room}", base(&server)))
                .bearer_auth(&admin)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let tracks = detail["participants"][0]["tracks"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0);
            if tracks >= 2 {
                Ok(())
            } else {
                Err(format!("{tracks} tracks: {detail}"))
            }
        },
    )
    .await;

    let token = server.token(
        "viewer",
        room,
        Grants {
            can_publish: false,
            can_publish_data: false,
            ..Grants::default()
        },
    );
    for query in [format!("?participant={alice_identity}"), String::new()] {
        let viewer = blank_page(&driver, &server).await;
        let started = Instant::now();
        let answer = eval(
            &viewer,
            &WHEP_PLAY.replace("arguments", &args(&token, &format!("/whep/{room}{query}"))),
        )
        .await
        .expect("the WHEP script runs");
        assert_eq!(answer["status"], 201, "{query}: {answer}");
        let location = answer["location"].as_str().expect("a Location").to_owned();
        assert!(
            location.starts_with(&format!("/whep/{room}/")),
            "{location}"
        );
        let got = wait_for(
            "the WHEP page to decode Alice's video and receive her audio",
            Duration::from_secs(30),
            async || {
                let r = eval(&viewer, RECEIVED).await.map_err(|e| e.to_string())?;
                let frames = r["frames"].as_u64().unwrap_or(0);
                if frames >= 30
                    && r["width"].as_u64() > Some(0)
                    && r["audioPackets"].as_u64() > Some(0)
                {
                    Ok(r)
                } else {
                    Err(r.to_string())
                }
            },
        )
        .await;
        println!(
            "WHEP{} ({query:?}): {} frames {}x{}, {} audio packets, {:?} after the POST",
            if query.is_empty() {
                " active speaker"
            } else {
                ""
            },
            got["frames"],
            got["width"],
            got["height"],
            got["audioPackets"],
            started.elapsed()
        );
        let streams: Vec<String> = serde_json::from_value(got["streams"].clone()).unwrap();
        assert!(
            !streams.is_empty() && streams.iter().all(|s| *s == alice_id),
            "the tracks are Alice's ({alice_id}): {streams:?}"
        );
        // The viewer is hidden: Alice lists nobody.
        assert!(remote_identities(&alice).await.is_empty());
        assert_eq!(delete(&server, &location, &token).await, 200);
        wait_for(
            "the viewer to be gone",
            Duration::from_secs(10),
            async || {
                let r = eval(&viewer, RECEIVED).await.map_err(|e| e.to_string())?;
                let state = r["state"].as_str().unwrap_or_default().to_owned();
                // The server closed its side: the page's connection stops working.
                if matches!(state.as_str(), "disconnected" | "failed" | "closed") {
                    Ok(())
                } else {
                    Err(state)
                }
            },
        )
        .await;
        let _ = viewer.close().await;
    }
    let _ = alice.close().await;
}

/// `arguments` of a page script, spelled as a JavaScript array literal.
fn args(token: &str, path: &str) -> String {
    json!([token, path]).to_string()
}

/// An offer a WHIP encoder could send (audio only, one host candidate), written by hand.
fn whip_offer() -> String {
    let fingerprint: Vec<String> = (0..32).map(|i| format!("{:02X}", i * 7 % 256)).collect();
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS s",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host",
        "a=ice-ufrag:Wh1p",
        "a=ice-pwd:whipwhipwhipwhipwhipwhip",
        &format!("a=fingerprint:sha-256 {}", fingerprint.join(":")),
        "a=setup:actpass",
        "a=mid:0",
        "a=sendonly",
        "a=msid:s a",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=ssrc:11111111 cname:whip",
        "",
    ]
    .join("\r\n")
}

/// POSTs `body` as `content_type` to `path` with `token`; returns status, headers and body.
async fn post(
    server: &Server,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", base(server)))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap_or_default())
}

fn token_for(identity: &str, room: &str, grants: Grants, exp: Option<u64>) -> String {
    let mut c = claims(room, grants, exp);
    c["sub"] = identity.into();
    hs256(&c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_and_whep_refusals_say_what_to_do() {
    let server = admin::server(1000).await;
    let room = "refusals";
    let sdp_type = "application/sdp";
    let good = token_for("enc", room, Grants::default(), None);
    let path = format!("/whip/{room}");

    // Tokens: none, garbage, expired (401 with a Bearer challenge); another room's (403).
    let (status, headers, body) = post(&server, &path, None, sdp_type, whip_offer()).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
        "{headers:?}"
    );
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let (status, headers, _) = post(&server, &path, Some("garbage"), sdp_type, whip_offer()).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    let expired = token_for("enc", room, Grants::default(), Some(admin::now() - 3600));
    let (status, _, body) = post(&server, &path, Some(&expired), sdp_type, whip_offer()).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("expired"), "{body}");
    let elsewhere = token_for("enc", "other-room", Grants::default(), None);
    let (status, _, body) = post(&server, &path, Some(&elsewhere), sdp_type, whip_offer()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("other-room"), "{body}");
    let no_publish = token_for(
        "enc",
        room,
        Grants {
            can_publish: false,
            ..Grants::default()
        },
        None,
    );
    let (status, _, body) = post(&server, &path, Some(&no_publish), sdp_type, whip_offer()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("canPublish"), "{body}");

    // Content type, SDP, size.
    let (status, ..) = post(&server, &path, Some(&good), "text/plain", whip_offer()).await;
    assert_eq!(status, 415);
    for bad in ["hello", "", "v=0\r\nm=audio x\r\n"] {
        let (status, _, body) = post(&server, &path, Some(&good), sdp_type, bad).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
    }
    let data_only = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
                     m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n";
    let (status, _, body) = post(&server, &path, Some(&good), sdp_type, data_only).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no audio or video"), "{body}");
    let receive_only = whip_offer().replace("a=sendonly", "a=recvonly");
    let (status, _, body) = post(&server, &path, Some(&good), sdp_type, receive_only).await;
    assert_eq!(status, 400, "{body}");
    let huge = format!("{}a=x:{}\r\n", whip_offer(), "y".repeat(100 * 1024));
    let (status, ..) = post(&server, &path, Some(&good), sdp_type, huge).await;
    assert_eq!(status, 413);
    // Parsable, but the engine refuses it (no DTLS fingerprint): 400, and nobody stays.
    let no_fingerprint: String = whip_offer()
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let (status, _, body) = post(&server, &path, Some(&good), sdp_type, no_fingerprint).await;
    assert_eq!(status, 400, "{body}");

    // A good offer: 201 with an answer and a Location.
    let (status, headers, answer) = post(&server, &path, Some(&good), sdp_type, whip_offer()).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(headers["content-type"], sdp_type);
    assert!(answer.contains("a=candidate:"), "{answer}");
    let location = headers["location"].to_str().unwrap().to_owned();
    assert_eq!(headers["access-control-allow-origin"], "*");

    // PATCH is refused clearly; OPTIONS answers for CORS.
    let http = reqwest::Client::new();
    let patch = http
        .patch(format!("{}{location}", base(&server)))
        .bearer_auth(&good)
        .header("content-type", "application/trickle-ice-sdpfrag")
        .body("a=end-of-candidates\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status().as_u16(), 405);
    assert!(patch.text().await.unwrap().contains("not supported"));
    let options = http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/whip/{room}", base(&server)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(options.status().as_u16(), 204);
    assert!(
        options.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Authorization")
    );

    // WHEP: without canSubscribe 403; a participant who is not there, or publishes nothing
    // (the WHIP encoder above never sent media), 404; a room nobody is in, 404.
    let viewer = token_for("viewer", room, Grants::default(), None);
    let whep_offer = whip_offer().replace("a=sendonly", "a=recvonly");
    let no_subscribe = token_for(
        "viewer",
        room,
        Grants {
            can_subscribe: false,
            ..Grants::default()
        },
        None,
    );
    let whep = format!("/whep/{room}");
    let (status, _, body) = post(
        &server,
        &whep,
        Some(&no_subscribe),
        sdp_type,
        whep_offer.clone(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    for query in ["?participant=nobody", "?participant=enc"] {
        let (status, _, body) = post(
            &server,
            &format!("{whep}{query}"),
            Some(&viewer),
            sdp_type,
            whep_offer.clone(),
        )
        .await;
        assert_eq!(status, 404, "{query}: {body}");
        assert!(body.contains("publishes nothing"), "{body}");
    }
    let empty = token_for("viewer", "empty-room", Grants::default(), None);
    let (status, _, body) = post(
        &server,
        "/whep/empty-room",
        Some(&empty),
        sdp_type,
        whep_offer,
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // DELETE: unknown 404; the right one 200, then 404.
    assert_eq!(
        delete(&server, &format!("/whip/{room}/0123"), &good).await,
        404
    );
    assert_eq!(delete(&server, &location, &good).await, 200);
    assert_eq!(delete(&server, &location, &good).await, 404);

    // A full room: 503 with Retry-After.
    let mut api = admin::Api::new(&server);
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms",
            "/api/rooms",
            Some(&admin::admin_token()),
            Some(json!({"name": "tiny", "maxParticipants": 1})),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    let first = token_for("first", "tiny", Grants::default(), None);
    let (status, _, body) = post(&server, "/whip/tiny", Some(&first), sdp_type, whip_offer()).await;
    assert_eq!(status, 201, "{body}");
    let second = token_for("second", "tiny", Grants::default(), None);
    let (status, headers, body) =
        post(&server, "/whip/tiny", Some(&second), sdp_type, whip_offer()).await;
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert!(body.contains("full"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_created_rooms_only_rooms_made_by_the_api_take_joins() {
    let server = start_server(Some([127, 0, 0, 1].into()), |config| {
        config.credentials = Some((admin::KEY.into(), admin::SECRET.into()));
        config.auto_create_rooms = false;
    })
    .await;
    let token = token_for("enc", "planned", Grants::default(), None);
    let (status, _, body) = post(
        &server,
        "/whip/planned",
        Some(&token),
        "application/sdp",
        whip_offer(),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("POST /api/rooms"), "{body}");
    let mut api = admin::Api::new(&server);
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms",
            "/api/rooms",
            Some(&admin::admin_token()),
            Some(json!({"name": "planned"})),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    let (status, _, body) = post(
        &server,
        "/whip/planned",
        Some(&token),
        "application/sdp",
        whip_offer(),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // The WebSocket join is refused the same way.
    let mut c = client::Client::connect(&switchyard_tests::ws_url(&server))
        .await
        .expect("connect");
    c.join(
        "unplanned",
        &token_for("ws", "unplanned", Grants::default(), None),
    );
    let refusal = c
        .wait_message(admin::WAIT, |m| match m {
            protocol::ServerMessage::Error { code, message } => Some((*code, message.clone())),
            _ => None,
        })
        .await
        .expect("an error");
    assert_eq!(refusal.0, protocol::ErrorCode::WrongRoom, "{}", refusal.1);
    assert!(refusal.1.contains("POST /api/rooms"), "{}", refusal.1);
}
