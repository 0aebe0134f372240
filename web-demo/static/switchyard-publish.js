/**
 * Switchyard publishing: what this client sends on its publisher PC. It adds the camera (three
 * simulcast layers q/h/f on Chromium, one layer on Firefox or with simulcast off), the microphone
 * and a shared screen (+ its sound) as sendonly transceivers, names each published track's source
 * for the `sources` of every publisher offer, and turns simulcast layers on and off as
 * `subscribedLayers` asks (sender.setParameters, one call at a time per sender).
 *
 * It never sends a signaling message, creates or negotiates a connection, or touches the page:
 * switchyard.js owns the PC and the WebSocket and calls it (renegotiation follows from the
 * browser's `negotiationneeded`).
 */

import { mediaSections, preferCodec } from './switchyard-media.js';

/**
 * The camera's simulcast layers (rids as in protocol `Layer`), lowest first. `q` is the layer of
 * last resort for thin links: at 80 kbit/s two cameras at 15 frames a second and their audio fit
 * in 250 kbit/s.
 */
export const SIMULCAST_ENCODINGS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 80000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
  { rid: 'f', maxBitrate: 1500000 },
];

/**
 * The camera's encodings: VP8 layers carry three temporal layers (L1T3), so a receiver on a thin
 * link can be sent 15 or 7.5 frames a second of the lowest layer instead of nothing.
 */
function cameraEncodings(videoCodec) {
  const temporal = !videoCodec || videoCodec.toLowerCase() === 'vp8';
  return SIMULCAST_ENCODINGS.map((e) => (temporal ? { ...e, scalabilityMode: 'L1T3' } : { ...e }));
}

/** Whether this browser publishes simulcast with rids here (not Firefox: one layer there). */
export function browserSimulcast() {
  const ua = globalThis.navigator?.userAgent || '';
  return !/\bFirefox\//.test(ua);
}

/** Asks the browser for a screen (and its sound, when the browser offers it). */
export async function captureScreen() {
  const md = globalThis.navigator?.mediaDevices;
  if (!md?.getDisplayMedia) throw new Error('This browser cannot share the screen.');
  try {
    return await md.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: true });
  } catch (err) {
    if (err.name !== 'TypeError') throw err;
    return md.getDisplayMedia({ video: true }); // a browser that refuses audio constraints
  }
}

export class Publisher {
  /**
   * @param {object} opts
   * @param {boolean} opts.simulcast  send the camera as three layers
   * @param {string} opts.videoCodec  preferred video codec ('' = the browser's order)
   * @param {(type: string, detail: object) => void} opts.emit  dispatches a client event
   * @param {() => RTCPeerConnection|null} opts.pc  the current publisher PC
   */
  constructor({ simulcast, videoCodec, emit, pc }) {
    this.simulcast = !!simulcast;
    this.videoCodec = videoCodec;
    this._emit = emit;
    this._pc = pc;
    /** The current screen share: {stream, video, audio, own} or null. */
    this.screen = null;
    this._source = new Map(); // RTCRtpSender -> 'camera' | 'microphone' | 'screen' | 'screenAudio'
    this._screenSenders = []; // senders of the current share on the current PC
    this._byKey = new Map(); // msid track id (what the server calls clientTrackId) -> sender
    this._wanted = new Map(); // sender -> layers last asked for
    this._queue = new Map(); // sender -> promise of its setParameters chain
    this._endWatch = null; // interval that notices the shared track ending
  }

  /**
   * Adds the local camera and microphone of `stream` and the current screen share to a new PC,
   * and an empty recvonly video section when none of them is video.
   */
  addAll(pc, stream) {
    const live = (kind) => stream?.getTracks().find((t) => t.kind === kind && t.readyState === 'live');
    for (const track of [live('audio'), live('video')].filter(Boolean)) {
      const init = { direction: 'sendonly', streams: [stream] };
      if (track.kind === 'video' && this.simulcast) init.sendEncodings = cameraEncodings(this.videoCodec);
      const transceiver = pc.addTransceiver(track, init);
      if (track.kind === 'video' && this.videoCodec) preferCodec(transceiver, this.videoCodec);
      this._source.set(transceiver.sender, track.kind === 'video' ? 'camera' : 'microphone');
    }
    this.addScreen(pc);
    // Without a video section Chromium keeps the connection's UDP receive buffer at 64 KiB, and
    // a file arriving over the data channel overflows it (each drop an SCTP loss, which halves
    // the transfer rate). A video section, even one that never carries media, makes it ask for
    // 1 MiB (up to net.core.rmem_max). (Recvonly: `rtc` 0.21 answers a first offer's inactive
    // section wrongly.)
    if (!pc.getTransceivers().some((t) => t.receiver.track.kind === 'video')) {
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
  }

  /**
   * Starts a screen share (see `SwitchyardClient.shareScreen`): `source` is a video track, a
   * MediaStream, or null to ask the browser. Replaces a running share; adds it to the current
   * PC (the browser's `negotiationneeded` follows). The track ending stops the share.
   */
  async share(source) {
    const own = !source;
    const stream = own ? await captureScreen() : source instanceof MediaStream ? source : new MediaStream([source]);
    const video = stream.getVideoTracks()[0];
    if (!video) throw new TypeError('shareScreen: no video track to share');
    this.stop();
    const audio = stream.getAudioTracks()[0] || null;
    if ('contentHint' in video) video.contentHint = 'detail';
    this.screen = { stream, video, audio, own };
    video.addEventListener('ended', () => this.screen?.video === video && this.stop(), { once: true });
    // `ended` does not fire for a track stopped by script (track.stop()): look now and then too.
    this._endWatch = setInterval(() => video.readyState === 'ended' && this.stop(), 1000);
    this.addScreen(this._pc());
    this._emit('screenShare', { active: true, track: video, audioTrack: audio });
    return { video, audio };
  }

  /** Ends the screen share, if any: off the PC, tracks stopped when it captured them itself. */
  stop() {
    const share = this.screen;
    if (!share) return false;
    this.screen = null;
    clearInterval(this._endWatch);
    this.removeScreen(this._pc());
    if (share.own) share.stream.getTracks().forEach((t) => t.stop());
    this._emit('screenShare', { active: false, track: null, audioTrack: null });
    return true;
  }

  /** Adds the current share's tracks to `pc` (one layer each), unless they are already on it. */
  addScreen(pc) {
    const s = this.screen;
    if (!s || !pc || pc.signalingState === 'closed' || this._screenSenders.length) return;
    for (const [track, source] of [[s.video, 'screen'], [s.audio, 'screenAudio']]) {
      if (!track || track.readyState !== 'live') continue;
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [s.stream] });
      if (track.kind === 'video' && this.videoCodec) preferCodec(transceiver, this.videoCodec);
      this._source.set(transceiver.sender, source);
      this._screenSenders.push(transceiver.sender);
    }
  }

  /** Takes the share's tracks off `pc` (their transceivers go inactive at the next offer). */
  removeScreen(pc) {
    for (const sender of this._screenSenders) {
      try {
        if (pc && pc.signalingState !== 'closed') pc.removeTrack(sender);
      } catch (err) {
        console.warn('switchyard: removing the screen track failed', err);
      }
      this._source.delete(sender);
      this._wanted.delete(sender);
    }
    this._screenSenders = [];
  }

  /**
   * `{msidTrackId: source}` of every track `pc`'s current local description sends: the
   * `sources` of a publisher offer. Keys are the offer's own msid track ids, so they are what
   * the server sees (Chromium's are the MediaStreamTrack ids, Firefox's are not).
   */
  sources(pc) {
    const out = {};
    const sections = mediaSections(pc?.localDescription?.sdp);
    for (const t of pc ? pc.getTransceivers() : []) {
      const source = this._source.get(t.sender);
      const section = t.mid != null ? sections.get(t.mid) : null;
      if (!source || !t.sender.track || !section || !/send/.test(section.direction)) continue;
      const key = section.trackId && section.trackId !== '-' ? section.trackId : t.sender.track.id;
      out[key] = source;
      this._byKey.set(key, t.sender);
    }
    return out;
  }

  /**
   * `subscribedLayers`: activates the encodings named in `msg.layers` of the sender of
   * `msg.clientTrackId` and pauses the others (`[]` pauses all; a one-layer sender is active
   * when any layer is wanted). Calls are queued per sender; each applies the newest wish.
   */
  applyLayers(pc, msg) {
    const sender = this._senderOf(pc, msg.clientTrackId);
    const layers = Array.isArray(msg.layers) ? msg.layers.map(String) : [];
    const detail = { trackId: msg.trackId, clientTrackId: msg.clientTrackId, layers };
    if (!sender) {
      return this._emit('subscribedLayers', { ...detail, source: null, active: [], error: 'no such local track' });
    }
    this._wanted.set(sender, layers);
    const run = () => this._apply(sender, detail);
    const next = (this._queue.get(sender) || Promise.resolve()).then(run, run);
    this._queue.set(sender, next);
    next.finally(() => this._queue.get(sender) === next && this._queue.delete(sender));
  }

  async _apply(sender, detail) {
    const wanted = this._wanted.get(sender);
    const source = this._source.get(sender) ?? null;
    if (!wanted || !sender.track) return;
    let error;
    try {
      const params = sender.getParameters();
      let changed = false;
      for (const enc of params.encodings || []) {
        const on = enc.rid ? wanted.includes(enc.rid) : wanted.length > 0;
        if (enc.active !== on) {
          enc.active = on;
          changed = true;
        }
      }
      if (changed) await sender.setParameters(params);
    } catch (err) {
      error = `${err.name}: ${err.message}`;
      console.warn('switchyard: could not apply subscribedLayers', detail, err);
    }
    const active = activeRids(sender);
    this._emit('subscribedLayers', { ...detail, layers: wanted, source, active, ...(error ? { error } : {}) });
  }

  _senderOf(pc, key) {
    const known = this._byKey.get(key);
    if (known && this._source.has(known)) return known;
    return pc?.getSenders().find((s) => s.track?.id === key && this._source.has(s)) || null;
  }

  /** `[{clientTrackId, source, encodings: [{rid, active, maxBitrate, scaleResolutionDownBy}]}]`. */
  encodings() {
    const out = [];
    for (const [sender, source] of this._source) {
      if (!sender.track) continue;
      let key = sender.track.id;
      for (const [k, s] of this._byKey) if (s === sender) key = k;
      const encodings = (sender.getParameters().encodings || []).map((e) => ({
        rid: e.rid ?? null,
        active: e.active !== false,
        maxBitrate: e.maxBitrate ?? null,
        scaleResolutionDownBy: e.scaleResolutionDownBy ?? null,
      }));
      out.push({ clientTrackId: key, source, encodings });
    }
    return out;
  }

  /** The PC is gone (a fresh rejoin follows): forget its senders, keep the screen share. */
  reset() {
    this._source.clear();
    this._screenSenders = [];
    this._byKey.clear();
    this._wanted.clear();
    this._queue.clear();
  }
}

/** The rids (or 'f' for a one-layer sender) a sender has active now. */
function activeRids(sender) {
  try {
    return (sender.getParameters().encodings || []).filter((e) => e.active !== false).map((e) => e.rid || 'f');
  } catch {
    return [];
  }
}
