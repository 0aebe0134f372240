//! The plain-HTTP listener's job once HTTPS is on: a 308 redirect of every request to the
//! same host, path and query over HTTPS, except ACME HTTP-01 challenges, which it answers. It
//! never serves the app, the API or WebSockets.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::challenges::Challenges;

#[derive(Clone)]
struct Target {
    https_port: u16,
    challenges: Arc<Challenges>,
}

/// The router for the plain-HTTP listener: challenges answered, everything else redirected to
/// HTTPS on `https_port`.
pub fn router(https_port: u16, challenges: Arc<Challenges>) -> Router {
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(challenge))
        .fallback(redirect)
        .with_state(Target {
            https_port,
            challenges,
        })
}

async fn challenge(State(target): State<Target>, Path(token): Path<String>) -> Response {
    match target.challenges.answer(&token) {
        Some(answer) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], answer).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such ACME challenge\n").into_response(),
    }
}

async fn redirect(State(target): State<Target>, headers: HeaderMap, uri: Uri) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    match host.and_then(|h| https_url(h, target.https_port, &uri)) {
        Some(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
            "This server speaks HTTPS: follow the redirect.\n",
        )
            .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            "This server speaks HTTPS; send a Host header, or open https:// directly.\n",
        )
            .into_response(),
    }
}

/// `https://<host of the Host header>:<https_port><path and query>`, the port left out when it
/// is 443; `None` when the Host header is not a host name or address.
fn https_url(host_header: &str, https_port: u16, uri: &Uri) -> Option<String> {
    let authority: axum::http::uri::Authority = host_header.parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host();
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("https://{host}{port}{path}");
    url.parse::<Uri>().ok().map(|_| url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_keeps_host_path_and_query() {
        let uri: Uri = "/room/a?name=Bo%20b&x=1".parse().unwrap();
        assert_eq!(
            https_url("192.0.2.2:8080", 8443, &uri).as_deref(),
            Some("https://192.0.2.2:8443/room/a?name=Bo%20b&x=1")
        );
        assert_eq!(
            https_url("call.example.com", 443, &"/".parse().unwrap()).as_deref(),
            Some("https://call.example.com/")
        );
        assert_eq!(
            https_url("[::1]:8080", 8443, &"/x".parse().unwrap()).as_deref(),
            Some("https://[::1]:8443/x")
        );
        assert_eq!(https_url("evil@host", 8443, &uri), None);
        assert_eq!(https_url("a b", 8443, &uri), None);
    }
}
