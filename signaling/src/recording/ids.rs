//! Recording ids, the path segments allowed under the recordings folder, and the clock that
//! stamps them. A leaf: it imports nothing from its siblings and touches no file.

use protocol::admin::rfc3339;
use rand::Rng;

/// `20261127-220000-` and 16 random lowercase letters and digits (about 82 bits).
pub(crate) fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let random: String = (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    let stamp: String = rfc3339(unix_now())
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let (date, time) = stamp.split_at(stamp.len().min(8));
    format!("{date}-{time}-{random}")
}

/// Whether `name` is safe as one path segment under the recordings folder: letters, digits,
/// `.`, `_` and `-`, not `..`, not hidden.
pub fn is_safe_segment(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_safe_unique_and_time_prefixed() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert!(is_safe_segment(&a), "{a}");
        assert_eq!(a.len(), "20261127-220000-".len() + 16, "{a}");
        assert!(a.starts_with("20"), "{a}");
    }

    #[test]
    fn segments_outside_the_folder_are_refused() {
        for bad in [
            "", "..", ".", "../x", "a/b", "a\\b", ".hidden", "a..b", "seg 1", "é", "a%2Fb",
        ] {
            assert!(!is_safe_segment(bad), "{bad:?}");
        }
        for good in ["playlist.m3u8", "seg_00001.m4s", "init.mp4", "20261127-x_y"] {
            assert!(is_safe_segment(good), "{good:?}");
        }
    }
}
