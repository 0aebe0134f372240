// What the admin dashboard tells its user outside the room list: banners (errors, advice, an
// action to take), short-lived toasts, and the confirm dialog before a destructive action. It
// never calls the API itself: callers pass what to show and what to run.

import { $, h } from './admin-dom.js';

export function showBanner(text, { kind = 'error', advice = '', action = null, key = text } = {}) {
  const box = $('admin-banners');
  for (const b of box.children) if (b.dataset.key === key) b.remove();
  const msg = h('span', { class: 'msg' }, h('strong', { text }));
  if (advice) msg.append(h('span', { class: 'advice', text: advice }));
  const banner = h('div', { class: `banner ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-key': key }, msg);
  if (action) {
    banner.append(h('button', { class: 'btn small', type: 'button', text: action.label, onclick: () => { banner.remove(); action.run(); } }));
  }
  banner.append(h('button', { class: 'dismiss', type: 'button', 'aria-label': 'Dismiss', text: '×', onclick: () => banner.remove() }));
  box.append(banner);
  if (kind === 'info') setTimeout(() => banner.remove(), 6000);
  return banner;
}
export function clearBanners(pred = () => true) {
  for (const b of [...$('admin-banners').children]) if (pred(b)) b.remove();
}
export function toast(text) {
  const el = h('div', { class: 'toast', text });
  $('admin-toasts').append(el);
  setTimeout(() => el.remove(), 3200);
}

// The element that had the focus before the dialog opened (it gets it back).
let dialogReturn = null;
export function confirmAction({ title, text, confirmLabel, run: action }) {
  const overlay = $('admin-dialog');
  $('admin-dialog-title').textContent = title;
  $('admin-dialog-text').textContent = text;
  const ok = $('admin-dialog-confirm');
  ok.textContent = confirmLabel;
  ok.disabled = false;
  dialogReturn = document.activeElement;
  overlay.hidden = false;
  ok.onclick = async () => {
    ok.disabled = true;
    closeDialog();
    await action();
  };
  $('admin-dialog-cancel').focus();
}
export function closeDialog() {
  $('admin-dialog').hidden = true;
  const back = dialogReturn;
  dialogReturn = null;
  if (back && back.isConnected) back.focus();
}
