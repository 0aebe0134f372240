//! The per-address request limit as a router layer, for the API, the dev token endpoints and
//! WebSocket upgrades: a client address over it gets 429 `rate_limited` with `Retry-After` and
//! the API's JSON error; a request within it goes on carrying its address's share of the
//! signaling message budget (for `/ws`). It never reads a request body.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::debug;

use crate::api::Failure;
use crate::client_ip::TrustedProxies;
use crate::ip_limits::{IpLimiters, IpShare};

/// What the layer needs: the buckets, and whose `X-Forwarded-For` to believe.
#[derive(Clone)]
pub(crate) struct RequestLimits {
    pub limiters: Arc<IpLimiters>,
    pub proxies: TrustedProxies,
}

/// Lets a request through if its client address is within its limit. A request without a
/// known peer address (a router driven without a listener) is not limited.
pub(crate) async fn limit(
    State(limits): State<RequestLimits>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| {
            let peer = info.0.ip().to_canonical();
            limits.proxies.client_ip(peer, request.headers())
        });
    if let Some(ip) = client
        && let Err(wait) = limits.limiters.request(ip)
    {
        debug!(%ip, path = %request.uri().path(), "over the request limit");
        return Failure::rate_limited(wait).into_response();
    }
    request
        .extensions_mut()
        .insert(IpShare::new(Arc::clone(&limits.limiters), client));
    next.run(request).await
}
