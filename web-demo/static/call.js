// Switchyard call page (/room/{room}?name=...&relay=1). All signaling and WebRTC lives in
// switchyard.js; this file only turns its events into DOM.
//
// Test hooks: window.switchyard = { client, stats(), remoteParticipants(), state() }.

import { SwitchyardClient } from './switchyard.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const room = roomFromUrl();
const relay = ['1', 'true', 'yes'].includes((params.get('relay') || '').toLowerCase());
const NAME_KEY = 'switchyard.name';

const ICONS = {
  mic: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z"/><path d="M19 11a7 7 0 0 1-14 0M12 18v3"/></svg>',
  micOff: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M15 9.4V6a3 3 0 0 0-5.7-1.3M9 9v3a3 3 0 0 0 5.1 2.1M19 11a7 7 0 0 1-1.2 3.9M5 11a7 7 0 0 0 11.2 5.6M12 18v3M3 3l18 18"/></svg>',
  cam: '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="2" y="6" width="14" height="12" rx="2"/><path d="M16 10l6-3v10l-6-3z"/></svg>',
  camOff: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M16 16v0a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h2m4 0h4a2 2 0 0 1 2 2v3.3l1 1L22 7v10M3 3l18 18"/></svg>',
  people: '<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="9" cy="8" r="3.5"/><path d="M2.5 20a6.5 6.5 0 0 1 13 0M16 4.6a3.5 3.5 0 0 1 0 6.8M18 14.2a6.5 6.5 0 0 1 3.5 5.8"/></svg>',
  leave: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3.7 14.3c4.6-4.4 12-4.4 16.6 0l-2.1 2.5-3.4-1.3v-2.6a11 11 0 0 0-5.6 0v2.6l-3.4 1.3z"/></svg>',
  link: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M10 14a4.5 4.5 0 0 0 6.4 0l3.2-3.2a4.5 4.5 0 0 0-6.4-6.4L12 5.6M14 10a4.5 4.5 0 0 0-6.4 0l-3.2 3.2a4.5 4.5 0 0 0 6.4 6.4l1.2-1.2"/></svg>',
};

/** participantId -> {el, video, audio, stream} */
const tiles = new Map();
/** participantId -> MediaStream that arrived before its tile existed */
const pendingStreams = new Map();
let client = null;
let localStream = null;

main().catch((err) => {
  console.error(err);
  showBanner(`Something went wrong: ${err.message}`, 'error');
});

async function main() {
  if (!room) return location.replace('/');
  document.title = `${room} · Switchyard`;
  $('room-name').textContent = room;
  setPill('idle', 'Not connected');
  wireStaticControls();

  let name = (params.get('name') || '').trim();
  if (!name) {
    name = await askName();
    params.set('name', name);
    history.replaceState(null, '', `${location.pathname}?${params}`);
  }
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {}

  client = new SwitchyardClient({
    room,
    name,
    relay,
    videoCodec: params.get('codec') || '',
    token: params.get('token') || undefined,
  });
  window.switchyard = {
    client,
    stats: () => client.getStats(),
    remoteParticipants: () =>
      [...$('remote-grid').querySelectorAll('[data-participant-id]')].map((el) => el.dataset.identity),
    state: () => client.state,
  };
  wireClientEvents();

  localStream = await getLocalMedia();
  showLocal(name);
  addEventListener('pagehide', () => client.leave());
  client.connect(localStream).catch(() => {}); // failures arrive as `state` events
}

// ------------------------------------------------------------------ client events

function wireClientEvents() {
  client.addEventListener('state', ({ detail }) => {
    const { state, message, attempt, unreachable } = detail;
    document.body.dataset.state = state;
    if (state === 'connecting') setPill('connecting', 'Connecting…');
    else if (state === 'connected') setPill('connected', 'Connected');
    else if (state === 'reconnecting')
      setPill(
        unreachable ? 'unreachable' : 'reconnecting',
        unreachable ? `Server unreachable – retrying (attempt ${attempt})` : `Reconnecting (attempt ${attempt})`,
      );
    else setPill(state, 'Disconnected');
    $('connection-state').title = message || '';
    if (state === 'failed') showEndPanel('Disconnected', message, 'Try again');
  });

  client.addEventListener('joined', ({ detail }) => {
    $('local-name').textContent = `${detail.you.name} (you)`;
    const present = new Set(detail.participants.map((p) => p.id));
    for (const id of [...tiles.keys()]) if (!present.has(id)) removeTile(id);
    pendingStreams.clear();
    for (const p of detail.participants) ensureTile(p);
    renderAll();
  });
  client.addEventListener('participantJoined', ({ detail }) => {
    ensureTile(detail.participant);
    renderAll();
    toast(`${detail.participant.name} joined`);
  });
  client.addEventListener('participantLeft', ({ detail }) => {
    removeTile(detail.participantId);
    renderAll();
    const who = detail.participant?.name || detail.identity;
    if (detail.reason !== 'replaced') toast(`${who} left`);
  });
  for (const type of ['trackPublished', 'trackUnpublished', 'trackMuted']) {
    client.addEventListener(type, renderAll);
  }
  client.addEventListener('remoteTrack', ({ detail }) => {
    const tile = tiles.get(detail.participantId);
    if (tile) attachStream(tile, detail.stream);
    else pendingStreams.set(detail.participantId, detail.stream);
  });
  client.addEventListener('error', ({ detail }) => showBanner(detail.message, 'error', detail.code));
}

// ------------------------------------------------------------------ remote tiles

function ensureTile(p) {
  if (tiles.has(p.id)) return tiles.get(p.id);
  const el = document.createElement('div');
  el.className = 'tile no-video';
  el.dataset.participantId = p.id;
  el.dataset.identity = p.identity;
  el.innerHTML = `
    <video autoplay playsinline muted></video>
    <audio autoplay></audio>
    <div class="avatar"></div>
    <div class="label"><span class="name"></span>
      <span class="badge mic-off" title="Microphone muted">${ICONS.micOff}<span>Muted</span></span></div>`;
  const tile = { el, video: el.querySelector('video'), audio: el.querySelector('audio'), stream: null };
  tiles.set(p.id, tile);
  $('remote-grid').append(el);
  const early = pendingStreams.get(p.id);
  if (early) {
    pendingStreams.delete(p.id);
    attachStream(tile, early);
  }
  return tile;
}

function attachStream(tile, stream) {
  tile.stream = stream;
  if (tile.video.srcObject !== stream) tile.video.srcObject = stream;
  if (tile.audio.srcObject !== stream) tile.audio.srcObject = stream;
  tile.video.play().catch(() => {});
  tile.audio.play().catch(() => offerAudioUnlock());
  stream.onaddtrack = stream.onremovetrack = () => renderAll();
  renderAll();
}

function removeTile(id) {
  const tile = tiles.get(id);
  if (!tile) return;
  tile.video.srcObject = tile.audio.srcObject = null;
  tile.el.remove();
  tiles.delete(id);
  pendingStreams.delete(id);
}

function renderTile(id) {
  const tile = tiles.get(id);
  const p = client.participants.get(id);
  if (!tile || !p) return;
  const videoInfo = p.tracks.find((t) => t.kind === 'video');
  const audioInfo = p.tracks.find((t) => t.kind === 'audio');
  const hasVideo = !!videoInfo && !videoInfo.muted && !!tile.stream?.getVideoTracks().length;
  tile.el.classList.toggle('no-video', !hasVideo);
  tile.el.classList.toggle('audio-muted', !audioInfo || audioInfo.muted);
  tile.el.dataset.identity = p.identity;
  tile.el.querySelector('.name').textContent = p.name;
  setAvatar(tile.el.querySelector('.avatar'), p.name);
}

function renderAll() {
  for (const id of tiles.keys()) renderTile(id);
  layoutGrid();
  renderParticipantList();
}

/** Size the tiles: the column count that gives the largest 4:3 tiles fitting the stage. */
function layoutGrid() {
  const grid = $('remote-grid');
  const n = tiles.size;
  grid.dataset.count = n;
  $('empty-state').hidden = n > 0;
  const { width, height } = grid.getBoundingClientRect();
  const gap = parseFloat(getComputedStyle(grid).gap) || 0;
  if (!n || !width || !height) return;
  if (n === 1) {
    grid.style.gridTemplateColumns = '100%';
    grid.style.gridAutoRows = '100%';
    return;
  }
  let best = { cols: 1, w: 0, h: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    let w = (width - gap * (cols - 1)) / cols;
    let h = (w * 3) / 4;
    if (h * rows + gap * (rows - 1) > height) {
      h = (height - gap * (rows - 1)) / rows;
      w = (h * 4) / 3;
    }
    if (w > best.w) best = { cols, w, h };
  }
  grid.style.gridTemplateColumns = `repeat(${best.cols}, ${Math.floor(best.w)}px)`;
  grid.style.gridAutoRows = `${Math.floor(best.h)}px`;
}

function renderParticipantList() {
  const list = $('participant-list');
  const me = client.you || { id: 'me', name: client.name, identity: client.identity };
  const rows = [
    { ...me, you: true, audioMuted: client.isMuted('audio') || !hasLocal('audio'), videoMuted: client.isMuted('video') || !hasLocal('video') },
    ...[...client.participants.values()].map((p) => ({
      ...p,
      audioMuted: !p.tracks.some((t) => t.kind === 'audio' && !t.muted),
      videoMuted: !p.tracks.some((t) => t.kind === 'video' && !t.muted),
    })),
  ];
  list.replaceChildren(
    ...rows.map((p) => {
      const li = document.createElement('li');
      li.innerHTML = `<span class="avatar small"></span><span class="who"></span>
        <span class="state">${p.audioMuted ? `<i title="Microphone off">${ICONS.micOff}</i>` : ''}${
          p.videoMuted ? `<i title="Camera off">${ICONS.camOff}</i>` : ''
        }</span>`;
      setAvatar(li.querySelector('.avatar'), p.name);
      li.querySelector('.who').textContent = p.you ? `${p.name} (you)` : p.name;
      return li;
    }),
  );
  $('people-count').textContent = rows.length;
}

// ------------------------------------------------------------------ local media & controls

async function getLocalMedia() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return mediaProblem(
      'Camera unavailable',
      'This browser only allows camera and microphone access on secure pages (https:// or http://localhost). Open the call over https, or continue without camera.',
    );
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  } catch (err) {
    const [title, text] = describeMediaError(err);
    return mediaProblem(title, text);
  }
}

function describeMediaError(err) {
  switch (err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return [
        'Camera and microphone are blocked',
        'Allow them in your browser’s site settings (click the icon left of the address bar, set Camera and Microphone to “Allow”), then try again — or join without camera.',
      ];
    case 'NotFoundError':
    case 'OverconstrainedError':
      return ['No camera or microphone found', 'Plug one in and try again, or join without camera.'];
    case 'NotReadableError':
    case 'AbortError':
      return [
        'Camera is busy',
        'Another application (or browser tab) is using your camera or microphone. Close it and try again, or join without camera.',
      ];
    default:
      return ['Camera unavailable', `${err.name}: ${err.message}. Try again, or join without camera.`];
  }
}

/** Explain the problem; resolve with a stream (retry / audio only) or null (no devices). */
function mediaProblem(title, text) {
  return new Promise((resolve) => {
    const card = openOverlay(`
      <h2>${escapeHtml(title)}</h2>
      <p>${escapeHtml(text)}</p>
      <div class="actions">
        <button class="btn" data-act="retry">Try again</button>
        <button class="btn primary" data-act="nocam">Join without camera</button>
      </div>`);
    card.querySelector('[data-act=retry]').onclick = async () => {
      closeOverlay();
      resolve(await getLocalMedia());
    };
    card.querySelector('[data-act=nocam]').onclick = async () => {
      closeOverlay();
      let stream = null;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        showBanner('Joined without camera. Others can hear you but not see you.', 'info');
      } catch {
        showBanner('Joined without camera or microphone: you can watch and listen only.', 'info');
      }
      resolve(stream);
    };
  });
}

function hasLocal(kind) {
  return !!localStream?.getTracks().some((t) => t.kind === kind);
}

function showLocal(name) {
  const video = $('local-video');
  if (hasLocal('video')) video.srcObject = localStream;
  $('local-name').textContent = `${name} (you)`;
  setAvatar($('local-tile').querySelector('.avatar'), name);
  $('local-mic-off').innerHTML = `${ICONS.micOff}<span>Muted</span>`;
  $('toggle-mic').disabled = !hasLocal('audio');
  $('toggle-cam').disabled = !hasLocal('video');
  renderControls();
  renderParticipantList();
}

function renderControls() {
  const micOff = !hasLocal('audio') || client.isMuted('audio');
  const camOff = !hasLocal('video') || client.isMuted('video');
  setButton($('toggle-mic'), micOff, micOff ? ICONS.micOff : ICONS.mic, micOff ? 'Unmute' : 'Mute');
  setButton($('toggle-cam'), camOff, camOff ? ICONS.camOff : ICONS.cam, camOff ? 'Start video' : 'Stop video');
  $('local-tile').classList.toggle('no-video', camOff);
  $('local-tile').classList.toggle('audio-muted', micOff);
}

function setButton(btn, off, icon, label) {
  btn.innerHTML = `${icon}<span>${label}</span>`;
  btn.setAttribute('aria-pressed', String(off));
  btn.classList.toggle('off', off);
}

function wireStaticControls() {
  $('toggle-people').innerHTML = `${ICONS.people}<span>People</span>`;
  $('leave').innerHTML = `${ICONS.leave}<span>Leave</span>`;
  $('copy-link').innerHTML = `${ICONS.link}<span>Copy invite link</span>`;
  $('toggle-mic').onclick = () => toggle('audio');
  $('toggle-cam').onclick = () => toggle('video');
  $('toggle-people').onclick = () => document.body.classList.toggle('people-open');
  $('close-people').onclick = () => document.body.classList.remove('people-open');
  $('leave').onclick = leaveCall;
  $('copy-link').onclick = copyInvite;
  $('empty-copy').onclick = copyInvite;
  new ResizeObserver(layoutGrid).observe($('remote-grid'));
}

function toggle(kind) {
  if (!client || !hasLocal(kind)) return;
  client.setMuted(kind, !client.isMuted(kind));
  renderControls();
  renderParticipantList();
}

function leaveCall() {
  client?.leave();
  localStream?.getTracks().forEach((t) => t.stop());
  for (const id of [...tiles.keys()]) removeTile(id);
  layoutGrid();
  showEndPanel('You left the call.', `Room “${room}”`, 'Rejoin');
}

function showEndPanel(title, text, again) {
  const card = openOverlay(`
    <h2>${escapeHtml(title)}</h2>
    <p>${escapeHtml(text || '')}</p>
    <div class="actions">
      <button class="btn primary" data-act="again">${escapeHtml(again)}</button>
      <a class="btn" href="/">Back to lobby</a>
    </div>`);
  card.querySelector('[data-act=again]').onclick = () => location.reload();
}

async function copyInvite() {
  const link = `${location.origin}/room/${encodeURIComponent(room)}${relay ? '?relay=1' : ''}`;
  try {
    await navigator.clipboard.writeText(link);
    toast('Invite link copied');
  } catch {
    prompt('Copy this link:', link);
  }
}

function askName() {
  return new Promise((resolve) => {
    let saved = '';
    try {
      saved = localStorage.getItem(NAME_KEY) || '';
    } catch {}
    const card = openOverlay(`
      <form class="stack">
        <h2>Join “${escapeHtml(room)}”</h2>
        <label>Your name <input name="name" required maxlength="64" autocomplete="name" placeholder="e.g. Alice"></label>
        <div class="actions"><button class="btn primary" type="submit">Join</button></div>
      </form>`);
    const input = card.querySelector('input');
    input.value = saved;
    input.focus();
    card.querySelector('form').onsubmit = (e) => {
      e.preventDefault();
      const name = input.value.trim();
      if (!name) return;
      closeOverlay();
      resolve(name);
    };
  });
}

// ------------------------------------------------------------------ small UI helpers

function setPill(state, text) {
  const pill = $('connection-state');
  pill.dataset.state = state;
  pill.querySelector('.text').textContent = text;
}

function openOverlay(html) {
  const overlay = $('overlay');
  const card = $('overlay-card');
  card.innerHTML = html;
  overlay.hidden = false;
  return card;
}

function closeOverlay() {
  $('overlay').hidden = true;
  $('overlay-card').replaceChildren();
}

/** A dismissible banner (info ones also fade after 8 s); the same text is shown once at a time. */
function showBanner(text, kind = 'error', code = '', sticky = false) {
  const box = $('banners');
  if ([...box.children].some((b) => b.dataset.text === text)) return;
  const banner = document.createElement('div');
  banner.className = `banner ${kind}`;
  banner.dataset.text = text;
  banner.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  banner.innerHTML = `<span class="msg"></span><button class="dismiss" aria-label="Dismiss">×</button>`;
  banner.querySelector('.msg').textContent = code && kind === 'error' ? `${text} (${code})` : text;
  banner.querySelector('.dismiss').onclick = () => banner.remove();
  box.append(banner);
  if (kind === 'info' && !sticky) setTimeout(() => banner.remove(), 8000);
  return banner;
}

let audioUnlockOffered = false;
function offerAudioUnlock() {
  if (audioUnlockOffered) return;
  audioUnlockOffered = true;
  const banner = showBanner('Your browser blocked sound. Click anywhere to turn it on.', 'info', '', true);
  document.addEventListener(
    'click',
    () => {
      for (const t of tiles.values()) t.audio.play().catch(() => {});
      banner?.remove();
      audioUnlockOffered = false;
    },
    { once: true },
  );
}

function toast(text) {
  const el = document.createElement('div');
  el.className = 'toast';
  el.textContent = text;
  $('toasts').append(el);
  setTimeout(() => el.remove(), 3000);
}

function setAvatar(el, name) {
  const initials = (name || '?')
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join('');
  let hash = 0;
  for (const ch of name || '') hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  el.textContent = initials || '?';
  el.style.setProperty('--hue', hash % 360);
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function roomFromUrl() {
  const m = location.pathname.match(/^\/room\/([^/]+)\/?$/);
  const raw = m ? m[1] : params.get('room');
  try {
    return raw ? decodeURIComponent(raw) : null;
  } catch {
    return raw;
  }
}
