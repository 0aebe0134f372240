//! Test readers of what the server reports: its admin event stream (`GET /api/events`, read in
//! the background into a shared list) and its webhooks (a receiver on loopback that records
//! each delivery). They only observe; they never answer for the server.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::Value;

/// One Server-Sent Event: its id (none for `stats`), kind and JSON data.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub kind: String,
    pub data: Value,
}

/// What a background reader has seen so far.
pub type SeenEvents = Arc<Mutex<Vec<SseEvent>>>;

/// Opens `GET {base}/api/events` with `token` (after `last_id`, if given) and reads it in the
/// background. Returns once the server has answered: events from then on are seen.
pub async fn read_events(base: &str, token: &str, last_id: Option<String>) -> SeenEvents {
    let seen: SeenEvents = Arc::default();
    let sink = Arc::clone(&seen);
    let mut request = reqwest::Client::new()
        .get(format!("{base}/api/events"))
        .bearer_auth(token);
    if let Some(id) = last_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("the event stream opens");
    assert!(
        response.status().is_success(),
        "GET /api/events: {}",
        response.status()
    );
    tokio::spawn(async move {
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
                };
                if let (Some(kind), Some(data)) = (field("event:"), field("data:")) {
                    sink.lock().unwrap().push(SseEvent {
                        id: field("id:"),
                        kind,
                        data: serde_json::from_str(&data).unwrap_or(Value::Null),
                    });
                }
            }
        }
    });
    seen
}

/// The deliveries a webhook receiver got, in order.
pub type Deliveries = Arc<Mutex<Vec<Value>>>;

/// Starts a webhook receiver on loopback that records each delivery; returns its URL.
pub async fn webhook_receiver(deliveries: &Deliveries) -> String {
    let record = Arc::clone(deliveries);
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", hook.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let record = Arc::clone(&record);
            async move {
                if let Ok(event) = serde_json::from_slice::<Value>(&body) {
                    record.lock().unwrap().push(event);
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(hook, app).await });
    url
}
