// The admin dashboard's participant cards: who it is, connection state, candidate type and RTT,
// bitrate and loss charts, and the table of published tracks with their mute buttons. It only
// builds and updates elements from the model; it never fetches (buttons carry data-action for
// admin-actions.js).

import { createChartSvg, drawChart } from './admin-charts.js';
import { h, meta, reconcile, setAttr, setText } from './admin-dom.js';
import {
  formatBitrate, formatFps, formatKbps, formatLoss, formatPercent, formatResolution, formatRtt,
} from './admin-format.js';

function hue(text) {
  let x = 0;
  for (const c of String(text)) x = (x * 31 + c.codePointAt(0)) % 360;
  return x;
}
function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/);
  return ((parts[0]?.[0] || '?') + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
}

/** A participant's card, empty until updateParticipant fills it. */
export function createParticipant(p) {
  const chart = (kind, title) => h('figure', { class: `chart-box ${kind}` },
    h('figcaption', { text: title }),
    createChartSvg(kind));
  return h('article', { class: 'participant', 'data-identity': p.identity },
    h('div', { class: 'p-head' },
      h('span', { class: 'avatar small', 'aria-hidden': 'true' }),
      h('div', { class: 'who' },
        h('h3', { class: 'p-name' }),
        h('code', { class: 'p-identity', title: 'Identity' })),
      h('span', { class: 'state-badge' }),
      h('button', { class: 'btn small danger', type: 'button', 'data-action': 'remove', text: 'Remove' })),
    h('dl', { class: 'p-meta' },
      meta('Candidate', 'candidate'), meta('RTT', 'rtt'), meta('Tracks', 'track-count')),
    h('div', { class: 'charts' }, chart('bitrate', 'Bitrate, last 60 s'), chart('loss', 'Packet loss, last 60 s')),
    h('div', { class: 'tracks-wrap' }));
}

/** Brings a participant's card in line with `p` (of `room`) and its stats history in `model`. */
export function updateParticipant(model, el, p, room) {
  const avatar = el.querySelector('.avatar');
  setText(avatar, initials(p.name || p.identity));
  avatar.style.setProperty('--hue', hue(p.identity));
  setText(el.querySelector('.p-name'), p.name || p.identity);
  setText(el.querySelector('.p-identity'), p.identity);
  const badge = el.querySelector('.state-badge');
  const role = p.grants?.recorder ? ' · recorder' : (p.grants?.hidden ? ' · hidden' : '');
  setText(badge, `${p.state || 'unknown'}${role}`);
  setAttr(badge, 'data-state', p.state || 'unknown');
  setText(el.querySelector('[data-field=candidate]'), p.candidateType || 'not chosen yet');
  setText(el.querySelector('[data-field=rtt]'), formatRtt(p.rttMs));
  setText(el.querySelector('[data-field=track-count]'), String(p.tracks.length));
  setAttr(el.querySelector('[data-action=remove]'), 'aria-label', `Remove ${p.name || p.identity} from ${room.name}`);

  const samples = model.samples(room.name, p.identity);
  const now = model.serverNow || (samples.length ? samples[samples.length - 1].t : 0);
  drawChart(el.querySelector('svg[data-chart=bitrate]'), {
    points: samples.map((s) => ({ t: s.t, v: s.bitrate })), now, floor: 100, format: formatKbps,
    title: `Bitrate of ${p.name || p.identity}`,
  });
  drawChart(el.querySelector('svg[data-chart=loss]'), {
    points: samples.map((s) => ({ t: s.t, v: s.loss })), now, floor: 5, format: formatPercent,
    title: `Packet loss of ${p.name || p.identity} (worst track)`,
  });

  const wrap = el.querySelector('.tracks-wrap');
  if (!p.tracks.length) {
    if (!wrap.querySelector('.no-tracks')) wrap.replaceChildren(h('p', { class: 'no-tracks', text: 'No published tracks.' }));
    return;
  }
  let table = wrap.querySelector('table');
  if (!table) {
    const heads = ['Kind', 'Codec', 'Resolution', 'FPS', 'Bitrate', 'Loss', 'Status', ''];
    table = h('table', { class: 'tracks' },
      h('caption', { class: 'sr-only', text: `Tracks published by ${p.name || p.identity}` }),
      h('thead', {}, h('tr', {}, ...heads.map((t, i) => h('th', { scope: 'col', text: t, class: i >= 3 && i <= 5 ? 'num' : null }, i === 7 ? h('span', { class: 'sr-only', text: 'Action' }) : null)))),
      h('tbody'));
    wrap.replaceChildren(table);
  }
  reconcile(table.tBodies[0], p.tracks, 'data-track', (t) => t.id, createTrack, (tr, t) => updateTrack(tr, t, p));
}

function createTrack(t) {
  const td = (field, cls) => h('td', { 'data-field': field, class: cls });
  return h('tr', { 'data-track': t.id },
    td('kind'), td('codec'), td('resolution'), td('fps', 'num'), td('bitrate', 'num'), td('loss', 'num'),
    td('status'),
    h('td', { class: 'action' }, h('button', { class: 'btn small', type: 'button', 'data-action': 'mute' })));
}

function updateTrack(tr, t, p) {
  const kind = tr.querySelector('[data-field=kind]');
  setText(kind, t.kind || '—');
  setAttr(kind, 'title', t.id);
  setText(tr.querySelector('[data-field=codec]'), t.codec || '—');
  setText(tr.querySelector('[data-field=resolution]'), t.kind === 'audio' ? '—' : formatResolution(t));
  setText(tr.querySelector('[data-field=fps]'), t.kind === 'audio' ? '—' : formatFps(t.fps));
  setText(tr.querySelector('[data-field=bitrate]'), formatBitrate(t.bitrate));
  setText(tr.querySelector('[data-field=loss]'), formatLoss(t.lossRate));
  const status = tr.querySelector('[data-field=status]');
  setText(status, t.muted ? 'muted' : 'live');
  setAttr(status, 'class', t.muted ? 'status muted' : 'status live');
  const button = tr.querySelector('[data-action=mute]');
  setText(button, t.muted ? 'Unmute' : 'Mute');
  setAttr(button, 'data-muted', String(!!t.muted));
  setAttr(button, 'aria-label', `${t.muted ? 'Unmute' : 'Mute'} ${p.name || p.identity}’s ${t.kind || 'track'} ${t.id}`);
}
