//! An in-process Switchyard server on free ports for one test (`switchyard::start`, the real
//! one, not a double), and scratch folders under target/tmp. Never touches the source tree.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use switchyard::{Cli, Config, Server};

/// Starts a server on free ports. `announce` limits media to one address (127.0.0.1 for
/// Rust clients); `None` announces every local address, as in production.
pub async fn start_server(announce: Option<IpAddr>, tweak: impl FnOnce(&mut Config)) -> Server {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("TEST_LOG")
                .unwrap_or_else(|_| "warn,rtc=error,rtc_dtls=error,rtc_ice=error".into()),
        )
        .with_test_writer()
        .try_init();
    let mut config = Config::load(Cli::default()).expect("default config is valid");
    config.http_bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    config.rtc_port = 0;
    config.announce_ip = announce;
    if let Some(turn) = config.turn.as_mut() {
        // Tests run in parallel: each server gets its own TURN port.
        turn.port = 0;
    }
    // Recordings go to a folder of the server's own, never into the source tree.
    config.recordings_dir = scratch_dir("recordings");
    tweak(&mut config);
    switchyard::start(config).await.expect("server starts")
}

/// A new, empty-or-missing folder for a test's files, unique to this call.
pub fn scratch_dir(label: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Under the workspace's target/tmp (cargo's folder for test scratch files, removed by
    // `cargo clean`), not the system's temporary folder, where every run would leave some.
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace");
    workspace.join("target").join("tmp").join(format!(
        "switchyard-test-{label}-{}-{n}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ))
}

/// Starts a server whose media is announced on 127.0.0.1 only.
pub async fn start_local_server() -> Server {
    start_server(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), |_| {}).await
}

/// The cluster settings of node `id` of cluster `prefix` on Redis `redis` (its URL follows
/// from the port it binds).
pub fn cluster_settings(
    redis: &str,
    prefix: &str,
    id: &str,
    policy: cluster::PlacementPolicy,
) -> switchyard::cluster_settings::ClusterSettings {
    switchyard::cluster_settings::ClusterSettings {
        redis: redis.to_owned(),
        prefix: prefix.to_owned(),
        node_url: None,
        node_id: id.to_owned(),
        policy,
        room_participants_per_node: None,
    }
}

/// The WebSocket URL of a running server.
pub fn ws_url(server: &Server) -> String {
    format!("ws://{}/ws", server.http_addr)
}
