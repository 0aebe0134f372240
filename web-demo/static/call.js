// Switchyard call page (/room/{room}?name=...&relay=1). All signaling and WebRTC lives in
// switchyard.js; this file only turns its events into DOM.
//
// Test hooks: window.switchyard = { client, stats(), remoteParticipants(), state(),
//   sendFile(file, to), transfers(), chat(text), dataReady(), cancelTransfer(id), chatLog() }.
// sendFile: `to` is an identity or null (everyone); resolves with the transfer when the sender is
// done (state 'sent', or 'failed' / 'cancelled'). transfers(): [{id, direction, name, size, bytes,
// state, sha256, from, error, ...}]. File transfer and chat live in transfer.js.

import { SwitchyardClient } from './switchyard.js';
import { FileTransfers } from './transfer.js';

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
  files: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z"/><path d="M14 3v5h5M12 17v-6M9 14l3-3 3 3"/></svg>',
  link: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M10 14a4.5 4.5 0 0 0 6.4 0l3.2-3.2a4.5 4.5 0 0 0-6.4-6.4L12 5.6M14 10a4.5 4.5 0 0 0-6.4 0l-3.2 3.2a4.5 4.5 0 0 0 6.4 6.4l1.2-1.2"/></svg>',
};

/** participantId -> {el, video, audio, stream} */
const tiles = new Map();
/** participantId -> MediaStream that arrived before its tile existed */
const pendingStreams = new Map();
let client = null;
let localStream = null;
/** @type {FileTransfers|null} */
let files = null;
/** identity -> display name, kept after people leave (for transfer and chat labels) */
const knownNames = new Map();
let activeTab = 'people';
/** transfers whose row needs redrawing, and the timer that will do it */
const dirtyTransfers = new Map();
let transferTimer = null;

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
  files = new FileTransfers(client);
  window.switchyard = {
    client,
    files,
    stats: () => client.getStats(),
    remoteParticipants: () =>
      [...$('remote-grid').querySelectorAll('[data-participant-id]')].map((el) => el.dataset.identity),
    state: () => client.state,
    sendFile: (file, to = null) => sendFileHook(file, to),
    transfers: () => files.list(),
    cancelTransfer: (id) => files.cancel(id),
    chat: (text) => files.chat(text),
    chatLog: () => files.chatLog.map((m) => ({ ...m })),
    dataReady: () => client.dataReady,
  };
  wireClientEvents();
  wireFiles();

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
    else if (state === 'connected') {
      setPill('connected', 'Connected');
      showMediaRoute();
    }
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
  client.addEventListener('draining', ({ detail }) =>
    showBanner(
      `The server is restarting: this call ends in ${detail.closesInSecs} s, then the page reconnects by itself.`,
      'info', '', true,
    ));
}

// ------------------------------------------------------------------ files & chat

/** Resolves with the transfer's snapshot once the sender is done, whatever the outcome. */
async function sendFileHook(file, to) {
  const before = new Set(files.list().map((t) => t.id));
  try {
    return await files.send(file, to || null);
  } catch {
    return files.list().find((t) => t.direction === 'send' && !before.has(t.id)) || null;
  }
}

function wireFiles() {
  $('tab-people').onclick = () => showTab('people');
  $('tab-files').onclick = () => showTab('files');
  $('toggle-files').innerHTML = `${ICONS.files}<span>Files &amp; chat</span>`;
  $('toggle-files').onclick = () => {
    const open = document.body.classList.contains('people-open') && activeTab === 'files';
    showTab('files');
    document.body.classList.toggle('people-open', !open);
  };

  const input = $('file-input');
  input.onchange = () => {
    sendFiles(input.files);
    input.value = '';
  };
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    sendFiles(e.dataTransfer.files);
  });
  // A file dropped next to the zone must not make the browser navigate away from the call.
  for (const type of ['dragover', 'drop']) document.addEventListener(type, (e) => e.preventDefault());

  $('file-to').onchange = () => {
    const to = $('file-to').value;
    $('chat-input').placeholder = to ? `Message ${nameOf(to)} privately` : 'Message everyone';
  };
  $('chat-form').onsubmit = (e) => {
    e.preventDefault();
    const text = $('chat-input').value.trim();
    if (!text) return;
    files
      .chat(text, $('file-to').value || null)
      .then(() => ($('chat-input').value = ''))
      .catch((err) => showBanner(`Message not sent: ${err.message}`, 'error'));
  };

  client.addEventListener('dataOpen', renderDataStatus);
  client.addEventListener('dataClose', renderDataStatus);
  client.addEventListener('dataError', ({ detail }) => {
    if (detail.code === 'permission_denied') showBanner(detail.message || 'You may not send files or messages.', 'error', detail.code);
    else console.warn('switchyard data error', detail);
  });
  files.addEventListener('update', ({ detail }) => scheduleTransferRender(detail));
  files.addEventListener('chat', ({ detail }) => {
    addChatLine(detail);
    if (!detail.self) noteUnread();
  });
  renderDataStatus();
}

function showTab(tab) {
  activeTab = tab;
  for (const name of ['people', 'files']) {
    const on = name === tab;
    $(`tab-${name}`).setAttribute('aria-selected', String(on));
    $(`tab-${name}`).classList.toggle('active', on);
    $(`panel-${name}`).hidden = !on;
  }
  if (tab === 'files') {
    $('unread-count').hidden = true;
    $('unread-count').textContent = '0';
  }
}

function noteUnread() {
  if (activeTab === 'files' && (document.body.classList.contains('people-open') || innerWidth > 860)) return;
  const badge = $('unread-count');
  badge.textContent = String(Number(badge.textContent) + 1);
  badge.hidden = false;
}

function renderDataStatus() {
  const el = $('data-status');
  el.dataset.ready = String(client.dataReady);
  el.textContent = client.dataReady
    ? 'Ready: files and messages go through the server to the people in this call.'
    : 'File transfer and chat: connecting…';
}

function sendFiles(list) {
  const to = $('file-to').value || null;
  for (const file of [...(list || [])]) files.send(file, to).catch(() => {}); // outcome shown in its row
  showTab('files');
}

function nameOf(identity) {
  if (!identity) return 'someone';
  if (identity === client.you?.identity) return 'you';
  for (const p of client.participants.values()) if (p.identity === identity) return p.name;
  return knownNames.get(identity) || identity;
}

/** Keep the recipient selector in step with the participant list. */
function renderRecipients() {
  const select = $('file-to');
  const current = select.value;
  const people = [...client.participants.values()];
  for (const p of people) knownNames.set(p.identity, p.name);
  const signature = JSON.stringify(people.map((p) => [p.identity, p.name]));
  if (select.dataset.signature === signature) return; // unchanged: leave an open menu alone
  select.dataset.signature = signature;
  const options = [new Option('Everyone', ''), ...people.map((p) => new Option(p.name, p.identity))];
  select.replaceChildren(...options);
  select.value = people.some((p) => p.identity === current) ? current : '';
  if (select.value !== current) select.onchange?.();
}

/** Progress updates arrive per 64 KiB chunk: redraw at most ~8 times a second (end states at once). */
function scheduleTransferRender(t) {
  dirtyTransfers.set(t.key, t);
  if (t.state !== 'sending' && t.state !== 'receiving') return flushTransfers();
  if (!transferTimer) transferTimer = setTimeout(flushTransfers, 120);
}

function flushTransfers() {
  clearTimeout(transferTimer);
  transferTimer = null;
  for (const t of dirtyTransfers.values()) renderTransfer(t);
  dirtyTransfers.clear();
}

function renderTransfer(t) {
  const list = $('transfer-list');
  let li = list.querySelector(`[data-key="${CSS.escape(t.key)}"]`);
  if (!li) {
    li = document.createElement('li');
    li.className = 'xfer';
    li.dataset.key = t.key;
    li.dataset.id = t.id;
    li.dataset.direction = t.direction;
    li.innerHTML = `
      <div class="xfer-top"><span class="xfer-dir"></span><span class="xfer-name"></span>
        <button class="icon-btn xfer-cancel" type="button" title="Cancel" aria-label="Cancel transfer">×</button></div>
      <div class="xfer-peer"></div>
      <progress class="xfer-bar" max="1" value="0"></progress>
      <div class="xfer-meta"><span class="xfer-bytes"></span><span class="xfer-rate"></span><span class="xfer-eta"></span></div>
      <div class="xfer-status"><span class="xfer-state"></span><a class="xfer-download" hidden>Download</a></div>`;
    li.querySelector('.xfer-cancel').onclick = () => files.cancel(t.id);
    list.prepend(li);
    if (t.direction === 'receive') {
      noteUnread();
      toast(`${nameOf(t.from)} is sending “${t.name}”`);
    }
  }
  const active = t.state === 'sending' || t.state === 'receiving';
  li.dataset.state = t.state;
  li.querySelector('.xfer-dir').textContent = t.direction === 'send' ? '↑' : '↓';
  li.querySelector('.xfer-name').textContent = t.name;
  li.querySelector('.xfer-name').title = t.name;
  li.querySelector('.xfer-peer').textContent =
    t.direction === 'send' ? `to ${t.to ? nameOf(t.to) : 'everyone'}` : `from ${nameOf(t.from)}`;
  const bar = li.querySelector('.xfer-bar');
  bar.max = Math.max(t.size, 1);
  bar.value = t.size ? t.bytes : t.state === 'sending' || t.state === 'receiving' ? 0 : 1;
  li.querySelector('.xfer-bytes').textContent = `${formatBytes(t.bytes)} / ${formatBytes(t.size)}`;
  li.querySelector('.xfer-rate').textContent = active && t.rate ? `${(t.rate / 1e6).toFixed(1)} MB/s` : '';
  li.querySelector('.xfer-eta').textContent =
    active && t.rate > 0 ? `${formatDuration((t.size - t.bytes) / t.rate)} left` : '';
  li.querySelector('.xfer-cancel').hidden = !active;
  const state = li.querySelector('.xfer-state');
  state.textContent =
    t.state === 'failed' ? `failed: ${t.error || 'unknown error'}`
    : t.state === 'cancelled' ? `cancelled${t.error ? ` (${t.error})` : ''}`
    : t.state === 'verified' ? 'verified ✓ (SHA-256 matches)'
    : t.state === 'sent' && !t.to ? 'sent (to everyone)'
    : t.state;
  state.title = t.sha256 ? `SHA-256 ${t.sha256}` : '';
  const link = li.querySelector('.xfer-download');
  link.hidden = !(t.state === 'verified' && t.url);
  if (t.url) {
    link.href = t.url;
    link.download = t.name;
  }
}

function addChatLine(m) {
  const li = document.createElement('li');
  li.className = m.self ? 'chat-line self' : 'chat-line';
  li.dataset.from = m.from || '';
  const who = document.createElement('span');
  who.className = 'chat-who';
  who.textContent = m.self ? 'You' : nameOf(m.from);
  if (m.to?.length) who.textContent += m.self ? ` → ${m.to.map(nameOf).join(', ')}` : ' (privately)';
  const time = document.createElement('time');
  time.textContent = new Date(m.time).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const text = document.createElement('div');
  text.className = 'chat-text';
  text.textContent = m.text;
  li.append(who, time, text);
  const log = $('chat-log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  if (atBottom || m.self) log.scrollTop = log.scrollHeight;
}

function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

function formatDuration(s) {
  if (!Number.isFinite(s)) return '–';
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
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
  renderRecipients();
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
  $('toggle-people').addEventListener('click', () => showTab('people'));
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

/** How media reaches the server: the local side of the publisher's selected candidate pair. */
async function mediaRoute() {
  const pc = client && client.publisherPc;
  if (!pc) return null;
  const report = await pc.getStats();
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  const local = pair && report.get(pair.localCandidateId);
  if (!local) return null;
  if (local.candidateType === 'relay') return `via TURN relay (${(local.relayProtocol || 'udp').toUpperCase()})`;
  return local.candidateType === 'srflx' ? 'direct (through NAT)' : 'direct';
}

/** Adds the media route to the "Connected" pill once ICE has picked a pair. */
let routeTimer = null;
function showMediaRoute(tries = 15) {
  clearTimeout(routeTimer);
  routeTimer = setTimeout(async () => {
    const pill = $('connection-state');
    if (pill.dataset.state !== 'connected') return;
    const route = await mediaRoute().catch(() => null);
    if (route) setPill('connected', `Connected · ${route}`);
    else if (tries > 1) showMediaRoute(tries - 1);
  }, 1000);
}

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
