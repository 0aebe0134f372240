//! A browser's own sockets, found through `/proc` and `ss`, so a test can break exactly one
//! page's connections (`ss -K`, as a Wi-Fi hand-over or a proxy restart would) and leave every
//! other page alone. It reads process tables and kills loopback TCP connections; it never touches
//! another machine.

use std::collections::HashSet;
use std::process::Command;

/// The pid of the Chromium browser process (not a renderer or utility) running with the
/// profile directory `user_data_dir`.
pub fn chromium_with_profile(user_data_dir: &str) -> Option<u32> {
    let flag = format!("--user-data-dir={user_data_dir}");
    processes()
        .into_iter()
        .find(|(_, _, cmdline)| {
            cmdline.first().is_some_and(|a| a.ends_with("chromium"))
                && cmdline.contains(&flag)
                && !cmdline.iter().any(|a| a.starts_with("--type="))
        })
        .map(|(pid, _, _)| pid)
}

/// `root` and every process descended from it.
pub fn process_tree(root: u32) -> HashSet<u32> {
    let all = processes();
    let mut tree = HashSet::from([root]);
    loop {
        let before = tree.len();
        for (pid, ppid, _) in &all {
            if tree.contains(ppid) {
                tree.insert(*pid);
            }
        }
        if tree.len() == before {
            return tree;
        }
    }
}

/// (pid, parent pid, command line) of every process.
fn processes() -> Vec<(u32, u32, Vec<String>)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // The command name may hold spaces and parentheses: the fields follow the last ')'.
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid: u32 = after.split(' ').nth(1)?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            Some((pid, ppid, args))
        })
        .collect()
}

/// Destroys every established TCP connection from one of `pids` to `127.0.0.1:server_port`
/// (the kernel resets both ends). Returns how many were destroyed.
pub fn kill_tcp(pids: &HashSet<u32>, server_port: u16) -> usize {
    let filter = format!("( dport = :{server_port} )");
    let listing = Command::new("ss")
        .args(["-tnpH", "state", "established", &filter])
        .output()
        .expect("ss (iproute2) runs");
    let mut killed = 0;
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        let owned = line.split("pid=").skip(1).any(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse().ok())
                .is_some_and(|pid: u32| pids.contains(&pid))
        });
        // Columns: Recv-Q Send-Q Local:Port Peer:Port Process.
        let local_port = line
            .split_whitespace()
            .nth(2)
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok());
        let (true, Some(local_port)) = (owned, local_port) else {
            continue;
        };
        let filter = format!("( sport = :{local_port} and dport = :{server_port} )");
        let status = Command::new("ss")
            .args(["-K", "-tnH", &filter])
            .output()
            .expect("ss -K runs");
        if status.status.success() {
            killed += 1;
        }
    }
    killed
}
