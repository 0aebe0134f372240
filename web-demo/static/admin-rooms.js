// The admin dashboard's room list: the totals, one card per room (summary, recording bar, its
// participants), and the batched render that brings the page in line with the session. It never
// fetches and never changes the model.

import { $, h, meta, reconcile, setAttr, setText } from './admin-dom.js';
import { formatAge, formatBitrate, formatDuration } from './admin-format.js';
import { createParticipant, updateParticipant } from './admin-participants.js';
import { recordingDuration, recordingFinished, recordingPageUrl } from './admin-recording.js';

/** Renders the page soon, once for all the changes made until then. */
export function scheduleRender(session) {
  if (session.renderQueued) return;
  session.renderQueued = true;
  setTimeout(() => {
    session.renderQueued = false;
    render(session);
  }, 16);
}

function createRoom(room) {
  const id = `room-${Math.random().toString(36).slice(2, 9)}`;
  return h('section', { class: 'room-card', 'data-room': room.name, 'aria-labelledby': id },
    h('header', { class: 'room-head' },
      h('div', { class: 'room-title' },
        h('h2', { id }, h('span', { class: 'sr-only', text: 'Room ' }), h('span', { class: 'room-label', text: room.name })),
        h('a', { class: 'open-link', href: `/room/${encodeURIComponent(room.name)}`, target: '_blank', rel: 'noopener', text: 'Open call ↗' })),
      h('dl', { class: 'room-meta' },
        meta('Participants', 'participants'), meta('Bitrate in', 'in'), meta('Bitrate out', 'out'), meta('Age', 'age'),
        meta('Node', 'node')),
      h('button', { class: 'btn small danger', type: 'button', 'data-action': 'close-room', text: 'Close room' })),
    h('div', { class: 'recording-bar', 'data-recording-state': 'none' },
      h('span', { class: 'rec-status' },
        h('span', { class: 'rec-dot', 'aria-hidden': 'true' }),
        h('span', { class: 'rec-text', 'data-field': 'recording' })),
      h('a', { class: 'rec-watch', target: '_blank', rel: 'opener', hidden: true, text: 'Watch ↗' }),
      h('span', { class: 'spacer' }),
      h('button', { class: 'btn small rec-button', type: 'button', 'data-action': 'start-recording', text: 'Start recording' }),
      h('p', { class: 'rec-error', role: 'alert', hidden: true },
        h('strong', { class: 'rec-error-text' }), ' ', h('span', { class: 'rec-error-advice' }))),
    h('div', { class: 'participants' }));
}

/** What the recording bar says now (the duration ticks while it records). */
export function recordingText(rec) {
  if (!rec) return 'Not recording';
  const length = formatDuration(recordingDuration(rec));
  switch (rec.state) {
    case 'starting': return 'Starting the recording…';
    case 'active': return `Recording · ${length}`;
    case 'stopping': return `Stopping the recording · ${length}`;
    case 'complete': return `Recording complete · ${length}`;
    case 'failed': return `Recording failed${rec.reason ? `: ${rec.reason}` : ''}`;
    default: return `Recording ${rec.state || ''}`.trim();
  }
}

function updateRecording(session, el, room) {
  const bar = el.querySelector('.recording-bar');
  const rec = room.recording;
  const running = !!rec && !recordingFinished(rec);
  setAttr(bar, 'data-recording-state', rec ? String(rec.state) : 'none');
  if (rec?.id) setAttr(bar, 'data-recording-id', rec.id);
  else bar.removeAttribute('data-recording-id');
  setText(bar.querySelector('.rec-text'), recordingText(rec));
  const watch = bar.querySelector('.rec-watch');
  watch.hidden = !rec?.id;
  if (rec?.id) {
    setAttr(watch, 'href', recordingPageUrl(rec.id));
    setAttr(watch, 'aria-label', `Watch the recording of ${room.name}${rec.state === 'active' ? ' (live)' : ''}`);
    setText(watch, rec.state === 'active' ? 'Watch live ↗' : 'Watch ↗');
  }
  const button = bar.querySelector('.rec-button');
  const busy = session.recordingBusy.has(room.name);
  const stopping = rec?.state === 'stopping';
  setAttr(button, 'data-action', running ? 'stop-recording' : 'start-recording');
  setAttr(button, 'class', running ? 'btn small danger rec-button' : 'btn small rec-button');
  setText(button, stopping ? 'Stopping…' : busy ? (running ? 'Stopping…' : 'Starting…') : (running ? 'Stop recording' : 'Start recording'));
  button.disabled = busy || stopping;
  setAttr(button, 'aria-label', `${running ? 'Stop recording' : 'Start recording'} room ${room.name}`);
  const err = session.recordingErrors.get(room.name);
  const box = bar.querySelector('.rec-error');
  box.hidden = !err;
  setText(box.querySelector('.rec-error-text'), err ? err.text : '');
  setText(box.querySelector('.rec-error-advice'), err ? err.advice : '');
}

function updateRoom(session, el, room) {
  setText(el.querySelector('[data-field=participants]'), String(room.participantCount ?? room.participants.length));
  setText(el.querySelector('[data-field=in]'), formatBitrate(room.bitrateIn));
  setText(el.querySelector('[data-field=out]'), formatBitrate(room.bitrateOut));
  setText(el.querySelector('[data-field=age]'), formatAge(session.model.age(room)));
  // In a cluster: the node that serves the room (a single server has none).
  const node = el.querySelector('[data-field=node]');
  node.parentElement.hidden = !room.node;
  setText(node, room.node || '');
  setAttr(el.querySelector('[data-action=close-room]'), 'aria-label', `Close room ${room.name}`);
  updateRecording(session, el, room);
  const list = el.querySelector('.participants');
  if (!room.participants.length) {
    if (!list.querySelector('.no-participants')) {
      list.replaceChildren(h('p', { class: 'no-participants', text: room.loaded ? 'Nobody is in this room right now.' : 'Loading…' }));
    } else {
      setText(list.querySelector('.no-participants'), room.loaded ? 'Nobody is in this room right now.' : 'Loading…');
    }
    return;
  }
  reconcile(list, room.participants, 'data-identity', (p) => p.identity,
    (p) => createParticipant(p), (pel, p) => updateParticipant(session.model, pel, p, room));
}

function render(session) {
  const signedIn = session.state === 'connecting' || session.state === 'live' || (session.state === 'error' && session.token);
  $('admin-signin-view').hidden = signedIn;
  $('admin-dashboard').hidden = !signedIn;
  if (!signedIn) return;

  const rooms = [...session.model.rooms.values()].sort((a, b) => a.name.localeCompare(b.name));
  const people = rooms.reduce((n, r) => n + (r.participantCount ?? r.participants.length), 0);
  setText($('admin-total-rooms'), String(rooms.length));
  setText($('admin-total-participants'), String(people));
  setText($('admin-total-in'), formatBitrate(rooms.reduce((n, r) => n + (r.bitrateIn || 0), 0)));
  setText($('admin-total-out'), formatBitrate(rooms.reduce((n, r) => n + (r.bitrateOut || 0), 0)));
  setText($('admin-last-event'), session.model.lastEventId ? `event #${session.model.lastEventId}` : '');

  const list = $('admin-rooms');
  list.setAttribute('aria-busy', String(!session.model.loadedOnce));
  if (!rooms.length) {
    const el = session.model.loadedOnce ? session.placeholders.empty : session.placeholders.loading;
    if (list.childElementCount !== 1 || list.firstElementChild !== el) list.replaceChildren(el);
    return;
  }
  reconcile(list, rooms, 'data-room', (r) => r.name, createRoom, (el, r) => updateRoom(session, el, r));
}

/** What the room list shows with no rooms: `{empty}` once loaded, `{loading}` before. */
export function createPlaceholders() {
  const emptyEl = h('div', { id: 'admin-empty', class: 'admin-empty' },
    document.getElementById('admin-empty-icon').content.cloneNode(true),
    h('p', {}, 'No rooms open. Start a call at ', h('a', { href: '/', text: '/' }), ' and it appears here.'));
  const loadingEl = h('p', { class: 'admin-loading', text: 'Loading rooms…' });
  return { empty: emptyEl, loading: loadingEl };
}
