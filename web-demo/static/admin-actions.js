// The admin dashboard's actions on rooms: close a room, remove a participant, mute or unmute a
// track (each after a confirm dialog), start or stop a recording. It never redraws by itself:
// it updates the model and asks admin-rooms.js for a render.

import { describeApiError, roomPath } from './admin-api.js';
import { confirmAction, toast } from './admin-notices.js';
import { mergeRecording } from './admin-recording.js';
import { scheduleRender } from './admin-rooms.js';
import { api, isAuthError, scheduleRefresh, showError, tokenRejected } from './admin-session.js';

async function act(session, run, success, failure, room) {
  try {
    await run();
    toast(success);
  } catch (err) {
    if (isAuthError(session, err) && err.status !== 403) {
      tokenRejected(session, err);
      return;
    }
    showError(session, err, failure);
  } finally {
    if (room && session.model.rooms.has(room)) scheduleRefresh(session, room, 0);
  }
}

export function onAction(session, e) {
  const button = e.target.closest('button[data-action]');
  if (!button) return;
  const roomEl = button.closest('[data-room]');
  const room = roomEl?.dataset.room;
  const identity = button.closest('[data-identity]')?.dataset.identity;
  const who = identity ? (session.model.participant(room, identity)?.name || identity) : '';
  switch (button.dataset.action) {
    case 'close-room':
      confirmAction({
        title: `Close room “${room}”?`,
        text: 'Everyone in it is disconnected now (their pages say the room was closed).',
        confirmLabel: 'Close room',
        run: () => act(session, () => api(session, 'DELETE', roomPath(room)), `Closed room ${room}`, `Could not close room ${room}`, null),
      });
      break;
    case 'remove':
      confirmAction({
        title: `Remove ${who}?`,
        text: `${who} (${identity}) is disconnected from room ${room}; their page says they were removed.`,
        confirmLabel: 'Remove',
        run: () => act(session, () => api(session, 'DELETE', `${roomPath(room)}/participants/${encodeURIComponent(identity)}`),
          `Removed ${who} from ${room}`, `Could not remove ${who}`, room),
      });
      break;
    case 'mute': {
      const trackId = button.closest('[data-track]')?.dataset.track;
      const track = session.model.participant(room, identity)?.tracks.find((t) => t.id === trackId);
      const muted = !(track ? track.muted : button.dataset.muted === 'true');
      const verb = muted ? 'Mute' : 'Unmute';
      const kind = track?.kind || 'track';
      confirmAction({
        title: `${verb} ${who}’s ${kind}?`,
        text: muted
          ? `Nobody in ${room} receives this ${kind} (${trackId}) until it is unmuted.`
          : `Everyone in ${room} receives this ${kind} (${trackId}) again.`,
        confirmLabel: verb,
        run: () => act(session, async () => {
          const updated = await api(session, 'POST', `${roomPath(room)}/participants/${encodeURIComponent(identity)}/tracks/${encodeURIComponent(trackId)}/mute`, { muted });
          const t = session.model.participant(room, identity)?.tracks.find((x) => x.id === trackId);
          if (t) {
            Object.assign(t, updated && typeof updated === 'object' ? updated : {}, { muted: updated?.muted ?? muted });
            scheduleRender(session);
          }
        }, `${muted ? 'Muted' : 'Unmuted'} ${who}’s ${kind}`, `Could not ${verb.toLowerCase()} ${who}’s ${kind}`, room),
      });
      break;
    }
    case 'start-recording':
    case 'stop-recording':
      recordingAction(session, room, button.dataset.action === 'start-recording');
      break;
    default:
      break;
  }
}

/** Starts (POST) or stops (DELETE) a room's recording; the answer is the recording. */
async function recordingAction(session, room, start) {
  if (!room || session.recordingBusy.has(room)) return;
  session.recordingBusy.add(room);
  session.recordingErrors.delete(room);
  scheduleRender(session);
  const gen = session.generation;
  try {
    const rec = await api(session, start ? 'POST' : 'DELETE', `${roomPath(room)}/recording`, start ? {} : undefined);
    if (gen !== session.generation) return;
    const r = session.model.rooms.get(room);
    if (r && rec && typeof rec.id === 'string') r.recording = mergeRecording(r.recording, rec);
    toast(start ? `Recording ${room}` : `Stopping the recording of ${room}`);
  } catch (err) {
    if (gen !== session.generation) return;
    if (isAuthError(session, err) && err.status !== 403) {
      tokenRejected(session, err);
      return;
    }
    const d = describeApiError(err);
    session.recordingErrors.set(room, {
      text: `Could not ${start ? 'start' : 'stop'} the recording: ${d.text}.`,
      advice: d.advice,
    });
  } finally {
    session.recordingBusy.delete(room);
    if (gen === session.generation) {
      scheduleRender(session);
      if (session.model.rooms.has(room)) scheduleRefresh(session, room, 0);
    }
  }
}
