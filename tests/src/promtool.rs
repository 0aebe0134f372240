//! `promtool check metrics`: Prometheus's own check of a `/metrics` text (Debian package
//! `prometheus`, which `scripts/test` installs).

use std::io::Write;
use std::process::{Command, Stdio};

/// Checks `text` with promtool; panics with its report when it refuses. Returns the report
/// (lint warnings, if any).
pub fn promtool_check(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian package prometheus; scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool refused /metrics:\n{report}\n{text}"
    );
    report
}
