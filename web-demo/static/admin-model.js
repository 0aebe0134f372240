// The admin dashboard's state model: rooms with their participants and tracks, a short stats
// history per participant, and how each admin event (`GET /api/events`) changes them. Pure: it
// never fetches and never touches the DOM (admin-stream.js feeds it, admin-rooms.js draws it).

import { CHART_WINDOW_SECONDS } from './admin-charts.js';
import { mergeRecording, recordingFinished, recordingFromEvent } from './admin-recording.js';

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
    for (const k of ['participantCount', 'publisherCount', 'bitrateIn', 'bitrateOut', 'createdAt', 'ageSeconds', 'settings', 'node']) {
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
