//! Who gets into the admin API and what it refuses, with a real HTTP client: the token attack
//! table (each forged, expired or misplaced token gets its exact status), the slow-down after
//! repeated failures (per client behind a trusted proxy, never for a valid token), dev tokens
//! for this machine only, recording requests that fail before any recorder runs, and the
//! recordings file route, which serves nothing outside its folder.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::Grants;
use serde_json::{Value, json};
use switchyard_tests::admin::{
    Api, KEY, SECRET, admin_grants, admin_token, claims, error_code, hs256, jwt, now, room_detail,
    server,
};
use switchyard_tests::{Server, start_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_attack_table_gets_the_exact_status() {
    let server = server(1000).await;
    let mut api = Api::new(&server);
    let hs256_header = json!({"alg": "HS256", "typ": "JWT"});
    let valid = claims("", admin_grants(), None);
    let mut tampered_token = hs256(&claims("", Grants::default(), None));
    {
        // Flip the payload to one with roomAdmin, keeping the old signature.
        let mut parts: Vec<String> = tampered_token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(valid.to_string());
        tampered_token = parts.join(".");
    }
    let mut no_exp = valid.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut expired = valid.clone();
    expired["exp"] = json!(now() - 120);
    let mut within_leeway = valid.clone();
    within_leeway["exp"] = json!(now() - 20);
    let mut future_nbf = valid.clone();
    future_nbf["nbf"] = json!(now() + 300);
    let mut wrong_issuer = valid.clone();
    wrong_issuer["iss"] = json!("APIsomeoneelse");
    let table: Vec<(&str, Option<String>, u16)> = vec![
        ("valid admin token", Some(hs256(&valid)), 200),
        ("no Authorization header", None, 401),
        (
            "alg none, no signature",
            Some(jwt(json!({"alg": "none", "typ": "JWT"}), &valid, None)),
            401,
        ),
        (
            "RS256 header",
            Some(jwt(
                json!({"alg": "RS256", "typ": "JWT"}),
                &valid,
                Some(SECRET.as_bytes()),
            )),
            401,
        ),
        (
            "HS512 with the right secret",
            Some(jwt(
                json!({"alg": "HS512", "typ": "JWT"}),
                &valid,
                Some(SECRET.as_bytes()),
            )),
            401,
        ),
        (
            "signed with another secret",
            Some(jwt(
                hs256_header.clone(),
                &valid,
                Some(b"not-the-secret-at-all-not-the-secret"),
            )),
            401,
        ),
        ("missing exp", Some(hs256(&no_exp)), 401),
        ("expired beyond the leeway", Some(hs256(&expired)), 401),
        (
            "expired within the 60 s leeway",
            Some(hs256(&within_leeway)),
            200,
        ),
        ("nbf in the future", Some(hs256(&future_nbf)), 401),
        ("wrong issuer", Some(hs256(&wrong_issuer)), 401),
        ("tampered claims", Some(tampered_token), 401),
        ("not a JWT", Some("hello".into()), 401),
        (
            "participant token (no roomAdmin)",
            Some(hs256(&claims("demo", Grants::default(), None))),
            403,
        ),
        (
            "admin token for one room, listing all",
            Some(hs256(&claims("demo", admin_grants(), None))),
            403,
        ),
    ];
    let mut report = Vec::new();
    for (label, token, expected) in &table {
        let (status, body) = api
            .call("GET", "/api/rooms", "/api/rooms", token.as_deref(), None)
            .await;
        report.push(format!("{label}: {status} {}", error_code(&body)));
        assert_eq!(status, *expected, "{label}: {body}");
        if *expected != 200 {
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                !message.is_empty(),
                "{label}: error bodies carry a message: {body}"
            );
        }
    }
    println!("{report:#?}");
    // A Basic header is not a bearer token.
    let response = reqwest::Client::new()
        .get(format!("http://{}/api/rooms", server.http_addr))
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    // A room-scoped admin token works for its room and nowhere else.
    let scoped = hs256(&claims("demo", admin_grants(), None));
    let (status, _) = api
        .call(
            "GET",
            "/api/rooms/{room}",
            "/api/rooms/demo",
            Some(&scoped),
            None,
        )
        .await;
    assert_eq!(status, 404, "its own room (not open yet)");
    let (status, _) = api
        .call(
            "GET",
            "/api/rooms/{room}",
            "/api/rooms/other",
            Some(&scoped),
            None,
        )
        .await;
    assert_eq!(status, 403);
    // A body over 1 MiB: 413, as JSON.
    let big = json!({"name": "x".repeat(1_100_000)});
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms",
            "/api/rooms",
            Some(&admin_token()),
            Some(big),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(error_code(&body), "too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_are_slowed_down() {
    let server = server(5).await;
    let mut api = Api::new(&server);
    for _ in 0..5 {
        let (status, _) = api
            .call("GET", "/api/rooms", "/api/rooms", Some("bad"), None)
            .await;
        assert_eq!(status, 401);
    }
    let rooms = |token: &str| {
        reqwest::Client::new()
            .get(format!("http://{}/api/rooms", server.http_addr))
            .bearer_auth(token)
            .send()
    };
    let response = rooms("bad").await.unwrap();
    assert_eq!(
        response.status().as_u16(),
        429,
        "a sixth bad token is slowed down"
    );
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "slow_down");
    // The slow-down only answers requests that fail anyway: a valid token still gets in.
    let response = rooms(&admin_token()).await.unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "a valid token is never locked out"
    );
}

/// Behind a reverse proxy every request comes from the proxy's address. With the proxy listed
/// in `trusted_proxies`, the client named in `X-Forwarded-For` is the one slowed down, and the
/// header from anyone else is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_one_client_cannot_lock_out_another() {
    let proxied = start_server(Some([127, 0, 0, 1].into()), |config| {
        config.credentials = Some((KEY.into(), SECRET.into()));
        config.max_auth_failures = 10;
        config.trusted_proxies =
            signaling::client_ip::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let http = reqwest::Client::new();
    let rooms = |client: &str, token: &str| {
        http.get(format!("http://{}/api/rooms", proxied.http_addr))
            .header("x-forwarded-for", client)
            .bearer_auth(token)
            .send()
    };
    let status = |response: reqwest::Response| response.status().as_u16();
    // The guesser, behind the proxy, fails ten times and is then slowed down.
    for attempt in 1..=10 {
        let got = status(rooms("203.0.113.66", "bad").await.unwrap());
        assert_eq!(got, 401, "bad token {attempt}");
    }
    assert_eq!(status(rooms("203.0.113.66", "bad").await.unwrap()), 429);
    // Another client behind the same proxy: its mistakes are its own, and its valid token works.
    assert_eq!(status(rooms("198.51.100.7", "bad").await.unwrap()), 401);
    assert_eq!(
        status(rooms("198.51.100.7", &admin_token()).await.unwrap()),
        200
    );
    // The guesser's valid token works too: the lockout never refuses a valid token.
    assert_eq!(
        status(rooms("203.0.113.66", &admin_token()).await.unwrap()),
        200
    );

    // Without trusted proxies the header means nothing: a client cannot pick a fresh address
    // for each guess.
    let direct = server(3).await;
    let http = reqwest::Client::new();
    for n in 0..3 {
        let got = http
            .get(format!("http://{}/api/rooms", direct.http_addr))
            .header("x-forwarded-for", format!("192.0.2.{n}"))
            .bearer_auth("bad")
            .send()
            .await
            .unwrap();
        assert_eq!(got.status().as_u16(), 401);
    }
    let got = http
        .get(format!("http://{}/api/rooms", direct.http_addr))
        .header("x-forwarded-for", "192.0.2.200")
        .bearer_auth("bad")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.status().as_u16(),
        429,
        "X-Forwarded-For from a non-proxy counted"
    );
}

/// In dev mode the token endpoints answer this machine only: the same server, reached over a
/// non-loopback address of this machine, refuses them; `--insecure-dev` opens them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_tokens_are_for_this_machine_only() {
    let lan = if_addrs::get_if_addrs()
        .expect("interfaces")
        .into_iter()
        .map(|i| i.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        .expect("this machine has a non-loopback IPv4 address to test from");
    for open in [false, true] {
        let server = start_server(Some([127, 0, 0, 1].into()), |config| {
            config.credentials = None;
            config.http_bind = std::net::SocketAddr::new(lan, 0);
            config.insecure_dev = open;
        })
        .await;
        let port = server.http_addr.port();
        let http = reqwest::Client::new();
        for path in ["/api/dev-token?room=lan", "/api/dev-admin-token"] {
            let response = http
                .get(format!("http://{lan}:{port}{path}"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if open {
                assert_eq!(status, 200, "{path} with --insecure-dev: {body}");
            } else {
                assert_eq!(status, 403, "{path} from {lan}: {body}");
                assert_eq!(body["code"], "dev_mode_local_only", "{body}");
                let message = body["message"].as_str().unwrap_or_default();
                assert!(message.contains("--insecure-dev"), "{message}");
            }
        }
    }
    // From loopback, dev tokens are served as before.
    let server = start_server(Some([127, 0, 0, 1].into()), |config| {
        config.credentials = None;
    })
    .await;
    let response = reqwest::get(format!(
        "http://{}/api/dev-token?room=local",
        server.http_addr
    ))
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// Sends one raw HTTP/1.1 GET (no client-side path normalisation) and returns the status.
async fn raw_get_status(server: &Server, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.http_addr)
        .await
        .unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_requests_that_need_no_recorder_get_the_exact_error() {
    let missing = switchyard_tests::scratch_dir("no-recorder").join("switchyard-recorder");
    let server = start_server(Some([127, 0, 0, 1].into()), |config| {
        config.credentials = Some((KEY.into(), SECRET.into()));
        config.recorder = Some(missing.clone());
    })
    .await;
    let mut api = Api::new(&server);
    let admin = admin_token();

    // No token: 401, before anything else.
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms/{room}/recording",
            "/api/rooms/taped/recording",
            None,
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"), "{body}");
    let (status, _) = api
        .call("GET", "/api/recordings", "/api/recordings", None, None)
        .await;
    assert_eq!(status, 401);

    // A room that is not open: 404.
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms/{room}/recording",
            "/api/rooms/taped/recording",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");

    // An open room, but the configured recorder does not exist: 503 naming it.
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms",
            "/api/rooms",
            Some(&admin),
            Some(json!({"name": "taped"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms/{room}/recording",
            "/api/rooms/taped/recording",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (503, "recorder_unavailable"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    println!("503 message: {message}");
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("cargo build --release -p switchyard-recorder"),
        "{message}"
    );
    // Nothing was started or written.
    let (status, body) = api
        .call(
            "GET",
            "/api/recordings",
            "/api/recordings",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((status, body), (200, json!({"recordings": []})));
    assert!(!server.recordings().dir().exists());
    let detail = room_detail(&mut api, "taped").await;
    assert!(detail.recording.is_none() && detail.summary.recording_state.is_none());

    // Nothing to stop: 404 no_recording. Another room's admin: 403.
    let (status, body) = api
        .call(
            "DELETE",
            "/api/rooms/{room}/recording",
            "/api/rooms/taped/recording",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "no_recording"), "{body}");
    let other_admin = hs256(&claims("elsewhere", admin_grants(), None));
    let (status, body) = api
        .call(
            "POST",
            "/api/rooms/{room}/recording",
            "/api/rooms/taped/recording",
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");

    // Files: served from the recordings folder with their types, and nothing outside it.
    let dir = server.recordings().dir().to_path_buf();
    let id = "20261127-220000-abcdefghij012345";
    std::fs::create_dir_all(dir.join(id)).unwrap();
    std::fs::write(dir.join(id).join("playlist.m3u8"), "#EXTM3U\n").unwrap();
    std::fs::write(dir.join(id).join("seg_00001.m4s"), [0u8; 16]).unwrap();
    std::fs::write(dir.join("secret.json"), "{}").unwrap();
    std::fs::write(dir.join(id).join(".hidden"), "x").unwrap();
    let base = format!("http://{}", server.http_addr);
    let playlist = reqwest::get(format!("{base}/recordings/{id}/playlist.m3u8"))
        .await
        .unwrap();
    assert_eq!(playlist.status().as_u16(), 200);
    assert_eq!(
        playlist.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(playlist.headers()["cache-control"], "no-cache");
    assert_eq!(playlist.text().await.unwrap(), "#EXTM3U\n");
    let segment = reqwest::get(format!("{base}/recordings/{id}/seg_00001.m4s"))
        .await
        .unwrap();
    assert_eq!(segment.status().as_u16(), 200);
    assert_eq!(segment.headers()["content-type"], "video/iso.segment");
    assert_eq!(segment.bytes().await.unwrap().len(), 16);
    for path in [
        format!("/recordings/{id}/missing.m4s"),
        format!("/recordings/{id}/.hidden"),
        format!("/recordings/{id}/..%2Fsecret.json"),
        format!("/recordings/{id}/%2E%2E%2Fsecret.json"),
        "/recordings/../secret.json".to_owned(),
        "/recordings/..%2F..%2Fetc/passwd".to_owned(),
        "/recordings/%2E%2E/secret.json".to_owned(),
        format!("/recordings/{id}%2F..%2F/secret.json"),
        "/recordings/x/playlist%20.m3u8".to_owned(),
    ] {
        assert_eq!(raw_get_status(&server, &path).await, 404, "{path}");
    }
    assert_eq!(
        raw_get_status(&server, &format!("/recordings/{id}/playlist.m3u8")).await,
        200
    );
}
