//! What `switchyard` prints once the server is up: where to open it (HTTP or HTTPS, with the
//! self-signed certificate's fingerprint), dev-mode credentials and warnings, media and TURN
//! ports. It only prints; it never changes the running server.

use std::net::{IpAddr, SocketAddr};

use crate::Server;
use crate::tls::settings::CertSource;

/// Prints a line for the person who started the server, like `println!`, except that a closed
/// stdout (a service manager that does not read it, `| head`) is no reason to stop serving.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Prints the start banner to stdout.
pub fn print(server: &Server) {
    if let Some((key, secret)) = &server.dev_credentials {
        print_dev_mode(server, key, secret);
    }
    let media: Vec<String> = server.media_addrs.iter().map(|a| a.to_string()).collect();
    let media = media.join(", ");
    match (&server.tls, server.https_addr) {
        (Some(tls), Some(https)) => print_https(server, &tls.source, https, &media),
        _ => say!(
            "Switchyard is up: open http://localhost:{}/ (media on UDP {media})",
            server.http_addr.port()
        ),
    }
    if let Some(turn) = &server.turn {
        say!(
            "TURN relay on UDP and TCP port {}{}, reaching only the SFU",
            turn.udp_addr().port(),
            turn.tls_addr()
                .map(|a| format!(" and TLS port {}", a.port()))
                .unwrap_or_default()
        );
    }
    if let Some(link) = &server.cluster {
        let cluster = &link.cluster;
        let config = cluster.config();
        say!(
            "Cluster: node {} on Redis {} (prefix {}); other nodes and redirected browsers \
             reach it at {}",
            cluster.node_id(),
            cluster::redacted(&config.redis_url),
            config.prefix,
            cluster.url()
        );
    }
}

fn print_dev_mode(server: &Server, key: &str, secret: &str) {
    if server.cluster.is_some() {
        say!("Dev mode: no API secret configured; shared by the cluster's nodes through Redis:");
    } else {
        say!("Dev mode: no API secret configured; generated for this run:");
    }
    say!("  API key:    {key}");
    say!("  API secret: {secret}");
    say!("  GET /api/dev-token hands out tokens; set api_key/api_secret for production.");
    if server.insecure_dev {
        say!();
        say!(
            "  WARNING: --insecure-dev: anyone who can reach {} gets tokens,",
            server.https_addr.unwrap_or(server.http_addr)
        );
        say!("  WARNING: admin tokens included, and can join, watch and run every room.");
        say!("  WARNING: set api_key and api_secret before letting other people in.");
        say!();
    } else {
        say!(
            "  Dev mode answers this machine only (HTTP on {}). To call another",
            server.http_addr
        );
        say!("  machine, set api_key/api_secret (see README), or start with");
        say!("  --insecure-dev --http-bind 0.0.0.0:8080 to open dev mode to the network.");
    }
}

fn print_https(server: &Server, source: &CertSource, https: SocketAddr, media: &str) {
    let port = match https.port() {
        443 => String::new(),
        p => format!(":{p}"),
    };
    let host = match source {
        CertSource::Acme(acme) => acme.domain.clone(),
        _ if https.ip().is_unspecified() || https.ip().is_loopback() => "localhost".into(),
        _ => url_host(https.ip()),
    };
    say!("Switchyard is up: open https://{host}{port}/ (media on UDP {media})");
    if !matches!(source, CertSource::Acme(_)) && https.ip().is_unspecified() {
        let others: Vec<String> = network_addresses()
            .into_iter()
            .map(|ip| format!("https://{}{port}/", url_host(ip)))
            .collect();
        if !others.is_empty() {
            say!("  From other machines: {}", others.join("  "));
        }
    }
    match source {
        CertSource::SelfSigned => {
            let fingerprint = server.tls_fingerprint.as_deref().unwrap_or("unknown");
            say!("  Self-signed certificate, SHA-256 fingerprint:");
            say!("    {fingerprint}");
            say!("  Browsers warn about it: check that they show this fingerprint, then go on.");
        }
        CertSource::Files { cert, .. } => say!(
            "  Certificate from {} (reloaded when it changes, or on SIGHUP)",
            cert.display()
        ),
        CertSource::Acme(acme) => say!(
            "  Certificate for {} from {} (obtained and renewed in the background; see the log)",
            acme.domain,
            acme.directory
        ),
    }
    say!("  Plain HTTP on {} redirects to HTTPS.", server.http_addr);
}

/// An IP as it goes in a URL (IPv6 in brackets).
fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// This machine's IPv4 addresses other machines may reach it on.
fn network_addresses() -> Vec<IpAddr> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback() && !i.is_link_local() && i.ip().is_ipv4())
        .map(|i| i.ip())
        .collect()
}
