//! The admin CLI: the real binary's subcommands against the real binary running as a server.
//! Tokens minted locally, rooms created, listed, shown (tables and JSON) and closed, a
//! participant's track muted and the participant removed, the same over HTTPS (a self-signed
//! certificate, trusted with --ca or found in the TLS folder, and the http redirect), and the
//! failures: a closed room, a bad token, an untrusted certificate, an unreachable server, and no
//! credentials.

use std::process::{Output, Stdio};
use std::time::Duration;

use client::Client;
use protocol::{CloseReason, ServerMessage};
use tokio::io::{AsyncBufReadExt, BufReader};

const KEY: &str = "APIcli";
const SECRET: &str = "a-cli-test-secret-that-is-long-enough-42";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `switchyard ARGS` with no `SWITCHYARD_*` settings but `env`.
async fn switchyard(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    for (name, _) in std::env::vars() {
        if name.starts_with("SWITCHYARD_") {
            command.env_remove(name);
        }
    }
    let output = command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the command finishes")
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

#[track_caller]
fn assert_fails_with(output: &Output, message: &str) {
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(output));
    assert!(
        stderr(output).contains(message),
        "stderr should say {message:?}: {}",
        stderr(output)
    );
    assert!(!stderr(output).contains("panicked"), "{}", stderr(output));
}

/// A new empty folder under the temporary directory.
fn scratch_dir(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sy-cli-test-{label}-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The real binary serving on free ports with [`KEY`] and [`SECRET`] and `extra` flags;
/// killed on drop. The URL is its plain-HTTP address.
async fn start_server(extra: &[&str]) -> (tokio::process::Child, String) {
    let http_port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--http-bind", &format!("127.0.0.1:{http_port}")])
        .args(extra)
        .args(["--rtc-port", &free_port().to_string()])
        .args(["--turn-port", &free_port().to_string()])
        .args(["--announce-ip", "127.0.0.1"])
        .args(["--api-key", KEY, "--api-secret", SECRET])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the switchyard binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("server prints its banner")
            .unwrap()
            .expect("server still running");
        if line.contains("Switchyard is up") {
            break;
        }
    }
    // Keep reading so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://127.0.0.1:{http_port}"))
}

#[tokio::test]
async fn admin_commands_against_a_running_server() {
    let (_server, url) = start_server(&[]).await;
    let creds = [
        ("SWITCHYARD_API_KEY", KEY),
        ("SWITCHYARD_API_SECRET", SECRET),
    ];
    let with_url = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(["--url".into(), url.clone()]);
        v
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        switchyard(&args, &creds).await
    };

    // `token --admin` prints only a JWT that this server's key and secret verify.
    let out = switchyard(
        &["token", "--admin", "--api-key", KEY, "--api-secret", SECRET],
        &[],
    )
    .await;
    assert_ok(&out);
    let token = stdout(&out).trim_end().to_owned();
    assert_eq!(stdout(&out), format!("{token}\n"), "nothing but the token");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let claims = signaling::TokenAuthority::new(KEY, SECRET)
        .verify(&token)
        .expect("the token verifies");
    assert!(claims.grants.room_admin);
    assert!(claims.room.is_empty(), "every room");

    // Create, then list.
    let out = run(with_url(&[
        "rooms",
        "create",
        "demo",
        "--max-participants",
        "3",
    ]))
    .await;
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Created room demo"),
        "{}",
        stdout(&out)
    );
    let out = run(with_url(&["rooms", "list"])).await;
    assert_ok(&out);
    let list = stdout(&out);
    assert!(list.starts_with("NAME"), "a table: {list}");
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().next() == Some("demo")),
        "{list}"
    );
    // The same with the admin token minted above, given through SWITCHYARD_TOKEN.
    let out = switchyard(
        &["rooms", "list", "--json"],
        &[("SWITCHYARD_URL", &url), ("SWITCHYARD_TOKEN", &token)],
    )
    .await;
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(json["rooms"][0]["name"], "demo");

    // Show as JSON.
    let out = run(with_url(&["rooms", "show", "demo", "--json"])).await;
    assert_ok(&out);
    let detail: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(detail["settings"]["maxParticipants"], 3);
    assert_eq!(detail["participants"], serde_json::json!([]));

    // A participant who publishes video, with a token from `switchyard token`.
    let out = run(vec![
        "token".into(),
        "--identity".into(),
        "alice".into(),
        "--room".into(),
        "demo".into(),
        "--name".into(),
        "Alice".into(),
    ])
    .await;
    assert_ok(&out);
    let ws = url.replacen("http://", "ws://", 1) + "/ws";
    let mut alice = Client::connect(&ws).await.unwrap();
    alice.join("demo", stdout(&out).trim());
    alice
        .wait_message(Duration::from_secs(10), |m| {
            matches!(m, ServerMessage::Joined { .. }).then_some(())
        })
        .await
        .expect("alice joined");
    alice.publish(false, true);
    let track = {
        let mut found = None;
        for _ in 0..100 {
            let out = run(with_url(&["rooms", "show", "demo", "--json"])).await;
            assert_ok(&out);
            let detail: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            if let Some(id) = detail["participants"][0]["tracks"][0]["id"].as_str() {
                found = Some(id.to_owned());
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        found.expect("alice's track shows up")
    };
    let out = run(with_url(&["rooms", "show", "demo"])).await;
    assert_ok(&out);
    let table = stdout(&out);
    for expected in [
        "Room demo: 1 participant",
        "IDENTITY",
        "alice",
        "Alice",
        &track,
    ] {
        assert!(table.contains(expected), "{expected:?} in\n{table}");
    }

    // Mute and unmute the track, then remove alice: she is told why.
    let out = run(with_url(&["participants", "mute", "demo", "alice", &track])).await;
    assert_ok(&out);
    assert!(
        stdout(&out).starts_with("Muted video track"),
        "{}",
        stdout(&out)
    );
    let out = run(with_url(&[
        "participants",
        "mute",
        "demo",
        "alice",
        &track,
        "--unmute",
        "--json",
    ]))
    .await;
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(json["muted"], false);
    let out = run(with_url(&["participants", "remove", "demo", "alice"])).await;
    assert_ok(&out);
    let told = alice
        .wait_message(Duration::from_secs(10), |m| match m {
            ServerMessage::Closed { reason } => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(told, Some(CloseReason::Removed));
    let out = run(with_url(&["participants", "remove", "demo", "alice"])).await;
    assert_fails_with(&out, "no participant \"alice\"");

    // Close; then the room is gone.
    let out = run(with_url(&["rooms", "close", "demo"])).await;
    assert_ok(&out);
    let out = run(with_url(&["rooms", "show", "demo"])).await;
    assert_fails_with(&out, "no room");
    assert!(stdout(&out).is_empty());

    // A token the server did not sign: the server's 401 message.
    let out = switchyard(
        &["rooms", "list", "--url", &url, "--token", "not.a.jwt"],
        &[],
    )
    .await;
    assert_fails_with(&out, "the access token is invalid");
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
}

#[tokio::test]
async fn admin_commands_over_https_with_a_self_signed_certificate() {
    let tls_dir = scratch_dir("tls");
    let no_tls_dir = scratch_dir("no-tls");
    let https_port = free_port();
    let (_server, http_url) = start_server(&[
        "--tls-self-signed",
        "--tls-dir",
        tls_dir.to_str().unwrap(),
        "--https-bind",
        &format!("127.0.0.1:{https_port}"),
    ])
    .await;
    let https_url = format!("https://127.0.0.1:{https_port}");
    let cert = tls_dir.join("self-signed.pem");
    let cert = cert.to_str().unwrap();
    // No certificate is found in the TLS folder unless a case says so.
    let env = [
        ("SWITCHYARD_API_KEY", KEY),
        ("SWITCHYARD_API_SECRET", SECRET),
        ("SWITCHYARD_TLS_DIR", no_tls_dir.to_str().unwrap()),
    ];

    // (1) https with --ca: the server's self-signed certificate.
    let out = switchyard(
        &[
            "rooms", "create", "secure", "--url", &https_url, "--ca", cert,
        ],
        &env,
    )
    .await;
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Created room secure"),
        "{}",
        stdout(&out)
    );
    // The same through SWITCHYARD_URL and SWITCHYARD_CA.
    let out = switchyard(
        &["rooms", "list"],
        &[
            &env[..],
            &[("SWITCHYARD_URL", &https_url), ("SWITCHYARD_CA", cert)],
        ]
        .concat(),
    )
    .await;
    assert_ok(&out);
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.split_whitespace().next() == Some("secure")),
        "{}",
        stdout(&out)
    );

    // (2) The plain-HTTP address answers with a redirect to https, which is followed: a
    // POST keeps its body (308), then a GET.
    let out = switchyard(
        &[
            "rooms",
            "create",
            "redirected",
            "--url",
            &http_url,
            "--ca",
            cert,
        ],
        &env,
    )
    .await;
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Created room redirected"),
        "{}",
        stdout(&out)
    );
    let out = switchyard(
        &["rooms", "list", "--json", "--url", &http_url, "--ca", cert],
        &env,
    )
    .await;
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let mut names: Vec<&str> = json["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["redirected", "secure"]);

    // (3) Without --ca the self-signed certificate is not trusted, and the error says what to
    // do, directly and through the redirect.
    for (url, at) in [
        (&https_url, https_url.clone()),
        (&http_url, format!("{http_url} (redirected to {https_url})")),
    ] {
        let out = switchyard(&["rooms", "list", "--url", url], &env).await;
        assert_fails_with(
            &out,
            &format!("the Switchyard server at {at} sent a certificate this CLI does not trust"),
        );
        let advice = format!(
            "pass --ca <file> with the server's certificate (for --tls-self-signed: {})",
            no_tls_dir.join("self-signed.pem").display()
        );
        assert!(stderr(&out).contains(&advice), "{}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
    // A --ca that is not the server's certificate is not enough either.
    let other = scratch_dir("other");
    let other_cert = other.join("other.pem");
    std::fs::write(
        &other_cert,
        rcgen::generate_simple_self_signed(["localhost".to_owned()])
            .unwrap()
            .cert
            .pem(),
    )
    .unwrap();
    let out = switchyard(
        &[
            "rooms",
            "list",
            "--url",
            &https_url,
            "--ca",
            other_cert.to_str().unwrap(),
        ],
        &env,
    )
    .await;
    assert_fails_with(&out, "signed neither by --ca");

    // (4) On the server's machine, the certificate in its TLS folder is trusted without --ca.
    let out = switchyard(
        &[
            "rooms",
            "list",
            "--url",
            &https_url,
            "--tls-dir",
            tls_dir.to_str().unwrap(),
        ],
        &env,
    )
    .await;
    assert_ok(&out);
    assert!(stdout(&out).starts_with("NAME"), "{}", stdout(&out));

    for dir in [tls_dir, no_tls_dir, other] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_server_is_named() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = switchyard(
        &["rooms", "list", "--url", &url],
        &[
            ("SWITCHYARD_API_KEY", KEY),
            ("SWITCHYARD_API_SECRET", SECRET),
        ],
    )
    .await;
    assert_fails_with(
        &out,
        &format!("cannot reach the Switchyard server at {url}: "),
    );
}

#[tokio::test]
async fn without_credentials_the_dev_key_is_explained() {
    for args in [
        &["token", "--admin"][..],
        &["rooms", "list", "--url", "http://127.0.0.1:9"],
    ] {
        let out = switchyard(args, &[]).await;
        assert_fails_with(&out, "dev mode");
        assert!(
            stderr(&out).contains("api_key/api_secret")
                && stderr(&out).contains("/api/dev-admin-token"),
            "{}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty());
    }
}
