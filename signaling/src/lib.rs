//! Switchyard's HTTP face: the signaling WebSocket (`/ws`), the dev-mode token endpoint, the
//! embedded web demo, the admin API, HLS recordings (`/recordings`), and health checks.
//!
//! It turns a browser's JSON messages into typed commands for the room that owns the state
//! (through the `sfu` crate's [`sfu::Session`]) and the room's events back into JSON. It never
//! touches a media socket. [`app`] builds the router so tests can drive it without a listener.

pub mod api;
pub mod auth;
pub mod metrics;
pub mod recording;
pub mod webhooks;
mod ws;

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use protocol::{Grants, IceServer};
use serde::Deserialize;
use sfu::{RoomId, Sfu};
use tokio_util::sync::CancellationToken;

pub use auth::{AuthError, TokenAuthority};

/// Settings of the signaling layer.
#[derive(Debug, Clone)]
pub struct SignalingConfig {
    /// Largest WebSocket message accepted.
    pub max_message_size: usize,
    /// A joined client that sends nothing for this long is removed.
    pub keepalive_timeout: Duration,
    /// When true, `GET /api/dev-token` mints tokens for anyone (no secret was configured).
    pub dev_mode: bool,
    /// ICE servers handed to clients on join (besides the bundled TURN relay's).
    pub ice_servers: Vec<IceServer>,
    /// The bundled TURN relay: each joining client gets its own short-lived credential.
    pub turn: Option<TurnOffer>,
}

/// How clients reach the bundled TURN relay, and the secret its credentials are minted with.
#[derive(Debug, Clone)]
pub struct TurnOffer {
    /// The TURN REST API secret shared with the relay.
    pub secret: turn_server::RestSecret,
    /// How long a minted credential admits new allocations (at most 24 h).
    pub credential_lifetime: Duration,
    /// Host name or IP clients use for the relay; `None`: the host the client used for HTTP.
    pub host: Option<String>,
    /// UDP and TCP port.
    pub port: u16,
    /// TLS port, when the relay has a certificate.
    pub tls_port: Option<u16>,
}

impl TurnOffer {
    /// The ICE server entry for `identity`, with URLs on `host` (an IPv6 literal in brackets).
    pub fn ice_server(&self, identity: &str, request_host: Option<&str>) -> IceServer {
        let host = self
            .host
            .clone()
            .or_else(|| request_host.map(host_without_port))
            .unwrap_or_else(|| "127.0.0.1".into());
        let credential = self.secret.mint(identity, self.credential_lifetime);
        let mut urls = vec![
            format!("turn:{host}:{}?transport=udp", self.port),
            format!("turn:{host}:{}?transport=tcp", self.port),
        ];
        if let Some(tls_port) = self.tls_port {
            urls.push(format!("turns:{host}:{tls_port}?transport=tcp"));
        }
        IceServer {
            urls,
            username: Some(credential.username),
            credential: Some(credential.password),
        }
    }
}

/// `example.com:8080` → `example.com`, `[::1]:8080` → `[::1]`. `localhost` becomes
/// `127.0.0.1`, because browsers may resolve it to `::1` and the relay listens on IPv4.
fn host_without_port(host: &str) -> String {
    let host = if host.starts_with('[') {
        host.split_once(']')
            .map(|(h, _)| format!("{h}]"))
            .unwrap_or_else(|| host.to_owned())
    } else {
        host.split(':').next().unwrap_or(host).to_owned()
    };
    if host.eq_ignore_ascii_case("localhost") {
        "127.0.0.1".into()
    } else {
        host
    }
}

impl Default for SignalingConfig {
    fn default() -> Self {
        SignalingConfig {
            max_message_size: 1024 * 1024,
            keepalive_timeout: Duration::from_secs(15),
            dev_mode: false,
            ice_servers: Vec::new(),
            turn: None,
        }
    }
}

/// Shared by every request handler. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    pub config: std::sync::Arc<SignalingConfig>,
    pub sfu: Sfu,
    pub tokens: TokenAuthority,
    pub cancel: CancellationToken,
    /// Failed admin authentications per address (the API slows repeat offenders down).
    pub auth_failures: std::sync::Arc<api::AuthFailures>,
    /// `/metrics`: this server's recorder and WebSocket count.
    pub metrics: std::sync::Arc<metrics::Metrics>,
    /// The bundled TURN relay, for its counters.
    pub turn: Option<turn_server::TurnServer>,
    /// HLS recordings and their sidecars.
    pub recordings: recording::Recordings,
}

/// The HTTP application: every route of the service.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/", get(|| async { static_file("index.html") }))
        .route("/room/{room}", get(room_page))
        .route("/admin", get(|| async { static_file("admin.html") }))
        .route(
            "/recordings",
            get(|| async { static_file("recordings.html") }),
        )
        .route("/recordings/{id}/{file}", get(recording_file))
        .route("/static/{*path}", get(static_asset))
        .route("/ws", get(websocket))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::render))
        .merge(api::routes());
    if state.config.dev_mode {
        router = router
            .route("/api/dev-token", get(dev_token))
            .route("/api/dev-admin-token", get(dev_admin_token));
    }
    router.with_state(state)
}

async fn websocket(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
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
        .on_upgrade(move |socket| ws::serve(socket, state, host))
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

/// `GET /recordings/{id}/{file}`: a recording's playlist, segments and state, to anyone with
/// its (unguessable) id.
async fn recording_file(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found").into_response();
    if !recording::is_safe_segment(&id) || !recording::is_safe_segment(&file) {
        return not_found();
    }
    let path = state.recordings.dir().join(&id).join(&file);
    let Ok(opened) = tokio::fs::File::open(&path).await else {
        return not_found();
    };
    let Ok(metadata) = opened.metadata().await else {
        return not_found();
    };
    if !metadata.is_file() {
        return not_found();
    }
    let extension = file.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    let (content_type, cache) = match extension {
        "m3u8" => ("application/vnd.apple.mpegurl", Some("no-cache")),
        "m4s" => ("video/iso.segment", None),
        "mp4" => ("video/mp4", None),
        "ts" => ("video/mp2t", None),
        "json" => ("application/json", Some("no-cache")),
        _ => ("application/octet-stream", None),
    };
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(opened));
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_LENGTH, metadata.len().to_string()),
        ],
        body,
    )
        .into_response();
    if let Some(cache) = cache {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static(cache),
        );
    }
    response
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

/// Dev mode only: an admin token for every room (1 h), so the dashboard works with no setup.
async fn dev_admin_token(State(state): State<AppState>) -> Response {
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
async fn dev_token(State(state): State<AppState>, Query(q): Query<DevTokenQuery>) -> Response {
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
