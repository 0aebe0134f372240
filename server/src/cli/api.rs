//! [`Api`]: a client of one running server's admin REST API (`docs/admin-api.md`), with a
//! bearer admin token, turning its errors into one-line messages. It prints nothing. It never
//! speaks https: an https `--url` is refused with a message.

use std::time::Duration;

use anyhow::{Context, bail};
use protocol::Grants;
use protocol::admin::ApiError;
use reqwest::{Method, Url};
use serde::Serialize;
use signaling::TokenAuthority;

use crate::cli::args::{ApiArgs, DEFAULT_URL};
use crate::cli::print::clean;

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
}

impl Api {
    /// `authority` is asked only when there is no --token.
    pub(super) fn new(
        args: &ApiArgs,
        authority: impl FnOnce() -> anyhow::Result<TokenAuthority>,
    ) -> anyhow::Result<Api> {
        let shown = args.url.trim().trim_end_matches('/').to_owned();
        let base = Url::parse(&shown).with_context(|| {
            format!(
                "--url {shown:?} is not a URL; give the server's address, such as {DEFAULT_URL}"
            )
        })?;
        match base.scheme() {
            "http" => {}
            "https" => bail!(
                "--url {shown}: this build speaks plain http only; use the server's http:// \
                 address (it serves http on http_bind)"
            ),
            other => bail!("--url {shown}: the scheme must be http, not {other:?}"),
        }
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
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("switchyard-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Api {
            client,
            shown,
            base,
            token,
            json: args.json,
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
        let mut request = self
            .client
            .request(method, self.endpoint(segments)?)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => bail!(
                "the Switchyard server at {} did not answer within {} s",
                self.shown,
                REQUEST_TIMEOUT.as_secs()
            ),
            Err(e) => bail!(
                "cannot reach the Switchyard server at {}: {}",
                self.shown,
                root_cause(&e)
            ),
        };
        let status = response.status();
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
        };
        assert_eq!(
            api.endpoint(&["rooms", "a b/c"]).unwrap().as_str(),
            "http://h:1/base/api/rooms/a%20b%2Fc"
        );
        assert!(api.endpoint(&["rooms", ".."]).is_err());
    }
}
