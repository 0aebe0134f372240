//! The admin API's test kit: tokens (valid, forged and everything between) for a server with a
//! known key and secret, an HTTP client that records the routes it called (to compare with the
//! OpenAPI document), and Rust participants. Helpers only: the tests decide what each route
//! must answer. Admin tokens are signed here by hand, never minted by the server under test.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use client::{Client, ClientEvent};
use protocol::admin::RoomDetail;
use protocol::{Claims, Grants, ServerMessage};
use serde_json::{Value, json};
use switchyard::Server;

use crate::server::{start_server, ws_url};

/// The API key (JWT issuer) of the servers these tests start.
pub const KEY: &str = "APIadmintest";
/// The signing secret that goes with [`KEY`].
pub const SECRET: &str = "an-admin-test-secret-that-is-long-enough";
/// How long a participant waits for a message.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server on 127.0.0.1 with [`KEY`] and [`SECRET`], slowing down after
/// `max_auth_failures` failed authentications.
pub async fn server(max_auth_failures: u32) -> Server {
    start_server(Some([127, 0, 0, 1].into()), |config| {
        config.credentials = Some((KEY.into(), SECRET.into()));
        config.max_auth_failures = max_auth_failures;
    })
    .await
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Grants with `roomAdmin`.
pub fn admin_grants() -> Grants {
    Grants {
        room_admin: true,
        ..Grants::default()
    }
}

/// Claims issued by [`KEY`] to "ops" for `room` ("" = every room), expiring at `exp` or in
/// ten minutes.
pub fn claims(room: &str, grants: Grants, exp: Option<u64>) -> Value {
    let mut value = serde_json::to_value(Claims {
        iss: KEY.into(),
        sub: "ops".into(),
        name: "Ops".into(),
        room: room.into(),
        exp: exp.unwrap_or(now() + 600),
        nbf: None,
        grants,
    })
    .unwrap();
    if exp.is_none() && value["exp"].as_u64() == Some(0) {
        value.as_object_mut().unwrap().remove("exp");
    }
    value
}

/// A JWT with any header and claims, signed with `alg` (HS256/HS512) and `secret`, or unsigned.
pub fn jwt(header: Value, claims: &Value, secret: Option<&[u8]>) -> String {
    use hmac::{Hmac, Mac};
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match (secret, header["alg"].as_str()) {
        (Some(secret), Some("HS512")) => {
            let mut mac = Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        (Some(secret), _) => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        (None, _) => String::new(),
    };
    format!("{signing_input}.{signature}")
}

/// `claims` signed with HS256 and [`SECRET`].
pub fn hs256(claims: &Value) -> String {
    jwt(
        json!({"alg": "HS256", "typ": "JWT"}),
        claims,
        Some(SECRET.as_bytes()),
    )
}

/// A valid admin token for every room.
pub fn admin_token() -> String {
    hs256(&claims("", admin_grants(), None))
}

/// An HTTP client for the admin API that remembers which routes it called.
pub struct Api {
    http: reqwest::Client,
    base: String,
    /// (method, path template) of every call made, to check against the OpenAPI document.
    pub exercised: BTreeSet<(String, String)>,
}

impl Api {
    pub fn new(server: &Server) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{}", server.http_addr),
            exercised: BTreeSet::new(),
        }
    }

    /// Calls `method path` with an optional bearer token and JSON body; returns status, body.
    pub async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.exercised
            .insert((method.to_lowercase(), template.to_owned()));
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }
}

/// The `error.code` of an error body.
pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// A Rust participant joined to `room` with both data channels open, publishing audio and
/// video if `publish`.
pub async fn participant(server: &Server, identity: &str, room: &str, publish: bool) -> Client {
    let mut c = Client::connect(&ws_url(server)).await.expect("connect");
    let token = server.token(identity, room, Grants::default());
    c.join(room, &token);
    c.wait_message(WAIT, |m| {
        matches!(m, ServerMessage::Joined { .. }).then_some(())
    })
    .await
    .expect("joined");
    c.open_data_channels();
    let mut open = 0;
    c.wait_for(WAIT, |e| {
        open += usize::from(matches!(e, ClientEvent::DataOpen { .. }));
        (open == 2).then_some(())
    })
    .await
    .expect("data channels open");
    if publish {
        c.publish(true, true);
    }
    c
}

/// `GET /api/rooms/{room}` with an admin token; it must answer 200.
pub async fn room_detail(api: &mut Api, room: &str) -> RoomDetail {
    let (status, body) = api
        .call(
            "GET",
            "/api/rooms/{room}",
            &format!("/api/rooms/{room}"),
            Some(&admin_token()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("a RoomDetail")
}
