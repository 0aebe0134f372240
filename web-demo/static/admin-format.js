// Formatting of the admin pages' numbers and text: bitrates, percentages, ages, durations, RTT,
// resolutions, frame rates, and HTML escaping. Pure functions: they never touch the DOM or the
// network.

export function formatBitrate(bps) {
  if (bps == null || !Number.isFinite(bps)) return '—';
  if (bps >= 10_000_000) return `${(bps / 1e6).toFixed(1)} Mbit/s`;
  if (bps >= 1_000_000) return `${(bps / 1e6).toFixed(2)} Mbit/s`;
  if (bps >= 1000) return `${Math.round(bps / 1000)} kbit/s`;
  if (bps > 0) return `${(bps / 1000).toFixed(1)} kbit/s`;
  return '0 kbit/s';
}

/** Kilobits per second with no unit switching (the bitrate charts' unit). */
export function formatKbps(kbps) {
  if (kbps == null || !Number.isFinite(kbps)) return '—';
  if (kbps >= 100 || kbps === 0) return `${Math.round(kbps)} kbit/s`;
  return `${kbps.toFixed(1)} kbit/s`;
}

/** A percentage, with more digits for small values (0.04 %, 1.3 %, 12 %). */
export function formatPercent(pct) {
  if (pct == null || !Number.isFinite(pct)) return '—';
  if (Number.isInteger(pct)) return `${pct} %`;
  if (pct < 0.01) return '<0.01 %';
  if (pct < 0.1) return `${pct.toFixed(2)} %`;
  if (pct < 10) return `${pct.toFixed(1)} %`;
  return `${Math.round(pct)} %`;
}

/** A loss rate (0 to 1) as a percentage. */
export function formatLoss(rate) {
  return rate == null ? '—' : formatPercent(rate * 100);
}

export function formatAge(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** A duration as m:ss or h:mm:ss (a recording's length). */
export function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.floor(seconds));
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm.padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

export function formatRtt(ms) {
  if (ms == null || !Number.isFinite(ms)) return '—';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

export function formatResolution(track) {
  return track.width && track.height ? `${track.width}×${track.height}` : '—';
}

export function formatFps(fps) {
  if (fps == null || !Number.isFinite(fps)) return '—';
  return fps >= 10 ? String(Math.round(fps)) : fps.toFixed(1);
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}
