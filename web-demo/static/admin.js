// Switchyard admin dashboard (admin.html): rooms, participants and tracks live from the admin
// REST API (docs/admin-api.md) and its event stream (`GET /api/events`, Server-Sent Events read
// with fetch() because it needs the Authorization header).
//
// The top half of this module is pure (no DOM): the SSE parser, the state model that applies
// events, the formatters and the sparkline renderer. It can be imported by Node for tests. The
// browser half only runs when there is a document.

export const CHART_WINDOW_SECONDS = 60;
const TOKEN_KEY = 'switchyard.adminToken';

// ------------------------------------------------------------------------------------------------
// Server-Sent Events parser (https://html.spec.whatwg.org/multipage/server-sent-events.html)

/**
 * An incremental `text/event-stream` parser: feed it decoded text as it arrives (in chunks of any
 * size, split anywhere), get back the complete events. `lastEventId` persists across events as
 * the spec says; `retry` holds the last reconnection time the server asked for (ms), if any.
 */
export class SseParser {
  constructor() {
    this.buffer = '';
    this.skipLf = false; // the previous chunk ended in CR: an LF starting the next one is its pair
    this.lastEventId = '';
    this.retry = null;
    this.resetEvent();
  }

  resetEvent() {
    this.eventType = '';
    this.data = [];
    this.hasData = false;
  }

  /** Feeds text; returns the events completed by it: `{id, event, data}` (id as a string). */
  push(text) {
    const events = [];
    if (this.skipLf && text.startsWith('\n')) text = text.slice(1);
    this.skipLf = false;
    this.buffer += text;
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      if (cr < 0 && lf < 0) break;
      let end;
      let next;
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        end = cr;
        if (cr + 1 < this.buffer.length) {
          next = this.buffer[cr + 1] === '\n' ? cr + 2 : cr + 1;
        } else {
          next = cr + 1;
          this.skipLf = true;
        }
      } else {
        end = lf;
        next = lf + 1;
      }
      this.line(this.buffer.slice(start, end), events);
      start = next;
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  line(line, events) {
    if (line === '') {
      if (this.hasData) {
        events.push({
          id: this.lastEventId,
          event: this.eventType || 'message',
          data: this.data.join('\n'),
        });
      }
      this.resetEvent();
      return;
    }
    if (line.startsWith(':')) return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event': this.eventType = value; break;
      case 'data': this.data.push(value); this.hasData = true; break;
      case 'id': if (!value.includes('\0')) this.lastEventId = value; break;
      case 'retry': if (/^\d+$/.test(value)) this.retry = Number(value); break;
      default: break;
    }
  }
}

/**
 * One-shot convenience over SseParser: parses `chunk` appended to the unparsed `rest` of a
 * previous call, up to the last blank line. Returns `{events, rest}`; pass `rest` back in with
 * the next chunk. (Ids do not carry over between calls; SseParser keeps them.)
 */
export function parseSseChunk(rest, chunk) {
  const text = (rest || '') + chunk;
  // A lone CR at the very end may be the first half of a CRLF: not a boundary yet.
  const boundary = /(?:\r\n|\r(?!\n|$)|\n)(?:\r\n|\r(?!\n|$)|\n)/g;
  let cut = 0;
  for (let m; (m = boundary.exec(text));) cut = m.index + m[0].length;
  const events = cut ? new SseParser().push(text.slice(0, cut)) : [];
  return { events, rest: text.slice(cut) };
}

// ------------------------------------------------------------------------------------------------
// Formatting

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

// ------------------------------------------------------------------------------------------------
// Recordings (HLS, made by the recorder sidecar): shared with recordings.js

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

/** The smallest 1, 2 or 5 × 10^n that is at least `value` (and at least `floor`). */
export function niceMax(value, floor = 1) {
  const v = Math.max(Number.isFinite(value) ? value : 0, floor);
  const exp = Math.floor(Math.log10(v));
  const base = 10 ** exp;
  for (const m of [1, 2, 5, 10]) {
    const candidate = m * base;
    if (candidate >= v * (1 - 1e-9)) return Number(candidate.toPrecision(12));
  }
  return 10 * base;
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

// ------------------------------------------------------------------------------------------------
// Sparklines: inline SVG generated from samples `{t (ms), v}`

const CHART_W = 280;
const CHART_H = 76;
const PLOT = { left: 4, right: CHART_W - 4, top: 20, bottom: CHART_H - 14 };

/**
 * The inside of a chart's `<svg>`: the area and line of the samples over the last
 * `windowSeconds` ending at `now` (ms), the axis max (top left) and the current value (top
 * right). `max` is computed with niceMax from the samples and `floor`. A gap over `gapSeconds`
 * between samples breaks the line.
 */
export function sparklineContent({
  points = [], now, windowSeconds = CHART_WINDOW_SECONDS, floor = 1, format = String,
  title = '', gapSeconds = 7,
}) {
  const end = now ?? (points.length ? points[points.length - 1].t : 0);
  const start = end - windowSeconds * 1000;
  const visible = points.filter((p) => p.t >= start && p.t <= end && Number.isFinite(p.v));
  const peak = visible.reduce((m, p) => Math.max(m, p.v), 0);
  const max = niceMax(peak, floor);
  const current = visible.length ? visible[visible.length - 1].v : null;
  const x = (t) => PLOT.left + ((t - start) / (end - start || 1)) * (PLOT.right - PLOT.left);
  const y = (v) => PLOT.bottom - (Math.min(v, max) / max) * (PLOT.bottom - PLOT.top);
  const r = (n) => Math.round(n * 10) / 10;

  // Split into runs at gaps; each run becomes one polyline and one filled area.
  const runs = [];
  let run = [];
  for (const p of visible) {
    if (run.length && p.t - run[run.length - 1].t > gapSeconds * 1000) {
      runs.push(run);
      run = [];
    }
    run.push(p);
  }
  if (run.length) runs.push(run);

  const parts = [];
  const label = title
    ? `${title}: ${current == null ? 'no data yet' : `now ${format(current)}`}, axis max ${format(max)}, last ${windowSeconds} s`
    : '';
  if (label) parts.push(`<title>${escapeHtml(label)}</title>`);
  parts.push(`<rect class="chart-bg" x="0" y="0" width="${CHART_W}" height="${CHART_H}" rx="8"></rect>`);
  parts.push(`<line class="chart-grid" x1="${PLOT.left}" y1="${PLOT.top}" x2="${PLOT.right}" y2="${PLOT.top}"></line>`);
  const mid = r((PLOT.top + PLOT.bottom) / 2);
  parts.push(`<line class="chart-grid mid" x1="${PLOT.left}" y1="${mid}" x2="${PLOT.right}" y2="${mid}"></line>`);
  parts.push(`<line class="chart-axis" x1="${PLOT.left}" y1="${PLOT.bottom}" x2="${PLOT.right}" y2="${PLOT.bottom}"></line>`);
  for (const seg of runs) {
    const coords = seg.map((p) => `${r(x(p.t))},${r(y(p.v))}`);
    if (seg.length === 1) {
      parts.push(`<circle class="chart-dot" cx="${r(x(seg[0].t))}" cy="${r(y(seg[0].v))}" r="2"></circle>`);
      continue;
    }
    const area = [`${r(x(seg[0].t))},${PLOT.bottom}`, ...coords, `${r(x(seg[seg.length - 1].t))},${PLOT.bottom}`];
    parts.push(`<polygon class="chart-area" points="${area.join(' ')}"></polygon>`);
    parts.push(`<polyline class="chart-line" points="${coords.join(' ')}"></polyline>`);
  }
  parts.push(`<text class="chart-max" x="${PLOT.left + 2}" y="13">max ${escapeHtml(format(max))}</text>`);
  parts.push(`<text class="chart-now" x="${PLOT.right - 2}" y="13" text-anchor="end">${current == null ? 'no data yet' : escapeHtml(format(current))}</text>`);
  parts.push(`<text class="chart-tick" x="${PLOT.left + 2}" y="${CHART_H - 3}">−${windowSeconds} s</text>`);
  parts.push(`<text class="chart-tick" x="${PLOT.right - 2}" y="${CHART_H - 3}" text-anchor="end">now</text>`);
  return { svg: parts.join(''), label, max, current };
}

/** A whole `<svg data-chart=…>` element as a string (see sparklineContent). */
export function renderSparkline(opts) {
  const { svg, label } = sparklineContent(opts);
  const kind = escapeHtml(opts.chart || 'chart');
  return `<svg class="chart" data-chart="${kind}" viewBox="0 0 ${CHART_W} ${CHART_H}" role="img" aria-label="${escapeHtml(label)}" preserveAspectRatio="xMidYMid meet">${svg}</svg>`;
}

// ------------------------------------------------------------------------------------------------
// State: rooms with their participants and tracks, and per-participant stats history

function byJoinThenIdentity(a, b) {
  const ta = Date.parse(a.joinedAt || '') || 0;
  const tb = Date.parse(b.joinedAt || '') || 0;
  return ta - tb || String(a.identity).localeCompare(String(b.identity));
}

/**
 * The dashboard's model: rooms (summary fields, participants, tracks) and a short stats history
 * per participant. `apply(event)` returns the rooms whose detail should be reloaded.
 * `clock()` gives the local time in ms (for room ages).
 */
export class AdminModel {
  constructor(clock = () => Date.now()) {
    this.clock = clock;
    this.rooms = new Map();
    this.history = new Map(); // `${room}\n${identity}` -> [{t, bitrate (kbit/s), loss (%)}]
    this.lastEventId = 0;
    this.serverNow = 0; // ms: the newest `at` of a stats event
    this.loadedOnce = false;
  }

  static key(room, identity) { return `${room}\n${identity}`; }

  ensureRoom(name, at) {
    let room = this.rooms.get(name);
    if (!room) {
      const created = at ? Date.parse(at) : NaN;
      room = {
        name, participantCount: 0, publisherCount: 0, bitrateIn: 0, bitrateOut: 0,
        createdAt: at || null, ageSeconds: 0, settings: null, participants: [], recording: null,
        fetchedAt: Number.isFinite(created) ? Math.min(this.clock(), created) : this.clock(),
        loaded: false,
      };
      this.rooms.set(name, room);
    }
    return room;
  }

  /** A summary (from `GET /api/rooms` or a room's detail): updates or adds the room. */
  setSummary(summary) {
    const room = this.ensureRoom(summary.name);
    for (const k of ['participantCount', 'publisherCount', 'bitrateIn', 'bitrateOut', 'createdAt', 'ageSeconds', 'settings']) {
      if (summary[k] !== undefined) room[k] = summary[k];
    }
    room.fetchedAt = this.clock();
    return room;
  }

  /** A room's detail (`GET /api/rooms/{room}`): replaces its participants. */
  setDetail(detail) {
    const room = this.setSummary(detail);
    room.participants = (detail.participants || []).map((p) => ({ ...p, tracks: (p.tracks || []).map((t) => ({ ...t })) }));
    room.participants.sort(byJoinThenIdentity);
    if (detail.recording !== undefined) {
      // No recording now: a finished one stays on show (with its link) until another starts.
      room.recording = detail.recording
        ? mergeRecording(room.recording, detail.recording)
        : (recordingFinished(room.recording) ? room.recording : null);
    }
    room.loaded = true;
    const present = new Set(room.participants.map((p) => AdminModel.key(room.name, p.identity)));
    for (const key of this.history.keys()) {
      if (key.startsWith(`${room.name}\n`) && !present.has(key)) this.history.delete(key);
    }
    return room;
  }

  /** The full state: every open room's detail (a room missing here has closed). */
  setSnapshot(details) {
    const names = new Set();
    for (const d of details) {
      if (!d) continue;
      names.add(d.name);
      this.setDetail(d);
    }
    for (const name of [...this.rooms.keys()]) {
      if (!names.has(name)) this.removeRoom(name);
    }
    this.loadedOnce = true;
  }

  removeRoom(name) {
    this.rooms.delete(name);
    for (const key of this.history.keys()) {
      if (key.startsWith(`${name}\n`)) this.history.delete(key);
    }
  }

  participant(roomName, identity) {
    return this.rooms.get(roomName)?.participants.find((p) => p.identity === identity);
  }

  /**
   * Applies one event `{id, event, data}` (data parsed). Returns `{refresh: [room names],
   * changed: bool, gap: bool}`; gap is true when ids skipped (events were missed).
   */
  apply({ id, event, data }) {
    const out = { refresh: [], changed: true, gap: false };
    const n = Number(id);
    if (Number.isFinite(n) && n > 0) {
      if (this.lastEventId && n > this.lastEventId + 1) out.gap = true;
      // Ids only grow within a server's life; a smaller one means it restarted: follow it.
      this.lastEventId = n;
    }
    const name = data && data.room;
    if (typeof name !== 'string') {
      out.changed = false;
      return out;
    }
    switch (event) {
      case 'room_created':
        this.ensureRoom(name, data.at);
        out.refresh.push(name);
        break;
      case 'room_closed':
        this.removeRoom(name);
        break;
      case 'participant_joined':
      case 'participant_reconnected': {
        const room = this.ensureRoom(name);
        let p = room.participants.find((q) => q.identity === data.identity);
        if (!p) {
          p = {
            id: data.participantId, identity: data.identity, name: data.name || data.identity,
            joinedAt: data.at, state: 'connecting', candidateType: null, rttMs: null,
            grants: { hidden: !!data.hidden }, tracks: [], subscriptions: [],
          };
          room.participants.push(p);
          room.participants.sort(byJoinThenIdentity);
          if (!data.hidden) room.participantCount = room.participants.filter((q) => !q.grants?.hidden).length;
        } else if (data.participantId) {
          p.id = data.participantId;
        }
        out.refresh.push(name);
        break;
      }
      case 'participant_left': {
        const room = this.rooms.get(name);
        if (room) {
          room.participants = room.participants.filter((p) => p.identity !== data.identity);
          room.participantCount = room.participants.filter((q) => !q.grants?.hidden).length;
          this.history.delete(AdminModel.key(name, data.identity));
          out.refresh.push(name);
        }
        break;
      }
      case 'track_published': {
        const p = this.participant(name, data.identity);
        if (p && !p.tracks.some((t) => t.id === data.trackId)) {
          p.tracks.push({ id: data.trackId, kind: data.kind, codec: data.codec, muted: false, bitrate: 0, lossRate: 0 });
        }
        this.ensureRoom(name);
        out.refresh.push(name);
        break;
      }
      case 'track_unpublished': {
        const p = this.participant(name, data.identity);
        if (p) p.tracks = p.tracks.filter((t) => t.id !== data.trackId);
        this.ensureRoom(name);
        out.refresh.push(name);
        break;
      }
      case 'track_muted': {
        const t = this.participant(name, data.identity)?.tracks.find((x) => x.id === data.trackId);
        if (t && typeof data.muted === 'boolean') t.muted = data.muted;
        this.ensureRoom(name);
        out.refresh.push(name);
        break;
      }
      case 'recording_started':
      case 'recording_updated':
      case 'recording_stopped': {
        // A recording outlives its room for a moment (it stops when the room closes).
        const room = this.rooms.get(name);
        if (!room || typeof data.id !== 'string') {
          out.changed = false;
          break;
        }
        room.recording = mergeRecording(room.recording, recordingFromEvent(event, data));
        break;
      }
      case 'stats':
        this.applyStats(name, data, out);
        break;
      default:
        out.changed = false;
    }
    return out;
  }

  applyStats(name, data, out) {
    const room = this.rooms.get(name);
    const t = Date.parse(data.at);
    if (Number.isFinite(t) && t > this.serverNow) this.serverNow = t;
    if (!room) return;
    for (const k of ['participantCount', 'bitrateIn', 'bitrateOut']) {
      if (typeof data[k] === 'number') room[k] = data[k];
    }
    let unknown = false;
    for (const sp of data.participants || []) {
      const tracks = sp.tracks || [];
      const bitrate = tracks.reduce((sum, tr) => sum + (tr.bitrate || 0), 0) / 1000;
      const loss = tracks.reduce((m, tr) => Math.max(m, tr.lossRate || 0), 0) * 100;
      if (Number.isFinite(t)) this.record(name, sp.identity, { t, bitrate, loss });
      const p = room.participants.find((q) => q.identity === sp.identity);
      if (!p) {
        unknown = true;
        continue;
      }
      for (const k of ['state', 'candidateType', 'rttMs']) {
        if (sp[k] !== undefined) p[k] = sp[k];
      }
      if (Array.isArray(sp.tracks)) {
        const previous = new Map(p.tracks.map((tr) => [tr.id, tr]));
        p.tracks = tracks.map((tr) => ({ ...(previous.get(tr.id) || {}), ...tr }));
      }
    }
    room.publisherCount = room.participants.filter((p) => p.tracks.length > 0).length;
    if (unknown) out.refresh.push(name);
  }

  record(room, identity, sample) {
    const key = AdminModel.key(room, identity);
    let list = this.history.get(key);
    if (!list) this.history.set(key, (list = []));
    // Replayed history can repeat a time; keep samples ordered and unique per time.
    if (list.length && list[list.length - 1].t >= sample.t) {
      const i = list.findIndex((s) => s.t >= sample.t);
      if (list[i].t === sample.t) list[i] = sample;
      else list.splice(i, 0, sample);
    } else {
      list.push(sample);
    }
    const horizon = list[list.length - 1].t - (CHART_WINDOW_SECONDS + 10) * 1000;
    while (list.length && list[0].t < horizon) list.shift();
  }

  samples(room, identity) {
    return this.history.get(AdminModel.key(room, identity)) || [];
  }

  /** A room's age in seconds now. */
  age(room) {
    return (room.ageSeconds || 0) + Math.max(0, (this.clock() - room.fetchedAt) / 1000);
  }

  /** Rooms sorted by name, as plain data (the test hook's `rooms()`). */
  list() {
    return [...this.rooms.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((r) => ({
        name: r.name,
        participantCount: r.participantCount,
        publisherCount: r.publisherCount,
        bitrateIn: r.bitrateIn,
        bitrateOut: r.bitrateOut,
        ageSeconds: Math.floor(this.age(r)),
        recording: r.recording ? { ...r.recording } : null,
        participants: r.participants.map((p) => ({
          id: p.id,
          identity: p.identity,
          name: p.name,
          state: p.state,
          candidateType: p.candidateType ?? null,
          rttMs: p.rttMs ?? null,
          hidden: !!p.grants?.hidden,
          tracks: p.tracks.map((t) => ({
            id: t.id, kind: t.kind, codec: t.codec, muted: !!t.muted,
            width: t.width ?? null, height: t.height ?? null, fps: t.fps ?? null,
            bitrate: t.bitrate ?? 0, lossRate: t.lossRate ?? 0,
          })),
        })),
      }));
  }
}

// ------------------------------------------------------------------------------------------------
// API errors

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Parses an error response body; falls back to the status line. */
export function apiErrorFrom(status, bodyText, retryAfter = null) {
  let code = status === 0 ? 'network' : `http_${status}`;
  let message = '';
  try {
    const body = JSON.parse(bodyText);
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || '';
    }
  } catch {
    message = (bodyText || '').trim().slice(0, 200);
  }
  return new ApiError(status, code, message, retryAfter == null ? null : Number(retryAfter));
}

/**
 * What to tell the user about an error: `{text, advice, signIn}` where signIn says the token is
 * unusable (show the sign-in form again).
 */
export function describeApiError(err) {
  const message = err && err.message ? err.message : String(err);
  const status = err instanceof ApiError ? err.status : 0;
  const code = err instanceof ApiError ? err.code : 'network';
  const head = status ? `${message || 'Request failed'} (${code}, HTTP ${status})` : message;
  switch (code) {
    case 'recorder_unavailable':
      return { text: head, advice: 'Recording needs the recorder sidecar (recorder/): start it, check that the server can reach it, then try again.', signIn: false };
    case 'recording_in_progress':
      return { text: head, advice: 'This room is already being recorded: stop that recording first, or watch it.', signIn: false };
    case 'no_recording':
      return { text: head, advice: 'The room has no recording in progress any more: the dashboard shows its last one.', signIn: false };
    default:
      break;
  }
  switch (status) {
    case 401:
      return { text: head, advice: 'Your admin token was refused or has expired. Sign in again with a valid token.', signIn: true };
    case 403:
      return { text: head, advice: 'This token may not do that: use an admin token with the roomAdmin grant (and no room, to see every room).', signIn: false };
    case 404:
      return { text: head, advice: 'It has probably just left or closed. The list has been refreshed.', signIn: false };
    case 429: {
      const wait = err.retryAfter ? ` in ${err.retryAfter} s` : ' in a minute';
      return { text: head, advice: `Too many failed sign-ins from this address. Try again${wait} with a valid token.`, signIn: true };
    }
    case 0:
      return { text: `Cannot reach the server: ${message}`, advice: 'Check that Switchyard is running; the dashboard keeps retrying.', signIn: false };
    default:
      return { text: head, advice: status >= 500 ? 'The server had a problem; try again shortly.' : 'Check the request and try again.', signIn: false };
  }
}

/** The `room` claim of a JWT (a room-scoped admin token), or '' (every room). Not verified. */
export function tokenRoom(token) {
  try {
    const part = token.split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const json = typeof atob === 'function' ? atob(b64) : Buffer.from(b64, 'base64').toString('binary');
    const claims = JSON.parse(decodeURIComponent(escape(json)));
    return typeof claims.room === 'string' ? claims.room : '';
  } catch {
    return '';
  }
}

/** Reconnection delay (ms) for the n-th attempt in a row (1, 2, 4 … 30 s, ±20 %). */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(30_000, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

// ------------------------------------------------------------------------------------------------
// Browser

// Only on the dashboard page: recordings.js imports this module for its helpers.
if (typeof document !== 'undefined' && document.getElementById('admin-dashboard')) {
  startDashboard();
}

function startDashboard() {
  const $ = (id) => document.getElementById(id);
  const model = new AdminModel();
  const STALL_MS = 45_000; // the server sends a keep-alive comment every 15 s

  let token = '';
  let scope = ''; // a room-scoped token sees only its room
  let state = 'signed-out';
  let generation = 0; // bumps on sign-in/out; stale loops stop
  let abort = null;
  const refreshTimers = new Map();
  const refreshing = new Map(); // room -> {again: bool}
  let renderQueued = false;
  let resyncTimer = null;
  const recordingErrors = new Map(); // room -> {text, advice}: the last start/stop that failed
  const recordingBusy = new Set(); // rooms with a start/stop request in flight

  // ---------------------------------------------------------------- test hooks
  window.switchyardAdmin = {
    state: () => state,
    rooms: () => model.list(),
    lastEventId: () => model.lastEventId,
    history: (room, identity) => model.samples(room, identity).map((s) => ({ ...s })),
    /** The error shown by the room's recording controls (text and advice), or null. */
    recordingError: (room) => {
      const e = recordingErrors.get(room);
      return e ? `${e.text} ${e.advice}`.trim() : null;
    },
  };

  // ---------------------------------------------------------------- DOM helpers
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c != null) el.append(c);
    return el;
  }
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }
  function setAttr(el, name, value) {
    if (el.getAttribute(name) !== value) el.setAttribute(name, value);
  }

  function setState(next, text) {
    state = next;
    const pill = $('admin-connection');
    pill.dataset.state = next;
    const labels = { 'signed-out': 'Signed out', connecting: 'Connecting…', live: 'Live', error: 'Error' };
    setText(pill.querySelector('.text'), text || labels[next]);
    $('admin-signout').hidden = next === 'signed-out' || (next === 'error' && !token);
    scheduleRender();
  }

  // ---------------------------------------------------------------- banners & toasts
  function showBanner(text, { kind = 'error', advice = '', action = null, key = text } = {}) {
    const box = $('admin-banners');
    for (const b of box.children) if (b.dataset.key === key) b.remove();
    const msg = h('span', { class: 'msg' }, h('strong', { text }));
    if (advice) msg.append(h('span', { class: 'advice', text: advice }));
    const banner = h('div', { class: `banner ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-key': key }, msg);
    if (action) {
      banner.append(h('button', { class: 'btn small', type: 'button', text: action.label, onclick: () => { banner.remove(); action.run(); } }));
    }
    banner.append(h('button', { class: 'dismiss', type: 'button', 'aria-label': 'Dismiss', text: '×', onclick: () => banner.remove() }));
    box.append(banner);
    if (kind === 'info') setTimeout(() => banner.remove(), 6000);
    return banner;
  }
  function clearBanners(pred = () => true) {
    for (const b of [...$('admin-banners').children]) if (pred(b)) b.remove();
  }
  function showError(err, context, offerSignIn = true) {
    const d = describeApiError(err);
    const action = d.signIn && offerSignIn ? { label: 'Sign in again', run: () => signOut() } : null;
    showBanner(context ? `${context}: ${d.text}` : d.text, { advice: d.advice, action, key: context || d.text });
  }
  function toast(text) {
    const el = h('div', { class: 'toast', text });
    $('admin-toasts').append(el);
    setTimeout(() => el.remove(), 3200);
  }

  // ---------------------------------------------------------------- API
  async function api(method, path, body) {
    let res;
    try {
      res = await fetch(path, {
        method,
        cache: 'no-store',
        headers: {
          Authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (e) {
      throw new ApiError(0, 'network', e.message || 'network error');
    }
    const text = res.status === 204 ? '' : await res.text();
    if (!res.ok) throw apiErrorFrom(res.status, text, res.headers.get('Retry-After'));
    return text ? JSON.parse(text) : null;
  }
  const roomPath = (room) => `/api/rooms/${encodeURIComponent(room)}`;

  /** A token that no longer works: back to the sign-in form, with the reason. */
  function tokenRejected(err) {
    stopStream();
    token = '';
    try { sessionStorage.removeItem(TOKEN_KEY); } catch {}
    clearBanners();
    showError(err, 'Signed out', false); // the sign-in form is shown right below
    setState('error', err.status === 429 ? 'Too many attempts' : 'Token refused');
    $('admin-token').focus();
  }
  function isAuthError(err) {
    return err instanceof ApiError && (err.status === 401 || err.status === 429 || (err.status === 403 && !model.rooms.size));
  }

  // ---------------------------------------------------------------- loading
  async function loadSnapshot() {
    let summaries;
    if (scope) {
      summaries = [{ name: scope }];
    } else {
      summaries = (await api('GET', '/api/rooms')).rooms || [];
    }
    const details = await Promise.all(summaries.map((s) => api('GET', roomPath(s.name)).catch((e) => {
      if (e instanceof ApiError && e.status === 404) return null; // closed meanwhile
      throw e;
    })));
    model.setSnapshot(details.filter(Boolean));
    scheduleRender();
  }

  function scheduleRefresh(room, delay = 120) {
    if (refreshTimers.has(room)) return;
    refreshTimers.set(room, setTimeout(() => {
      refreshTimers.delete(room);
      refreshRoom(room);
    }, delay));
  }
  async function refreshRoom(room) {
    const running = refreshing.get(room);
    if (running) {
      running.again = true;
      return;
    }
    const entry = { again: false };
    refreshing.set(room, entry);
    const gen = generation;
    try {
      const detail = await api('GET', roomPath(room));
      if (gen === generation) model.setDetail(detail);
    } catch (err) {
      if (gen !== generation) return;
      if (err instanceof ApiError && err.status === 404) model.removeRoom(room);
      else if (isAuthError(err)) tokenRejected(err);
      // Unreachable: the stream notices too, and reloads everything once it is back.
      else if (!(err instanceof ApiError && err.status === 0)) showError(err, `Could not load room ${room}`);
    } finally {
      refreshing.delete(room);
      scheduleRender();
      if (entry.again && gen === generation) scheduleRefresh(room, 0);
    }
  }
  function scheduleResync() {
    clearTimeout(resyncTimer);
    resyncTimer = setTimeout(() => {
      const gen = generation;
      loadSnapshot().catch((err) => {
        if (gen !== generation) return;
        if (isAuthError(err)) tokenRejected(err);
        else if (!(err instanceof ApiError && err.status === 0)) showError(err, 'Could not reload the rooms');
      });
    }, 300);
  }

  // ---------------------------------------------------------------- event stream
  function stopStream() {
    generation += 1;
    if (abort) abort.abort();
    abort = null;
    for (const t of refreshTimers.values()) clearTimeout(t);
    refreshTimers.clear();
    clearTimeout(resyncTimer);
  }

  function handleEvent(ev) {
    let data;
    try { data = JSON.parse(ev.data); } catch { return; }
    const result = model.apply({ id: ev.id, event: ev.event, data });
    for (const room of result.refresh) scheduleRefresh(room);
    // A room-scoped stream skips other rooms' ids; only the full stream can tell a gap.
    if (result.gap && !scope) scheduleResync();
    if (result.changed) scheduleRender();
  }

  async function run(gen) {
    let attempt = 0;
    while (gen === generation) {
      setState('connecting', attempt ? 'Reconnecting…' : 'Connecting…');
      const controller = new AbortController();
      abort = controller;
      let snapshotError = null;
      let serverRetry = null;
      let active = true; // this attempt's stream is still the current one
      let stall = null;
      const armStall = () => {
        clearTimeout(stall);
        stall = setTimeout(() => controller.abort(), STALL_MS);
      };
      try {
        const headers = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' };
        if (model.lastEventId) headers['Last-Event-ID'] = String(model.lastEventId);
        const url = scope ? `/api/events?room=${encodeURIComponent(scope)}` : '/api/events';
        armStall();
        let res;
        try {
          res = await fetch(url, { headers, cache: 'no-store', signal: controller.signal });
        } catch (e) {
          throw controller.signal.aborted ? e : new ApiError(0, 'network', e.message || 'network error');
        }
        if (!res.ok) throw apiErrorFrom(res.status, await res.text(), res.headers.get('Retry-After'));

        // The stream is open: load the full state while its events queue up, then apply them.
        let queue = [];
        loadSnapshot().then(() => {
          if (gen !== generation || !active) return;
          const pending = queue;
          queue = null;
          for (const ev of pending) handleEvent(ev);
          attempt = 0;
          clearBanners((b) => b.dataset.key === 'stream');
          setState('live');
        }, (err) => {
          if (!active) return;
          snapshotError = err;
          controller.abort();
        });

        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        const parser = new SseParser();
        for (;;) {
          const { value, done } = await reader.read();
          if (done || gen !== generation) break;
          armStall();
          for (const ev of parser.push(decoder.decode(value, { stream: true }))) {
            if (queue) queue.push(ev);
            else handleEvent(ev);
          }
        }
        serverRetry = parser.retry;
        throw new ApiError(0, 'network', 'the event stream ended');
      } catch (err) {
        active = false;
        clearTimeout(stall);
        if (gen !== generation) return;
        const error = snapshotError || err;
        if (isAuthError(error)) {
          tokenRejected(error);
          return;
        }
        attempt += 1;
        const delay = serverRetry && attempt === 1 ? serverRetry : backoffDelay(attempt);
        if (attempt >= 2 || !(error instanceof ApiError && error.status === 0)) {
          const d = describeApiError(error instanceof ApiError ? error : new ApiError(0, 'network', error.message || 'connection lost'));
          showBanner(`Live updates interrupted: ${d.text}`, { advice: `Reconnecting in ${Math.round(delay / 1000)} s. ${d.advice}`, key: 'stream' });
        }
        const secs = Math.max(1, Math.round(delay / 1000));
        // A few failures in a row: the server is down or unreachable, not just a blip.
        if (attempt >= 3) setState('error', `Offline · retrying in ${secs} s`);
        else setState('connecting', `Reconnecting in ${secs} s…`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      } finally {
        clearTimeout(stall);
      }
    }
  }

  // ---------------------------------------------------------------- sign-in
  function signIn(newToken) {
    const t = (newToken || '').trim().replace(/^Bearer\s+/i, '');
    if (!t) return;
    stopStream();
    token = t;
    scope = tokenRoom(t);
    try { sessionStorage.setItem(TOKEN_KEY, t); } catch {}
    resetModel();
    clearBanners();
    $('admin-token').value = '';
    $('admin-scope').textContent = scope ? `Room ${scope} only` : '';
    $('admin-scope').hidden = !scope;
    run(generation);
  }
  function signOut() {
    stopStream();
    token = '';
    try { sessionStorage.removeItem(TOKEN_KEY); } catch {}
    resetModel();
    setState('signed-out');
    $('admin-token').focus();
  }

  function resetModel() {
    recordingErrors.clear();
    model.rooms.clear();
    model.history.clear();
    model.lastEventId = 0;
    model.serverNow = 0;
    model.loadedOnce = false;
  }

  async function probeDevToken() {
    try {
      const res = await fetch('/api/dev-admin-token', { cache: 'no-store' });
      if (res.status === 404) $('admin-dev-token').hidden = true;
    } catch {}
  }
  async function useDevToken() {
    const button = $('admin-dev-token');
    button.disabled = true;
    try {
      const res = await fetch('/api/dev-admin-token', { cache: 'no-store' });
      if (res.status === 404) {
        button.hidden = true;
        showBanner('This server is not in dev mode, so it gives out no dev admin token.', { advice: 'Paste an admin token (a JWT with the roomAdmin grant) instead.', key: 'dev' });
        return;
      }
      const text = await res.text();
      if (!res.ok) throw apiErrorFrom(res.status, text);
      signIn(JSON.parse(text).token);
    } catch (err) {
      showError(err instanceof ApiError ? err : new ApiError(0, 'network', err.message), 'Could not get a dev admin token');
    } finally {
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- confirm dialog & actions
  let dialogReturn = null;
  function confirmAction({ title, text, confirmLabel, run: action }) {
    const overlay = $('admin-dialog');
    $('admin-dialog-title').textContent = title;
    $('admin-dialog-text').textContent = text;
    const ok = $('admin-dialog-confirm');
    ok.textContent = confirmLabel;
    ok.disabled = false;
    dialogReturn = document.activeElement;
    overlay.hidden = false;
    ok.onclick = async () => {
      ok.disabled = true;
      closeDialog();
      await action();
    };
    $('admin-dialog-cancel').focus();
  }
  function closeDialog() {
    $('admin-dialog').hidden = true;
    const back = dialogReturn;
    dialogReturn = null;
    if (back && back.isConnected) back.focus();
  }

  async function act(run, success, failure, room) {
    try {
      await run();
      toast(success);
    } catch (err) {
      if (isAuthError(err) && err.status !== 403) {
        tokenRejected(err);
        return;
      }
      showError(err, failure);
    } finally {
      if (room && model.rooms.has(room)) scheduleRefresh(room, 0);
    }
  }

  function onAction(e) {
    const button = e.target.closest('button[data-action]');
    if (!button) return;
    const roomEl = button.closest('[data-room]');
    const room = roomEl?.dataset.room;
    const identity = button.closest('[data-identity]')?.dataset.identity;
    const who = identity ? (model.participant(room, identity)?.name || identity) : '';
    switch (button.dataset.action) {
      case 'close-room':
        confirmAction({
          title: `Close room “${room}”?`,
          text: 'Everyone in it is disconnected now (their pages say the room was closed).',
          confirmLabel: 'Close room',
          run: () => act(() => api('DELETE', roomPath(room)), `Closed room ${room}`, `Could not close room ${room}`, null),
        });
        break;
      case 'remove':
        confirmAction({
          title: `Remove ${who}?`,
          text: `${who} (${identity}) is disconnected from room ${room}; their page says they were removed.`,
          confirmLabel: 'Remove',
          run: () => act(() => api('DELETE', `${roomPath(room)}/participants/${encodeURIComponent(identity)}`),
            `Removed ${who} from ${room}`, `Could not remove ${who}`, room),
        });
        break;
      case 'mute': {
        const trackId = button.closest('[data-track]')?.dataset.track;
        const track = model.participant(room, identity)?.tracks.find((t) => t.id === trackId);
        const muted = !(track ? track.muted : button.dataset.muted === 'true');
        const verb = muted ? 'Mute' : 'Unmute';
        const kind = track?.kind || 'track';
        confirmAction({
          title: `${verb} ${who}’s ${kind}?`,
          text: muted
            ? `Nobody in ${room} receives this ${kind} (${trackId}) until it is unmuted.`
            : `Everyone in ${room} receives this ${kind} (${trackId}) again.`,
          confirmLabel: verb,
          run: () => act(async () => {
            const updated = await api('POST', `${roomPath(room)}/participants/${encodeURIComponent(identity)}/tracks/${encodeURIComponent(trackId)}/mute`, { muted });
            const t = model.participant(room, identity)?.tracks.find((x) => x.id === trackId);
            if (t) {
              Object.assign(t, updated && typeof updated === 'object' ? updated : {}, { muted: updated?.muted ?? muted });
              scheduleRender();
            }
          }, `${muted ? 'Muted' : 'Unmuted'} ${who}’s ${kind}`, `Could not ${verb.toLowerCase()} ${who}’s ${kind}`, room),
        });
        break;
      }
      case 'start-recording':
      case 'stop-recording':
        recordingAction(room, button.dataset.action === 'start-recording');
        break;
      default:
        break;
    }
  }

  /** Starts (POST) or stops (DELETE) a room's recording; the answer is the recording. */
  async function recordingAction(room, start) {
    if (!room || recordingBusy.has(room)) return;
    recordingBusy.add(room);
    recordingErrors.delete(room);
    scheduleRender();
    const gen = generation;
    try {
      const rec = await api(start ? 'POST' : 'DELETE', `${roomPath(room)}/recording`, start ? {} : undefined);
      if (gen !== generation) return;
      const r = model.rooms.get(room);
      if (r && rec && typeof rec.id === 'string') r.recording = mergeRecording(r.recording, rec);
      toast(start ? `Recording ${room}` : `Stopping the recording of ${room}`);
    } catch (err) {
      if (gen !== generation) return;
      if (isAuthError(err) && err.status !== 403) {
        tokenRejected(err);
        return;
      }
      const d = describeApiError(err);
      recordingErrors.set(room, {
        text: `Could not ${start ? 'start' : 'stop'} the recording: ${d.text}.`,
        advice: d.advice,
      });
    } finally {
      recordingBusy.delete(room);
      if (gen === generation) {
        scheduleRender();
        if (model.rooms.has(room)) scheduleRefresh(room, 0);
      }
    }
  }

  // ---------------------------------------------------------------- rendering
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => {
      renderQueued = false;
      render();
    }, 16);
  }

  function hue(text) {
    let x = 0;
    for (const c of String(text)) x = (x * 31 + c.codePointAt(0)) % 360;
    return x;
  }
  function initials(name) {
    const parts = String(name || '?').trim().split(/\s+/);
    return ((parts[0]?.[0] || '?') + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
  }

  /** Keeps `container`'s keyed children in the order of `items`, reusing elements by key. */
  function reconcile(container, items, attr, keyOf, create, update) {
    const existing = new Map();
    for (const el of [...container.children]) {
      if (el.hasAttribute(attr)) existing.set(el.getAttribute(attr), el);
      else el.remove();
    }
    let cursor = container.firstElementChild;
    for (const item of items) {
      const key = keyOf(item);
      let el = existing.get(key);
      if (el) existing.delete(key);
      else el = create(item);
      update(el, item);
      if (el !== cursor) container.insertBefore(el, cursor);
      else cursor = cursor.nextElementSibling;
    }
    for (const el of existing.values()) el.remove();
  }

  function meta(label, field) {
    return h('div', { class: 'meta' }, h('dt', { text: label }), h('dd', { 'data-field': field }));
  }

  function createRoom(room) {
    const id = `room-${Math.random().toString(36).slice(2, 9)}`;
    return h('section', { class: 'room-card', 'data-room': room.name, 'aria-labelledby': id },
      h('header', { class: 'room-head' },
        h('div', { class: 'room-title' },
          h('h2', { id }, h('span', { class: 'sr-only', text: 'Room ' }), h('span', { class: 'room-label', text: room.name })),
          h('a', { class: 'open-link', href: `/room/${encodeURIComponent(room.name)}`, target: '_blank', rel: 'noopener', text: 'Open call ↗' })),
        h('dl', { class: 'room-meta' },
          meta('Participants', 'participants'), meta('Bitrate in', 'in'), meta('Bitrate out', 'out'), meta('Age', 'age')),
        h('button', { class: 'btn small danger', type: 'button', 'data-action': 'close-room', text: 'Close room' })),
      h('div', { class: 'recording-bar', 'data-recording-state': 'none' },
        h('span', { class: 'rec-status' },
          h('span', { class: 'rec-dot', 'aria-hidden': 'true' }),
          h('span', { class: 'rec-text', 'data-field': 'recording' })),
        h('a', { class: 'rec-watch', target: '_blank', rel: 'opener', hidden: true, text: 'Watch ↗' }),
        h('span', { class: 'spacer' }),
        h('button', { class: 'btn small rec-button', type: 'button', 'data-action': 'start-recording', text: 'Start recording' }),
        h('p', { class: 'rec-error', role: 'alert', hidden: true },
          h('strong', { class: 'rec-error-text' }), ' ', h('span', { class: 'rec-error-advice' }))),
      h('div', { class: 'participants' }));
  }

  /** What the recording bar says now (the duration ticks while it records). */
  function recordingText(rec) {
    if (!rec) return 'Not recording';
    const length = formatDuration(recordingDuration(rec));
    switch (rec.state) {
      case 'starting': return 'Starting the recording…';
      case 'active': return `Recording · ${length}`;
      case 'stopping': return `Stopping the recording · ${length}`;
      case 'complete': return `Recording complete · ${length}`;
      case 'failed': return `Recording failed${rec.reason ? `: ${rec.reason}` : ''}`;
      default: return `Recording ${rec.state || ''}`.trim();
    }
  }

  function updateRecording(el, room) {
    const bar = el.querySelector('.recording-bar');
    const rec = room.recording;
    const running = !!rec && !recordingFinished(rec);
    setAttr(bar, 'data-recording-state', rec ? String(rec.state) : 'none');
    if (rec?.id) setAttr(bar, 'data-recording-id', rec.id);
    else bar.removeAttribute('data-recording-id');
    setText(bar.querySelector('.rec-text'), recordingText(rec));
    const watch = bar.querySelector('.rec-watch');
    watch.hidden = !rec?.id;
    if (rec?.id) {
      setAttr(watch, 'href', recordingPageUrl(rec.id));
      setAttr(watch, 'aria-label', `Watch the recording of ${room.name}${rec.state === 'active' ? ' (live)' : ''}`);
      setText(watch, rec.state === 'active' ? 'Watch live ↗' : 'Watch ↗');
    }
    const button = bar.querySelector('.rec-button');
    const busy = recordingBusy.has(room.name);
    const stopping = rec?.state === 'stopping';
    setAttr(button, 'data-action', running ? 'stop-recording' : 'start-recording');
    setAttr(button, 'class', running ? 'btn small danger rec-button' : 'btn small rec-button');
    setText(button, stopping ? 'Stopping…' : busy ? (running ? 'Stopping…' : 'Starting…') : (running ? 'Stop recording' : 'Start recording'));
    button.disabled = busy || stopping;
    setAttr(button, 'aria-label', `${running ? 'Stop recording' : 'Start recording'} room ${room.name}`);
    const err = recordingErrors.get(room.name);
    const box = bar.querySelector('.rec-error');
    box.hidden = !err;
    setText(box.querySelector('.rec-error-text'), err ? err.text : '');
    setText(box.querySelector('.rec-error-advice'), err ? err.advice : '');
  }

  function updateRoom(el, room) {
    setText(el.querySelector('[data-field=participants]'), String(room.participantCount ?? room.participants.length));
    setText(el.querySelector('[data-field=in]'), formatBitrate(room.bitrateIn));
    setText(el.querySelector('[data-field=out]'), formatBitrate(room.bitrateOut));
    setText(el.querySelector('[data-field=age]'), formatAge(model.age(room)));
    setAttr(el.querySelector('[data-action=close-room]'), 'aria-label', `Close room ${room.name}`);
    updateRecording(el, room);
    const list = el.querySelector('.participants');
    if (!room.participants.length) {
      if (!list.querySelector('.no-participants')) {
        list.replaceChildren(h('p', { class: 'no-participants', text: room.loaded ? 'Nobody is in this room right now.' : 'Loading…' }));
      } else {
        setText(list.querySelector('.no-participants'), room.loaded ? 'Nobody is in this room right now.' : 'Loading…');
      }
      return;
    }
    reconcile(list, room.participants, 'data-identity', (p) => p.identity,
      (p) => createParticipant(p), (pel, p) => updateParticipant(pel, p, room));
  }

  function createParticipant(p) {
    const chart = (kind, title) => h('figure', { class: `chart-box ${kind}` },
      h('figcaption', { text: title }),
      (() => {
        const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
        svg.setAttribute('class', 'chart');
        svg.setAttribute('data-chart', kind);
        svg.setAttribute('viewBox', `0 0 ${CHART_W} ${CHART_H}`);
        svg.setAttribute('role', 'img');
        return svg;
      })());
    return h('article', { class: 'participant', 'data-identity': p.identity },
      h('div', { class: 'p-head' },
        h('span', { class: 'avatar small', 'aria-hidden': 'true' }),
        h('div', { class: 'who' },
          h('h3', { class: 'p-name' }),
          h('code', { class: 'p-identity', title: 'Identity' })),
        h('span', { class: 'state-badge' }),
        h('button', { class: 'btn small danger', type: 'button', 'data-action': 'remove', text: 'Remove' })),
      h('dl', { class: 'p-meta' },
        meta('Candidate', 'candidate'), meta('RTT', 'rtt'), meta('Tracks', 'track-count')),
      h('div', { class: 'charts' }, chart('bitrate', 'Bitrate, last 60 s'), chart('loss', 'Packet loss, last 60 s')),
      h('div', { class: 'tracks-wrap' }));
  }

  function updateParticipant(el, p, room) {
    const avatar = el.querySelector('.avatar');
    setText(avatar, initials(p.name || p.identity));
    avatar.style.setProperty('--hue', hue(p.identity));
    setText(el.querySelector('.p-name'), p.name || p.identity);
    setText(el.querySelector('.p-identity'), p.identity);
    const badge = el.querySelector('.state-badge');
    const role = p.grants?.recorder ? ' · recorder' : (p.grants?.hidden ? ' · hidden' : '');
    setText(badge, `${p.state || 'unknown'}${role}`);
    setAttr(badge, 'data-state', p.state || 'unknown');
    setText(el.querySelector('[data-field=candidate]'), p.candidateType || 'not chosen yet');
    setText(el.querySelector('[data-field=rtt]'), formatRtt(p.rttMs));
    setText(el.querySelector('[data-field=track-count]'), String(p.tracks.length));
    setAttr(el.querySelector('[data-action=remove]'), 'aria-label', `Remove ${p.name || p.identity} from ${room.name}`);

    const samples = model.samples(room.name, p.identity);
    const now = model.serverNow || (samples.length ? samples[samples.length - 1].t : 0);
    drawChart(el.querySelector('svg[data-chart=bitrate]'), {
      points: samples.map((s) => ({ t: s.t, v: s.bitrate })), now, floor: 100, format: formatKbps,
      title: `Bitrate of ${p.name || p.identity}`,
    });
    drawChart(el.querySelector('svg[data-chart=loss]'), {
      points: samples.map((s) => ({ t: s.t, v: s.loss })), now, floor: 5, format: formatPercent,
      title: `Packet loss of ${p.name || p.identity} (worst track)`,
    });

    const wrap = el.querySelector('.tracks-wrap');
    if (!p.tracks.length) {
      if (!wrap.querySelector('.no-tracks')) wrap.replaceChildren(h('p', { class: 'no-tracks', text: 'No published tracks.' }));
      return;
    }
    let table = wrap.querySelector('table');
    if (!table) {
      const heads = ['Kind', 'Codec', 'Resolution', 'FPS', 'Bitrate', 'Loss', 'Status', ''];
      table = h('table', { class: 'tracks' },
        h('caption', { class: 'sr-only', text: `Tracks published by ${p.name || p.identity}` }),
        h('thead', {}, h('tr', {}, ...heads.map((t, i) => h('th', { scope: 'col', text: t, class: i >= 3 && i <= 5 ? 'num' : null }, i === 7 ? h('span', { class: 'sr-only', text: 'Action' }) : null)))),
        h('tbody'));
      wrap.replaceChildren(table);
    }
    reconcile(table.tBodies[0], p.tracks, 'data-track', (t) => t.id, createTrack, (tr, t) => updateTrack(tr, t, p));
  }

  function createTrack(t) {
    const td = (field, cls) => h('td', { 'data-field': field, class: cls });
    return h('tr', { 'data-track': t.id },
      td('kind'), td('codec'), td('resolution'), td('fps', 'num'), td('bitrate', 'num'), td('loss', 'num'),
      td('status'),
      h('td', { class: 'action' }, h('button', { class: 'btn small', type: 'button', 'data-action': 'mute' })));
  }

  function updateTrack(tr, t, p) {
    const kind = tr.querySelector('[data-field=kind]');
    setText(kind, t.kind || '—');
    setAttr(kind, 'title', t.id);
    setText(tr.querySelector('[data-field=codec]'), t.codec || '—');
    setText(tr.querySelector('[data-field=resolution]'), t.kind === 'audio' ? '—' : formatResolution(t));
    setText(tr.querySelector('[data-field=fps]'), t.kind === 'audio' ? '—' : formatFps(t.fps));
    setText(tr.querySelector('[data-field=bitrate]'), formatBitrate(t.bitrate));
    setText(tr.querySelector('[data-field=loss]'), formatLoss(t.lossRate));
    const status = tr.querySelector('[data-field=status]');
    setText(status, t.muted ? 'muted' : 'live');
    setAttr(status, 'class', t.muted ? 'status muted' : 'status live');
    const button = tr.querySelector('[data-action=mute]');
    setText(button, t.muted ? 'Unmute' : 'Mute');
    setAttr(button, 'data-muted', String(!!t.muted));
    setAttr(button, 'aria-label', `${t.muted ? 'Unmute' : 'Mute'} ${p.name || p.identity}’s ${t.kind || 'track'} ${t.id}`);
  }

  function drawChart(svg, opts) {
    const { svg: inner, label } = sparklineContent(opts);
    if (svg.__inner !== inner) {
      svg.innerHTML = inner;
      svg.__inner = inner;
      svg.setAttribute('aria-label', label);
    }
  }

  function render() {
    const signedIn = state === 'connecting' || state === 'live' || (state === 'error' && token);
    $('admin-signin-view').hidden = signedIn;
    $('admin-dashboard').hidden = !signedIn;
    if (!signedIn) return;

    const rooms = [...model.rooms.values()].sort((a, b) => a.name.localeCompare(b.name));
    const people = rooms.reduce((n, r) => n + (r.participantCount ?? r.participants.length), 0);
    setText($('admin-total-rooms'), String(rooms.length));
    setText($('admin-total-participants'), String(people));
    setText($('admin-total-in'), formatBitrate(rooms.reduce((n, r) => n + (r.bitrateIn || 0), 0)));
    setText($('admin-total-out'), formatBitrate(rooms.reduce((n, r) => n + (r.bitrateOut || 0), 0)));
    setText($('admin-last-event'), model.lastEventId ? `event #${model.lastEventId}` : '');

    const list = $('admin-rooms');
    list.setAttribute('aria-busy', String(!model.loadedOnce));
    if (!rooms.length) {
      const el = model.loadedOnce ? emptyEl : loadingEl;
      if (list.childElementCount !== 1 || list.firstElementChild !== el) list.replaceChildren(el);
      return;
    }
    reconcile(list, rooms, 'data-room', (r) => r.name, createRoom, updateRoom);
  }

  const emptyEl = h('div', { id: 'admin-empty', class: 'admin-empty' },
    document.getElementById('admin-empty-icon').content.cloneNode(true),
    h('p', {}, 'No rooms open. Start a call at ', h('a', { href: '/', text: '/' }), ' and it appears here.'));
  const loadingEl = h('p', { class: 'admin-loading', text: 'Loading rooms…' });

  // ---------------------------------------------------------------- wiring
  $('admin-signin').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = $('admin-token').value.trim();
    if (!value) {
      showBanner('Paste an admin token first.', { kind: 'info', advice: 'An admin token is a JWT with the roomAdmin grant.', key: 'empty-token' });
      $('admin-token').focus();
      return;
    }
    signIn(value);
  });
  $('admin-dev-token').addEventListener('click', useDevToken);
  $('admin-signout').addEventListener('click', signOut);
  $('admin-rooms').addEventListener('click', onAction);
  $('admin-dialog-cancel').addEventListener('click', closeDialog);
  $('admin-dialog').addEventListener('click', (e) => { if (e.target === e.currentTarget) closeDialog(); });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('admin-dialog').hidden) closeDialog();
  });
  // Room ages tick every second.
  setInterval(() => {
    for (const el of document.querySelectorAll('#admin-rooms [data-room]')) {
      const room = model.rooms.get(el.dataset.room);
      if (!room) continue;
      setText(el.querySelector('[data-field=age]'), formatAge(model.age(room)));
      setText(el.querySelector('[data-field=recording]'), recordingText(room.recording));
    }
  }, 1000);

  probeDevToken();
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get('token');
  if (fromUrl) {
    // Keep the token out of the address bar and history once read.
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
    signIn(fromUrl);
  } else {
    let stored = '';
    try { stored = sessionStorage.getItem(TOKEN_KEY) || ''; } catch {}
    if (stored) signIn(stored);
    else {
      setState('signed-out');
      $('admin-token').focus();
    }
  }
}
