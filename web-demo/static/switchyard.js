/**
 * Switchyard browser client: a small, dependency-free ES module that joins a Switchyard room.
 *
 * It owns the signaling WebSocket and the two RTCPeerConnections of the protocol
 * (docs/signaling.md): the *publisher* PC, on which this client offers its own audio/video,
 * and the *subscriber* PC, on which the server offers everyone else's tracks and this client
 * only answers. ICE candidates trickle both ways; it pings every 5 s. After an unexpected
 * WebSocket drop (or 15 s of silence) it first *resumes*: a new WebSocket takes the session back
 * with the `resumeToken` of `joined`, keeping the participant id, both peer connections and all
 * tracks (nobody else notices). When the network path changes (a peer connection goes
 * `disconnected` or `failed`, or the page comes back `online`) it restarts ICE on both peer
 * connections without publishing again, and again every 10 s while media stays down. Only when
 * that cannot work (resume window over, media still down after 8 restarts) does it rejoin afresh, republishing the same local
 * stream: back-off 0.5 s doubling to 8 s, until `leave()`. It gives up (state 'failed') after
 * close codes 4001/4003 or a `closed` message with reason removed / room_closed / replaced.
 * In a cluster it follows `redirect` to the room's node (switchyard-route.js).
 *
 * It never touches the page (no DOM): call.js turns its events into UI. Data messages, access
 * tokens and receive stats live in switchyard-data.js, switchyard-token.js and
 * switchyard-media.js; what it publishes (simulcast camera, microphone, screen; `sources`;
 * `subscribedLayers`) in switchyard-publish.js; which server track each received track is,
 * `trackSettings`, speakers and downlink in switchyard-remote.js. Pages import only this module.
 *
 * @example
 * import { SwitchyardClient } from '/static/switchyard.js';
 * const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
 * const client = new SwitchyardClient({ room: 'demo', name: 'Alice' }); // dev token fetched
 * client.addEventListener('remoteTrack', (e) => {
 *   const { participantId, kind, track, stream } = e.detail;
 *   if (kind === 'video') document.querySelector('video').srcObject = stream;
 * });
 * client.addEventListener('state', (e) => console.log(e.detail.state, e.detail.message));
 * await client.connect(stream);   // resolves on the first `joined`
 * client.setMuted('audio', true); // disables the local track and tells the room
 * client.leave();
 *
 * Events (all `CustomEvent`, payload in `event.detail`):
 * - `state`            {state, message, attempt?, unreachable?} where state is one of
 *                      'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'failed'
 * - `joined`           {room, you, participants, iceServers}   (after every (re)join)
 * - `resumed`          {room, participantId, missed}   the session was taken back after a drop
 * - `iceRestart`       {reason}   both peer connections are restarting ICE
 * - `draining`         {closesInSecs}   the server goes away soon (a restart); the session ends
 *                      by then and the client reconnects with back-off
 * - `participantJoined` {participant}
 * - `participantLeft`  {participantId, identity, reason, participant}
 * - `trackPublished`   {participantId, track}
 * - `trackUnpublished` {participantId, trackId, track}
 * - `trackMuted`       {participantId, trackId, kind, muted}
 * - `remoteTrack`      {participantId, kind, track, stream, trackId, source}   `trackId` is the
 *                      server's id of the track (null while unknown), `source` its TrackInfo source
 * - `remoteTracksChanged` {}   a subscriber offer changed which server track each received
 *                      MediaStreamTrack carries (see `remoteTrack(trackId)`)
 * - `screenShare`      {active, track, audioTrack}   this client's screen share started / ended
 *                      (also when the browser's own "Stop sharing" ended it)
 * - `subscribedLayers` {trackId, clientTrackId, source, layers, active, error?}   the server asked
 *                      for `layers` of a local track; `active` = rids now sending (after setParameters)
 * - `speakersChanged`  {speakers: [{participantId, level}]}   loudest first; [] = nobody speaks
 * - `downlinkChanged`  {estimateBps, tracks: [{trackId, layer}]}   layer 'q'|'h'|'f', null = paused
 * - `error`            {code, message}   server `error` messages, plus client-side codes
 *                      'ice_failed' (media connection failed; reconnecting), 'no_turn',
 *                      'unauthorized' (dev tokens disabled), 'client' (could not apply a message)
 *
 * `client.participants` is a Map participantId -> {id, identity, name, tracks} of the *other*
 * participants (tracks: TrackInfo {id, kind, codec, muted, source, layers?}); `client.you` is
 * this participant as the server described it in `joined`. Also: `shareScreen(track?)`,
 * `stopScreen()`, `setTrackSettings(trackId, {visible, width, height, maxLayer})`,
 * `remoteTrack(trackId)`, `remoteTrackId(track)`, `localEncodings()`, and the read-only
 * `trackSettings`, `speakers`, `downlink`, `screenTrack`, `simulcast`.
 *
 * Data messages (`sendData`; the `dataOpen`, `dataClose`, `data`, `dataError` events): see
 * switchyard-data.js.
 */

import { closeDataChannels, createDataChannels, sendDataMessage } from './switchyard-data.js';
import { receiveStats } from './switchyard-media.js';
import { Publisher, browserSimulcast } from './switchyard-publish.js';
import { RemoteTracks } from './switchyard-remote.js';
import { NodeRoute } from './switchyard-route.js';
import { FatalError, defaultDevToken, getToken } from './switchyard-token.js';

// The data-frame format is part of this module's API (importers may use it from here).
export { MAX_DATA_FRAME_BYTES, MAX_DATA_HEADER_BYTES, decodeDataFrame, encodeDataFrame } from './switchyard-data.js';

const PING_INTERVAL_MS = 5000;
/** Consider the server gone when nothing at all arrived for this long (it answers every ping). */
const SILENCE_TIMEOUT_MS = 15000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 8000;
/** A peer connection `disconnected` this long (or `failed` at once) restarts ICE. */
const ICE_DISCONNECTED_GRACE_MS = 2000;
/** Media still not back this long after an ICE restart: restart again. */
const ICE_RESTART_TIMEOUT_MS = 10000;
/**
 * Restarts in a row before rejoining afresh. The session lives on while the WebSocket does, so
 * a long outage (a minute and more) is ridden out with the same participant id.
 */
const ICE_RESTARTS_BEFORE_REJOIN = 8;
const ICE_RESTART_MIN_GAP_MS = 3000;
/** Resume only while the server surely still keeps the session (its window minus a margin). */
const RESUME_MARGIN_MS = 3000;
/** Close codes after which reconnecting cannot help (bad token, wrong room, room full). */
const FATAL_CLOSE_CODES = new Set([4001, 4003]);
/** `closed` reasons after which the client must not come back by itself. */
const FINAL_CLOSE_REASONS = {
  removed: 'You were removed from the room.',
  room_closed: 'The room was closed.',
  replaced: 'You joined this room from another tab or device, so this one was disconnected.',
};

export class SwitchyardClient extends EventTarget {
  /**
   * @param {object} opts
   * @param {string} [opts.url]   WebSocket URL; default `ws(s)://<this host>/ws`.
   * @param {string} opts.room    Room to join.
   * @param {string|(() => Promise<string>)} [opts.token]  Access token (JWT), or an async
   *        function returning a fresh one for each (re)join. Without it the dev-token endpoint
   *        is used (servers without a secret only).
   * @param {string} [opts.name]  Display name (used for dev tokens).
   * @param {boolean} [opts.relay] Force `iceTransportPolicy: 'relay'` (TURN only).
   * @param {string} [opts.videoCodec] Preferred video codec to send (`vp8`, `vp9`, `h264`,
   *        `av1`), when the browser can; the SFU forwards whatever was negotiated.
   * @param {boolean} [opts.simulcast=true] Send the camera as three layers (q, h, f); Firefox
   *        always sends one.
   * @param {(args: {room: string, name: string, identity?: string}) =>
   *         Promise<{token: string, identity: string}>} [opts.fetchDevToken]
   *        Override how dev tokens are fetched (default: `GET /api/dev-token`).
   */
  constructor({ url, room, token, name = '', relay = false, videoCodec = '', simulcast = true, fetchDevToken } = {}) {
    super();
    if (!room) throw new TypeError('SwitchyardClient: `room` is required');
    this.url = url || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    this.room = room;
    this.token = token;
    this.name = name;
    this.relay = !!relay;
    this.videoCodec = String(videoCodec || '').toLowerCase();
    /** Which node of a cluster to talk to (`url` on a single server). */
    this._route = new NodeRoute(this.url);
    this.fetchDevToken = fetchDevToken || ((args) => defaultDevToken(this._route.url, args));

    /** @type {'connecting'|'connected'|'reconnecting'|'disconnected'|'failed'} */
    this.state = 'disconnected';
    this.stateMessage = '';
    /** This participant as the server sees it (set by `joined`). */
    this.you = null;
    /** @type {Map<string, {id: string, identity: string, name: string, tracks: object[]}>} */
    this.participants = new Map();
    /** Identity handed out by the dev-token endpoint, reused on reconnect. */
    this.identity = null;
    this.localStream = null;
    /** Round-trip time of the last ping, in ms. */
    this.rtt = null;

    this.publisherPc = null;
    this.subscriberPc = null;
    /** Whether the reliable data channel is open (see `sendData`). */
    this.dataReady = false;
    /** The data channels of the current session (on the publisher PC), or null. */
    this.reliableChannel = null;
    this.lossyChannel = null;

    this._ws = null;
    this._gen = 0; // bumped on every (re)connect; events of older sockets are ignored
    this._stopped = true;
    this._attempt = 0;
    this._retryTimer = null;
    this._pingTimer = null;
    this._lastRx = 0;
    this._muted = { audio: false, video: false };
    this._published = false; // publisher answer applied for the current session
    this._pending = { publisher: [], subscriber: [] }; // remote candidates awaiting a remote description
    this._inbox = Promise.resolve(); // serialises handling of server messages
    this._remoteStreams = new Map(); // participantId -> MediaStream (subscriber PC)
    this._receiverOwner = new Map(); // RTCRtpReceiver -> participantId
    this._connectWaiters = null;
    this._finalReason = null; // a `closed` reason that forbids reconnecting
    this._lastError = null; // last server `error`, explains a fatal close
    this._dataQueues = { reliable: Promise.resolve(), lossy: Promise.resolve() }; // keeps sends in order
    this._dataWaiters = new Set(); // wake-ups of sends waiting for `bufferedamountlow`
    this._resume = null; // {token, windowMs} from `joined`: how to take the session back
    this._iceTimers = { publisher: null, subscriber: null, fallback: null };
    this._iceRestarts = 0; // restarts in a row without media coming back
    this._lastIceRestart = 0;
    this._lastSubscriberRestart = 0;
    this._onOnline = () => this.restartIce('online');
    const emit = (type, detail) => this.#emit(type, detail);
    /** Whether the camera goes out as three simulcast layers. */
    this.simulcast = !!simulcast && browserSimulcast();
    const pc = () => this.publisherPc;
    this._publisher = new Publisher({ simulcast: this.simulcast, videoCodec: this.videoCodec, emit, pc });
    this._remote = new RemoteTracks((msg) => this.#send(msg), emit);
  }

  /**
   * Join the room and publish `localStream` (may be null or have no tracks: receive-only).
   * Resolves on the first `joined`; rejects on a fatal failure or `leave()` before that.
   * After that the client keeps itself connected until `leave()`.
   * @param {MediaStream|null} [localStream]
   */
  connect(localStream = null) {
    if (!this._stopped) throw new Error('SwitchyardClient: already connected');
    this.localStream = localStream;
    this._stopped = false;
    this._attempt = 0;
    for (const kind of ['audio', 'video']) {
      const track = this.#localTrack(kind);
      if (track) this._muted[kind] = !track.enabled;
    }
    const done = new Promise((resolve, reject) => (this._connectWaiters = { resolve, reject }));
    globalThis.addEventListener?.('online', this._onOnline);
    this.#open();
    return done;
  }

  /**
   * Mute or unmute the local track of `kind` ('audio' | 'video'): disables the track (silence /
   * black frames, no renegotiation) and tells the other participants.
   */
  setMuted(kind, muted) {
    muted = !!muted;
    this._muted[kind] = muted;
    const track = this.#localTrack(kind);
    if (track) track.enabled = !muted;
    if (track && this._published) this.#send({ type: 'mute', kind, muted });
  }

  /** Whether the local track of `kind` is muted. */
  isMuted(kind) {
    return this._muted[kind];
  }

  /** Leave the room for good: says `leave`, closes everything, no reconnect. */
  leave() {
    if (this._stopped && this.state === 'disconnected') return;
    this.#send({ type: 'leave' });
    this.#stop('disconnected', 'You left the call.');
  }

  /**
   * Restart ICE on both peer connections (new ICE credentials, new candidate pairs), keeping
   * the session, its tracks and the participant id. The client does this by itself after a
   * network change; `reason` is reported in the `iceRestart` event. Returns false when there
   * is no connected session to restart.
   */
  restartIce(reason = 'asked') {
    if (this.state !== 'connected' || !this.publisherPc || !this.subscriberPc) return false;
    // Both connections failing at once, or failing again mid-restart, make one restart.
    if (reason !== 'asked' && Date.now() - this._lastIceRestart < ICE_RESTART_MIN_GAP_MS) return true;
    this._lastIceRestart = Date.now();
    this.#emit('iceRestart', { reason });
    // Each restartIce() fires `negotiationneeded`; see #createPc for what follows.
    this.publisherPc.restartIce();
    this.subscriberPc.restartIce();
    this._iceRestarts += 1;
    clearTimeout(this._iceTimers.fallback);
    this._iceTimers.fallback = setTimeout(() => {
      this._iceTimers.fallback = null;
      const stuck = [this.publisherPc, this.subscriberPc].some((pc) => pc && pc.connectionState !== 'connected');
      if (!stuck || this._stopped) return;
      if (this._iceRestarts < ICE_RESTARTS_BEFORE_REJOIN) return this.restartIce('still down');
      this.#emit('error', { code: 'ice_failed', message: 'Media connection did not come back after repeated ICE restarts. Rejoining…' });
      this.#scheduleReconnect(true, false);
    }, ICE_RESTART_TIMEOUT_MS);
    return true;
  }

  /**
   * Receive statistics of the subscriber PC, one entry per inbound RTP stream:
   * `[{participantId, identity, kind, framesDecoded, packetsReceived, bytesReceived}]`.
   * Receivers whose track no longer belongs to a remote participant are left out.
   */
  async getStats() {
    return receiveStats(this);
  }

  /**
   * Send a data message to the other participants through the SFU.
   * @param {ArrayBuffer|ArrayBufferView|string} payload  bytes (a string is sent as UTF-8)
   * @param {object} [opts]
   * @param {string|string[]} [opts.to]  recipient identities; omitted or empty: everyone else
   * @param {string} [opts.topic]  application label (at most 64 characters), e.g. 'chat'
   * @param {boolean} [opts.reliable=true]  the ordered, reliable channel, or the lossy one
   * @returns {Promise<void>} resolves when the frame was handed to the channel
   */
  sendData(payload, opts) {
    return sendDataMessage(this, payload, opts);
  }

  // ---------------------------------------------------------------- screen, layers, settings

  /**
   * Share a screen beside the camera: `source` is a video MediaStreamTrack (e.g. of
   * `canvas.captureStream()`), a MediaStream (video + optional audio), or omitted to ask the
   * browser (`getDisplayMedia`, with its audio if offered). It goes out as one layer with
   * contentHint 'detail' (its audio as `screenAudio`); a share already running is replaced.
   * The track ending (the browser's "Stop sharing") stops the share. Resolves with the tracks.
   */
  shareScreen(source = null) {
    return this._publisher.share(source); // `negotiationneeded` then sends the offer
  }

  /** Stop sharing the screen (its transceivers go inactive). False when nothing was shared. */
  stopScreen() {
    return this._publisher.stop();
  }

  /** The video track being shared, or null. */
  get screenTrack() {
    return this._publisher.screen?.video ?? null;
  }

  /**
   * How this client shows remote video track `trackId` (the server's id): merges `settings`
   * ({visible, width, height} in device pixels, `maxLayer` 'q'|'h'|'f' or null for no cap) into
   * what it asked before and sends `trackSettings` when that changed. Returns the settings.
   */
  setTrackSettings(trackId, settings) {
    return this._remote.set(trackId, settings);
  }

  /** trackId -> the settings last asked for (see `setTrackSettings`). */
  get trackSettings() {
    return new Map([...this._remote.settings].map(([id, s]) => [id, { ...s }]));
  }

  /** The latest `speakersChanged` list, loudest first. */
  get speakers() {
    return this._remote.speakers.map((s) => ({ ...s }));
  }

  /** The latest `downlinkChanged`: {estimateBps, layers: Map trackId -> layer|null}. */
  get downlink() {
    return { estimateBps: this._remote.downlink.estimateBps, layers: new Map(this._remote.downlink.layers) };
  }

  /** The received MediaStreamTrack that carries server track `trackId`, or null. */
  remoteTrack(trackId) {
    return this._remote.trackOf(trackId);
  }

  /** The server track id a received MediaStreamTrack carries, or null. */
  remoteTrackId(track) {
    return this._remote.idOf(track);
  }

  /** What each published track sends: [{clientTrackId, source, encodings: [{rid, active, ...}]}]. */
  localEncodings() {
    return this._publisher.encodings();
  }

  // ---------------------------------------------------------------- connection lifecycle

  async #open() {
    const gen = ++this._gen;
    if (this._attempt === 0) this.#setState('connecting', 'Connecting…');
    // Taking a dropped session back needs no access token, only the resume token.
    const resume = this.#resumable() ? this._resume.token : null;
    let token = null;
    if (!resume) {
      try {
        token = await getToken(this);
      } catch (err) {
        if (gen !== this._gen) return;
        if (err instanceof FatalError) return this.#fail(err.message, 'unauthorized');
        this._route.next();
        return this.#scheduleReconnect(false, false);
      }
    }
    if (gen !== this._gen || this._stopped) return;

    let ws;
    try {
      ws = new WebSocket(this._route.url);
    } catch (err) {
      return this.#fail(`Invalid server URL ${this.url}: ${err.message}`, 'bad_url');
    }
    this._ws = ws;
    let opened = false;
    const reached = this._route.watch(ws, () => gen === this._gen && this.#onDrop(1006, 'no answer', false));
    ws.onopen = () => {
      if (gen !== this._gen) return;
      reached();
      opened = true;
      this._lastRx = Date.now();
      this.#send(resume ? { type: 'resume', token: resume } : { type: 'join', room: this.room, token });
      this._pingTimer = setInterval(() => this.#keepalive(gen), PING_INTERVAL_MS);
    };
    ws.onmessage = (ev) => {
      if (gen !== this._gen) return;
      this._lastRx = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return console.warn('switchyard: ignoring non-JSON frame', ev.data);
      }
      // `error` and `closed` are noted at once: the socket close that may follow them must
      // see them even while an earlier message (say an SDP) is still being applied.
      if (msg.type === 'error') {
        this._lastError = msg;
        this.#emit('error', { code: msg.code, message: msg.message });
        // Too late to take the session back: join afresh.
        if (msg.code === 'resume_failed') this.#scheduleReconnect(true, false);
        return;
      }
      if (msg.type === 'closed') {
        if (msg.reason in FINAL_CLOSE_REASONS) this._finalReason = msg.reason;
        return;
      }
      if (msg.type === 'redirect') return this._route.noteRedirect(msg.url);
      this._inbox = this._inbox
        .then(() => gen === this._gen && this.#handle(msg))
        .catch((err) => {
          console.error('switchyard: handling', msg.type, err);
          this.#emit('error', { code: 'client', message: `Could not handle "${msg.type}": ${err.message}` });
        });
    };
    ws.onclose = (ev) => {
      if (gen !== this._gen) return;
      this.#onDrop(ev.code, ev.reason, opened);
    };
    ws.onerror = () => {}; // always followed by close
  }

  #keepalive(gen) {
    if (gen !== this._gen) return;
    if (Date.now() - this._lastRx > SILENCE_TIMEOUT_MS) {
      console.warn('switchyard: server silent for 15 s, reconnecting');
      return this.#onDrop(4000, 'keepalive timeout', true);
    }
    this.#send({ type: 'ping', ts: Date.now() });
  }

  /** The WebSocket is gone (or declared dead). Decide between reconnect and give up. */
  #onDrop(code, reason, wasOpen) {
    if (this._stopped) return;
    if (this._finalReason) {
      return this.#stop('failed', FINAL_CLOSE_REASONS[this._finalReason]);
    }
    if (FATAL_CLOSE_CODES.has(code)) {
      const why = this._lastError?.message || reason || `Connection refused by the server (code ${code}).`;
      return this.#stop('failed', why);
    }
    if (this._route.follow(code)) {
      this.#dropSocket(); // the room is served by another node of the cluster: join there now
      this._retryTimer = setTimeout(() => !this._stopped && this.#open(), 0);
      return;
    }
    // A cluster node that cannot be reached (twice, while resumable) holds no session to resume.
    if (!wasOpen && this._route.missed(this.#resumable())) return this.#scheduleReconnect(false, false);
    this.#scheduleReconnect(wasOpen, true);
  }

  /** Whether the session can still be taken back with `resume` (see `joined`'s resumeToken). */
  #resumable() {
    return !!(this._resume && this.publisherPc && this.subscriberPc &&
      Date.now() - this._lastRx < this._resume.windowMs - RESUME_MARGIN_MS);
  }

  /** Reconnect soon: resuming the session if `tryResume` and it still can, else afresh. */
  #scheduleReconnect(serverWasReachable, tryResume) {
    if (tryResume && this.#resumable()) this.#dropSocket();
    else {
      this._resume = null;
      this.#teardown();
    }
    this._attempt += 1;
    const delay = Math.min(BACKOFF_MIN_MS * 2 ** (this._attempt - 1), this._route.maxBackoff(BACKOFF_MAX_MS));
    const unreachable = !serverWasReachable;
    const message = unreachable
      ? `Server unreachable – retrying (attempt ${this._attempt})`
      : `Reconnecting (attempt ${this._attempt})…`;
    this.#setState('reconnecting', message, { attempt: this._attempt, unreachable });
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (!this._stopped) this.#open();
    }, delay);
  }

  /**
   * Forget the WebSocket. With close code 4000 (the default) the server keeps the session for
   * `resume`: both PCs, tracks and state stay here too; 1000 ends it.
   */
  #dropSocket(code = 4000) {
    this._gen += 1;
    clearInterval(this._pingTimer);
    clearTimeout(this._retryTimer);
    this._pingTimer = this._retryTimer = null;
    if (this._ws) {
      const ws = this._ws;
      ws.onopen = ws.onmessage = ws.onclose = null;
      // 4000: the server reads it as "dropped, coming back", not as a goodbye.
      if (ws.readyState <= WebSocket.OPEN) ws.close(code, code === 4000 ? 'reconnecting' : 'bye');
      this._ws = null;
    }
    this._inbox = Promise.resolve();
    this._lastError = null;
  }

  /** Close socket and both PCs; forget per-session state. Keeps the local stream. */
  #teardown() {
    // The session is abandoned: a normal close lets the server end it at once.
    this.#dropSocket(1000);
    for (const t of Object.keys(this._iceTimers)) clearTimeout(this._iceTimers[t]);
    for (const pc of [this.publisherPc, this.subscriberPc]) {
      if (!pc) continue;
      pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = pc.onnegotiationneeded = null;
      pc.close();
    }
    this.publisherPc = this.subscriberPc = null;
    this._publisher.reset();
    closeDataChannels(this);
    this._published = false;
    this._pending = { publisher: [], subscriber: [] };
    this._remoteStreams.clear();
    this._receiverOwner.clear();
    this._finalReason = null;
  }

  #stop(state, message) {
    this._stopped = true;
    this._resume = null;
    globalThis.removeEventListener?.('online', this._onOnline);
    this.#teardown();
    this.#setState(state, message);
    if (this._connectWaiters) {
      this._connectWaiters.reject(new Error(message));
      this._connectWaiters = null;
    }
  }

  #fail(message, code) {
    this.#emit('error', { code, message });
    this.#stop('failed', message);
  }

  // ---------------------------------------------------------------- server messages

  async #handle(msg) {
    switch (msg.type) {
      case 'joined':
        return this.#onJoined(msg);
      case 'resumed':
        return this.#onResumed(msg);
      case 'answer':
        if (msg.target !== 'publisher' || !this.publisherPc) return;
        await this.publisherPc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        // Set at once, before the browser's next `negotiationneeded` (a share added meanwhile).
        this._published = true;
        await this.#flushCandidates('publisher');
        for (const kind of ['audio', 'video']) {
          if (this._muted[kind] && this.#localTrack(kind)) this.#send({ type: 'mute', kind, muted: true });
        }
        return;
      case 'offer': {
        const pc = this.subscriberPc;
        if (msg.target !== 'subscriber' || !pc) return;
        this._remote.noteOffer(msg.sdp);
        await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
        await this.#flushCandidates('subscriber');
        await pc.setLocalDescription(await pc.createAnswer());
        this.#send({ type: 'answer', target: 'subscriber', sdp: pc.localDescription.sdp });
        if (this._remote.refresh(pc)) this.#emit('remoteTracksChanged', {});
        return;
      }
      case 'candidate': {
        const pc = msg.target === 'publisher' ? this.publisherPc : this.subscriberPc;
        if (!pc || !msg.candidate || !msg.candidate.candidate) return; // null = end of candidates
        if (!pc.remoteDescription) this._pending[msg.target].push(msg.candidate);
        else await this.#addCandidate(pc, msg.candidate);
        return;
      }
      case 'participantJoined': {
        const p = normaliseParticipant(msg.participant);
        this.participants.set(p.id, p);
        return this.#emit('participantJoined', { participant: p });
      }
      case 'participantLeft': {
        const participant = this.participants.get(msg.participantId) || null;
        this.participants.delete(msg.participantId);
        this._remoteStreams.delete(msg.participantId);
        this._remote.forget((participant?.tracks || []).map((t) => t.id));
        return this.#emit('participantLeft', {
          participantId: msg.participantId,
          identity: msg.identity,
          reason: msg.reason,
          participant,
        });
      }
      case 'trackPublished': {
        const p = this.participants.get(msg.participantId);
        if (p) p.tracks = [...p.tracks.filter((t) => t.id !== msg.track.id), msg.track];
        return this.#emit('trackPublished', { participantId: msg.participantId, track: msg.track });
      }
      case 'trackUnpublished': {
        const p = this.participants.get(msg.participantId);
        const track = p?.tracks.find((t) => t.id === msg.trackId) || null;
        if (p) p.tracks = p.tracks.filter((t) => t.id !== msg.trackId);
        this._remote.forget([msg.trackId]);
        return this.#emit('trackUnpublished', { participantId: msg.participantId, trackId: msg.trackId, track });
      }
      case 'trackMuted': {
        const track = this.participants.get(msg.participantId)?.tracks.find((t) => t.id === msg.trackId);
        if (track) track.muted = msg.muted;
        return this.#emit('trackMuted', {
          participantId: msg.participantId,
          trackId: msg.trackId,
          kind: track?.kind ?? null,
          muted: msg.muted,
        });
      }
      case 'speakersChanged':
        return this._remote.onSpeakers(msg);
      case 'downlinkChanged':
        return this._remote.onDownlink(msg);
      case 'subscribedLayers': // applied in the background: setParameters must not hold the inbox
        return this._publisher.applyLayers(this.publisherPc, msg);
      case 'draining':
        return this.#emit('draining', { closesInSecs: msg.closesInSecs });
      case 'nodes':
        return this._route.setNodes(msg.nodes);
      case 'pong':
        if (typeof msg.ts === 'number') this.rtt = Date.now() - msg.ts;
        return;
      default:
        console.debug('switchyard: ignoring unknown message', msg.type);
    }
  }

  async #onResumed(msg) {
    this._attempt = 0;
    this.#setState('connected', `Connected to room “${msg.room}”`);
    this.#emit('resumed', { room: msg.room, participantId: msg.participantId, missed: msg.missed });
    // An offer sent while the old connection was dying may never have arrived: send it again.
    const pc = this.publisherPc;
    if (pc && pc.signalingState === 'have-local-offer' && pc.localDescription) this.#sendPublisherOffer();
    this._remote.resend(); // settings sent into the dropped socket
  }

  async #onJoined(msg) {
    this.you = normaliseParticipant(msg.you);
    this._resume = msg.resume ? { token: msg.resume.token, windowMs: msg.resume.windowSecs * 1000 } : null;
    this._route.joined(msg.nodes);
    this.participants = new Map((msg.participants || []).map((p) => [p.id, normaliseParticipant(p)]));
    this._attempt = 0;
    this._remote.reset(new Set([...this.participants.values()].flatMap((p) => p.tracks.map((t) => t.id))));

    const config = { iceServers: msg.iceServers || [] };
    if (this.relay) {
      config.iceTransportPolicy = 'relay';
      if (!config.iceServers.some((s) => [].concat(s.urls).some((u) => /^turns?:/.test(u)))) {
        this.#emit('error', {
          code: 'no_turn',
          message: 'TURN relay was forced, but the server offers no TURN server: media cannot connect. Remove relay=1 or configure TURN.',
        });
      }
    }
    this.publisherPc = this.#createPc('publisher', config);
    this.subscriberPc = this.#createPc('subscriber', config);
    createDataChannels(this, this.publisherPc); // before the first publisher offer
    this.subscriberPc.ontrack = (ev) => this.#onRemoteTrack(ev);

    this.#setState('connected', `Connected to room “${msg.room}”`);
    this.#emit('joined', {
      room: msg.room,
      you: this.you,
      participants: [...this.participants.values()],
      iceServers: config.iceServers,
    });
    if (this._connectWaiters) {
      this._connectWaiters.resolve(msg);
      this._connectWaiters = null;
    }
    await this.#publish();
  }

  /**
   * Add the local audio/video tracks (and a screen being shared) as sendonly transceivers and
   * send the publisher offer. A receive-only participant still offers: the data channels and
   * an empty recvonly video section (for the socket's receive buffer: switchyard-publish.js).
   */
  async #publish() {
    const pc = this.publisherPc;
    this._publisher.addAll(pc, this.localStream);
    await pc.setLocalDescription(await pc.createOffer());
    this.#sendPublisherOffer();
  }

  /** Sends the publisher PC's local offer with the `sources` of the tracks it sends. */
  #sendPublisherOffer() {
    const pc = this.publisherPc;
    const sources = this._publisher.sources(pc);
    this.#send({ type: 'offer', target: 'publisher', sdp: pc.localDescription.sdp, sources });
  }

  #createPc(target, config) {
    const pc = new RTCPeerConnection(config);
    pc.onicecandidate = (ev) => {
      this.#send({ type: 'candidate', target, candidate: ev.candidate ? ev.candidate.toJSON() : null });
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this[`${target}Pc`]) return;
      clearTimeout(this._iceTimers[target]);
      this._iceTimers[target] = null;
      const state = pc.connectionState;
      if (state === 'connected') {
        const other = this[`${target === 'publisher' ? 'subscriber' : 'publisher'}Pc`];
        if (other?.connectionState === 'connected') {
          clearTimeout(this._iceTimers.fallback);
          this._iceRestarts = 0;
        }
      } else if (state === 'failed') {
        const hint = this.relay ? ' (TURN relay forced: is the TURN server reachable?)' : '';
        this.#emit('error', { code: 'ice_failed', message: `Media connection (${target}) failed${hint}. Restarting ICE…` });
        if (!this.restartIce('failed')) this.#scheduleReconnect(true, false);
      } else if (state === 'disconnected') {
        this._iceTimers[target] = setTimeout(() => {
          this._iceTimers[target] = null;
          if (pc.connectionState === 'disconnected') this.restartIce('disconnected');
        }, ICE_DISCONNECTED_GRACE_MS);
      }
    };
    pc.onnegotiationneeded = () => {
      if (pc !== this[`${target}Pc`] || pc.signalingState !== 'stable') return;
      if (target === 'subscriber') {
        // The server offers on this connection: ask it for an offer that restarts ICE (once
        // per few seconds, should the browser keep asking).
        if (Date.now() - this._lastSubscriberRestart < ICE_RESTART_MIN_GAP_MS) return;
        this._lastSubscriberRestart = Date.now();
        this.#send({ type: 'restartIce', target: 'subscriber' });
      } else if (this._published) {
        // After restartIce() or a screen share change (the first offer is #publish's own).
        this.#renegotiatePublisher().catch((err) => console.warn('switchyard: publisher offer failed', err));
      }
    };
    return pc;
  }

  async #renegotiatePublisher() {
    const pc = this.publisherPc;
    await pc.setLocalDescription(await pc.createOffer());
    if (pc === this.publisherPc) this.#sendPublisherOffer();
  }

  #onRemoteTrack(ev) {
    const stream = ev.streams[0];
    if (!stream) return console.warn('switchyard: remote track without a stream, ignored');
    const participantId = stream.id; // msid is "<participantId> <trackId>"
    this._remoteStreams.set(participantId, stream);
    this._receiverOwner.set(ev.receiver, participantId);
    const trackId = this._remote.onTrack(ev);
    const info = this.participants.get(participantId)?.tracks.find((t) => t.id === trackId);
    const source = info?.source ?? null;
    this.#emit('remoteTrack', { participantId, kind: ev.track.kind, track: ev.track, stream, trackId, source });
  }

  async #flushCandidates(target) {
    const pc = target === 'publisher' ? this.publisherPc : this.subscriberPc;
    const queued = this._pending[target];
    this._pending[target] = [];
    for (const c of queued) await this.#addCandidate(pc, c);
  }

  async #addCandidate(pc, candidate) {
    try {
      await pc.addIceCandidate(candidate);
    } catch (err) {
      console.warn('switchyard: addIceCandidate failed', candidate, err);
    }
  }

  // ---------------------------------------------------------------- helpers

  #localTrack(kind) {
    return this.localStream?.getTracks().find((t) => t.kind === kind && t.readyState === 'live') || null;
  }

  /** Sends a signaling message; false when the socket is not open (the message is dropped). */
  #send(msg) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) return false;
    this._ws.send(JSON.stringify(msg));
    return true;
  }

  #setState(state, message, extra = {}) {
    this.state = state;
    this.stateMessage = message;
    this.#emit('state', { state, message, ...extra });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function normaliseParticipant(p) {
  return { id: p.id, identity: p.identity, name: p.name || p.identity, tracks: [...(p.tracks || [])] };
}
