// Switchyard call page: the remote tiles in #remote-grid. One camera tile per participant (its
// camera video, name, mute badge, speaking ring, and one <audio> per sound track it sends) and one
// tile per shared screen ("<name>'s screen"); the stage (a screen share, else the loudest speaker,
// large above a strip of the others); on each video tile the layer badge (q/h/f/paused) and a
// "hide video" button. Each video tile is handed to call-adaptive.js. It never sends signaling
// messages itself and never touches the sidebar or the controls.

import { AdaptiveVideo } from './call-adaptive.js';
import { $, ICONS, setAvatar, showBanner } from './call-ui.js';

/** @type {import('./switchyard.js').SwitchyardClient} */
let client = null;
/** @type {AdaptiveVideo} */
let adaptive = null;
let onChange = () => {};
/** participantId -> camera tile {kind, pid, el, video, audios, stream, track, trackId} */
const cams = new Map();
/** server track id -> screen tile {kind, pid, el, video, track, trackId, since} */
const screens = new Map();
/** participantId -> MediaStream that arrived before its tile existed */
const pendingStreams = new Map();
/** The participant last heard loudest (keeps the stage while nobody speaks). */
let lastSpeaker = null;
let speakingIds = new Set();
/**
 * The stage stays with a speaker at least this long, so that people talking over each other do
 * not make it flicker: each move resizes two tiles on every page, which is a layer switch (and a
 * keyframe from the publisher) for each of them.
 */
const STAGE_HOLD_MS = 3000;
let stageSince = 0;
let stageTimer = null;
let latestSpeakers = [];

/** Sets the module up; `changed` redraws the page (a stream gained or lost a track). */
export function initTiles(theClient, changed) {
  client = theClient;
  onChange = changed;
  adaptive = new AdaptiveVideo(client);
  new ResizeObserver(layoutGrid).observe($('remote-grid'));
}

const allTiles = () => [...cams.values(), ...screens.values()];
const shown = (t) => !t.el.classList.contains('collapsed') && t.el.style.display !== 'none';

/** The small controls every remote video tile has: layer badge and "hide video". */
function tileControls() {
  return `<span class="layer-badge" hidden></span>
    <button class="tile-hide" type="button" title="Hide video" aria-label="Hide video" aria-pressed="false">${ICONS.eyeOff}</button>`;
}

function wireHide(tile) {
  const btn = tile.el.querySelector('.tile-hide');
  btn.onclick = () => {
    const collapsed = tile.el.classList.toggle('collapsed');
    btn.setAttribute('aria-pressed', String(collapsed));
    btn.title = collapsed ? 'Show video' : 'Hide video';
    btn.setAttribute('aria-label', btn.title);
    btn.innerHTML = collapsed ? ICONS.eye : ICONS.eyeOff;
    adaptive.refresh(tile.video);
    renderTiles();
  };
}

/** The camera tile of participant `p`, created when missing. */
export function ensureTile(p) {
  if (cams.has(p.id)) return cams.get(p.id);
  const el = document.createElement('div');
  el.className = 'tile camera no-video';
  el.dataset.participantId = p.id;
  el.dataset.identity = p.identity;
  el.innerHTML = `
    <video autoplay playsinline muted></video>
    <div class="audios"></div>
    <div class="avatar"></div>
    ${tileControls()}
    <div class="label"><span class="name"></span>
      <span class="badge mic-off" title="Microphone muted">${ICONS.micOff}<span>Muted</span></span></div>`;
  const tile = { kind: 'camera', pid: p.id, el, video: el.querySelector('video'), audios: new Map(), stream: null, track: null, trackId: null };
  wireHide(tile);
  cams.set(p.id, tile);
  $('remote-grid').append(el);
  const early = pendingStreams.get(p.id);
  if (early) {
    pendingStreams.delete(p.id);
    attachStream(p.id, early);
  }
  return tile;
}

/** The participant's MediaStream arrived (`remoteTrack`); kept until its tile exists. */
export function attachStream(pid, stream) {
  const tile = cams.get(pid);
  if (!tile) return pendingStreams.set(pid, stream);
  tile.stream = stream;
  stream.onaddtrack = stream.onremovetrack = () => onChange();
  onChange();
}

/** Removes the participant's camera tile and its screen tiles. */
export function removeTile(pid) {
  const tile = cams.get(pid);
  pendingStreams.delete(pid);
  for (const [id, s] of screens) if (s.pid === pid) dropScreen(id);
  if (!tile) return;
  adaptive.unwatch(tile.video);
  tile.video.srcObject = null;
  for (const a of tile.audios.values()) a.srcObject = null;
  tile.el.remove();
  cams.delete(pid);
  if (lastSpeaker === pid) lastSpeaker = null;
}

/** After `joined`: tiles for exactly these participants. */
export function syncParticipants(participants) {
  const present = new Set(participants.map((p) => p.id));
  for (const pid of [...cams.keys()]) if (!present.has(pid)) removeTile(pid);
  pendingStreams.clear();
  for (const p of participants) ensureTile(p);
}

export function clearTiles() {
  for (const pid of [...cams.keys()]) removeTile(pid);
  layoutGrid();
}

/** The received track of `info` (a TrackInfo of `p`), or a lone video track of the stream. */
function resolve(info, p, stream) {
  const track = client.remoteTrack(info.id);
  if (track && track.readyState !== 'ended') return track;
  const videos = p.tracks.filter((t) => t.kind === 'video');
  const candidates = stream ? stream.getVideoTracks() : [];
  return videos.length === 1 && candidates.length === 1 && info.kind === 'video' ? candidates[0] : null;
}

function setVideo(tile, track, trackId) {
  if (tile.track !== track) {
    tile.track = track;
    tile.video.srcObject = track ? new MediaStream([track]) : null;
    if (track) tile.video.play().catch(() => {});
  }
  tile.trackId = track ? trackId : null;
  adaptive.watch(tile.video, tile.el, tile.trackId);
}

/** One <audio> per sound track of the participant's stream (microphone and screen audio). */
function syncAudio(tile) {
  const tracks = tile.stream ? tile.stream.getAudioTracks() : [];
  for (const [track, audio] of tile.audios) {
    if (tracks.includes(track)) continue;
    audio.srcObject = null;
    audio.remove();
    tile.audios.delete(track);
  }
  for (const track of tracks) {
    if (tile.audios.has(track)) continue;
    const audio = document.createElement('audio');
    audio.autoplay = true;
    audio.srcObject = new MediaStream([track]);
    tile.el.querySelector('.audios').append(audio);
    tile.audios.set(track, audio);
    audio.play().catch(() => offerAudioUnlock());
  }
}

function renderCamera(tile) {
  const p = client.participants.get(tile.pid);
  if (!p) return;
  const camInfo = p.tracks.find((t) => t.kind === 'video' && t.source !== 'screen');
  const micInfo = p.tracks.find((t) => t.kind === 'audio' && t.source !== 'screenAudio');
  setVideo(tile, camInfo ? resolve(camInfo, p, tile.stream) : null, camInfo?.id ?? null);
  tile.el.classList.toggle('no-video', !camInfo || camInfo.muted || !tile.track);
  tile.el.classList.toggle('audio-muted', !micInfo || micInfo.muted);
  tile.el.classList.toggle('speaking', speakingIds.has(tile.pid));
  tile.el.dataset.identity = p.identity;
  tile.el.querySelector('.name').textContent = p.name;
  setAvatar(tile.el.querySelector('.avatar'), p.name);
  syncAudio(tile);
}

/** Screen tiles for exactly the screen tracks the room lists. */
function syncScreens() {
  const live = new Set();
  for (const p of client.participants.values()) {
    for (const info of p.tracks) {
      if (info.kind !== 'video' || info.source !== 'screen') continue;
      live.add(info.id);
      const tile = screens.get(info.id) || createScreen(p, info.id);
      const track = client.remoteTrack(info.id);
      setVideo(tile, track && track.readyState !== 'ended' ? track : null, info.id);
      tile.el.classList.toggle('no-video', !tile.track);
      tile.el.querySelector('.name').textContent = `${p.name}'s screen`;
    }
  }
  for (const id of [...screens.keys()]) if (!live.has(id)) dropScreen(id);
}

function createScreen(p, trackId) {
  const el = document.createElement('div');
  el.className = 'tile screen no-video';
  el.dataset.ownerId = p.id;
  el.dataset.ownerIdentity = p.identity;
  el.dataset.trackId = trackId;
  el.innerHTML = `
    <video autoplay playsinline muted></video>
    <div class="avatar screen-icon">${ICONS.screen}</div>
    ${tileControls()}
    <div class="label">${ICONS.screen}<span class="name"></span></div>`;
  const tile = { kind: 'screen', pid: p.id, el, video: el.querySelector('video'), track: null, trackId: null, since: Date.now() };
  wireHide(tile);
  screens.set(trackId, tile);
  const owner = cams.get(p.id);
  if (owner) owner.el.after(el);
  else $('remote-grid').append(el);
  return tile;
}

function dropScreen(trackId) {
  const tile = screens.get(trackId);
  if (!tile) return;
  adaptive.unwatch(tile.video);
  tile.video.srcObject = null;
  tile.el.remove();
  screens.delete(trackId);
}

/** Redraws every tile from the client's participants and tracks, then the stage and layout. */
export function renderTiles() {
  for (const tile of cams.values()) renderCamera(tile);
  syncScreens();
  renderBadges();
  chooseStage();
  layoutGrid();
}

/** `speakersChanged`: rings on the speakers' tiles; the loudest takes the stage. */
export function setSpeakers(speakers) {
  speakingIds = new Set(speakers.map((s) => s.participantId));
  for (const tile of cams.values()) tile.el.classList.toggle('speaking', speakingIds.has(tile.pid));
  $('local-tile').classList.toggle('speaking', !!client.you && speakingIds.has(client.you.id));
  latestSpeakers = speakers;
  pickSpeaker(speakers);
  chooseStage();
  layoutGrid();
}

/** The speaker for the stage: someone still speaking keeps it, and anyone keeps it 3 s. */
function pickSpeaker(speakers) {
  if (lastSpeaker && speakingIds.has(lastSpeaker)) return;
  const loudest = speakers.find((s) => cams.has(s.participantId));
  if (!loudest || loudest.participantId === lastSpeaker) return;
  const wait = stageSince + STAGE_HOLD_MS - Date.now();
  if (lastSpeaker && cams.has(lastSpeaker) && wait > 0) {
    clearTimeout(stageTimer);
    stageTimer = setTimeout(() => setSpeakers(latestSpeakers), wait);
    return;
  }
  lastSpeaker = loudest.participantId;
  stageSince = Date.now();
}

/** Layer badges from `client.downlink` (after `downlinkChanged`, or tracks changing). */
export function renderBadges() {
  const layers = client.downlink.layers;
  for (const tile of allTiles()) {
    const badge = tile.el.querySelector('.layer-badge');
    const known = !!tile.trackId && layers.has(tile.trackId);
    badge.hidden = !known;
    if (!known) {
      delete tile.el.dataset.layer;
      continue;
    }
    const layer = layers.get(tile.trackId) || 'paused';
    badge.textContent = layer;
    badge.dataset.layer = layer;
    badge.title = layer === 'paused' ? 'The server sends nothing for this video now' : `Receiving layer “${layer}” (q = ¼, h = ½, f = full resolution)`;
    tile.el.dataset.layer = layer;
  }
}

/** A screen share on stage first (the newest), else the last loudest speaker (2+ tiles). */
function chooseStage() {
  const grid = $('remote-grid');
  const count = allTiles().filter(shown).length;
  let stage = [...screens.values()].filter(shown).sort((a, b) => b.since - a.since)[0] || null;
  const speaker = lastSpeaker && cams.get(lastSpeaker);
  if (!stage && speaker && shown(speaker)) stage = speaker;
  if (count < 2) stage = null;
  for (const tile of allTiles()) tile.el.classList.toggle('on-stage', tile === stage);
  grid.classList.toggle('staged', !!stage);
}

/** The column count that gives the largest 4:3 tiles of `n` in width × height. */
function fit(n, width, height, gap) {
  let best = { cols: 1, rows: 1, w: 0, h: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    let w = (width - gap * (cols - 1)) / cols;
    let h = (w * 3) / 4;
    if (h * rows + gap * (rows - 1) > height) {
      h = (height - gap * (rows - 1)) / rows;
      w = (h * 4) / 3;
    }
    if (w > best.w) best = { cols, rows, w, h };
  }
  return best;
}

/** Sizes the tiles: as large as fits; with a stage, the others in a strip below it. */
export function layoutGrid() {
  const grid = $('remote-grid');
  const tiles = allTiles().filter((t) => t.el.style.display !== 'none');
  grid.dataset.count = cams.size;
  $('empty-state').hidden = cams.size + screens.size > 0;
  const staged = grid.classList.contains('staged');
  const flow = staged ? tiles.filter((t) => !t.el.classList.contains('on-stage')) : tiles;
  const { width, height } = grid.getBoundingClientRect();
  const gap = parseFloat(getComputedStyle(grid).gap) || 0;
  if (!staged) grid.style.paddingTop = '';
  if (!flow.length || !width || !height) return;
  if (!staged && flow.length === 1) {
    grid.style.gridTemplateColumns = '100%';
    grid.style.gridAutoRows = '100%';
    return;
  }
  const stripMax = staged ? Math.max(72, Math.min(180, height * 0.22)) : height;
  const best = fit(flow.length, width, stripMax, gap);
  if (staged) {
    const stageH = Math.max(0, height - (best.rows * best.h + gap * (best.rows - 1)) - gap);
    grid.style.setProperty('--stage-h', `${Math.floor(stageH)}px`);
    grid.style.paddingTop = `${Math.floor(stageH + gap)}px`;
  }
  grid.style.gridTemplateColumns = `repeat(${best.cols}, ${Math.floor(best.w)}px)`;
  grid.style.gridAutoRows = `${Math.floor(best.h)}px`;
}

/** Test hook: what each remote tile shows. */
export function describeTiles() {
  const settings = client.trackSettings;
  return allTiles().map((t) => ({
    kind: t.kind,
    participantId: t.pid,
    identity: client.participants.get(t.pid)?.identity ?? null,
    trackId: t.trackId,
    stage: t.el.classList.contains('on-stage'),
    speaking: t.el.classList.contains('speaking'),
    collapsed: t.el.classList.contains('collapsed'),
    layer: t.el.dataset.layer ?? null,
    settings: (t.trackId && settings.get(t.trackId)) || null,
  }));
}

let audioUnlockOffered = false;
function offerAudioUnlock() {
  if (audioUnlockOffered) return;
  audioUnlockOffered = true;
  const banner = showBanner('Your browser blocked sound. Click anywhere to turn it on.', 'info', '', true);
  document.addEventListener(
    'click',
    () => {
      for (const t of cams.values()) for (const a of t.audios.values()) a.play().catch(() => {});
      banner?.remove();
      audioUnlockOffered = false;
    },
    { once: true },
  );
}
