/**
 * Switchyard receiving side: which server track each MediaStreamTrack of the subscriber PC
 * carries (from the `a=msid` of the server's offers, by mid, so it also holds in Firefox and when
 * the server reuses an m-line), the `trackSettings` this client asks for per remote video track
 * (sent once the track is received, re-sent after a resume or rejoin), and the room's latest
 * `speakersChanged` and `downlinkChanged`.
 *
 * It never opens a connection, answers an offer or touches the page: switchyard.js feeds it the
 * subscriber offers and server messages and gives it a `send` for signaling messages.
 */

import { mediaSections } from './switchyard-media.js';

const LAYERS = ['q', 'h', 'f'];

export class RemoteTracks {
  /**
   * @param {(msg: object) => boolean} send  sends a signaling message; false when the socket is down
   * @param {(type: string, detail: object) => void} emit  dispatches a client event
   */
  constructor(send, emit) {
    this._send = send;
    this._emit = emit;
    this._offered = new Map(); // mid -> section of the subscriber offer being applied
    this._idOf = new Map(); // MediaStreamTrack -> server track id
    this._trackOf = new Map(); // server track id -> MediaStreamTrack
    /** server track id -> the settings asked for: {trackId, visible, width, height, maxLayer?} */
    this.settings = new Map();
    this._unsent = new Set(); // track ids whose settings the server has not got yet
    /** The latest `speakersChanged`: [{participantId, level}], loudest first. */
    this.speakers = [];
    /** The latest `downlinkChanged`: estimate (bit/s, null until told) and layer per track. */
    this.downlink = { estimateBps: null, layers: new Map() };
  }

  /** A subscriber offer is about to be applied: remember its sections for `ontrack`. */
  noteOffer(sdp) {
    this._offered = mediaSections(sdp);
  }

  /** `ontrack` of the subscriber PC: the server track id the event's track carries, or null. */
  onTrack(ev) {
    const section = ev.transceiver?.mid != null ? this._offered.get(ev.transceiver.mid) : null;
    const id = section?.trackId || null;
    if (id) this._map(ev.track, id);
    return id;
  }

  /**
   * The offer was applied and answered: rebuild the map from the PC's transceivers (an m-line
   * now inactive carries nothing), then send the settings of tracks received from now on.
   * Returns whether the map changed.
   */
  refresh(pc) {
    const before = this._signature();
    this._idOf.clear();
    this._trackOf.clear();
    for (const t of pc.getTransceivers()) {
      const section = t.mid != null ? this._offered.get(t.mid) : null;
      if (!section?.trackId || !/send/.test(section.direction) || !t.receiver?.track) continue;
      this._map(t.receiver.track, section.trackId);
    }
    for (const id of this._unsent) this._flush(id);
    return before !== this._signature();
  }

  _signature() {
    return [...this._trackOf].map(([id, track]) => `${id}=${track.id}`).join(' ');
  }

  _map(track, id) {
    this._idOf.set(track, id);
    this._trackOf.set(id, track);
  }

  /** The server track id of a received MediaStreamTrack, or null. */
  idOf(track) {
    return this._idOf.get(track) ?? null;
  }

  /** The received MediaStreamTrack of a server track id, or null. */
  trackOf(id) {
    return this._trackOf.get(id) ?? null;
  }

  /**
   * Merges `changes` ({visible, width, height, maxLayer}; maxLayer null drops the cap) into the
   * settings of track `trackId` and sends them when they changed (or once the track arrives).
   */
  set(trackId, changes = {}) {
    if (!trackId) throw new TypeError('setTrackSettings: a track id is required');
    const prev = this.settings.get(trackId) || { trackId, visible: true, width: 0, height: 0 };
    const next = { ...prev, trackId };
    if ('visible' in changes) next.visible = changes.visible !== false;
    for (const dim of ['width', 'height']) {
      if (dim in changes) next[dim] = Math.max(0, Math.min(2 ** 31, Math.round(Number(changes[dim]) || 0)));
    }
    if ('maxLayer' in changes) {
      if (changes.maxLayer == null) delete next.maxLayer;
      else if (LAYERS.includes(changes.maxLayer)) next.maxLayer = changes.maxLayer;
      else throw new RangeError(`setTrackSettings: maxLayer must be one of ${LAYERS.join(', ')} or null`);
    }
    const same = JSON.stringify(prev) === JSON.stringify(next) && this.settings.has(trackId);
    this.settings.set(trackId, next);
    if (!same) this._unsent.add(trackId);
    this._flush(trackId);
    return { ...next };
  }

  _flush(trackId) {
    const s = this.settings.get(trackId);
    if (!s || !this._unsent.has(trackId) || !this._trackOf.has(trackId)) return;
    if (this._send({ type: 'trackSettings', ...s })) this._unsent.delete(trackId);
  }

  /** After `resumed`: send what a dropped socket may have lost. */
  resend() {
    for (const id of this.settings.keys()) this._unsent.add(id);
    for (const id of [...this._unsent]) this._flush(id);
  }

  /** Tracks that went away (unpublished, or their owner left). */
  forget(trackIds) {
    for (const id of trackIds) {
      this.settings.delete(id);
      this._unsent.delete(id);
      this.downlink.layers.delete(id);
    }
  }

  /** A fresh session (new subscriber PC): keep the settings of tracks still in `liveIds`. */
  reset(liveIds) {
    this._offered = new Map();
    this._idOf.clear();
    this._trackOf.clear();
    for (const id of [...this.settings.keys()]) if (!liveIds.has(id)) this.settings.delete(id);
    this._unsent = new Set(this.settings.keys());
    this.speakers = [];
    this.downlink = { estimateBps: null, layers: new Map() };
  }

  onSpeakers(msg) {
    this.speakers = (msg.speakers || []).map((s) => ({ participantId: s.participantId, level: Number(s.level) || 0 }));
    this._emit('speakersChanged', { speakers: this.speakers.map((s) => ({ ...s })) });
  }

  onDownlink(msg) {
    const tracks = (msg.tracks || []).map((t) => ({ trackId: t.trackId, layer: t.layer ?? null }));
    this.downlink.estimateBps = Number(msg.estimateBps) || 0;
    for (const t of tracks) this.downlink.layers.set(t.trackId, t.layer);
    this._emit('downlinkChanged', { estimateBps: this.downlink.estimateBps, tracks });
  }
}
