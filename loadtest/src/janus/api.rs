//! One request to Janus' HTTP REST API ([`post`]) and the readers of its answers (success
//! ids, expected fields, JSEP); never keeps session state nor routes events.

use std::time::Duration;

use serde_json::Value;

use super::error::{JanusError, protocol};

/// How long a request, or the asynchronous answer to one, may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The Janus plugin every handle attaches to.
pub(super) const VIDEOROOM: &str = "janus.plugin.videoroom";

/// POSTs a Janus API request and returns its JSON answer; a Janus `error` answer is a
/// [`JanusError::Janus`].
pub(super) async fn post(
    http: &reqwest::Client,
    url: &str,
    body: Value,
    request: &str,
    timeout: Duration,
) -> Result<Value, JanusError> {
    let exchange =
        async {
            let response = http.post(url).json(&body).send().await.map_err(|source| {
                JanusError::Unreachable {
                    url: url.to_owned(),
                    source,
                }
            })?;
            let status = response.status();
            if !status.is_success() {
                return Err(JanusError::Http {
                    url: url.to_owned(),
                    status: status.as_u16(),
                });
            }
            response
                .json::<Value>()
                .await
                .map_err(|e| JanusError::Protocol {
                    request: request.to_owned(),
                    detail: format!("unreadable answer: {e}"),
                })
        };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| JanusError::Timeout {
            what: format!("Janus' answer to {request} at {url}"),
            after: timeout,
        })??;
    if answer.get("janus").and_then(Value::as_str) == Some("error") {
        return Err(JanusError::Janus {
            request: request.to_owned(),
            code: answer
                .pointer("/error/code")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            reason: answer
                .pointer("/error/reason")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    Ok(answer)
}

pub(super) fn expect_success(answer: &Value, request: &str) -> Result<(), JanusError> {
    match answer.get("janus").and_then(Value::as_str) {
        Some("success") => Ok(()),
        _ => Err(protocol(request, "no success", answer)),
    }
}

/// The `data.id` of a `success` answer (a new session or handle).
pub(super) fn success_id(answer: &Value, request: &str) -> Result<u64, JanusError> {
    expect_success(answer, request)?;
    answer
        .pointer("/data/id")
        .and_then(Value::as_u64)
        .ok_or_else(|| protocol(request, "no data.id", answer))
}

pub(super) fn expect_field(
    data: &Value,
    field: &str,
    want: &str,
    request: &str,
) -> Result<(), JanusError> {
    match data.get(field).and_then(Value::as_str) {
        Some(value) if value == want => Ok(()),
        _ => Err(protocol(
            request,
            &format!("no \"{field}\": \"{want}\""),
            data,
        )),
    }
}

pub(super) fn jsep_sdp(
    jsep: Option<&Value>,
    kind: &str,
    request: &str,
) -> Result<String, JanusError> {
    let jsep = jsep.ok_or_else(|| JanusError::Protocol {
        request: request.to_owned(),
        detail: format!("no jsep {kind}"),
    })?;
    if jsep.get("type").and_then(Value::as_str) != Some(kind) {
        return Err(protocol(request, &format!("jsep is not an {kind}"), jsep));
    }
    jsep.get("sdp")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| protocol(request, "jsep without sdp", jsep))
}

pub(super) fn str_field(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
