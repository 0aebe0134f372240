//! Cluster settings: the flags (`--redis`, `--cluster-prefix`, `--node-url`, ...), the
//! `[cluster]` section of the config file, and their resolution into [`ClusterSettings`].
//! Without a Redis URL there is no cluster: the server runs alone, with no external
//! dependency. It never connects to Redis: it only checks that the settings make sense.

use anyhow::bail;
use clap::Args;
use serde::Deserialize;

/// The cluster flags, each also read from the environment variable it names.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// Join a cluster on this Redis (`redis://[:password@]host:port[/db]`); unset: a single
    /// server with no external dependency.
    #[arg(
        long,
        env = "SWITCHYARD_REDIS",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis: Option<String>,
    /// Key prefix in Redis: clusters sharing one Redis must use different prefixes
    /// [default: switchyard].
    #[arg(long, env = "SWITCHYARD_CLUSTER_PREFIX", value_name = "PREFIX")]
    pub cluster_prefix: Option<String>,
    /// The URL clients and other nodes reach this node's HTTP at (default:
    /// http://<announce ip or 127.0.0.1>:<http port>).
    #[arg(long, env = "SWITCHYARD_NODE_URL", value_name = "URL")]
    pub node_url: Option<String>,
    /// This node's id in the cluster (default: host name and a random suffix).
    #[arg(long, env = "SWITCHYARD_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,
    /// How a new room's node is chosen: participants (fewest), cpu (least used) or local
    /// (the node the join reached) [default: participants].
    #[arg(long, env = "SWITCHYARD_PLACEMENT", value_name = "POLICY")]
    pub placement: Option<String>,
    /// Most participants of one room this node serves; more make the room span another node
    /// (unset: the room's own limit).
    #[arg(long, env = "SWITCHYARD_ROOM_PARTICIPANTS_PER_NODE", value_name = "N")]
    pub room_participants_per_node: Option<usize>,
}

/// The `[cluster]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    pub redis: Option<String>,
    pub prefix: Option<String>,
    pub node_url: Option<String>,
    pub node_id: Option<String>,
    pub placement: Option<String>,
    pub room_participants_per_node: Option<usize>,
}

/// A node's cluster settings, resolved. The node URL may still be unknown (it follows from
/// the bound HTTP port).
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub redis: String,
    pub prefix: String,
    pub node_url: Option<String>,
    pub node_id: String,
    pub policy: cluster::PlacementPolicy,
    /// Most participants of one room this node serves before the room spans another node.
    pub room_participants_per_node: Option<usize>,
}

/// Flags over the file; `None` when no Redis is set.
pub fn resolve(
    args: &ClusterArgs,
    file: ClusterSection,
) -> anyhow::Result<Option<ClusterSettings>> {
    let Some(redis) = args.redis.clone().or(file.redis) else {
        return Ok(None);
    };
    if !(redis.starts_with("redis://")
        || redis.starts_with("rediss://")
        || redis.starts_with("unix://")
        || redis.starts_with("redis+unix://"))
    {
        bail!(
            "cluster.redis: {:?} is not a Redis URL; write redis://[:password@]host:port[/db]",
            cluster::redacted(&redis)
        );
    }
    let prefix = args
        .cluster_prefix
        .clone()
        .or(file.prefix)
        .unwrap_or_else(|| "switchyard".into());
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!("cluster.prefix: {prefix:?} must be letters, digits, '-', '_' or '.'");
    }
    let node_id = args
        .node_id
        .clone()
        .or(file.node_id)
        .unwrap_or_else(cluster::new_node_id);
    if node_id.is_empty()
        || node_id.len() > 64
        || !node_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!("cluster.node_id: {node_id:?} must be 1 to 64 letters, digits, '-', '_' or '.'");
    }
    let node_url = args.node_url.clone().or(file.node_url);
    if let Some(url) = &node_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        bail!("cluster.node_url: {url:?} must start with http:// or https://");
    }
    let policy = match args.placement.clone().or(file.placement) {
        Some(p) => p
            .parse()
            .map_err(|e: String| anyhow::anyhow!("cluster.placement: {e}"))?,
        None => cluster::PlacementPolicy::default(),
    };
    let room_participants_per_node = args
        .room_participants_per_node
        .or(file.room_participants_per_node);
    if room_participants_per_node == Some(0) {
        bail!("cluster.room_participants_per_node must be at least 1");
    }
    Ok(Some(ClusterSettings {
        room_participants_per_node,
        redis,
        prefix,
        node_url: node_url.map(|u| u.trim_end_matches('/').to_owned()),
        node_id,
        policy,
    }))
}

/// Whether the Redis URL names this machine (loopback, `localhost`, or a Unix socket).
pub fn is_local_redis(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    if scheme.contains("unix") {
        return true;
    }
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split('/').next().unwrap_or(host_port);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_on_this_machine_is_told_apart() {
        assert!(is_local_redis("redis://127.0.0.1:6379"));
        assert!(is_local_redis("redis://:pw@localhost:6379/0"));
        assert!(is_local_redis("redis://[::1]:6379"));
        assert!(is_local_redis("redis+unix:///run/redis.sock"));
        assert!(!is_local_redis("redis://:pw@10.0.0.5:6379/0"));
        assert!(!is_local_redis("redis://redis.internal:6379"));
    }

    #[test]
    fn no_redis_means_no_cluster() {
        assert!(
            resolve(&ClusterArgs::default(), ClusterSection::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let args = ClusterArgs {
            redis: Some("localhost:6379".into()),
            ..ClusterArgs::default()
        };
        let error = resolve(&args, ClusterSection::default()).unwrap_err();
        assert!(error.to_string().contains("cluster.redis"), "{error}");
        let args = ClusterArgs {
            redis: Some("redis://127.0.0.1:6379".into()),
            placement: Some("random".into()),
            ..ClusterArgs::default()
        };
        let error = resolve(&args, ClusterSection::default()).unwrap_err();
        assert!(error.to_string().contains("cluster.placement"), "{error}");
    }

    #[test]
    fn flags_win_over_the_file() {
        let args = ClusterArgs {
            redis: Some("redis://127.0.0.1:1".into()),
            cluster_prefix: Some("blue".into()),
            ..ClusterArgs::default()
        };
        let file = ClusterSection {
            redis: Some("redis://10.0.0.1:6379".into()),
            prefix: Some("green".into()),
            node_id: Some("n1".into()),
            ..ClusterSection::default()
        };
        let settings = resolve(&args, file).unwrap().unwrap();
        assert_eq!(settings.redis, "redis://127.0.0.1:1");
        assert_eq!(settings.prefix, "blue");
        assert_eq!(settings.node_id, "n1");
    }
}
