//! The server's cost, read from `/proc/<pid>`: CPU time (user + system, including threads) and
//! resident memory. Works for any server process on this machine: ours or Janus. It only reads: it
//! never signals or writes to the process it measures.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

#[derive(Debug, thiserror::Error)]
#[error("cannot read /proc/{pid} (is the server's pid right, and on this machine?): {source}")]
pub struct UsageError {
    pid: u32,
    source: std::io::Error,
}

/// A point-in-time reading.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu: Duration,
    /// Current resident memory, bytes.
    pub rss: u64,
    /// Peak resident memory so far (VmHWM), bytes.
    pub peak_rss: u64,
}

/// The usage of several processes added up (`None` for none): CPU times and memory summed.
pub fn read_all(pids: &[u32]) -> Result<Option<Usage>, UsageError> {
    let mut total: Option<Usage> = None;
    for pid in pids {
        let u = read(*pid)?;
        total = Some(match total {
            None => u,
            Some(t) => Usage {
                cpu: t.cpu + u.cpu,
                rss: t.rss + u.rss,
                peak_rss: t.peak_rss + u.peak_rss,
            },
        });
    }
    Ok(total)
}

pub fn read(pid: u32) -> Result<Usage, UsageError> {
    let error = |source| UsageError { pid, source };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(error)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(error)?;
    // After the command name: field 3 (state) is index 0; utime and stime are 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    let kb = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Ok(Usage {
        cpu: Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND),
        rss: kb("VmRSS:"),
        peak_rss: kb("VmHWM:"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let usage = super::read(std::process::id()).unwrap();
        assert!(usage.rss > 0 && usage.peak_rss >= usage.rss);
        assert!(super::read(u32::MAX).is_err());
    }
}
