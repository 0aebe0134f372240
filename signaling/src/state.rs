//! [`AppState`]: what every request handler shares. It only holds the parts; it defines no
//! behaviour and no route.

use sfu::Sfu;
use tokio_util::sync::CancellationToken;

use crate::auth::TokenAuthority;
use crate::auth_failures::AuthFailures;
use crate::broadcast::Broadcasts;
use crate::config::SignalingConfig;
use crate::drain::Drain;
use crate::metrics::Metrics;
use crate::recording::supervisor::Recordings;
use crate::resume::Parking;

/// Shared by every request handler. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    pub config: std::sync::Arc<SignalingConfig>,
    pub sfu: Sfu,
    pub tokens: TokenAuthority,
    pub cancel: CancellationToken,
    /// Failed admin authentications per address (the API slows repeat offenders down).
    pub auth_failures: std::sync::Arc<AuthFailures>,
    /// `/metrics`: this server's recorder and WebSocket count.
    pub metrics: std::sync::Arc<Metrics>,
    /// The bundled TURN relay, for its counters.
    pub turn: Option<turn_server::TurnServer>,
    /// HLS recordings and their sidecars.
    pub recordings: Recordings,
    /// Live broadcasts (low-latency HLS) and their sidecars.
    pub broadcasts: Broadcasts,
    /// Sessions whose WebSocket dropped, waiting for `resume`.
    pub parking: std::sync::Arc<Parking>,
    /// Set when the server drains before going away: no new joins.
    pub drain: Drain,
    /// This node's part in a cluster on Redis; `None`: a single server.
    pub cluster: Option<crate::cluster_link::ClusterLink>,
}
