//! Call pages on a cluster, as the cluster tests look at them: which node a page talks to,
//! how many frames it decoded from each other participant, and a wait until every page decodes
//! every other. It reads pages only; it never drives a call.

use std::collections::BTreeMap;
use std::time::Duration;

use fantoccini::Client;

use crate::browser::{eval, media_stats};
use crate::wait_for;

/// Video frames the page decoded from each remote identity (current peer connections only).
pub async fn frames_by_identity(page: &Client) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for s in media_stats(page).await {
        if s["kind"] != "video" {
            continue;
        }
        let identity = s["identity"].as_str().unwrap_or_default().to_owned();
        let frames = s["framesDecoded"].as_u64().unwrap_or(0);
        let entry = out.entry(identity).or_insert(0);
        *entry = (*entry).max(frames);
    }
    out
}

/// The WebSocket URL the page's client talks to now.
pub async fn page_node(page: &Client) -> String {
    eval(
        page,
        "return window.switchyard ? window.switchyard.client._route.url : ''",
    )
    .await
    .ok()
    .and_then(|v| v.as_str().map(str::to_owned))
    .unwrap_or_default()
}

/// Waits until every page is connected and has decoded at least `frames` frames from each of
/// the others (by name prefix) on its current connections; `not_at` excludes a node URL.
pub async fn wait_all_decoding(
    pages: &[(&str, Client)],
    frames: u64,
    timeout: Duration,
    not_at: Option<&str>,
    what: &str,
) {
    wait_for(what, timeout, async || {
        for (name, page) in pages {
            let state = eval(
                page,
                "return window.switchyard ? window.switchyard.state() : ''",
            )
            .await
            .unwrap_or_default();
            if state != "connected" {
                let route = eval(
                    page,
                    "return JSON.stringify(window.switchyard.client._route)",
                )
                .await
                .unwrap_or_default();
                return Err(format!("{name} is {state} (route {route})"));
            }
            let node = page_node(page).await;
            if not_at.is_some_and(|dead| node.contains(dead)) {
                return Err(format!("{name} still talks to {node}"));
            }
            let seen = frames_by_identity(page).await;
            for (other, _) in pages.iter().filter(|(n, _)| n != name) {
                let got = seen
                    .iter()
                    .filter(|(id, _)| id.starts_with(&other.to_lowercase()))
                    .map(|(_, f)| *f)
                    .max()
                    .unwrap_or(0);
                if got < frames {
                    return Err(format!(
                        "{name} decoded {got} frames from {other} (via {node})"
                    ));
                }
            }
        }
        Ok(())
    })
    .await;
}
