// The admin dashboard's live updates: reads the event stream (`GET /api/events`, Server-Sent
// Events read with fetch() because it needs the Authorization header), loads the full state once
// it is open, applies each event to the model, and reconnects with back-off. It never draws: it
// asks admin-rooms.js for a render.

import { ApiError, apiErrorFrom, backoffDelay, describeApiError } from './admin-api.js';
import { clearBanners, showBanner } from './admin-notices.js';
import { scheduleRender } from './admin-rooms.js';
import {
  isAuthError, loadSnapshot, scheduleRefresh, scheduleResync, setState, tokenRejected,
} from './admin-session.js';
import { SseParser } from './admin-sse.js';

const STALL_MS = 45_000; // the server sends a keep-alive comment every 15 s

function handleEvent(session, ev) {
  let data;
  try { data = JSON.parse(ev.data); } catch { return; }
  const result = session.model.apply({ id: ev.id, event: ev.event, data });
  for (const room of result.refresh) scheduleRefresh(session, room);
  // A room-scoped stream skips other rooms' ids; only the full stream can tell a gap.
  if (result.gap && !session.scope) scheduleResync(session);
  if (result.changed) scheduleRender(session);
}

/** Follows the event stream for sign-in `gen` until the session signs out or its token fails. */
export async function runEventStream(session, gen) {
  let attempt = 0;
  while (gen === session.generation) {
    setState(session, 'connecting', attempt ? 'Reconnecting…' : 'Connecting…');
    const controller = new AbortController();
    session.abort = controller;
    let snapshotError = null;
    let serverRetry = null;
    let active = true; // this attempt's stream is still the current one
    let stall = null;
    const armStall = () => {
      clearTimeout(stall);
      stall = setTimeout(() => controller.abort(), STALL_MS);
    };
    try {
      const headers = { Authorization: `Bearer ${session.token}`, Accept: 'text/event-stream' };
      if (session.model.lastEventId) headers['Last-Event-ID'] = String(session.model.lastEventId);
      const url = session.scope ? `/api/events?room=${encodeURIComponent(session.scope)}` : '/api/events';
      armStall();
      let res;
      try {
        res = await fetch(url, { headers, cache: 'no-store', signal: controller.signal });
      } catch (e) {
        throw controller.signal.aborted ? e : new ApiError(0, 'network', e.message || 'network error');
      }
      if (!res.ok) throw apiErrorFrom(res.status, await res.text(), res.headers.get('Retry-After'));

      // The stream is open: load the full state while its events queue up, then apply them.
      let queue = [];
      loadSnapshot(session).then(() => {
        if (gen !== session.generation || !active) return;
        const pending = queue;
        queue = null;
        for (const ev of pending) handleEvent(session, ev);
        attempt = 0;
        clearBanners((b) => b.dataset.key === 'stream');
        setState(session, 'live');
      }, (err) => {
        if (!active) return;
        snapshotError = err;
        controller.abort();
      });

      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      const parser = new SseParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || gen !== session.generation) break;
        armStall();
        for (const ev of parser.push(decoder.decode(value, { stream: true }))) {
          if (queue) queue.push(ev);
          else handleEvent(session, ev);
        }
      }
      serverRetry = parser.retry;
      throw new ApiError(0, 'network', 'the event stream ended');
    } catch (err) {
      active = false;
      clearTimeout(stall);
      if (gen !== session.generation) return;
      const error = snapshotError || err;
      if (isAuthError(session, error)) {
        tokenRejected(session, error);
        return;
      }
      attempt += 1;
      const delay = serverRetry && attempt === 1 ? serverRetry : backoffDelay(attempt);
      if (attempt >= 2 || !(error instanceof ApiError && error.status === 0)) {
        const d = describeApiError(error instanceof ApiError ? error : new ApiError(0, 'network', error.message || 'connection lost'));
        showBanner(`Live updates interrupted: ${d.text}`, { advice: `Reconnecting in ${Math.round(delay / 1000)} s. ${d.advice}`, key: 'stream' });
      }
      const secs = Math.max(1, Math.round(delay / 1000));
      // A few failures in a row: the server is down or unreachable, not just a blip.
      if (attempt >= 3) setState(session, 'error', `Offline · retrying in ${secs} s`);
      else setState(session, 'connecting', `Reconnecting in ${secs} s…`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    } finally {
      clearTimeout(stall);
    }
  }
}
