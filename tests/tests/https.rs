//! HTTPS end to end: two Chromium pages hold a call over HTTPS with the self-signed certificate
//! and with certificate files from a test CA that Chromium trusts (files replaced while the
//! server runs), plain HTTP redirects, and an ACME certificate from Pebble. Only loopback and
//! 192.0.2.2 are contacted; every process a test starts is ended by the test.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use switchyard::tls::settings::{AcmeSettings, CertSource, TlsSettings};
use switchyard_tests::browser::{Driver, eval, media_stats};
use switchyard_tests::{Server, scratch_dir, start_server, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// This machine's non-loopback address: the "other machine" friends would use.
const LAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const API_KEY: &str = "APIhttps";
const API_SECRET: &str = "https-test-secret-0123456789abcdef0123456789";

// ---------------------------------------------------------------------------------------------
// Certificates: a test CA, PEM files, an HTTPS client that trusts given roots only.
// ---------------------------------------------------------------------------------------------

/// A certificate authority made for one test.
struct TestCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa { params, key, pem }
    }

    /// A server certificate for `names` signed by this CA: (certificate PEM, key PEM, DER).
    fn leaf(&self, names: &[&str]) -> (String, String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

fn certs_from_pem(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .expect("PEM certificates")
}

/// SHA-256 as browsers show it (`AA:BB:...`).
fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What one HTTPS request saw.
struct Fetched {
    /// The server's own certificate, as served.
    leaf: Vec<u8>,
    status: u16,
    body: String,
}

/// `GET path` over HTTPS to `addr`, verifying the server as `name` against `roots` only (as a
/// browser would: chain and name), with a plain HTTP/1.1 request.
async fn https_get(
    addr: SocketAddr,
    name: &str,
    roots: &[CertificateDer<'static>],
    path: &str,
) -> Result<Fetched, String> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(store)
    .with_no_client_auth();
    let server_name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {addr} as {name}: {e}"))?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or("no certificate served")?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    // A server may close without close_notify; what arrived is what counts.
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}"))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok(Fetched { leaf, status, body })
}

/// A HOME whose NSS database (`.pki/nssdb`, where Chromium on Linux looks) trusts `ca_pem`
/// for servers, made with `certutil` (Debian's libnss3-tools).
fn home_trusting(label: &str, ca_pem: &str) -> PathBuf {
    let home = scratch_dir(label);
    let db = home.join(".pki").join("nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let ca = home.join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let db_arg = format!("sql:{}", db.display());
    let run = |args: &[&str]| {
        let out = Command::new("certutil")
            .args(args)
            .output()
            .expect("certutil runs: scripts/test installs libnss3-tools");
        assert!(
            out.status.success(),
            "certutil {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["-N", "-d", &db_arg, "--empty-password"]);
    let ca_arg = ca.display().to_string();
    run(&[
        "-A",
        "-d",
        &db_arg,
        "-n",
        "switchyard-test-ca",
        "-t",
        "C,,",
        "-i",
        &ca_arg,
    ]);
    home
}

fn with_secret(config: &mut switchyard::Config) {
    config.credentials = Some((API_KEY.into(), API_SECRET.into()));
}

// ---------------------------------------------------------------------------------------------
// A call over HTTPS between two pages.
// ---------------------------------------------------------------------------------------------

/// Video frames each page has decoded from the other, by the other's identity.
async fn frames_from(page: &fantoccini::Client, identity: &str) -> u64 {
    media_stats(page)
        .await
        .iter()
        .filter(|s| s["kind"] == "video" && s["identity"] == identity)
        .filter_map(|s| s["framesDecoded"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Opens `https://{host}:{port}/room/{room}` for Alice and Bob (tokens from `server`) in
/// browsers with `extra_args`, and waits until each decodes at least 30 frames of the other's
/// video over a `wss:` signaling connection.
async fn call_over_https(
    server: &Server,
    driver: &Driver,
    host: &str,
    room: &str,
    extra_args: &[&str],
) {
    let port = server.https_addr.expect("HTTPS is on").port();
    let names = ["alice", "bob"];
    let mut pages = Vec::new();
    for name in names {
        let page = driver.browser_with(extra_args).await.expect("a browser");
        let token = server.token(name, room, protocol::Grants::default());
        page.goto(&format!(
            "https://{host}:{port}/room/{room}?name={name}&token={token}"
        ))
        .await
        .expect("the call page loads");
        pages.push(page);
    }
    let started = std::time::Instant::now();
    wait_for(
        "both pages to decode 30 frames of each other's video",
        Duration::from_secs(60),
        async || {
            let a = frames_from(&pages[0], "bob").await;
            let b = frames_from(&pages[1], "alice").await;
            if a >= 30 && b >= 30 {
                Ok(())
            } else {
                Err(format!("alice<-bob {a} frames, bob<-alice {b} frames"))
            }
        },
    )
    .await;
    println!(
        "video decoded both ways over HTTPS after {:?}",
        started.elapsed()
    );
    for page in &pages {
        let seen = eval(
            page,
            "return [location.protocol, window.switchyard.client.url, document.title]",
        )
        .await
        .expect("the page answers");
        assert_eq!(seen[0], "https:", "{seen}");
        assert!(
            seen[1]
                .as_str()
                .is_some_and(|u| u.starts_with(&format!("wss://{host}:{port}/"))),
            "signaling must use wss: {seen}"
        );
    }
    for page in pages {
        let _ = page.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_call_over_https_with_the_self_signed_certificate() {
    let dir = scratch_dir("tls-self-signed");
    let settings = TlsSettings {
        source: CertSource::SelfSigned,
        dir: dir.clone(),
        https_bind: SocketAddr::from((LAN, 0)),
    };
    let tls = settings.clone();
    let server = start_server(Some(LAN.into()), move |c| {
        with_secret(c);
        c.tls = Some(tls);
    })
    .await;
    let https = server.https_addr.expect("HTTPS is on");
    let printed = server.tls_fingerprint.clone().expect("a fingerprint");
    println!("self-signed certificate, SHA-256 {printed}");

    // The certificate kept on disk is the one served, it names this machine's address, and
    // the fingerprint printed at start is its own.
    let kept = certs_from_pem(&std::fs::read(dir.join("self-signed.pem")).unwrap());
    let fetched = https_get(https, &LAN.to_string(), &kept, "/")
        .await
        .unwrap();
    assert_eq!(fetched.status, 200);
    assert_eq!(fingerprint(&fetched.leaf), printed);

    let driver = Driver::start().await.expect("chromedriver");
    call_over_https(
        &server,
        &driver,
        &LAN.to_string(),
        "tls-self-signed",
        &["--ignore-certificate-errors"],
    )
    .await;
    drop(driver);
    server.shutdown(Duration::from_secs(5)).await.unwrap();

    // The next start reuses it: same fingerprint, nothing made again.
    let again = start_server(Some(LAN.into()), move |c| {
        with_secret(c);
        c.tls = Some(settings);
    })
    .await;
    assert_eq!(again.tls_fingerprint.as_deref(), Some(printed.as_str()));
    again.shutdown(Duration::from_secs(5)).await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_files_from_a_trusted_ca_carry_a_call_and_are_reloaded() {
    let ca = TestCa::new("Switchyard test CA");
    let roots = certs_from_pem(ca.pem.as_bytes());
    let lan = LAN.to_string();
    let names = [lan.as_str(), "localhost", "127.0.0.1"];
    let files = scratch_dir("tls-files");
    std::fs::create_dir_all(&files).unwrap();
    let (cert, key) = (files.join("cert.pem"), files.join("key.pem"));
    let (cert_pem, key_pem, first) = ca.leaf(&names);
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let source = CertSource::Files {
        cert: cert.clone(),
        key: key.clone(),
    };
    let dir = files.join("dir");
    let server = start_server(Some(LAN.into()), move |c| {
        with_secret(c);
        c.tls = Some(TlsSettings {
            source,
            dir,
            https_bind: SocketAddr::from((LAN, 0)),
        });
    })
    .await;
    let https = server.https_addr.expect("HTTPS is on");
    let served = https_get(https, &LAN.to_string(), &roots, "/")
        .await
        .unwrap();
    assert_eq!(served.leaf, first);

    // Chromium trusts the CA through its NSS database, with no flag to ignore errors.
    let home = home_trusting("tls-home", &ca.pem);
    let driver = Driver::start_with_home(&home).await.expect("chromedriver");
    call_over_https(&server, &driver, &LAN.to_string(), "tls-files", &[]).await;

    // New files: the server serves the new certificate, with no restart.
    let (cert_pem, key_pem, second) = ca.leaf(&names);
    std::fs::write(&key, key_pem).unwrap();
    std::fs::write(&cert, cert_pem).unwrap();
    let started = std::time::Instant::now();
    wait_for(
        "the server to serve the new certificate",
        Duration::from_secs(20),
        async || match https_get(https, &LAN.to_string(), &roots, "/").await {
            Ok(f) if f.leaf == second => Ok(()),
            Ok(f) => Err(format!("still serving {}", fingerprint(&f.leaf))),
            Err(e) => Err(e),
        },
    )
    .await;
    println!(
        "new certificate served {:?} after the files changed",
        started.elapsed()
    );
    assert_eq!(server.https_problem(), None);

    // A broken file: the server says what is wrong and keeps serving the last good one.
    std::fs::write(&cert, "this is not a certificate\n").unwrap();
    let problem = wait_for(
        "the server to report the broken file",
        Duration::from_secs(20),
        async || server.https_problem().ok_or("no problem reported yet"),
    )
    .await;
    println!("broken file reported: {problem}");
    assert!(problem.contains("holds no certificate"), "{problem}");
    let served = https_get(https, &LAN.to_string(), &roots, "/")
        .await
        .unwrap();
    assert_eq!(served.leaf, second);

    // Chromium still trusts what is served: a new page loads without any flag.
    let page = driver.browser().await.expect("a browser");
    page.goto(&format!("https://{LAN}:{}/", https.port()))
        .await
        .unwrap();
    let title = eval(&page, "return document.title").await.unwrap();
    assert_eq!(title, "Switchyard · video rooms");
    let _ = page.close().await;
    drop(driver);
    server.shutdown(Duration::from_secs(5)).await.unwrap();
    let _ = std::fs::remove_dir_all(home);
    let _ = std::fs::remove_dir_all(files);
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP once HTTPS is on.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_redirects_to_https() {
    let dir = scratch_dir("tls-redirect");
    let tls = TlsSettings {
        source: CertSource::SelfSigned,
        dir: dir.clone(),
        https_bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    };
    let server = start_server(None, move |c| c.tls = Some(tls)).await;
    let https = server.https_addr.expect("HTTPS is on");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = async |path: &str, host: Option<&str>| {
        let mut request = client.get(format!("http://{}{path}", server.http_addr));
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let answer = request.send().await.expect("plain HTTP answers");
        let location = answer
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (answer.status().as_u16(), location)
    };
    let port = https.port();
    let cases = [
        ("/room/r1?name=Ann%20B", None, "127.0.0.1"),
        ("/", Some("192.0.2.2:8080"), "192.0.2.2"),
        ("/ws", Some("localhost"), "localhost"),
        ("/api/dev-token?room=x", None, "127.0.0.1"),
    ];
    for (path, host, expected_host) in cases {
        let (status, location) = get(path, host).await;
        let shown = host.unwrap_or("127.0.0.1");
        println!("GET {path} (Host: {shown}) -> {status} {location:?}");
        assert_eq!(status, 308, "{path}");
        assert_eq!(
            location.as_deref(),
            Some(format!("https://{expected_host}:{port}{path}").as_str())
        );
    }
    // The ACME challenge path is answered, not redirected (no such token here).
    let (status, location) = get("/.well-known/acme-challenge/nothing", None).await;
    assert_eq!((status, location), (404, None));

    // Where the redirect points, the page is served.
    let kept = certs_from_pem(&std::fs::read(dir.join("self-signed.pem")).unwrap());
    let page = https_get(https, "127.0.0.1", &kept, "/room/r1?name=Ann%20B")
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>Switchyard call</title>"));
    server.shutdown(Duration::from_secs(5)).await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------
// ACME against Pebble.
// ---------------------------------------------------------------------------------------------

/// A process ended (and reaped) on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &'static str, args: &[&str], env: &[(&str, &str)], log: &Path) -> Process {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program} ({e}): scripts/test installs pebble"));
    Process(child)
}

/// Loopback ports free for TCP and UDP right now.
fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    while held.len() < n {
        let tcp = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if let Ok(udp) = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)) {
            held.push((tcp, udp, port));
        }
    }
    held.into_iter().map(|(_, _, port)| port).collect()
}

async fn wait_listening(what: &str, port: u16) {
    wait_for(what, Duration::from_secs(20), async || {
        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .map(drop)
    })
    .await;
}

const DOMAIN: &str = "call.switchyard.test";
/// How long Pebble's certificates last: the server renews after two thirds of it.
const VALIDITY: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_gets_a_certificate_from_pebble_and_a_page_loads_over_it() {
    let work = scratch_dir("tls-pebble");
    std::fs::create_dir_all(&work).unwrap();
    let [
        acme_port,
        management_port,
        dns_port,
        dns_management_port,
        http_port,
        tls_port,
    ] = free_ports(6).try_into().unwrap();

    // Pebble's own HTTPS uses a certificate from a test CA the server is told to trust.
    let ca = TestCa::new("Pebble listener CA");
    let (cert_pem, key_pem, _) = ca.leaf(&["127.0.0.1", "localhost"]);
    for (name, text) in [
        ("ca.pem", &ca.pem),
        ("cert.pem", &cert_pem),
        ("key.pem", &key_pem),
    ] {
        std::fs::write(work.join(name), text).unwrap();
    }
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{acme_port}"),
        "managementListenAddress": format!("127.0.0.1:{management_port}"),
        "certificate": work.join("cert.pem"),
        "privateKey": work.join("key.pem"),
        // Pebble checks HTTP-01 on this port: the server's plain-HTTP listener.
        "httpPort": http_port,
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        // Short-lived certificates, so that the server renews one while the test watches.
        "certificateValidityPeriod": VALIDITY.as_secs()
    }});
    std::fs::write(work.join("pebble.json"), config.to_string()).unwrap();
    // Its DNS answers every name with 127.0.0.1 (and no IPv6 address).
    let dns = format!("127.0.0.1:{dns_port}");
    let _dns = spawn(
        "pebble-challtestsrv",
        &[
            "-dns01",
            &dns,
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            &format!("127.0.0.1:{dns_management_port}"),
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
        ],
        &[],
        &work.join("challtestsrv.log"),
    );
    let config_path = work.join("pebble.json").display().to_string();
    let _pebble = spawn(
        "pebble",
        &["-config", &config_path, "-dnsserver", &dns],
        &[("PEBBLE_VA_NOSLEEP", "1"), ("PEBBLE_WFE_NONCEREJECT", "0")],
        &work.join("pebble.log"),
    );
    wait_listening("Pebble's DNS", dns_management_port).await;
    wait_listening("Pebble", acme_port).await;
    wait_listening("Pebble's management API", management_port).await;
    let pebble_trust = certs_from_pem(ca.pem.as_bytes());
    let management = SocketAddr::from((Ipv4Addr::LOCALHOST, management_port));
    let root = https_get(management, "127.0.0.1", &pebble_trust, "/roots/0")
        .await
        .expect("Pebble's root certificate");
    let pebble_root = certs_from_pem(root.body.as_bytes());
    assert_eq!(pebble_root.len(), 1, "{}", root.body);

    let tls_dir = work.join("switchyard-tls");
    let acme = TlsSettings {
        source: CertSource::Acme(AcmeSettings {
            domain: DOMAIN.into(),
            email: Some("ops@switchyard.test".into()),
            directory: format!("https://127.0.0.1:{acme_port}/dir"),
            ca_root: Some(work.join("ca.pem")),
        }),
        dir: tls_dir.clone(),
        https_bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    };
    let tls = acme.clone();
    let server = start_server(None, move |c| {
        c.http_bind = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
        c.tls = Some(tls);
    })
    .await;
    let https = server.https_addr.expect("HTTPS is on");
    let started = std::time::Instant::now();
    let fetched = wait_for(
        "a certificate from Pebble, valid for the domain up to Pebble's root",
        Duration::from_secs(90),
        async || {
            https_get(https, DOMAIN, &pebble_root, "/")
                .await
                .map_err(|e| format!("{e} (server: {:?})", server.https_problem()))
        },
    )
    .await;
    println!(
        "certificate for {DOMAIN} from Pebble served after {:?}, SHA-256 {}",
        started.elapsed(),
        fingerprint(&fetched.leaf)
    );
    assert_eq!(fetched.status, 200);
    // Pebble checked the challenge on the server's plain-HTTP port, for real.
    let log = std::fs::read_to_string(work.join("pebble.log")).unwrap();
    let checked =
        format!("validate w/ HTTP: http://{DOMAIN}:{http_port}/.well-known/acme-challenge/");
    assert!(log.contains(&checked), "{log}");
    assert!(log.contains("set VALID by completed challenge"), "{log}");

    // Chromium, trusting Pebble's root, loads the page over it.
    let home = home_trusting("tls-pebble-home", &root.body);
    let driver = Driver::start_with_home(&home).await.expect("chromedriver");
    let rule = format!("--host-resolver-rules=MAP {DOMAIN} 127.0.0.1");
    let page = driver.browser_with(&[&rule]).await.expect("a browser");
    page.goto(&format!("https://{DOMAIN}:{}/", https.port()))
        .await
        .unwrap();
    let seen = eval(&page, "return [location.href, document.title]")
        .await
        .unwrap();
    println!("Chromium loaded {seen}");
    assert_eq!(seen[1], "Switchyard · video rooms", "{seen}");
    let _ = page.close().await;
    drop(driver);

    // Renewal in the background, before the certificate expires.
    let renewed = wait_for(
        "the server to renew its certificate",
        VALIDITY + Duration::from_secs(20),
        async || match https_get(https, DOMAIN, &pebble_root, "/").await {
            Ok(f) if f.leaf != fetched.leaf => Ok(f.leaf),
            Ok(_) => Err("still the first certificate".to_owned()),
            Err(e) => Err(e),
        },
    )
    .await;
    println!(
        "renewed {:?} after the server started: SHA-256 {}",
        started.elapsed(),
        fingerprint(&renewed)
    );
    server.shutdown(Duration::from_secs(5)).await.unwrap();

    // The certificate is kept: the next start serves it at once, without asking Pebble.
    let again = start_server(None, move |c| c.tls = Some(acme)).await;
    assert_eq!(again.https_fingerprint(), Some(fingerprint(&renewed)));
    let served = https_get(again.https_addr.unwrap(), DOMAIN, &pebble_root, "/")
        .await
        .unwrap();
    assert_eq!(served.leaf, renewed);
    again.shutdown(Duration::from_secs(5)).await.unwrap();
    let _ = std::fs::remove_dir_all(home);
    let _ = std::fs::remove_dir_all(work);
}
