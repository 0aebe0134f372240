// Switchyard call page: small shared UI helpers (icons, banners, toasts, the overlay card, the
// connection pill, avatars, number formats). It never talks to the client or the server and keeps
// no call state: the other call-*.js modules and call.js use it.

export const $ = (id) => document.getElementById(id);

export const ICONS = {
  mic: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z"/><path d="M19 11a7 7 0 0 1-14 0M12 18v3"/></svg>',
  micOff: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M15 9.4V6a3 3 0 0 0-5.7-1.3M9 9v3a3 3 0 0 0 5.1 2.1M19 11a7 7 0 0 1-1.2 3.9M5 11a7 7 0 0 0 11.2 5.6M12 18v3M3 3l18 18"/></svg>',
  cam: '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="2" y="6" width="14" height="12" rx="2"/><path d="M16 10l6-3v10l-6-3z"/></svg>',
  camOff: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M16 16v0a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h2m4 0h4a2 2 0 0 1 2 2v3.3l1 1L22 7v10M3 3l18 18"/></svg>',
  people: '<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="9" cy="8" r="3.5"/><path d="M2.5 20a6.5 6.5 0 0 1 13 0M16 4.6a3.5 3.5 0 0 1 0 6.8M18 14.2a6.5 6.5 0 0 1 3.5 5.8"/></svg>',
  leave: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3.7 14.3c4.6-4.4 12-4.4 16.6 0l-2.1 2.5-3.4-1.3v-2.6a11 11 0 0 0-5.6 0v2.6l-3.4 1.3z"/></svg>',
  files: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z"/><path d="M14 3v5h5M12 17v-6M9 14l3-3 3 3"/></svg>',
  link: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M10 14a4.5 4.5 0 0 0 6.4 0l3.2-3.2a4.5 4.5 0 0 0-6.4-6.4L12 5.6M14 10a4.5 4.5 0 0 0-6.4 0l-3.2 3.2a4.5 4.5 0 0 0 6.4 6.4l1.2-1.2"/></svg>',
  screen: '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="2" y="4" width="20" height="13" rx="2"/><path d="M8 21h8M12 17v4M9 10l3-3 3 3M12 7v6"/></svg>',
  screenOff: '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="2" y="4" width="20" height="13" rx="2"/><path d="M8 21h8M12 17v4M9 8l6 6M15 8l-6 6"/></svg>',
  eyeOff: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M10.6 6.1A9.8 9.8 0 0 1 12 6c5 0 9 4.5 10 6a15 15 0 0 1-3 3.5M6.6 7.6A15 15 0 0 0 2 12c1 1.5 5 6 10 6a9.6 9.6 0 0 0 4.4-1.1M3 3l18 18M9.9 9.9a3 3 0 0 0 4.2 4.2"/></svg>',
  eye: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M2 12c1-1.5 5-6 10-6s9 4.5 10 6c-1 1.5-5 6-10 6S3 13.5 2 12z"/><circle cx="12" cy="12" r="3"/></svg>',
};

export function setPill(state, text) {
  const pill = $('connection-state');
  pill.dataset.state = state;
  pill.querySelector('.text').textContent = text;
}

export function openOverlay(html) {
  const overlay = $('overlay');
  const card = $('overlay-card');
  card.innerHTML = html;
  overlay.hidden = false;
  return card;
}

export function closeOverlay() {
  $('overlay').hidden = true;
  $('overlay-card').replaceChildren();
}

/** A dismissible banner (info ones also fade after 8 s); the same text is shown once at a time. */
export function showBanner(text, kind = 'error', code = '', sticky = false) {
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

export function toast(text) {
  const el = document.createElement('div');
  el.className = 'toast';
  el.textContent = text;
  $('toasts').append(el);
  setTimeout(() => el.remove(), 3000);
}

export function setAvatar(el, name) {
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

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

export function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

export function formatDuration(s) {
  if (!Number.isFinite(s)) return '–';
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}


/** A bit rate as people read it: "850 kbit/s", "1.4 Mbit/s". */
export function formatBitrate(bps) {
  if (!Number.isFinite(bps) || bps <= 0) return '0 kbit/s';
  if (bps < 1e6) return `${Math.round(bps / 1e3)} kbit/s`;
  return `${(bps / 1e6).toFixed(1)} Mbit/s`;
}
