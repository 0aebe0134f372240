//! The periodic `stats` events of the admin event stream against a real server: taken only while
//! someone listens (an event stream reader, or webhooks configured with `stats = true`), never
//! while nobody does (webhooks without stats do not count), and never kept in the history, so
//! however many there are, a reader that connects later still gets every real event.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use switchyard_tests::admin::{KEY, SECRET, admin_token};
use switchyard_tests::events::{Deliveries, webhook_receiver};
use switchyard_tests::{Server, eventually, start_server};

/// Longer than two rounds of stats (one every 2 s).
const TWO_ROUNDS: Duration = Duration::from_millis(4500);

/// One Server-Sent Event: (id, event name, data).
type Sse = (u64, String, Value);

/// An open `GET /api/events`, read event by event.
struct Events {
    stream: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
}

impl Events {
    /// Opens the stream (every room), resuming after `last_id` if given.
    async fn open(server: &Server, last_id: Option<u64>) -> Events {
        let mut request = reqwest::Client::new()
            .get(format!("http://{}/api/events", server.http_addr))
            .bearer_auth(admin_token());
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("GET /api/events");
        assert_eq!(response.status().as_u16(), 200);
        Events {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when none comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut name, mut data) = (None, String::new(), Value::Null);
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = serde_json::from_str(v.trim()).unwrap_or(Value::Null);
                    }
                }
                match id {
                    Some(id) => return Some((id, name, data)),
                    None => continue, // a keep-alive comment
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .expect("the stream is readable");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Every event that comes until none has for `quiet`.
    async fn drain(&mut self, quiet: Duration) -> Vec<Sse> {
        let mut events = Vec::new();
        while let Some(event) = self.next(quiet).await {
            events.push(event);
        }
        events
    }
}

async fn create_room(server: &Server, name: &str) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/rooms", server.http_addr))
        .bearer_auth(admin_token())
        .json(&json!({"name": name, "emptyTimeoutSeconds": 600}))
        .send()
        .await
        .expect("POST /api/rooms");
    assert_eq!(response.status().as_u16(), 201, "creating room {name}");
}

/// The id of `room`'s `room_created`, once the webhook has it.
async fn created_id(deliveries: &Deliveries, room: &str) -> u64 {
    eventually(Duration::from_secs(10), || async {
        deliveries
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "room_created" && e["data"]["room"] == room)
            .and_then(|e| e["id"].as_u64())
    })
    .await
    .unwrap_or_else(|| panic!("the webhook never got room_created for {room}"))
}

/// Whether no event at all (stats included) took an id between two rooms created
/// [`TWO_ROUNDS`] apart: that is, whether no stats were taken meanwhile. The ids come from the
/// webhook, which does not ask for stats.
async fn quiet_between(server: &Server, deliveries: &Deliveries, round: &str) -> Option<()> {
    let (a, b) = (format!("{round}-a"), format!("{round}-b"));
    create_room(server, &a).await;
    tokio::time::sleep(TWO_ROUNDS).await;
    create_room(server, &b).await;
    let (first, second) = (
        created_id(deliveries, &a).await,
        created_id(deliveries, &b).await,
    );
    println!("{round}: room_created ids {first} and {second}");
    (second == first + 1).then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_run_only_while_someone_listens_and_never_crowd_out_real_events() {
    // Webhooks without stats listen to every event, but must not make stats be taken.
    let deliveries = Deliveries::default();
    let hook_url = webhook_receiver(&deliveries).await;
    let server = start_server(Some([127, 0, 0, 1].into()), |config| {
        config.credentials = Some((KEY.into(), SECRET.into()));
        config.webhooks = Some(signaling::webhooks::WebhookConfig {
            urls: vec![hook_url],
            secret: "hook-secret".into(),
            node: None,
        });
        // Hundreds of rooms are created below from this one address.
        config.ip_limits.request_rate = 0;
    })
    .await;

    // Nobody listens: two rounds of stats pass, and not one is taken.
    assert!(
        quiet_between(&server, &deliveries, "unheard")
            .await
            .is_some(),
        "stats were taken while nobody listened"
    );

    // 300 rooms, and a reader: stats arrive, one per room and round. Five rounds are more
    // snapshots than the history holds.
    let rooms = 300;
    for n in 0..rooms {
        create_room(&server, &format!("busy-{n}")).await;
    }
    let mut reader = Events::open(&server, None).await;
    let mut last_real = 0;
    let mut stats = 0;
    let mut stats_rooms = std::collections::HashSet::new();
    while stats < 5 * rooms {
        let (id, name, data) = reader
            .next(Duration::from_secs(5))
            .await
            .expect("events keep coming while someone listens");
        if name == "stats" {
            stats += 1;
            stats_rooms.insert(data["room"].as_str().unwrap_or_default().to_owned());
            assert!(data["participantCount"].is_number(), "{data}");
        } else {
            last_real = last_real.max(id);
        }
    }
    println!(
        "{stats} stats events for {} rooms; the last real event is {last_real}",
        stats_rooms.len()
    );
    assert_eq!(stats_rooms.len(), rooms + 2, "every open room's stats");
    // More than the history holds (1024 events).
    assert!(stats > 1024);

    // A reader that connects now is replayed every real event, from the very first, and no
    // snapshot.
    let mut late = Events::open(&server, None).await;
    let replay: Vec<Sse> = late
        .drain(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|(id, _, _)| *id <= last_real)
        .collect();
    let kinds: std::collections::BTreeSet<&str> =
        replay.iter().map(|(_, name, _)| name.as_str()).collect();
    println!("replayed {} events: {kinds:?}", replay.len());
    assert_eq!(
        replay.first().map(|e| e.0),
        Some(1),
        "the history lost its start"
    );
    assert_eq!(
        replay.len() as u64,
        last_real,
        "the replay has a gap where stats were"
    );
    assert!(!kinds.contains("stats"), "snapshots were replayed");
    drop(late);

    // One resuming after a real event gets the real events after it, no snapshot.
    let mut resumed = Events::open(&server, Some(last_real - 1)).await;
    let (id, name, _) = resumed.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!((id, name.as_str()), (last_real, "room_created"));
    drop(resumed);

    // Once the readers are gone, stats stop again (the server notices a reader left when it
    // next writes to it, so give it a round or two).
    drop(reader);
    let mut round = 0;
    let stopped = eventually(Duration::from_secs(30), || {
        round += 1;
        let (server, deliveries) = (&server, &deliveries);
        let name = format!("after-{round}");
        async move { quiet_between(server, deliveries, &name).await }
    })
    .await;
    assert!(stopped.is_some(), "stats went on after the readers left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_configured_for_stats_receive_them() {
    let received = Deliveries::default();
    let hook_url = webhook_receiver(&received).await;
    let server = start_server(Some([127, 0, 0, 1].into()), |config| {
        config.credentials = Some((KEY.into(), SECRET.into()));
        config.webhooks = Some(signaling::webhooks::WebhookConfig {
            urls: vec![hook_url],
            secret: "hook-secret".into(),
            node: None,
        });
        config.webhook_stats = true;
    })
    .await;
    create_room(&server, "hooked").await;
    let stats = eventually(Duration::from_secs(10), || {
        let received = Arc::clone(&received);
        async move {
            let all = received.lock().unwrap().clone();
            let stats: Vec<Value> = all.into_iter().filter(|e| e["event"] == "stats").collect();
            (stats.len() >= 2).then_some(stats)
        }
    })
    .await
    .expect("stats reach a webhook configured for them");
    println!("webhook stats: {}", stats[0]);
    assert_eq!(stats[0]["data"]["room"], "hooked");
    assert!(stats[0]["data"]["bitrateIn"].is_number());
}
