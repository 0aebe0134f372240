//! A userspace "netem" for kernels without one: a network namespace behind a link whose loss,
//! delay, jitter and rate the test sets per direction while it runs, for a browser inside it;
//! every other page is untouched. It never forwards a packet to an address outside this machine
//! and never impairs the test's own control connections (chromedriver's TCP port).
//
// How: two TUN devices, one on each side, and the test process moving every IPv4 packet between
// them (`pipe`). Not veth + HTB: this kernel has no netem, tbf or police action and only
// userspace can drop at random and delay, so one bridge does all of it and the rate queue keeps
// the delay's clock. Addresses: this machine's end 10.213.x.1/30, the namespace's 10.213.x.2
// with its default route through the link. The bridge refuses every destination but the
// namespace (downlink) and this machine's own addresses (uplink), and a permanent
// `unreachable 10.213.0.0/16` route keeps packets for a deleted namespace off the default route.

mod pipe;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use anyhow::Context;
use fantoccini::Client;
use tun_rs::{DeviceBuilder, InterruptEvent, SyncDevice};

use crate::browser::Driver;
use pipe::Pipe;
pub use pipe::{DirectionStats, Impairment};

/// Why a lossy link could not be made (it needs root, iproute2 and /dev/net/tun).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("TUN device {name}: {source} (needs root and /dev/net/tun)")]
    Tun {
        name: String,
        source: std::io::Error,
    },
    #[error("no free 10.213.x.0/30 subnet: 254 lossy links already exist on this machine")]
    NoFreeSubnet,
}

/// A namespace behind an impaired link. Dropping it ends the processes inside the namespace,
/// stops the bridge and deletes the namespace and both TUN devices. Declare it before the
/// browsers and servers that use it, so that it is dropped after them.
pub struct LossyLink {
    /// The namespace's name, `sy-<pid>-<x>` (x as in its addresses).
    pub namespace: String,
    /// This machine's end of the link (10.213.x.1).
    pub host_ip: Ipv4Addr,
    /// The namespace's end of the link (10.213.x.2).
    pub namespace_ip: Ipv4Addr,
    /// The TUN device on this machine's side (`sy-h<x>`).
    pub host_tun: String,
    /// The TUN device inside the namespace (`sy-n<x>`).
    pub namespace_tun: String,
    downlink: Pipe,
    uplink: Pipe,
    /// chromedrivers started inside, for their ports.
    drivers: AtomicU16,
}

/// The prefix of every namespace this module makes ([`LossyLink::create`] deletes stale ones).
const PREFIX: &str = "sy-";

impl LossyLink {
    /// Makes a namespace and its link, unimpaired at first, after deleting the namespaces left
    /// by test processes that no longer run.
    pub fn create() -> Result<LossyLink, LinkError> {
        remove_stale_namespaces();
        // Packets for a namespace that is gone must not leave through the default route.
        if let Err(LinkError::Command { stderr, .. }) =
            ip(&["route", "add", "unreachable", "10.213.0.0/16"])
            && !stderr.contains("File exists")
        {
            return Err(LinkError::Command {
                command: "ip route add unreachable 10.213.0.0/16".into(),
                stderr,
            });
        }
        // The host TUN device `sy-h<x>` claims subnet x: the kernel lets one process at a
        // time hold a name, and frees it when that process ends, crashed or not.
        let (x, host_dev) = claim_subnet()?;
        let host_tun = format!("sy-h{x}");
        let ns_tun = format!("sy-n{x}");
        let namespace = format!("{PREFIX}{}-{x}", std::process::id());
        let host_ip = Ipv4Addr::new(10, 213, x, 1);
        let namespace_ip = Ipv4Addr::new(10, 213, x, 2);
        ip(&["netns", "add", &namespace])?;
        // From here on a failure deletes the namespace (see `Half`).
        let mut half = Half(Some(namespace.clone()));
        let ns_dev = tun(&ns_tun)?;
        ip(&["link", "set", &ns_tun, "netns", &namespace])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_tun])?;
        ip(&["link", "set", &host_tun, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["-n", namespace.as_str()];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["link", "set", "lo", "up"])?;
        inside(&["addr", "add", &format!("{namespace_ip}/30"), "dev", &ns_tun])?;
        inside(&["link", "set", &ns_tun, "up"])?;
        inside(&["route", "add", "default", "via", &host_ip.to_string()])?;

        let mut machine: Vec<Ipv4Addr> = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| match i.ip() {
                IpAddr::V4(v4) if !v4.is_loopback() => Some(v4),
                _ => None,
            })
            .collect();
        machine.push(host_ip);
        let (host_dev, ns_dev) = (Arc::new(host_dev), Arc::new(ns_dev));
        let interrupt = |name: &str| {
            InterruptEvent::new()
                .map(Arc::new)
                .map_err(|source| LinkError::Tun {
                    name: name.to_owned(),
                    source,
                })
        };
        let start = |name: &str, from: &Arc<SyncDevice>, to: &Arc<SyncDevice>, allowed| {
            Pipe::start(name, from.clone(), to.clone(), allowed, interrupt(name)?).map_err(
                |source| LinkError::Tun {
                    name: name.to_owned(),
                    source,
                },
            )
        };
        let downlink = start(&host_tun, &host_dev, &ns_dev, vec![namespace_ip])?;
        let uplink = start(&ns_tun, &ns_dev, &host_dev, machine)?;
        half.0 = None;
        Ok(LossyLink {
            namespace,
            host_ip,
            namespace_ip,
            host_tun,
            namespace_tun: ns_tun,
            downlink,
            uplink,
            drivers: AtomicU16::new(0),
        })
    }

    /// Impairs the packets towards the namespace from now on.
    pub fn set_downlink(&self, impairment: Impairment) {
        self.downlink.set(impairment);
    }

    /// Impairs the packets from the namespace from now on.
    pub fn set_uplink(&self, impairment: Impairment) {
        self.uplink.set(impairment);
    }

    /// Removes every impairment, both ways (packets already delayed still arrive late).
    pub fn clear(&self) {
        self.downlink.set(Impairment::default());
        self.uplink.set(Impairment::default());
    }

    /// The impairment towards the namespace.
    pub fn downlink(&self) -> Impairment {
        self.downlink.impairment()
    }

    /// Counters of the packets towards the namespace.
    pub fn downlink_stats(&self) -> DirectionStats {
        self.downlink.stats()
    }

    /// Counters of the packets from the namespace.
    pub fn uplink_stats(&self) -> DirectionStats {
        self.uplink.stats()
    }

    /// `program` to be run inside the namespace (`ip netns exec <namespace> <program>`).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.namespace, program]);
        command
    }

    /// Lets TCP packets from or to `port` (either end) pass unimpaired both ways: the test's
    /// own control connections, such as chromedriver's.
    pub fn exempt_tcp_port(&self, port: u16) {
        self.downlink.exempt_tcp_port(port);
        self.uplink.exempt_tcp_port(port);
    }

    /// Starts a server for a call with a page behind this link: media announced on the link's
    /// host end only (pages on this machine reach it there too, and no other test's link, which
    /// may vanish mid-call, is offered), HTTP on every address with dev tokens (see
    /// [`LossyLink::call_page`]).
    pub async fn start_server(&self) -> switchyard::Server {
        crate::start_server(Some(self.host_ip.into()), |config| {
            config.http_bind = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
            config.insecure_dev = true;
        })
        .await
    }

    /// Starts chromedriver inside the namespace, its port exempt from the impairments: the
    /// browsers it opens use the link.
    pub async fn driver(&self) -> anyhow::Result<Driver> {
        let port = 9515 + self.drivers.fetch_add(1, Ordering::Relaxed);
        self.exempt_tcp_port(port);
        Driver::start_in_netns(
            &self.namespace,
            self.namespace_ip.into(),
            port,
            self.host_ip.into(),
        )
        .await
    }

    /// Opens a browser of `driver` (from [`LossyLink::driver`]) on the call page of `room` on
    /// the server whose HTTP port is `port`, reached at this machine's end of the link (so the
    /// server must listen beyond loopback: `http_bind` 0.0.0.0 and `insecure_dev` for dev
    /// tokens). That plain-HTTP origin is marked secure for the camera.
    pub async fn call_page(
        &self,
        driver: &Driver,
        port: u16,
        room: &str,
        name: &str,
        extra_query: &str,
    ) -> anyhow::Result<Client> {
        let origin = format!("http://{}:{port}", self.host_ip);
        let page = driver
            .browser_with(&[&format!(
                "--unsafely-treat-insecure-origin-as-secure={origin}"
            )])
            .await?;
        page.goto(&format!("{origin}/room/{room}?name={name}{extra_query}"))
            .await
            .with_context(|| format!("open {origin} from namespace {}", self.namespace))?;
        Ok(page)
    }
}

/// A call across a lossy link: a server reached through the link's host end, a chromedriver on
/// this machine and one inside the namespace (declared so that the link goes last).
pub struct LossyCall {
    pub inside: Driver,
    pub host: Driver,
    pub server: switchyard::Server,
    pub link: LossyLink,
}

impl LossyCall {
    /// Makes the link (before the server, whose media sockets bind its host end), the server
    /// and both chromedrivers.
    pub async fn start() -> anyhow::Result<LossyCall> {
        let link = LossyLink::create().context("a lossy link (needs root and /dev/net/tun)")?;
        let server = link.start_server().await;
        let host = Driver::start().await.context("chromedriver")?;
        let inside = link
            .driver()
            .await
            .context("chromedriver inside the namespace")?;
        Ok(LossyCall {
            inside,
            host,
            server,
            link,
        })
    }

    /// Call pages on this machine for `names` in `room`.
    pub async fn host_pages(&self, room: &str, names: &[&str]) -> anyhow::Result<Vec<Client>> {
        self.host
            .call_pages(self.server.http_addr.port(), room, names, "")
            .await
    }

    /// A call page inside the namespace, behind the link.
    pub async fn inside_page(&self, room: &str, name: &str) -> anyhow::Result<Client> {
        self.link
            .call_page(&self.inside, self.server.http_addr.port(), room, name, "")
            .await
    }
}

impl Drop for LossyLink {
    fn drop(&mut self) {
        kill_processes_in(&self.namespace);
        self.downlink.stop();
        self.uplink.stop();
        // The TUN devices vanish with their last descriptor, held by the pipes' threads.
        let _ = ip(&["netns", "delete", &self.namespace]);
        let _ = ip(&["link", "delete", &self.host_tun]);
    }
}

/// Deletes a half-made namespace when `create` fails (`None` once the link is made).
struct Half(Option<String>);

impl Drop for Half {
    fn drop(&mut self) {
        if let Some(namespace) = &self.0 {
            let _ = ip(&["netns", "delete", namespace]);
        }
    }
}

/// Runs `ip args`; a failure carries its standard error.
fn ip(args: &[&str]) -> Result<String, LinkError> {
    let command = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| LinkError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(LinkError::Command {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A new TUN device (layer 3, no packet-information header, no offloads).
fn tun(name: &str) -> Result<SyncDevice, LinkError> {
    DeviceBuilder::new()
        .name(name)
        .mtu(1500)
        // The kernel's side of a TUN device drops beyond this queue: room for stalls of the
        // bridge's threads on a busy machine, so that only the impairment drops.
        .tx_queue_len(10_000)
        .packet_information(false)
        .offload(false)
        .build_sync()
        .map_err(|source| LinkError::Tun {
            name: name.to_owned(),
            source,
        })
}

/// The first x in 1..=254 whose 10.213.x.1 is on no interface of this machine and whose TUN
/// device `sy-h<x>` no other link holds, with that device.
fn claim_subnet() -> Result<(u8, SyncDevice), LinkError> {
    let used: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .collect();
    for x in 1..=254u8 {
        if used.contains(&IpAddr::V4(Ipv4Addr::new(10, 213, x, 1))) {
            continue;
        }
        match tun(&format!("sy-h{x}")) {
            Ok(device) => return Ok((x, device)),
            Err(LinkError::Tun { source, .. })
                if source.kind() == std::io::ErrorKind::ResourceBusy => {}
            Err(e) => return Err(e),
        }
    }
    Err(LinkError::NoFreeSubnet)
}

/// Ends the processes running inside `namespace` (ours: started there by a test), by pid.
fn kill_processes_in(namespace: &str) {
    let Ok(pids) = ip(&["netns", "pids", namespace]) else {
        return;
    };
    for pid in pids.split_whitespace().filter(|p| p.parse::<u32>().is_ok()) {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
}

/// Deletes the `sy-<pid>-<x>` namespaces whose test process no longer runs, with what runs
/// inside them.
fn remove_stale_namespaces() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, n)| n.parse::<u32>().ok().and(pid.parse::<u32>().ok()))
        else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        kill_processes_in(name);
        let _ = ip(&["netns", "delete", name]);
    }
}
