// The admin dashboard's signed-in session: its state (token, room scope, connection state, the
// model, pending room reloads), loading rooms from the REST API, and the way back to the sign-in
// form when a token stops working. It never reads the event stream (admin-stream.js) and never
// builds the room list (admin-rooms.js).

import { apiRequest, ApiError, describeApiError, roomPath } from './admin-api.js';
import { $, setText } from './admin-dom.js';
import { AdminModel } from './admin-model.js';
import { clearBanners, showBanner } from './admin-notices.js';
import { scheduleRender } from './admin-rooms.js';

/** Where the token is kept for this tab (shared with recordings.js). */
export const TOKEN_KEY = 'switchyard.adminToken';

/** A signed-out session: what every part of the dashboard reads and updates. */
export function createSession() {
  return {
    model: new AdminModel(),
    token: '',
    scope: '', // a room-scoped token sees only its room
    state: 'signed-out',
    generation: 0, // bumps on sign-in/out; stale loops stop
    abort: null,
    refreshTimers: new Map(),
    refreshing: new Map(), // room -> {again: bool}
    renderQueued: false,
    resyncTimer: null,
    recordingErrors: new Map(), // room -> {text, advice}: the last start/stop that failed
    recordingBusy: new Set(), // rooms with a start/stop request in flight
    placeholders: null, // {empty, loading}: the room list with no rooms (admin-rooms.js)
  };
}

export function setState(session, next, text) {
  session.state = next;
  const pill = $('admin-connection');
  pill.dataset.state = next;
  const labels = { 'signed-out': 'Signed out', connecting: 'Connecting…', live: 'Live', error: 'Error' };
  setText(pill.querySelector('.text'), text || labels[next]);
  $('admin-signout').hidden = next === 'signed-out' || (next === 'error' && !session.token);
  scheduleRender(session);
}

export function showError(session, err, context, offerSignIn = true) {
  const d = describeApiError(err);
  const action = d.signIn && offerSignIn ? { label: 'Sign in again', run: () => signOut(session) } : null;
  showBanner(context ? `${context}: ${d.text}` : d.text, { advice: d.advice, action, key: context || d.text });
}

/** An admin REST request with the session's token (see apiRequest). */
export function api(session, method, path, body) {
  return apiRequest(session.token, method, path, body);
}

/** A token that no longer works: back to the sign-in form, with the reason. */
export function tokenRejected(session, err) {
  stopStream(session);
  session.token = '';
  try { sessionStorage.removeItem(TOKEN_KEY); } catch {}
  clearBanners();
  showError(session, err, 'Signed out', false); // the sign-in form is shown right below
  setState(session, 'error', err.status === 429 ? 'Too many attempts' : 'Token refused');
  $('admin-token').focus();
}
export function isAuthError(session, err) {
  return err instanceof ApiError && (err.status === 401 || err.status === 429 || (err.status === 403 && !session.model.rooms.size));
}

export async function loadSnapshot(session) {
  let summaries;
  if (session.scope) {
    summaries = [{ name: session.scope }];
  } else {
    summaries = (await api(session, 'GET', '/api/rooms')).rooms || [];
  }
  const details = await Promise.all(summaries.map((s) => api(session, 'GET', roomPath(s.name)).catch((e) => {
    if (e instanceof ApiError && e.status === 404) return null; // closed meanwhile
    throw e;
  })));
  session.model.setSnapshot(details.filter(Boolean));
  scheduleRender(session);
}

export function scheduleRefresh(session, room, delay = 120) {
  if (session.refreshTimers.has(room)) return;
  session.refreshTimers.set(room, setTimeout(() => {
    session.refreshTimers.delete(room);
    refreshRoom(session, room);
  }, delay));
}
async function refreshRoom(session, room) {
  const running = session.refreshing.get(room);
  if (running) {
    running.again = true;
    return;
  }
  const entry = { again: false };
  session.refreshing.set(room, entry);
  const gen = session.generation;
  try {
    const detail = await api(session, 'GET', roomPath(room));
    if (gen === session.generation) session.model.setDetail(detail);
  } catch (err) {
    if (gen !== session.generation) return;
    if (err instanceof ApiError && err.status === 404) session.model.removeRoom(room);
    else if (isAuthError(session, err)) tokenRejected(session, err);
    // Unreachable: the stream notices too, and reloads everything once it is back.
    else if (!(err instanceof ApiError && err.status === 0)) showError(session, err, `Could not load room ${room}`);
  } finally {
    session.refreshing.delete(room);
    scheduleRender(session);
    if (entry.again && gen === session.generation) scheduleRefresh(session, room, 0);
  }
}
export function scheduleResync(session) {
  clearTimeout(session.resyncTimer);
  session.resyncTimer = setTimeout(() => {
    const gen = session.generation;
    loadSnapshot(session).catch((err) => {
      if (gen !== session.generation) return;
      if (isAuthError(session, err)) tokenRejected(session, err);
      else if (!(err instanceof ApiError && err.status === 0)) showError(session, err, 'Could not reload the rooms');
    });
  }, 300);
}

export function stopStream(session) {
  session.generation += 1;
  if (session.abort) session.abort.abort();
  session.abort = null;
  for (const t of session.refreshTimers.values()) clearTimeout(t);
  session.refreshTimers.clear();
  clearTimeout(session.resyncTimer);
}

export function signOut(session) {
  stopStream(session);
  session.token = '';
  try { sessionStorage.removeItem(TOKEN_KEY); } catch {}
  resetModel(session);
  setState(session, 'signed-out');
  $('admin-token').focus();
}

export function resetModel(session) {
  session.recordingErrors.clear();
  session.model.rooms.clear();
  session.model.history.clear();
  session.model.lastEventId = 0;
  session.model.serverNow = 0;
  session.model.loadedOnce = false;
}
