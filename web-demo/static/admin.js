// Switchyard admin dashboard (admin.html): rooms, participants and tracks live from the admin
// REST API (docs/admin-api.md) and its event stream (`GET /api/events`, Server-Sent Events read
// with fetch() because it needs the Authorization header).
//
// This module is the page's entry: it creates the session, installs the test hooks, wires the
// page's controls and signs in. It never talks to the API or draws rooms itself; the parts live in
// admin-*.js. The pure parts (SSE parser, state model, formatters, sparklines, API errors) are
// re-exported here, so Node can import this module for tests; the browser half only runs on the
// dashboard page.

import { $, setText } from './admin-dom.js';
import { formatAge } from './admin-format.js';
import { closeDialog, showBanner } from './admin-notices.js';
import { onAction } from './admin-actions.js';
import { createPlaceholders, recordingText } from './admin-rooms.js';
import { createSession, setState, signOut, TOKEN_KEY } from './admin-session.js';
import { probeDevToken, signIn, useDevToken } from './admin-signin.js';

export { CHART_WINDOW_SECONDS, niceMax, renderSparkline, sparklineContent } from './admin-charts.js';
export { SseParser, parseSseChunk } from './admin-sse.js';
export {
  escapeHtml, formatAge, formatBitrate, formatDuration, formatFps, formatKbps, formatLoss, formatPercent,
  formatResolution, formatRtt,
} from './admin-format.js';
export {
  RECORDING_STATES, mergeRecording, recordingBadge, recordingDuration, recordingFinished,
  recordingFromEvent, recordingPageUrl,
} from './admin-recording.js';
export { AdminModel } from './admin-model.js';
export { ApiError, apiErrorFrom, backoffDelay, describeApiError, tokenRoom } from './admin-api.js';

// Only on the dashboard page: elsewhere (Node) importing this module just gives its exports.
if (typeof document !== 'undefined' && document.getElementById('admin-dashboard')) {
  startDashboard();
}

function startDashboard() {
  const session = createSession();

  // ---------------------------------------------------------------- test hooks
  window.switchyardAdmin = {
    state: () => session.state,
    rooms: () => session.model.list(),
    lastEventId: () => session.model.lastEventId,
    history: (room, identity) => session.model.samples(room, identity).map((s) => ({ ...s })),
    /** The error shown by the room's recording controls (text and advice), or null. */
    recordingError: (room) => {
      const e = session.recordingErrors.get(room);
      return e ? `${e.text} ${e.advice}`.trim() : null;
    },
  };

  // The room list's placeholders, made once.
  session.placeholders = createPlaceholders();

  // ---------------------------------------------------------------- wiring
  $('admin-signin').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = $('admin-token').value.trim();
    if (!value) {
      showBanner('Paste an admin token first.', { kind: 'info', advice: 'An admin token is a JWT with the roomAdmin grant.', key: 'empty-token' });
      $('admin-token').focus();
      return;
    }
    signIn(session, value);
  });
  $('admin-dev-token').addEventListener('click', () => useDevToken(session));
  $('admin-signout').addEventListener('click', () => signOut(session));
  $('admin-rooms').addEventListener('click', (e) => onAction(session, e));
  $('admin-dialog-cancel').addEventListener('click', closeDialog);
  $('admin-dialog').addEventListener('click', (e) => { if (e.target === e.currentTarget) closeDialog(); });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('admin-dialog').hidden) closeDialog();
  });
  // Room ages tick every second.
  setInterval(() => {
    for (const el of document.querySelectorAll('#admin-rooms [data-room]')) {
      const room = session.model.rooms.get(el.dataset.room);
      if (!room) continue;
      setText(el.querySelector('[data-field=age]'), formatAge(session.model.age(room)));
      setText(el.querySelector('[data-field=recording]'), recordingText(room.recording));
    }
  }, 1000);

  probeDevToken();
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get('token');
  if (fromUrl) {
    // Keep the token out of the address bar and history once read.
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
    signIn(session, fromUrl);
  } else {
    let stored = '';
    try { stored = sessionStorage.getItem(TOKEN_KEY) || ''; } catch {}
    if (stored) signIn(session, stored);
    else {
      setState(session, 'signed-out');
      $('admin-token').focus();
    }
  }
}
