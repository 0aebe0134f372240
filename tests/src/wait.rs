//! Waiting on a condition: poll it until it holds or a deadline passes. Never a fixed
//! sleep standing in for the condition itself.

use std::time::Duration;

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` every 100 ms until it returns `Ok`, and returns that value; panics after
/// `timeout` with `what` and the last `Err` (which should say what was seen instead).
pub async fn wait_for<T, E: std::fmt::Display>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let started = tokio::time::Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) if started.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
