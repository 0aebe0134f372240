//! Active speaker in real Chromium call pages: of three participants with their microphones
//! muted, the one who unmutes (Chromium's fake microphone beeps) is named in `speakersChanged`
//! at the others within a second, its tile there gets the `speaking` class, and the admin API's
//! room detail lists it. Never fakes audio levels or the SFU.

use std::time::Duration;

use fantoccini::Client;
use protocol::Grants;
use protocol::admin::RoomDetail;
use serde_json::{Value, json};
use switchyard_tests::browser::{Driver, wait_for_script};
use switchyard_tests::media::{record_events, recorded, run, wait_connected};
use switchyard_tests::{Server, start_local_server, wait_for};

/// How soon the others must hear of a new speaker.
const NAMED_WITHIN_MS: f64 = 1000.0;

/// The room as the admin API describes it.
async fn detail(server: &Server, room: &str) -> RoomDetail {
    let grants = Grants {
        room_admin: true,
        ..Grants::default()
    };
    let token = server.tokens.mint("ops", "Ops", "", grants, 600);
    reqwest::Client::new()
        .get(format!("http://{}/api/rooms/{room}", server.http_addr))
        .bearer_auth(token)
        .send()
        .await
        .expect("admin API answers")
        .json()
        .await
        .expect("a RoomDetail")
}

/// Clicks the page's own microphone button (as a person would) and returns the wall-clock
/// time of the click (`Date.now()`, ms) and whether the microphone is muted afterwards.
async fn click_mic(page: &Client) -> (f64, bool) {
    let r = run(
        page,
        "const t = Date.now(); document.getElementById('toggle-mic').click(); \
         return [t, window.switchyard.client.isMuted('audio')]",
        vec![],
    )
    .await
    .expect("the microphone button works");
    (r[0].as_f64().expect("a time"), r[1] == true)
}

/// The first recorded `speakersChanged` at or after `since` that names `who`: (its time, the list).
fn named(events: &[Value], who: &str, since: f64) -> Option<(f64, Value)> {
    events.iter().find_map(|e| {
        let at = e["at"].as_f64()?;
        let speakers = &e["detail"]["speakers"];
        let names = speakers
            .as_array()?
            .iter()
            .any(|s| s["participantId"] == who);
        (e["type"] == "speakersChanged" && at >= since && names).then(|| (at, speakers.clone()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_speaking_participant_is_named_within_a_second() {
    // Media on 127.0.0.1 only: other tests' network interfaces come and go on this machine.
    let server = start_local_server().await;
    let driver = Driver::start().await.expect("chromedriver");
    let port = server.http_addr.port();
    let room = "speakers";
    let pages = driver
        .call_pages(port, room, &["Ann", "Bob", "Cat"], "")
        .await
        .expect("pages load");
    let mut ids = Vec::new();
    for page in &pages {
        ids.push(wait_connected(page).await);
    }
    for page in &pages {
        wait_for_script(
            page,
            "both others to be listed",
            Duration::from_secs(30),
            "return window.switchyard.client.participants.size === 2",
        )
        .await;
    }

    // Everyone mutes; then nobody speaks, as every page and the admin API say.
    for page in &pages {
        let (_, muted) = click_mic(page).await;
        assert!(muted, "the button muted the microphone");
    }
    for page in &pages {
        wait_for_script(
            page,
            "nobody to be speaking",
            Duration::from_secs(10),
            "return window.switchyard.speakers().length === 0",
        )
        .await;
    }
    wait_for(
        "the admin API to list no speaker",
        Duration::from_secs(5),
        async || match detail(&server, room).await.speakers {
            s if s.is_empty() => Ok(()),
            s => Err(format!("speakers {s:?}")),
        },
    )
    .await;
    let (listeners, cat) = (&pages[..2], &pages[2]);
    for page in listeners {
        record_events(page, &["speakersChanged"]).await;
    }

    // Cat unmutes; Ann and Bob hear of it.
    let cat_id = &ids[2];
    let (unmuted_at, muted) = click_mic(cat).await;
    assert!(!muted, "the button unmuted Cat's microphone");
    for (page, name) in listeners.iter().zip(["Ann", "Bob"]) {
        let (at, speakers) = wait_for(
            &format!("{name} to hear that Cat speaks"),
            Duration::from_secs(10),
            async || {
                let events = recorded(page).await;
                named(&events, cat_id, unmuted_at).ok_or(format!("events so far: {events:?}"))
            },
        )
        .await;
        let latency = at - unmuted_at;
        println!("{name}: Cat ({cat_id}) named {latency} ms after unmuting: {speakers}");
        assert!(
            latency < NAMED_WITHIN_MS,
            "{name} heard that Cat speaks only {latency} ms after she unmuted"
        );
        let tile = wait_for_script(
            page,
            "Cat's tile to be marked speaking",
            Duration::from_secs(2),
            &format!(
                "const t = document.querySelector('#remote-grid .tile.camera[data-participant-id={}]'); \
                 return t && t.classList.contains('speaking') ? t.className : null",
                json!(cat_id)
            ),
        )
        .await;
        println!("{name}: Cat's tile is {tile}");
    }
    let speakers = wait_for(
        "the admin API to list Cat as speaking",
        Duration::from_secs(5),
        async || match detail(&server, room).await.speakers {
            s if s.contains(cat_id) => Ok(s),
            s => Err(format!("speakers {s:?}")),
        },
    )
    .await;
    println!("admin API speakers: {speakers:?}");
    assert_eq!(speakers, vec![cat_id.clone()], "only Cat speaks");

    for page in pages {
        let _ = page.close().await;
    }
}
