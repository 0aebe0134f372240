// Signing in to the admin dashboard: with a pasted token, a `?token=` link or the token kept for
// this tab, or with a dev admin token from a server in dev mode. It never signs out or reports a
// refused token (admin-session.js does).

import { ApiError, apiErrorFrom, tokenRoom } from './admin-api.js';
import { $ } from './admin-dom.js';
import { clearBanners, showBanner } from './admin-notices.js';
import { resetModel, showError, stopStream, TOKEN_KEY } from './admin-session.js';
import { runEventStream } from './admin-stream.js';

export function signIn(session, newToken) {
  const t = (newToken || '').trim().replace(/^Bearer\s+/i, '');
  if (!t) return;
  stopStream(session);
  session.token = t;
  session.scope = tokenRoom(t);
  try { sessionStorage.setItem(TOKEN_KEY, t); } catch {}
  resetModel(session);
  clearBanners();
  $('admin-token').value = '';
  $('admin-scope').textContent = session.scope ? `Room ${session.scope} only` : '';
  $('admin-scope').hidden = !session.scope;
  runEventStream(session, session.generation);
}

export async function probeDevToken() {
  try {
    const res = await fetch('/api/dev-admin-token', { cache: 'no-store' });
    if (res.status === 404) $('admin-dev-token').hidden = true;
  } catch {}
}
export async function useDevToken(session) {
  const button = $('admin-dev-token');
  button.disabled = true;
  try {
    const res = await fetch('/api/dev-admin-token', { cache: 'no-store' });
    if (res.status === 404) {
      button.hidden = true;
      showBanner('This server is not in dev mode, so it gives out no dev admin token.', { advice: 'Paste an admin token (a JWT with the roomAdmin grant) instead.', key: 'dev' });
      return;
    }
    const text = await res.text();
    if (!res.ok) throw apiErrorFrom(res.status, text);
    signIn(session, JSON.parse(text).token);
  } catch (err) {
    showError(session, err instanceof ApiError ? err : new ApiError(0, 'network', err.message), 'Could not get a dev admin token');
  } finally {
    button.disabled = false;
  }
}
