// The watch page (/watch/{room}): plays the room's broadcast, low-latency HLS with an adaptive
// ladder, in a <video> with hls.js (/static/vendor/hls.min.js), shows the quality playing and how
// far behind live it is, and lets the viewer pick a quality. A broadcast that is not public asks
// for a viewer token (from ?token= or the form; kept in this tab only). While the room is not
// broadcasting it waits and retries. window.watchState() reports what plays, for tests.

const room = decodeURIComponent(location.pathname.split('/')[2] || '');
const master = `/watch/${encodeURIComponent(room)}/live.m3u8`;
const params = new URLSearchParams(location.search);
let token = params.get('token') || sessionStorage.getItem(`watch-token:${room}`) || '';

const $ = (id) => document.getElementById(id);
const video = $('watch-video');
const quality = $('watch-quality');
const state = { playing: false, level: -1, height: null, switches: [], errors: [], latency: null, levels: [] };
let hls = null;
let retryTimer = null;

window.watchState = () => ({
  ...state,
  autoLevel: hls ? hls.autoLevelEnabled : null,
  currentTime: video.currentTime,
  videoHeight: video.videoHeight,
  bandwidthEstimate: hls ? hls.bandwidthEstimate : null,
});

function status(kind, text) {
  $('watch-status').dataset.state = kind;
  $('watch-status').querySelector('.text').textContent = text;
}

function label(level) {
  if (!level) return '–';
  const rate = level.bitrate ? ` · ${(level.bitrate / 1e6).toFixed(1)} Mbit/s` : '';
  return (level.height ? `${level.height}p` : 'audio only') + rate;
}

async function probe() {
  // Ask the server first: a clear message beats a player error.
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(master, { headers, cache: 'no-store' }).catch(() => null);
  if (!response) return 'retry';
  if (response.status === 401 || response.status === 403) return 'token';
  if (!response.ok) return 'retry';
  return 'ok';
}

function retrySoon() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(start, 2000);
}

async function start() {
  const outcome = await probe();
  if (outcome === 'token') {
    status('signed-out', 'Viewer token needed');
    $('watch-signin').hidden = false;
    if (token) {
      $('watch-signin-error').textContent = 'That token was refused: check it is for this room and not expired.';
      $('watch-signin-error').hidden = false;
    }
    return;
  }
  if (outcome !== 'ok') {
    status('waiting', 'Waiting for the broadcast…');
    retrySoon();
    return;
  }
  $('watch-signin').hidden = true;
  play();
}

function play() {
  const Hls = window.Hls;
  if (!Hls || !Hls.isSupported()) {
    if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = master + (token ? `?token=${encodeURIComponent(token)}` : '');
      video.play().catch(() => {});
      status('live', 'Live');
      return;
    }
    status('error', 'This browser cannot play HLS');
    return;
  }
  if (hls) hls.destroy();
  hls = new Hls({
    lowLatencyMode: true,
    backBufferLength: 30,
    // Live: follow a changing link within a few parts rather than many seconds.
    abrEwmaFastLive: 1.5,
    abrEwmaSlowLive: 4,
    // Stay near the live edge: after a stall, play up to 1.5x until back at the target
    // latency, and let each stall raise that target by 0.25 s rather than a whole second.
    maxLiveSyncPlaybackRate: 1.5,
    liveSyncOnStallIncrease: 0.25,
    xhrSetup: (xhr) => { if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`); },
  });
  hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
    state.levels = data.levels.map((l) => ({ height: l.height || null, bitrate: l.bitrate }));
    quality.replaceChildren(new Option('Auto', '-1'));
    data.levels.forEach((level, i) => quality.add(new Option(label(level), String(i))));
    video.play().catch(() => {});
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
    const level = hls.levels[data.level];
    state.level = data.level;
    state.height = level ? level.height || null : null;
    state.switches.push({ level: data.level, height: state.height, at: Date.now() });
    $('watch-level').textContent = label(level);
  });
  hls.on(Hls.Events.ERROR, (_, data) => {
    state.errors.push({ type: data.type, details: data.details, fatal: data.fatal });
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
      return;
    }
    // The broadcast ended or the network failed: wait for the next one.
    hls.destroy();
    hls = null;
    state.playing = false;
    status('waiting', 'The broadcast stopped; waiting for it to come back…');
    retrySoon();
  });
  hls.loadSource(master);
  hls.attachMedia(video);
  status('live', 'Live');
}

video.addEventListener('playing', () => { state.playing = true; });
quality.addEventListener('change', () => {
  if (!hls) return;
  // -1: Auto (adaptive); a level: keep it.
  hls.currentLevel = Number(quality.value);
});
setInterval(() => {
  if (!hls) return;
  const latency = hls.latency;
  state.latency = Number.isFinite(latency) ? latency : null;
  $('watch-latency').textContent = state.latency === null ? '–' : `${state.latency.toFixed(1)} s`;
  const estimate = hls.bandwidthEstimate;
  $('watch-bandwidth').textContent = Number.isFinite(estimate) ? `${(estimate / 1e6).toFixed(1)} Mbit/s` : '–';
}, 500);

$('watch-signin').addEventListener('submit', (event) => {
  event.preventDefault();
  token = $('watch-token').value.trim();
  sessionStorage.setItem(`watch-token:${room}`, token);
  $('watch-signin-error').hidden = true;
  start();
});

$('watch-room').textContent = room ? `Watching ${room}` : 'Broadcast';
document.title = `Switchyard · watch ${room}`;
start();
