//! Headless Chromium driven through chromedriver (WebDriver), with a fake camera and
//! microphone, as the end-to-end tests' participants. It never installs anything: a missing browser
//! or driver is an error that points to `scripts/test`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use crate::wait::wait_for;

/// A chromedriver process; every browser of a test shares it.
pub struct Driver {
    child: Child,
    url: String,
    _profiles: tempdir::TempDir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Browsers outlive chromedriver when a test fails before closing them; every one of
        // ours runs with a profile under this driver's directory, so match on that.
        let _ = Command::new("pkill")
            .arg("-9")
            .arg("-f")
            .arg(self._profiles.0.display().to_string())
            .status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

/// Starts a WebDriver server (`chromedriver`, `geckodriver`) on a free port and waits until it
/// accepts connections. Returns the process and its port.
async fn spawn_webdriver(program: &str) -> anyhow::Result<(Child, u16)> {
    spawn_webdriver_with_env(program, &[]).await
}

/// [`spawn_webdriver`] with extra environment variables for the driver and the browsers it
/// starts.
async fn spawn_webdriver_with_env(
    program: &str,
    env: &[(&str, &std::path::Path)],
) -> anyhow::Result<(Child, u16)> {
    let port = free_port();
    let child = Command::new(program)
        .envs(env.iter().copied())
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {program}: run scripts/test, which installs it"))?;
    wait_listening(program, std::net::Ipv4Addr::LOCALHOST.into(), port).await?;
    Ok((child, port))
}

/// Waits until `program` accepts TCP connections on `ip:port`.
async fn wait_listening(program: &str, ip: std::net::IpAddr, port: u16) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect((ip, port)).await.is_err() {
        if std::time::Instant::now() > deadline {
            bail!("{program} did not start listening on {ip}:{port}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Where Debian's chromium package puts the real browser binary.
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";

fn require_chromium() -> anyhow::Result<()> {
    if !std::path::Path::new(CHROMIUM).exists() {
        bail!(
            "{CHROMIUM} is missing: run scripts/test, which installs chromium and chromium-driver"
        );
    }
    Ok(())
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it answers.
    pub async fn start() -> anyhow::Result<Driver> {
        Self::start_with_env(&[]).await
    }

    /// Like [`Driver::start`], with `home` as the `HOME` of chromedriver and of every browser it
    /// opens: Chromium on Linux trusts the certificate authorities of the NSS database in
    /// `$HOME/.pki/nssdb`, so a test can make it trust its own CA there.
    pub async fn start_with_home(home: &std::path::Path) -> anyhow::Result<Driver> {
        Self::start_with_env(&[("HOME", home)]).await
    }

    /// Like [`Driver::start`], with chromedriver, and so every browser it opens, inside the
    /// network namespace `netns` (run through `ip netns exec`), answering on `ip:port` there
    /// to connections from `client_ip` only.
    pub async fn start_in_netns(
        netns: &str,
        ip: std::net::IpAddr,
        port: u16,
        client_ip: std::net::IpAddr,
    ) -> anyhow::Result<Driver> {
        require_chromium()?;
        let child = Command::new("ip")
            .args(["netns", "exec", netns, "chromedriver"])
            .arg(format!("--port={port}"))
            .arg(format!("--allowed-ips={client_ip}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start chromedriver in the namespace (needs root and iproute2)")?;
        let mut driver = Driver::with_child(child, port)?;
        driver.url = format!("http://{ip}:{port}");
        wait_listening("chromedriver", ip, port).await?;
        Ok(driver)
    }

    /// Wraps a started chromedriver listening on `port`, with a fresh profiles folder.
    fn with_child(child: Child, port: u16) -> anyhow::Result<Driver> {
        // Unique per driver: drivers inside different namespaces may share a port number.
        let profiles = std::env::temp_dir().join(format!(
            "switchyard-e2e-{}-{port}-{}",
            std::process::id(),
            rand_suffix()
        ));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _profiles: tempdir::TempDir(profiles),
        };
        std::fs::create_dir_all(&driver._profiles.0)?;
        Ok(driver)
    }

    async fn start_with_env(env: &[(&str, &std::path::Path)]) -> anyhow::Result<Driver> {
        require_chromium()?;
        let (child, port) = spawn_webdriver_with_env("chromedriver", env).await?;
        Driver::with_child(child, port)
    }

    /// Opens one headless Chromium per name on the call page of `room` on the server at
    /// `port` (`/room/{room}?name={name}` followed by `extra_query`, e.g. `&relay=1`).
    pub async fn call_pages(
        &self,
        port: u16,
        room: &str,
        names: &[&str],
        extra_query: &str,
    ) -> anyhow::Result<Vec<Client>> {
        let mut pages = Vec::new();
        for name in names {
            let page = self.browser().await?;
            page.goto(&format!(
                "http://127.0.0.1:{port}/room/{room}?name={name}{extra_query}"
            ))
            .await?;
            pages.push(page);
        }
        Ok(pages)
    }

    /// Opens a new headless Chromium with a fake camera and microphone.
    pub async fn browser(&self) -> anyhow::Result<Client> {
        self.browser_with(&[]).await
    }

    /// [`Driver::browser`] with extra Chromium flags after the usual ones (for example
    /// `--ignore-certificate-errors`, or `--host-resolver-rules=MAP name 127.0.0.1`).
    pub async fn browser_with(&self, extra_args: &[&str]) -> anyhow::Result<Client> {
        let profile = self._profiles.0.join(format!("p{}", rand_suffix()));
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--use-fake-device-for-media-stream".into(),
            "--use-fake-ui-for-media-stream".into(),
            "--allow-loopback-in-peer-connection".into(),
            "--autoplay-policy=no-user-gesture-required".into(),
            "--window-size=1280,800".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let args: Vec<String> = args
            .into_iter()
            .chain(extra_args.iter().map(|a| a.to_string()))
            .collect();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        ClientBuilder::native()
            .capabilities(caps)
            .connect(&self.url)
            .await
            .context("chromedriver refused to open a browser session")
    }
}

/// A headless Firefox (ESR) with fake media, driven by its own geckodriver (one session each).
pub struct Firefox {
    pub page: Client,
    driver: Child,
    profile: tempdir::TempDir,
}

impl Drop for Firefox {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = Command::new("pkill")
            .arg("-9")
            .arg("-f")
            .arg(self.profile.0.display().to_string())
            .status();
    }
}

/// Where Debian's firefox-esr package puts the browser.
pub const FIREFOX: &str = "/usr/bin/firefox-esr";

impl Firefox {
    /// Starts geckodriver and a headless Firefox with a fake camera and microphone and plain
    /// host candidates.
    pub async fn start() -> anyhow::Result<Firefox> {
        if !std::path::Path::new(FIREFOX).exists() {
            bail!(
                "{FIREFOX} is missing: run scripts/test, which installs firefox-esr and geckodriver"
            );
        }
        let (driver, port) = spawn_webdriver("geckodriver").await?;
        let profile =
            std::env::temp_dir().join(format!("switchyard-firefox-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&profile)?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "moz:firefoxOptions".into(),
            json!({
                "binary": FIREFOX,
                "args": ["-headless", "-profile", profile.display().to_string()],
                "prefs": {
                    "media.navigator.streams.fake": true,
                    "media.navigator.permission.disabled": true,
                    "media.peerconnection.ice.obfuscate_host_addresses": false,
                    "media.autoplay.default": 0,
                    "media.autoplay.blocking_policy": 0
                }
            }),
        );
        let page = ClientBuilder::native()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("geckodriver refused to open a Firefox session")?;
        Ok(Firefox {
            page,
            driver,
            profile: tempdir::TempDir(profile),
        })
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Runs `script` in the page (a returned promise is awaited) and returns its value.
pub async fn eval(page: &Client, script: &str) -> anyhow::Result<Value> {
    page.execute(script, vec![])
        .await
        .with_context(|| format!("script failed in the page: {script}"))
}

/// The page's receive statistics (`window.switchyard.stats()`), one object per inbound stream;
/// empty while the page has not set up its client yet.
pub async fn media_stats(page: &Client) -> Vec<Value> {
    eval(
        page,
        "return window.switchyard ? window.switchyard.stats() : []",
    )
    .await
    .ok()
    .and_then(|v| v.as_array().cloned())
    .unwrap_or_default()
}

/// The most video frames the page has decoded from any one remote participant.
pub async fn max_video_frames(page: &Client) -> u64 {
    media_stats(page)
        .await
        .iter()
        .filter(|s| s["kind"] == "video")
        .filter_map(|s| s["framesDecoded"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Runs `script` in `page` every 100 ms until it returns something other than `null` or
/// `false`, and returns that; panics after `timeout`, naming `what`.
pub async fn wait_for_script(page: &Client, what: &str, timeout: Duration, script: &str) -> Value {
    wait_for(what, timeout, async || match eval(page, script).await {
        Ok(v) if !v.is_null() && v != Value::Bool(false) => Ok(v),
        Ok(v) => Err(format!("the page returned {v}")),
        Err(e) => Err(format!("{e:#}")),
    })
    .await
}

/// One round of [`wait_until_data_flows`] in one page: `false` until its data channel is open
/// and it lists the others; then it sends a probe to the room and says whether probes from
/// every other page have reached it.
const DATA_PROBE: &str = r#"
const others = arguments[0], s = window.switchyard;
if (!s || !s.dataReady() || s.client.participants.size !== others) return false;
if (!window.__probesFrom) {
  window.__probesFrom = new Set();
  s.client.addEventListener('data', (e) => {
    if (e.detail.topic === 'test-probe') window.__probesFrom.add(e.detail.fromId);
  });
}
s.client.sendData(new Uint8Array([1]), { topic: 'test-probe' }).catch(() => {});
return window.__probesFrom.size >= others;
"#;

/// Waits until every call page has its data channel open, lists all the others, and has
/// received a data message sent to the room by each of them through the SFU. Only then does
/// a message to the room reach everyone: a page sees its channel open before the SFU has
/// registered it. The probes' topic (`test-probe`) is one the demo ignores.
pub async fn wait_until_data_flows(pages: &[&Client], timeout: Duration) {
    let others = Value::from(pages.len() - 1);
    let started = std::time::Instant::now();
    wait_for(
        "data messages to flow between all pages",
        timeout,
        async || {
            let mut waiting = Vec::new();
            for (i, page) in pages.iter().enumerate() {
                let heard = page.execute(DATA_PROBE, vec![others.clone()]).await;
                if !matches!(heard, Ok(Value::Bool(true))) {
                    waiting.push(i);
                }
            }
            if waiting.is_empty() {
                Ok(())
            } else {
                Err(format!("pages {waiting:?} (by index) are not there yet"))
            }
        },
    )
    .await;
    println!("data flows between all pages after {:?}", started.elapsed());
}
