//! Writing to stdout ([`print`], [`print_json`]) and cleaning names of control characters
//! ([`clean`]). A leaf: it imports nothing from its siblings. It never writes to stderr, and a
//! reader that went away is never an error.

use std::io::Write as _;

use anyhow::Context;

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub(super) fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

/// The server's JSON as it came, on a line of its own (nothing for an empty answer).
pub(super) fn print_json(text: &str) -> anyhow::Result<()> {
    let text = text.trim_end();
    if text.is_empty() {
        return Ok(());
    }
    print(&format!("{text}\n"))
}

/// Names come from participants: control characters (terminal escapes) are not printed.
pub(super) fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
