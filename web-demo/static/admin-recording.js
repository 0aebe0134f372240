// Recordings (HLS, made by the recorder sidecar) as the admin API describes them: their states,
// lengths, badges, page links, and merging newer news of one into what is known. Shared by the
// dashboard and recordings.js. Pure: it never fetches and never touches the DOM.

/** A recording's states, in the order they happen (complete and failed are both final). */
export const RECORDING_STATES = ['starting', 'active', 'stopping', 'complete', 'failed'];
const RECORDING_RANK = { starting: 0, active: 1, stopping: 2, complete: 3, failed: 3 };

/** Whether a recording is over (its state never changes again). */
export function recordingFinished(rec) {
  return !!rec && (rec.state === 'complete' || rec.state === 'failed');
}

/** A recording's length in seconds: until it stopped, or until `now` (ms) while it runs. */
export function recordingDuration(rec, now = Date.now()) {
  if (!rec) return null;
  const start = Date.parse(rec.startedAt || '');
  if (!Number.isFinite(start)) return null;
  const stop = Date.parse(rec.stoppedAt || '');
  const end = Number.isFinite(stop) ? stop : (recordingFinished(rec) ? NaN : now);
  return Number.isFinite(end) ? Math.max(0, (end - start) / 1000) : null;
}

/** The short label of a recording's state badge (LIVE while it records). */
export function recordingBadge(state) {
  return {
    starting: 'Starting', active: 'LIVE', stopping: 'Stopping', complete: 'Complete', failed: 'Failed',
  }[state] || (state ? String(state) : 'Unknown');
}

/** The page that plays a recording. */
export function recordingPageUrl(id) {
  return `/recordings?id=${encodeURIComponent(id)}`;
}

/**
 * Merges what is known of a recording (`current`) with newer news of it (`incoming`, from an
 * event or the API). The same recording never goes back to an earlier state (an answer can be
 * older than an event that overtook it); another recording replaces it unless it started before.
 */
export function mergeRecording(current, incoming) {
  if (!incoming) return current || null;
  if (!current || current.id !== incoming.id) {
    const a = Date.parse(current?.startedAt || '');
    const b = Date.parse(incoming.startedAt || '');
    if (current && Number.isFinite(a) && Number.isFinite(b) && b < a) return current;
    return { reason: null, stoppedAt: null, playlistUrl: null, startedAt: null, ...incoming };
  }
  const merged = { ...current };
  for (const [k, v] of Object.entries(incoming)) {
    if (v !== undefined && (v !== null || k === 'reason')) merged[k] = v;
  }
  // When it started or stopped does not change once known (an event's `at` only stands in).
  if (current.startedAt) merged.startedAt = current.startedAt;
  if (current.stoppedAt) merged.stoppedAt = current.stoppedAt;
  if ((RECORDING_RANK[incoming.state] ?? 0) < (RECORDING_RANK[current.state] ?? 0)) {
    merged.state = current.state;
    merged.reason = current.reason ?? null;
  }
  return merged;
}

/** The recording fields of a `recording_*` event's data (`at` is when it happened). */
export function recordingFromEvent(event, data) {
  const rec = {
    id: data.id,
    room: data.room,
    state: data.state || (event === 'recording_started' ? 'starting' : event === 'recording_stopped' ? 'complete' : undefined),
    reason: data.reason ?? null,
    playlistUrl: data.playlistUrl ?? undefined,
    startedAt: data.startedAt ?? (event === 'recording_started' ? data.at : undefined),
    stoppedAt: data.stoppedAt ?? (event === 'recording_stopped' ? data.at : undefined),
  };
  if (!rec.playlistUrl && rec.id) rec.playlistUrl = `/recordings/${encodeURIComponent(rec.id)}/playlist.m3u8`;
  return rec;
}
