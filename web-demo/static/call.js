// Switchyard call page (/room/{room}?name=...&relay=1&codec=h264&simulcast=0). All signaling and
// WebRTC lives in switchyard.js; this file and its call-*.js modules only turn its events into
// DOM: call-tiles.js (remote tiles, stage, speakers, layer badges), call-adaptive.js (what each
// tile shows, told to the server), call-share.js (screen sharing), call-files.js (files & chat),
// call-media.js (camera and microphone), call-ui.js (small helpers). It never sends a signaling
// message itself.
//
// Test hooks: window.switchyard = { client, stats(), remoteParticipants(), state(),
//   sendFile(file, to), transfers(), chat(text), dataReady(), cancelTransfer(id), chatLog(),
//   shareScreen(track?), stopScreen(), tiles(), trackSettings(), speakers(), downlink() }.
// sendFile: `to` is an identity or null (everyone); resolves with the transfer when the sender is
// done (state 'sent', or 'failed' / 'cancelled'). transfers(): [{id, direction, name, size, bytes,
// state, sha256, from, error, ...}]. File transfer and chat live in transfer.js. tiles(): [{kind
// ('camera'|'screen'), participantId, identity, trackId, stage, speaking, collapsed, layer,
// settings}]; trackSettings(): what was asked per track; downlink(): {estimateBps, layers}.

import { SwitchyardClient } from './switchyard.js';
import { FileTransfers } from './transfer.js';
import { initFiles, renderRecipients, sendFileHook, showTab } from './call-files.js';
import { getLocalMedia } from './call-media.js';
import { initShare } from './call-share.js';
import {
  attachStream, clearTiles, describeTiles, ensureTile, initTiles, removeTile, renderBadges, renderTiles,
  setSpeakers, syncParticipants,
} from './call-tiles.js';
import {
  $, ICONS, closeOverlay, escapeHtml, formatBitrate, openOverlay, setAvatar, setPill, showBanner, toast,
} from './call-ui.js';

const params = new URLSearchParams(location.search);
const room = roomFromUrl();
const flag = (name) => (params.get(name) || '').toLowerCase();
const relay = ['1', 'true', 'yes'].includes(flag('relay'));
const simulcast = !['0', 'false', 'no', 'off'].includes(flag('simulcast'));
const NAME_KEY = 'switchyard.name';

let client = null;
let localStream = null;
/** @type {FileTransfers|null} */
let files = null;

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
    simulcast,
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
    shareScreen: (track) => client.shareScreen(track),
    stopScreen: () => client.stopScreen(),
    tiles: () => describeTiles(),
    trackSettings: () => [...client.trackSettings.values()],
    speakers: () => client.speakers,
    downlink: () => {
      const d = client.downlink;
      return { estimateBps: d.estimateBps, layers: Object.fromEntries(d.layers) };
    },
  };
  initTiles(client, renderAll);
  wireClientEvents();
  initFiles(client, files);
  initShare(client);

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
    $('downlink').hidden = true; // until the new session's first estimate
    syncParticipants(detail.participants);
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
  for (const type of ['trackPublished', 'trackUnpublished', 'trackMuted', 'remoteTracksChanged']) {
    client.addEventListener(type, renderAll);
  }
  client.addEventListener('remoteTrack', ({ detail }) => attachStream(detail.participantId, detail.stream));
  client.addEventListener('speakersChanged', ({ detail }) => setSpeakers(detail.speakers));
  client.addEventListener('downlinkChanged', ({ detail }) => {
    const pill = $('downlink');
    pill.hidden = false;
    pill.textContent = `↓ ${formatBitrate(detail.estimateBps)}`;
    renderBadges();
  });
  client.addEventListener('error', ({ detail }) => {
    // A tile's settings crossing its track's unpublishing: nothing for the user to do.
    if (detail.code === 'unknown_track') return console.debug('switchyard:', detail.message);
    showBanner(detail.message, 'error', detail.code);
  });
  client.addEventListener('draining', ({ detail }) =>
    showBanner(
      `The server is restarting: this call ends in ${detail.closesInSecs} s, then the page reconnects by itself.`,
      'info', '', true,
    ));
}

function renderAll() {
  renderTiles();
  renderParticipantList();
}

function renderParticipantList() {
  const list = $('participant-list');
  const me = client.you || { id: 'me', name: client.name, identity: client.identity };
  const rows = [
    { ...me, you: true, audioMuted: client.isMuted('audio') || !hasLocal('audio'), videoMuted: client.isMuted('video') || !hasLocal('video') },
    ...[...client.participants.values()].map((p) => ({
      ...p,
      audioMuted: !p.tracks.some((t) => t.kind === 'audio' && !t.muted),
      videoMuted: !p.tracks.some((t) => t.kind === 'video' && t.source !== 'screen' && !t.muted),
      sharing: p.tracks.some((t) => t.source === 'screen'),
    })),
  ];
  list.replaceChildren(
    ...rows.map((p) => {
      const li = document.createElement('li');
      li.innerHTML = `<span class="avatar small"></span><span class="who"></span>
        <span class="state">${p.audioMuted ? `<i title="Microphone off">${ICONS.micOff}</i>` : ''}${
          p.videoMuted ? `<i title="Camera off">${ICONS.camOff}</i>` : ''
        }${p.sharing ? `<i title="Sharing a screen">${ICONS.screen}</i>` : ''}</span>`;
      setAvatar(li.querySelector('.avatar'), p.name);
      li.querySelector('.who').textContent = p.you ? `${p.name} (you)` : p.name;
      return li;
    }),
  );
  $('people-count').textContent = rows.length;
  renderRecipients();
}

// ------------------------------------------------------------------ local media & controls

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
  clearTiles();
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

// ------------------------------------------------------------------ connection route

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

function roomFromUrl() {
  const m = location.pathname.match(/^\/room\/([^/]+)\/?$/);
  const raw = m ? m[1] : params.get('room');
  try {
    return raw ? decodeURIComponent(raw) : null;
  } catch {
    return raw;
  }
}
