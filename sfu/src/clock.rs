//! Wall-clock time for what people read (join times, event stamps). The media path never reads
//! it: it runs on the monotonic `Instant` passed in with each input.

/// Seconds since the Unix epoch (0 if the system clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
