//! Switchyard's HTTP face: the signaling WebSocket (`/ws`), WHIP ingest and WHEP playback
//! (`/whip`, `/whep`), the dev-mode token endpoint, the embedded web demo, the admin API, HLS
//! recordings (`/recordings`), and health checks.
//!
//! It turns a browser's JSON messages into typed commands for the room that owns the state
//! (through the `sfu` crate's [`sfu::Session`]) and the room's events back into JSON. It never
//! touches a media socket. [`app`] builds the router so tests can drive it without a listener.
//! In a cluster it also carries the sealed frames of rooms that span nodes between nodes
//! ([`node_link`], `/cluster/link`), as opaque bytes for the `sfu` crate.

pub mod api;
pub mod auth;
mod auth_failures;
pub mod broadcast;
pub mod client_ip;
pub mod cluster_link;
mod config;
pub mod drain;
/// Entry points for the fuzz targets in `signaling/fuzz` and the corpus replay test (not a
/// stable API).
#[doc(hidden)]
pub mod fuzzing;
mod http_limit;
mod inbound;
pub mod ip_limits;
mod media_resources;
pub mod metrics;
pub mod node_link;
mod node_links;
mod owner_routing;
pub mod rate_limit;
pub mod recording;
pub mod resume;
mod room_parts;
pub mod spanning;
mod state;
pub mod webhooks;
mod whep;
mod whip;
mod ws;

use axum::Router;
use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use protocol::Grants;
use serde::Deserialize;
use sfu::RoomId;

pub use auth::{AuthError, TokenAuthority};
pub use config::{SignalingConfig, TurnOffer};
pub use state::AppState;

/// The HTTP application: every route of the service. The API, the dev token endpoints and
/// WebSocket upgrades are limited per client address (`[http] ip_request_*`); pages, static
/// files, recordings, `/healthz` and `/metrics` are not.
pub fn app(state: AppState) -> Router {
    // WHIP and WHEP: one registry of live sessions for both, readable from any origin.
    let media = whip::routes()
        .merge(whep::routes())
        .layer(axum::Extension(std::sync::Arc::new(
            media_resources::Resources::default(),
        )))
        .layer(axum::middleware::map_response(media_resources::cors));
    let mut limited = Router::new()
        .route("/ws", get(websocket))
        .merge(api::routes())
        .merge(broadcast::api::routes())
        .merge(media);
    if state.config.dev_mode {
        limited = limited
            .route("/api/dev-token", get(dev_token))
            .route("/api/dev-admin-token", get(dev_admin_token));
    }
    let limits = http_limit::RequestLimits {
        limiters: std::sync::Arc::new(ip_limits::IpLimiters::new(state.config.ip_limits)),
        proxies: state.config.trusted_proxies.clone(),
    };
    // In a cluster, a request about a room served by another node goes to that node (inside
    // the request limit: it counts once, here).
    let limited = limited
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            owner_routing::to_owner,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            limits,
            http_limit::limit,
        ));
    let mut router = Router::new()
        .route("/", get(|| async { static_file("index.html") }))
        .route("/room/{room}", get(room_page))
        .route("/admin", get(|| async { static_file("admin.html") }))
        .route(
            "/recordings",
            get(|| async { static_file("recordings.html") }),
        )
        .route(
            "/recordings/{id}/{file}",
            get(recording::files::recording_file),
        )
        .route("/watch/{room}", get(|| async { static_file("watch.html") }))
        .route("/watch/{room}/live.m3u8", get(broadcast::serve::master))
        .route(
            "/watch/{room}/{id}/{rendition}/{file}",
            get(broadcast::serve::media),
        )
        .route("/static/{*path}", get(static_asset))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .merge(limited);
    // Links between the nodes of a cluster: outside the per-address limits (nodes may share
    // an address) and never routed to a room's owner.
    if state.cluster.is_some() {
        router = router.merge(node_link::routes());
    }
    router.with_state(state)
}

async fn websocket(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    share: Option<axum::Extension<ip_limits::IpShare>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // The client address's share of the message budget, from the request limit's layer.
    let share = share.map(|s| s.0).unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let limit = state.config.max_message_size;
    // A frame somewhat over the message limit is still read whole, so the refusal and the close
    // frame reach the client instead of a connection reset on unread data.
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit.saturating_mul(2))
        .on_upgrade(move |socket| ws::serve(socket, state, host, share))
}

/// `GET /healthz`: "ok", or 503 with `Retry-After` while the server drains before going away,
/// so a load balancer sends new calls elsewhere.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.drain.closes_in() {
        None => "ok".into_response(),
        Some(left) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, left.as_secs().max(1).to_string())],
            "draining: this server takes no new calls and goes away soon\n",
        )
            .into_response(),
    }
}

/// `GET /metrics`: this server's numbers in the Prometheus text format.
async fn metrics_page(State(state): State<AppState>) -> Response {
    metrics::render(
        &state.metrics,
        &state.sfu,
        state.turn.as_ref(),
        state.cluster.as_ref(),
    )
}

fn static_file(name: &str) -> Response {
    match web_demo::asset(name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            asset.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn static_asset(Path(path): Path<String>) -> Response {
    static_file(&path)
}

async fn room_page(Path(room): Path<String>) -> Response {
    match RoomId::new(&room) {
        Ok(_) => static_file("room.html"),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct DevTokenQuery {
    room: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    identity: Option<String>,
}

/// In dev mode the token endpoints answer this machine only, unless the server was opened to
/// the network on purpose (`--insecure-dev`): anyone who gets a dev token can join any room,
/// and a dev admin token runs every room.
fn dev_refusal(state: &AppState, extensions: &axum::http::Extensions) -> Option<Response> {
    if state.config.dev_open_to_network {
        return None;
    }
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip().to_canonical());
    if peer.is_some_and(|ip| ip.is_loopback()) {
        return None;
    }
    Some(
        (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({
                "code": "dev_mode_local_only",
                "message": "dev tokens are handed out to this machine only; to let other \
                            machines join, set api_key and api_secret (and mint tokens with \
                            `switchyard token`), or start the server with --insecure-dev",
            })),
        )
            .into_response(),
    )
}

/// Dev mode only: an admin token for every room (1 h), so the dashboard works with no setup.
async fn dev_admin_token(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
) -> Response {
    if let Some(refusal) = dev_refusal(&state, &extensions) {
        return refusal;
    }
    let grants = Grants {
        room_admin: true,
        ..Grants::default()
    };
    let token = state
        .tokens
        .mint("dev-admin", "Dev admin", "", grants, 3600);
    axum::Json(serde_json::json!({ "token": token })).into_response()
}

/// Dev mode only: a token for anyone, so the web demo works with no setup.
async fn dev_token(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: axum::http::HeaderMap,
    Query(q): Query<DevTokenQuery>,
) -> Response {
    if let Some(refusal) = dev_refusal(&state, &extensions) {
        return refusal;
    }
    let mut response = mint_dev_token(&state, q);
    // A page served by another node of the cluster (one that died, say) fetches its next token
    // here: let the cluster's own pages read the answer, and nobody else's.
    if let Some(link) = &state.cluster
        && let Some(origin) = headers.get(header::ORIGIN)
        && link.is_node_origin(origin.to_str().unwrap_or_default())
    {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
    if state.cluster.is_some() {
        // The answer depends on the page's origin: caches must keep them apart.
        response
            .headers_mut()
            .insert(header::VARY, header::HeaderValue::from_static("origin"));
    }
    response
}

fn mint_dev_token(state: &AppState, q: DevTokenQuery) -> Response {
    if let Err(e) = RoomId::new(&q.room) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"code": "invalid_room", "message": e.to_string()})),
        )
            .into_response();
    }
    let name: String = q.name.unwrap_or_default().trim().chars().take(64).collect();
    let identity = q
        .identity
        .filter(|i| !i.is_empty() && i.len() <= 64)
        .unwrap_or_else(|| {
            let base: String = name
                .to_lowercase()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(16)
                .collect();
            let base = if base.is_empty() {
                "guest".into()
            } else {
                base
            };
            format!("{base}-{:04x}", rand::random::<u16>())
        });
    let display = if name.is_empty() {
        identity.clone()
    } else {
        name
    };
    let token = state
        .tokens
        .mint(&identity, &display, &q.room, Grants::default(), 6 * 3600);
    axum::Json(serde_json::json!({
        "token": token,
        "identity": identity,
        "room": q.room,
    }))
    .into_response()
}
