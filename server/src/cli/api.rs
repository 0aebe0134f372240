//! [`Api`]: a client of one running server's admin REST API (`docs/admin-api.md`), with a
//! bearer admin token, over http or https (following a server's redirect from http to https on
//! the same host), turning its errors into one-line messages. It prints nothing. It never sends
//! the token to another host: other redirects are reported, not followed.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use protocol::Grants;
use protocol::admin::ApiError;
use reqwest::header::LOCATION;
use reqwest::{Method, Response, StatusCode, Url};
use serde::Serialize;
use signaling::TokenAuthority;

use crate::cli::args::{ApiArgs, DEFAULT_URL};
use crate::cli::print::clean;
use crate::cli::tls_failure;
use crate::cli::trust::Trust;

/// Lifetime of the admin token minted for one API call.
const CALL_TOKEN_TTL_SECS: u64 = 300;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one server's admin API.
pub(super) struct Api {
    client: reqwest::Client,
    /// As the user gave it, for messages.
    shown: String,
    base: Url,
    token: String,
    /// `--json`: print the server's JSON as it came.
    pub(super) json: bool,
    /// The certificates trusted besides the public roots, for advice when one is not.
    trust: Trust,
}

impl Api {
    /// `authority` is asked only when there is no --token; `tls_dir` is the TLS folder given
    /// before the command (or by `SWITCHYARD_TLS_DIR`), used when the command has no --tls-dir.
    pub(super) fn new(
        args: &ApiArgs,
        tls_dir: Option<&Path>,
        authority: impl FnOnce() -> anyhow::Result<TokenAuthority>,
    ) -> anyhow::Result<Api> {
        let shown = args.url.trim().trim_end_matches('/').to_owned();
        let base = Url::parse(&shown).with_context(|| {
            format!(
                "--url {shown:?} is not a URL; give the server's address, such as {DEFAULT_URL}"
            )
        })?;
        match base.scheme() {
            "http" | "https" => {}
            other => bail!("--url {shown}: the scheme must be http or https, not {other:?}"),
        }
        let trust = Trust::resolve(args.ca.as_deref(), args.tls_dir.as_deref().or(tls_dir))?;
        let token = match &args.token {
            Some(token) if !token.trim().is_empty() => token.trim().to_owned(),
            Some(_) => bail!("--token (or SWITCHYARD_TOKEN) is empty"),
            None => {
                let grants = Grants {
                    room_admin: true,
                    ..Grants::default()
                };
                authority()?.mint(
                    "cli-admin",
                    "Switchyard CLI",
                    "",
                    grants,
                    CALL_TOKEN_TTL_SECS,
                )
            }
        };
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchyard-cli/", env!("CARGO_PKG_VERSION")));
        for root in &trust.roots {
            let root = reqwest::Certificate::from_der(root)
                .context("cannot use a certificate to trust")?;
            builder = builder.add_root_certificate(root);
        }
        let client = builder.build().context("cannot set up the HTTP client")?;
        Ok(Api {
            client,
            shown,
            base,
            token,
            json: args.json,
            trust,
        })
    }

    /// `/api/` and the segments, each percent-encoded, under the base URL's path.
    fn endpoint(&self, segments: &[&str]) -> anyhow::Result<Url> {
        if let Some(bad) = segments.iter().find(|s| matches!(**s, "" | "." | "..")) {
            bail!("{bad:?} cannot be used as a name in a URL path");
        }
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("--url {} cannot take a path", self.shown))?
            .pop_if_empty()
            .push("api")
            .extend(segments);
        Ok(url)
    }

    /// Sends one request; the answer's body on success, the server's message otherwise.
    pub(super) async fn call<B: Serialize>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> anyhow::Result<String> {
        let url = self.endpoint(segments)?;
        let mut response = self.send(&method, &url, body, &self.shown).await?;
        if let Some(upgraded) = https_upgrade(&response, &method, &url) {
            let at = format!("{} (redirected to {})", self.shown, origin(&upgraded));
            response = self.send(&method, &upgraded, body, &at).await?;
        }
        let status = response.status();
        if status.is_redirection() {
            let to = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .map_or_else(|| "nowhere".to_owned(), clean);
            bail!(
                "{} answered {status} with a redirect to {to}; this CLI follows only a redirect \
                 from http to https on the same host: give --url the address of the Switchyard \
                 server itself",
                self.shown
            );
        }
        let text = response.text().await.map_err(|e| {
            anyhow::anyhow!(
                "the answer from the Switchyard server at {} broke off: {}",
                self.shown,
                root_cause(&e)
            )
        })?;
        if status.is_success() {
            return Ok(text);
        }
        match serde_json::from_str::<ApiError>(&text) {
            Ok(error) => bail!("{} ({status})", clean(&error.error.message)),
            Err(_) => bail!(
                "{} answered {status}, not as the Switchyard admin API does; is --url the \
                 server's HTTP address?",
                self.shown
            ),
        }
    }

    /// Sends one request to `url` with the admin token; `at` names the server in errors.
    async fn send<B: Serialize>(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&B>,
        at: &str,
    ) -> anyhow::Result<Response> {
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(response) => Ok(response),
            Err(e) if e.is_timeout() => bail!(
                "the Switchyard server at {at} did not answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            ),
            Err(e) => {
                let host = url.host_str().unwrap_or_default();
                match tls_failure::explain(&e, at, host, &self.trust) {
                    Some(message) => bail!("{message}"),
                    None => bail!(
                        "cannot reach the Switchyard server at {at}: {}",
                        root_cause(&e)
                    ),
                }
            }
        }
    }

    /// `text` as the API type `T`, or why this CLI cannot read it.
    pub(super) fn parse<T: serde::de::DeserializeOwned>(&self, text: &str) -> anyhow::Result<T> {
        serde_json::from_str(text).with_context(|| {
            format!(
                "the answer from {} is not what this version of the CLI expects (--json \
                 prints it as it came)",
                self.shown
            )
        })
    }
}

/// Where a redirect from `url` to https on the same host leads; `None` for any other answer
/// (a redirect elsewhere is reported, never followed: it would carry the admin token away).
/// 307 and 308 keep the method and body; 301, 302 and 303 are followed for GET only.
fn https_upgrade(response: &Response, method: &Method, url: &Url) -> Option<Url> {
    let keeps_method = matches!(
        response.status(),
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
    );
    let get_only = matches!(
        response.status(),
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER
    );
    if !(keeps_method || get_only && *method == Method::GET) {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    let next = url.join(location).ok()?;
    let upgrade = url.scheme() == "http"
        && next.scheme() == "https"
        && next.host() == url.host()
        && next.username().is_empty()
        && next.password().is_none();
    upgrade.then_some(next)
}

/// `https://host:port` of a URL, for messages.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// The innermost error's message: "Connection refused (os error 111)" rather than the
/// layers of client wrapping around it.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_encode_their_segments() {
        let api = Api {
            client: reqwest::Client::new(),
            shown: "http://h:1/base".into(),
            base: Url::parse("http://h:1/base/?q=1").unwrap(),
            token: String::new(),
            json: false,
            trust: Trust::resolve(None, Some(Path::new("/nonexistent"))).unwrap(),
        };
        assert_eq!(
            api.endpoint(&["rooms", "a b/c"]).unwrap().as_str(),
            "http://h:1/base/api/rooms/a%20b%2Fc"
        );
        assert!(api.endpoint(&["rooms", ".."]).is_err());
    }

    fn redirect(status: u16, location: &str) -> Response {
        axum::http::Response::builder()
            .status(status)
            .header(LOCATION, location)
            .body("")
            .unwrap()
            .into()
    }

    #[test]
    fn only_an_upgrade_to_https_on_the_same_host_is_followed() {
        let url = Url::parse("http://127.0.0.1:8080/api/rooms").unwrap();
        let upgrade = |status, location, method: &Method| {
            https_upgrade(&redirect(status, location), method, &url).map(String::from)
        };
        let to = "https://127.0.0.1:8443/api/rooms";
        assert_eq!(upgrade(308, to, &Method::POST).as_deref(), Some(to));
        assert_eq!(upgrade(301, to, &Method::GET).as_deref(), Some(to));
        assert_eq!(
            upgrade(301, to, &Method::DELETE),
            None,
            "would become a GET"
        );
        assert_eq!(
            upgrade(308, "https://192.0.2.2:8443/api/rooms", &Method::GET),
            None
        );
        assert_eq!(
            upgrade(308, "http://127.0.0.1:9090/api/rooms", &Method::GET),
            None
        );
        assert_eq!(
            upgrade(308, "https://u:p@127.0.0.1:8443/", &Method::GET),
            None
        );
        assert_eq!(upgrade(200, to, &Method::GET), None);
        let https = Url::parse(to).unwrap();
        let again = https_upgrade(&redirect(308, to), &Method::GET, &https);
        assert_eq!(again, None, "only from http");
        assert_eq!(origin(&https), "https://127.0.0.1:8443");
    }
}
