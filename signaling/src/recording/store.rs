//! Each recording's folder on disk: writing its `recording.json`, loading past recordings at
//! start-up (unfinished ones become `failed`), and ending a failed recording's playlist.
//! It never runs a sidecar and never touches the event bus.

use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::admin::{RecordingInfo, RecordingState, rfc3339};
use tracing::{info, warn};

use crate::recording::ids::{is_safe_segment, unix_now};

/// Each recording's own state file, in its folder.
pub const STATE_FILE: &str = "recording.json";
/// Reason given to recordings found unfinished at start-up.
const INTERRUPTED: &str = "the server stopped while recording";

/// Writes `info` to its folder's [`STATE_FILE`] (through a temporary file and a rename).
pub(super) fn persist(dir: &Path, info: &RecordingInfo) -> std::io::Result<()> {
    let folder = dir.join(&info.id);
    let json = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    let temporary = folder.join(format!(".{STATE_FILE}.tmp"));
    std::fs::write(&temporary, json)?;
    std::fs::rename(&temporary, folder.join(STATE_FILE))
}

/// Past recordings in `dir`; those that were running when the server stopped become `failed`.
pub(super) fn load(dir: &Path) -> Vec<RecordingInfo> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "cannot read the recordings folder");
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for entry in read.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| is_safe_segment(n)) else {
            continue;
        };
        let path = entry.path().join(STATE_FILE);
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        let mut info: RecordingInfo = match serde_json::from_slice(&text) {
            Ok(info) => info,
            Err(e) => {
                warn!(file = %path.display(), error = %e, "ignoring an unreadable recording");
                continue;
            }
        };
        if info.id != name {
            warn!(file = %path.display(), "ignoring a recording whose id is not its folder's");
            continue;
        }
        if info.state.is_running() {
            info.state = RecordingState::Failed;
            info.reason = Some(INTERRUPTED.into());
            info.stopped_at = Some(rfc3339(unix_now()));
            if let Err(e) = persist(dir, &info) {
                warn!(recording = %info.id, error = %e, "cannot write {STATE_FILE}");
            }
        }
        found.push(info);
    }
    found
}

/// How long an orphaned ffmpeg gets to finish a dead sidecar's playlist by itself.
const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// Ends the playlist of a failed recording so that players treat it as finished (VOD) rather
/// than wait for more: if, once ffmpeg has had time to close it, it still lacks
/// `#EXT-X-ENDLIST`, the tag is appended. Listed segments are complete (ffmpeg renames a
/// segment into place before listing it), so the result plays to its last segment.
pub(super) async fn close_playlist(folder: PathBuf) {
    tokio::time::sleep(ORPHAN_GRACE).await;
    let playlist = folder.join("playlist.m3u8");
    let Ok(text) = tokio::fs::read_to_string(&playlist).await else {
        return; // nothing was recorded
    };
    if text.contains("#EXT-X-ENDLIST") {
        return;
    }
    let ending = if text.ends_with('\n') { "" } else { "\n" };
    let closed = format!("{text}{ending}#EXT-X-ENDLIST\n");
    match tokio::fs::write(&playlist, closed).await {
        Ok(()) => info!(playlist = %playlist.display(), "closed the failed recording's playlist"),
        Err(error) => warn!(%error, playlist = %playlist.display(), "cannot close the playlist"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::ids::new_id;

    #[test]
    fn unfinished_recordings_are_failed_at_load() {
        let dir = std::env::temp_dir().join(format!("sy-recordings-{}", new_id()));
        let mk = |id: &str, state, started: u64| {
            std::fs::create_dir_all(dir.join(id)).unwrap();
            let info = RecordingInfo {
                id: id.into(),
                room: "demo".into(),
                state,
                reason: None,
                started_at: rfc3339(started),
                stopped_at: None,
                playlist_url: format!("/recordings/{id}/playlist.m3u8"),
            };
            persist(&dir, &info).unwrap();
        };
        mk("old", RecordingState::Complete, 10);
        mk("cut", RecordingState::Active, 20);
        std::fs::create_dir_all(dir.join("junk")).unwrap();
        std::fs::write(dir.join("junk").join(STATE_FILE), "not json").unwrap();
        let mut loaded = load(&dir);
        loaded.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].id, "cut");
        assert_eq!(loaded[0].state, RecordingState::Failed);
        assert_eq!(loaded[0].reason.as_deref(), Some(INTERRUPTED));
        assert_eq!(loaded[1].state, RecordingState::Complete);
        let on_disk: RecordingInfo =
            serde_json::from_slice(&std::fs::read(dir.join("cut").join(STATE_FILE)).unwrap())
                .unwrap();
        assert_eq!(on_disk.state, RecordingState::Failed);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
