//! Webhooks: the admin event stream's events POSTed to configured URLs.
//!
//! Each event goes out as JSON `{"id", "event", "data"}` with the header
//! `X-Switchyard-Signature: sha256=<hex HMAC-SHA256 of the body with the webhook secret>`, so a
//! receiver can check it came from us. A delivery that fails (connection error or a non-2xx
//! answer) is retried after 1, 2 and 4 s, then dropped and logged. Each URL has its own
//! bounded queue, so a slow receiver delays only itself and never the rooms. Periodic `stats`
//! events are sent only when configured (`[webhooks] stats`); only then are they taken at all
//! on the webhooks' account.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sfu::events::EventBus;
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Events waiting for one URL before newer ones are dropped.
const QUEUE: usize = 1024;
/// Delays between attempts.
const BACKOFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Where to send events and the secret that signs them.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub urls: Vec<String>,
    pub secret: String,
    /// In a cluster: this node's id, sent as `node` with each event. Each node delivers only
    /// the events of its own rooms, so every event goes out once; `(node, id)` names it.
    pub node: Option<String>,
}

/// `sha256=<hex>` of the body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Delivers every event of `events` to every URL until `cancel`; the periodic `stats` too
/// when `stats` (which keeps them being taken for as long as this runs).
pub async fn run(events: EventBus, config: WebhookConfig, stats: bool, cancel: CancellationToken) {
    if config.urls.is_empty() {
        return;
    }
    let _interest = stats.then(|| events.want_stats(None));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut queues = Vec::new();
    for url in &config.urls {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        tokio::spawn(deliver(
            http.clone(),
            url.clone(),
            config.secret.clone(),
            rx,
            cancel.clone(),
        ));
        queues.push((url.clone(), tx));
    }
    let (_, mut live) = events.subscribe(Some(u64::MAX));
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            event = live.recv() => event,
        };
        let event = match event {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                warn!(
                    missed,
                    "webhooks fell behind the event stream; events skipped"
                );
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if event.kind == "stats" && !stats {
            continue;
        }
        let mut body = serde_json::json!({"id": event.id, "event": event.kind, "data": event.data});
        if let Some(node) = &config.node {
            body["node"] = serde_json::Value::from(node.as_str());
        }
        let body = body.to_string().into_bytes();
        for (url, queue) in &queues {
            if queue.try_send(body.clone()).is_err() {
                warn!(%url, id = event.id, "webhook queue full; event dropped");
            }
        }
    }
}

async fn deliver(
    http: reqwest::Client,
    url: String,
    secret: String,
    mut queue: mpsc::Receiver<Vec<u8>>,
    cancel: CancellationToken,
) {
    while let Some(body) = tokio::select! {
        _ = cancel.cancelled() => None,
        body = queue.recv() => body,
    } {
        let signed = signature(&secret, &body);
        for attempt in 0..=BACKOFF.len() {
            let result = http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-switchyard-signature", &signed)
                .body(body.clone())
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => break,
                Ok(response) => {
                    debug!(%url, status = %response.status(), attempt, "webhook refused")
                }
                Err(error) => debug!(%url, %error, attempt, "webhook failed"),
            }
            let Some(delay) = BACKOFF.get(attempt) else {
                warn!(%url, "webhook undeliverable after retries; event dropped");
                break;
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(*delay) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // printf '{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature("secret", br#"{"a":1}"#),
            "sha256=aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494"
        );
    }
}
