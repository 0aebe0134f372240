// Switchyard recordings (recordings.html): the HLS recordings made by the recorder sidecar, listed
// from the admin API (`GET /api/recordings`, refreshed every few seconds and at once on the
// `recording_*` events of `GET /api/events`), and played in a <video> with hls.js
// (/static/vendor/hls.min.js, loaded before this module), or natively where the browser plays HLS
// itself and has no Media Source Extensions.
//
// `?id=<recording id>` opens a recording directly; it starts muted (browsers allow muted
// autoplay). A live recording plays from near its live edge and keeps playing when it ends (the
// playlist gains #EXT-X-ENDLIST and hls.js turns it into a video on demand).
//
// Test hook: `window.switchyardRecordings` = `{state(), video, refresh(), open(id)}`, where
// `state()` is `{recordings, playingId, error, ...}` (see below).

import { ApiError, apiErrorFrom, backoffDelay, describeApiError, tokenRoom } from './admin-api.js';
import { formatDuration } from './admin-format.js';
import { mergeRecording, recordingBadge, recordingDuration, recordingFinished } from './admin-recording.js';
import { SseParser } from './admin-sse.js';

const TOKEN_KEY = 'switchyard.adminToken'; // shared with the dashboard (same tab)
export const POLL_MS = 3000;

/**
 * hls.js settings. A live (EVENT) playlist starts three segments behind its live edge, which
 * leaves room for the next segment to arrive; everything recorded so far stays seekable.
 */
export const HLS_CONFIG = {
  liveSyncDurationCount: 3,
  enableWorker: true,
  lowLatencyMode: false,
  backBufferLength: 90,
};

/** Newest first (by start time, then id). */
export function sortRecordings(list) {
  return [...list].sort((a, b) => {
    const ta = Date.parse(a.startedAt || '') || 0;
    const tb = Date.parse(b.startedAt || '') || 0;
    return tb - ta || String(b.id).localeCompare(String(a.id));
  });
}

/** The recording's playlist URL (from the API, or where the server keeps it). */
export function playlistUrl(rec) {
  return rec.playlistUrl || `/recordings/${encodeURIComponent(rec.id)}/playlist.m3u8`;
}

/** Which way this browser plays HLS: 'hls.js' (MSE), 'native', or null (it cannot). */
export function playbackEngine(Hls, video) {
  if (Hls && typeof Hls.isSupported === 'function' && Hls.isSupported()) return 'hls.js';
  if (video && video.canPlayType && video.canPlayType('application/vnd.apple.mpegurl')) return 'native';
  return null;
}

/** A start time for people: local date and time. */
export function formatStarted(iso) {
  const t = Date.parse(iso || '');
  if (!Number.isFinite(t)) return '—';
  return new Date(t).toLocaleString([], {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

// ------------------------------------------------------------------------------------------------
// Browser

if (typeof document !== 'undefined' && document.getElementById('rec-view')) {
  startPage();
}

function startPage() {
  const $ = (id) => document.getElementById(id);
  const video = $('rec-video');

  let token = '';
  let scope = '';
  let generation = 0; // bumps on sign-in/out: stale loops and answers are ignored
  let recordings = [];
  let loaded = false;
  let listError = null; // {text, advice}
  let refreshing = null; // the running refresh (a promise)
  let refreshAgain = false;
  let pollTimer = null;
  let eventsAbort = null;
  let eventRefreshTimer = null;
  let selectedId = new URLSearchParams(location.search).get('id') || null;
  let player = null; // {id, rec, engine, hls, live, waiting, retries…}
  let playerError = null; // {text, advice, code}
  let message = '';
  let renderQueued = false;
  let devMode = false; // the server hands out dev admin tokens

  // ---------------------------------------------------------------- test hook
  window.switchyardRecordings = {
    state: () => ({
      recordings: recordings.map((r) => ({ ...r })),
      playingId: player ? player.id : null,
      error: playerError ? playerError.text : (listError ? listError.text : null),
      errorAdvice: playerError ? playerError.advice : (listError ? listError.advice : null),
      errorCode: playerError ? playerError.code : (listError ? listError.code : null),
      selectedId,
      engine: player ? player.engine : null,
      live: player ? player.live : null,
      waiting: player ? !!player.waiting : false,
      hlsErrors: player ? [...player.errors] : [],
      ended: player ? !!player.ended : false, // played to its end (a finished recording)
      message,
      loaded,
      signedIn: !!token,
    }),
    video,
    refresh: () => refresh(),
    open: (id) => open(id),
  };

  // ---------------------------------------------------------------- DOM helpers
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c != null) el.append(c);
    return el;
  }
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }
  function setAttr(el, name, value) {
    if (value == null) el.removeAttribute(name);
    else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
  }
  function toast(text) {
    const el = h('div', { class: 'toast', text });
    $('rec-toasts').append(el);
    setTimeout(() => el.remove(), 3200);
  }
  function setConnection(state, text) {
    const pill = $('rec-connection');
    pill.dataset.state = state;
    const labels = { 'signed-out': 'Signed out', connecting: 'Connecting…', live: 'Up to date', error: 'Offline' };
    setText(pill.querySelector('.text'), text || labels[state] || state);
  }

  // ---------------------------------------------------------------- API
  async function api(method, path) {
    let res;
    try {
      res = await fetch(path, { method, cache: 'no-store', headers: { Authorization: `Bearer ${token}` } });
    } catch (e) {
      throw new ApiError(0, 'network', e.message || 'network error');
    }
    const text = res.status === 204 ? '' : await res.text();
    if (!res.ok) throw apiErrorFrom(res.status, text, res.headers.get('Retry-After'));
    return text ? JSON.parse(text) : null;
  }
  const isAuthError = (err) => err instanceof ApiError && (err.status === 401 || err.status === 429);

  // ---------------------------------------------------------------- list
  function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    const gen = generation;
    refreshing = (async () => {
      try {
        const body = await api('GET', '/api/recordings');
        if (gen !== generation) return;
        const fresh = Array.isArray(body?.recordings) ? body.recordings : [];
        // Keep what events told us about a recording if the answer is older (never go back).
        const known = new Map(recordings.map((r) => [r.id, r]));
        recordings = sortRecordings(fresh.map((r) => mergeRecording(known.get(r.id) || null, r)));
        loaded = true;
        listError = null;
        setConnection('live');
        setText($('rec-updated'), `updated ${new Date().toLocaleTimeString()}`);
        if (player) {
          const rec = recordings.find((r) => r.id === player.id);
          if (rec) recordingChanged(rec);
        }
      } catch (err) {
        if (gen !== generation) return;
        if (isAuthError(err)) {
          tokenRejected(err);
          return;
        }
        const d = describeApiError(err);
        listError = { text: `Could not load the recordings: ${d.text}`, advice: err.status === 0 ? 'Check that Switchyard is running; this page keeps retrying.' : d.advice, code: err.code || 'error' };
        setConnection('error', err.status === 0 ? 'Offline · retrying' : 'Error');
      } finally {
        refreshing = null;
        scheduleRender();
        if (refreshAgain && gen === generation) {
          refreshAgain = false;
          refresh();
        }
      }
    })();
    return refreshing;
  }

  function poll(gen) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => {
      if (gen !== generation) return;
      await refresh();
      if (gen === generation) poll(gen);
    }, POLL_MS);
  }

  /** Live updates: on a `recording_*` event, apply it and reload the list at once. */
  async function followEvents(gen) {
    let attempt = 0;
    while (gen === generation) {
      const controller = new AbortController();
      eventsAbort = controller;
      try {
        const url = scope ? `/api/events?room=${encodeURIComponent(scope)}` : '/api/events';
        const res = await fetch(url, { headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' }, cache: 'no-store', signal: controller.signal });
        if (!res.ok) throw apiErrorFrom(res.status, await res.text());
        attempt = 0;
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        const parser = new SseParser();
        for (;;) {
          const { value, done } = await reader.read();
          if (done || gen !== generation) break;
          for (const ev of parser.push(decoder.decode(value, { stream: true }))) {
            if (ev.event.startsWith('recording_')) onRecordingEvent(ev);
          }
        }
      } catch {
        // The poll keeps the list fresh meanwhile (and reports a refused token).
      }
      if (gen !== generation) return;
      attempt += 1;
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt)));
    }
  }

  function onRecordingEvent(ev) {
    let data;
    try { data = JSON.parse(ev.data); } catch { return; }
    if (!data || typeof data.id !== 'string') return;
    const i = recordings.findIndex((r) => r.id === data.id);
    if (i >= 0) {
      const incoming = { id: data.id };
      for (const k of ['state', 'reason', 'playlistUrl', 'startedAt', 'stoppedAt']) {
        if (data[k] !== undefined) incoming[k] = data[k];
      }
      if (ev.event === 'recording_stopped' && !incoming.stoppedAt && data.at) incoming.stoppedAt = data.at;
      recordings[i] = mergeRecording(recordings[i], incoming);
      if (player && player.id === data.id) recordingChanged(recordings[i]);
      scheduleRender();
    }
    clearTimeout(eventRefreshTimer);
    eventRefreshTimer = setTimeout(() => refresh(), 150);
  }

  // ---------------------------------------------------------------- player
  function setMessage(text) {
    message = text || '';
    scheduleRender();
  }
  function fail(text, advice, code = 'playback') {
    playerError = { text, advice, code };
    // Nothing more will play: an empty player, not a spinner.
    if (player && player.hls) {
      player.hls.destroy();
      player.hls = null;
    }
    video.removeAttribute('src');
    video.load();
    setMessage('');
  }

  function stopPlayer() {
    if (!player) return;
    clearTimeout(player.timer);
    if (player.hls) player.hls.destroy();
    player.stopped = true;
    player = null;
    video.removeAttribute('src');
    video.load();
  }

  /** Selects a recording (by id) and plays it. */
  async function open(id) {
    selectedId = id || null;
    const params = new URLSearchParams(location.search);
    if (selectedId) params.set('id', selectedId);
    else params.delete('id');
    const query = params.toString();
    history.replaceState(null, '', location.pathname + (query ? `?${query}` : '') + location.hash);
    stopPlayer();
    playerError = null;
    setMessage(selectedId ? 'Loading…' : 'Pick a recording from the list to play it.');
    if (!selectedId) return;
    const gen = generation;
    let rec = recordings.find((r) => r.id === selectedId);
    if (!rec) {
      try {
        rec = await api('GET', `/api/recordings/${encodeURIComponent(selectedId)}`);
      } catch (err) {
        if (gen !== generation || selectedId !== id) return;
        if (isAuthError(err)) {
          tokenRejected(err);
          return;
        }
        if (err instanceof ApiError && err.status === 404) {
          fail(`Recording “${id}” not found.`, 'It may have been deleted, or the link is wrong. Pick a recording from the list.', 'not_found');
        } else {
          const d = describeApiError(err);
          fail(`Could not load recording “${id}”: ${d.text}`, d.advice, err.code || 'error');
        }
        return;
      }
      if (gen !== generation || selectedId !== id) return;
    }
    play(rec);
  }

  function play(rec) {
    stopPlayer();
    playerError = null;
    player = {
      id: rec.id, rec, engine: null, hls: null, live: null, waiting: false, timer: null,
      manifestRetries: 0, networkRetries: 0, mediaRecoveries: 0, manifestLoaded: false, stopped: false,
      errors: [], // hls.js errors, recoverable ones too (type/details), for the test hook
      ended: false,
    };
    if (rec.state === 'starting') {
      // Nothing recorded yet: the list refresh (or an event) loads it once it is active.
      player.waiting = true;
      setMessage('Waiting for the recording to start…');
      return;
    }
    load(player);
  }

  /** News of the recording being played (from the list or an event). */
  function recordingChanged(rec) {
    if (!player || player.id !== rec.id) return;
    player.rec = rec;
    if (player.waiting && rec.state !== 'starting') {
      player.waiting = false;
      load(player);
    }
    scheduleRender();
  }

  function load(p) {
    const url = playlistUrl(p.rec);
    const Hls = window.Hls;
    p.engine = playbackEngine(Hls, video);
    video.muted = true;
    if (p.engine === 'hls.js') {
      setMessage(p.rec.state === 'active' ? 'Joining the live recording…' : 'Loading the recording…');
      // The media needs no token: its unguessable URL is the capability.
      const hls = new Hls({ ...HLS_CONFIG });
      p.hls = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        if (p.stopped) return;
        p.manifestLoaded = true;
        p.manifestRetries = 0;
        tryPlay(p);
      });
      hls.on(Hls.Events.LEVEL_LOADED, (_, data) => {
        if (p.stopped || !data || !data.details) return;
        p.live = !!data.details.live;
        scheduleRender();
      });
      hls.on(Hls.Events.FRAG_LOADED, () => {
        if (!p.stopped) p.networkRetries = 0;
      });
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (p.stopped || !data) return;
        p.errors.push(`${data.fatal ? 'fatal ' : ''}${data.type}/${data.details}`);
        if (p.errors.length > 20) p.errors.shift();
        if (data.fatal) onFatal(p, data);
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (p.engine === 'native') {
      setMessage('Loading the recording…');
      p.live = p.rec.state === 'active';
      video.src = url;
      tryPlay(p);
    } else {
      fail('This browser cannot play HLS.',
        Hls ? 'It has neither Media Source Extensions nor native HLS: use a recent Chrome, Edge, Firefox or Safari.'
          : 'The HLS player (hls.js) did not load: reload the page. If it keeps failing, use Safari, which plays HLS itself.',
        'unsupported');
    }
    scheduleRender();
  }

  function tryPlay(p) {
    video.muted = true;
    const started = video.play();
    if (started && typeof started.catch === 'function') {
      started.then(() => {
        if (!p.stopped && message && !playerError) setMessage('');
      }, (err) => {
        if (p.stopped || !err) return;
        if (err.name === 'NotAllowedError') setMessage('This browser blocked autoplay: press play.');
      });
    }
  }

  /** hls.js gave up on something: retry what can be retried, else say what went wrong. */
  function onFatal(p, data) {
    const Hls = window.Hls;
    const status = data.response && data.response.code ? data.response.code : 0;
    const manifest = !p.manifestLoaded;
    const rec = p.rec;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR && manifest && !recordingFinished(rec) && p.manifestRetries < 30) {
      // A recording that just started may have no playlist yet: wait for its first segments.
      p.manifestRetries += 1;
      p.hls.destroy();
      p.hls = null;
      setMessage('Waiting for the first segments of the recording…');
      p.timer = setTimeout(() => { if (!p.stopped) load(p); }, 2000);
      return;
    }
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR && manifest) {
      p.hls.destroy();
      p.hls = null;
      if (status === 404 && rec.state === 'failed') {
        fail(`The recording failed${rec.reason ? ` (${rec.reason})` : ''} before anything was saved.`, 'There is nothing to play. Start a new recording from the admin dashboard.', 'no_media');
      } else if (status === 404) {
        fail('This recording’s playlist was not found (HTTP 404).', 'Its files may have been deleted. Pick another recording from the list.', 'no_media');
      } else {
        fail(`Could not load the recording’s playlist: ${data.details}${status ? ` (HTTP ${status})` : ''}.`, 'Check that Switchyard is running, then press “Try again”.', 'network');
      }
      return;
    }
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR && p.networkRetries < 4) {
      p.networkRetries += 1;
      setMessage('Connection problem: retrying…');
      p.timer = setTimeout(() => { if (!p.stopped && p.hls) p.hls.startLoad(); }, 1000 * p.networkRetries);
      return;
    }
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && p.mediaRecoveries < 2) {
      p.mediaRecoveries += 1;
      p.hls.recoverMediaError();
      return;
    }
    p.hls.destroy();
    p.hls = null;
    fail(`Playback failed: ${data.details}${status ? ` (HTTP ${status})` : ''}${data.error && data.error.message ? ` — ${data.error.message}` : ''}.`,
      'Press “Try again”. If it keeps failing, open the playlist link above to check the files, and look at the recorder’s log.',
      `hls_${data.type}`);
  }

  video.addEventListener('playing', () => {
    if (player && !playerError) setMessage('');
  });
  video.addEventListener('ended', () => {
    if (!player || playerError) return;
    player.ended = true;
    setMessage('End of the recording.');
  });
  video.addEventListener('error', () => {
    // hls.js reports its own errors; this is the native player's.
    if (!player || player.engine !== 'native' || !video.error) return;
    fail(`Playback failed (media error ${video.error.code})${video.error.message ? `: ${video.error.message}` : ''}.`,
      'Press “Try again”; if it keeps failing, try another browser.', 'native');
  });

  /**
   * A recording that stopped mid-segment can end in a stub the browser cannot play through
   * (hls.js reports bufferStalledError and waits forever): stalled for 4 s within 2 s of the end
   * of a finished recording is its end.
   */
  function watchStall() {
    const p = player;
    if (!p) return;
    const t = video.currentTime;
    if (p.live !== false || video.paused || video.ended || playerError || p.lastTime !== t) {
      p.lastTime = t;
      p.stallSince = Date.now();
      return;
    }
    if (Date.now() - p.stallSince > 4000 && Number.isFinite(video.duration) && video.duration - t < 2) {
      video.pause();
      p.ended = true;
      setMessage('End of the recording.');
    }
  }
  setInterval(watchStall, 1000);

  $('player-retry').addEventListener('click', () => {
    const id = (player && player.id) || selectedId;
    if (!id) return;
    const rec = recordings.find((r) => r.id === id);
    if (rec) play(rec);
    else open(id);
  });

  // ---------------------------------------------------------------- rendering
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => {
      renderQueued = false;
      render();
    }, 16);
  }

  function createItem(rec) {
    return h('li', { class: 'rec-li', 'data-recording-id': rec.id },
      h('button', { class: 'rec-item', type: 'button', 'data-action': 'play' },
        h('span', { class: 'rec-item-top' },
          h('strong', { class: 'rec-room' }),
          h('span', { class: 'rec-badge' })),
        h('span', { class: 'rec-item-meta' },
          h('time', { class: 'rec-started' }),
          h('span', { class: 'rec-duration' })),
        h('span', { class: 'rec-reason' })));
  }

  function updateItem(li, rec) {
    const button = li.querySelector('.rec-item');
    const selected = rec.id === selectedId;
    setAttr(button, 'aria-current', selected ? 'true' : null);
    setAttr(li, 'data-state', String(rec.state));
    setAttr(button, 'aria-label', `Play the recording of ${rec.room}, ${recordingBadge(rec.state)}, started ${formatStarted(rec.startedAt)}`);
    setText(li.querySelector('.rec-room'), rec.room || '—');
    const badge = li.querySelector('.rec-badge');
    setText(badge, recordingBadge(rec.state));
    setAttr(badge, 'data-state', String(rec.state));
    const started = li.querySelector('.rec-started');
    setText(started, formatStarted(rec.startedAt));
    setAttr(started, 'datetime', rec.startedAt || null);
    setText(li.querySelector('.rec-duration'), formatDuration(recordingDuration(rec)));
    const reason = li.querySelector('.rec-reason');
    const why = rec.state === 'failed' ? `Failed: ${rec.reason || 'no reason given'}` : (rec.reason || '');
    setText(reason, why);
    reason.hidden = !why;
  }

  function renderList() {
    const list = $('rec-list');
    list.setAttribute('aria-busy', String(!loaded));
    $('rec-loading').hidden = loaded || !!listError;
    $('rec-empty').hidden = !loaded || recordings.length > 0;
    setText($('rec-count'), String(recordings.length));
    const err = $('rec-list-error');
    err.hidden = !listError;
    setText(err, listError ? `${listError.text} ${listError.advice}` : '');
    const existing = new Map([...list.children].map((el) => [el.dataset.recordingId, el]));
    let cursor = list.firstElementChild;
    for (const rec of recordings) {
      let el = existing.get(rec.id);
      if (el) existing.delete(rec.id);
      else el = createItem(rec);
      updateItem(el, rec);
      if (el !== cursor) list.insertBefore(el, cursor);
      else cursor = cursor.nextElementSibling;
    }
    for (const el of existing.values()) el.remove();
  }

  function renderPlayer() {
    const rec = player ? player.rec : recordings.find((r) => r.id === selectedId);
    setText($('player-title'), rec ? `Room ${rec.room}` : (selectedId ? `Recording ${selectedId}` : 'No recording selected'));
    const badge = $('player-badge');
    badge.hidden = !rec;
    if (rec) {
      setText(badge, recordingBadge(rec.state));
      setAttr(badge, 'data-state', String(rec.state));
    }
    const link = $('player-link');
    link.hidden = !rec;
    if (rec) setAttr(link, 'href', playlistUrl(rec));
    $('player-meta').hidden = !rec;
    if (rec) {
      setText($('player-room'), rec.room || '—');
      setText($('player-started'), formatStarted(rec.startedAt));
      setText($('player-duration'), formatDuration(recordingDuration(rec)));
      const reason = $('player-reason');
      setText(reason, rec.reason || '');
      reason.parentElement.hidden = !rec.reason;
      const engine = player && player.engine ? (player.engine === 'native' ? 'native HLS' : 'hls.js') : '—';
      const mode = player && player.live != null ? (player.live ? ' · live' : ' · on demand') : '';
      setText($('player-engine'), engine + mode);
    }
    const box = $('player-error');
    box.hidden = !playerError;
    setText($('player-error-text'), playerError ? playerError.text : '');
    setText($('player-error-advice'), playerError ? playerError.advice : '');
    // Trying again cannot help when there is nothing to play.
    $('player-retry').hidden = !playerError || ['not_found', 'unsupported', 'no_media'].includes(playerError.code);
    const msg = $('player-message');
    const text = playerError ? '' : message;
    setText(msg, text);
    msg.hidden = !text;
  }

  function render() {
    const signedIn = !!token;
    $('rec-signin-view').hidden = signedIn;
    $('rec-view').hidden = !signedIn;
    if (!signedIn) return;
    renderList();
    renderPlayer();
  }

  $('rec-list').addEventListener('click', (e) => {
    const li = e.target.closest('[data-recording-id]');
    if (!li) return;
    const id = li.dataset.recordingId;
    if (id === selectedId && player && !playerError) {
      video.focus();
      return;
    }
    open(id);
  });
  setInterval(() => { if (token) render(); }, 1000); // durations tick

  // ---------------------------------------------------------------- sign-in
  function begin(newToken) {
    const t = (newToken || '').trim().replace(/^Bearer\s+/i, '');
    if (!t) return;
    generation += 1;
    if (eventsAbort) eventsAbort.abort();
    token = t;
    scope = tokenRoom(t);
    try { sessionStorage.setItem(TOKEN_KEY, t); } catch {}
    $('rec-signin-error').hidden = true;
    $('rec-token').value = '';
    setConnection('connecting');
    const gen = generation;
    render();
    refresh().then(() => {
      if (gen === generation) poll(gen);
    });
    followEvents(gen);
    if (selectedId) open(selectedId);
    else setMessage('Pick a recording from the list to play it.');
  }

  function tokenRejected(err) {
    generation += 1;
    if (eventsAbort) eventsAbort.abort();
    clearTimeout(pollTimer);
    stopPlayer();
    token = '';
    try { sessionStorage.removeItem(TOKEN_KEY); } catch {}
    const d = describeApiError(err);
    const box = $('rec-signin-error');
    box.textContent = `${d.text}. ${d.advice}`;
    box.hidden = false;
    setConnection('error', 'Token refused');
    render();
    $('rec-token').focus();
  }

  async function devToken() {
    try {
      const res = await fetch('/api/dev-admin-token', { cache: 'no-store' });
      if (!res.ok) return null;
      return JSON.parse(await res.text()).token || null;
    } catch {
      return null;
    }
  }

  $('rec-signin').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = $('rec-token').value.trim();
    if (value) {
      begin(value);
    } else {
      const box = $('rec-signin-error');
      box.textContent = 'Paste an admin token first: a JWT with the roomAdmin grant.';
      box.hidden = false;
      $('rec-token').focus();
    }
  });
  $('rec-dev-token').addEventListener('click', async () => {
    const t = await devToken();
    if (t) {
      devMode = true;
      begin(t);
    }
    else toast('This server is not in dev mode: paste an admin token.');
  });

  async function boot() {
    const params = new URLSearchParams(location.search);
    const fromUrl = params.get('token');
    if (fromUrl) {
      params.delete('token');
      const rest = params.toString();
      history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
      begin(fromUrl);
      return;
    }
    let stored = '';
    try { stored = sessionStorage.getItem(TOKEN_KEY) || ''; } catch {}
    if (stored) {
      begin(stored);
      devToken().then((t) => {
        devMode = !!t;
        $('rec-dev-token').hidden = !devMode;
      });
      return;
    }
    // Dev mode: the server hands out admin tokens, so just use one.
    const dev = await devToken();
    devMode = !!dev;
    $('rec-dev-token').hidden = !devMode;
    if (dev) {
      begin(dev);
      return;
    }
    setConnection('signed-out');
    render();
    $('rec-token').focus();
  }

  boot();
}
