// The admin REST API (docs/admin-api.md) as the admin pages use it: authorised requests, the
// ApiError they fail with and what to tell the user about one, the room claim of a token, and the
// reconnection back-off. It holds no state and never touches the DOM.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Parses an error response body; falls back to the status line. */
export function apiErrorFrom(status, bodyText, retryAfter = null) {
  let code = status === 0 ? 'network' : `http_${status}`;
  let message = '';
  try {
    const body = JSON.parse(bodyText);
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || '';
    }
  } catch {
    message = (bodyText || '').trim().slice(0, 200);
  }
  return new ApiError(status, code, message, retryAfter == null ? null : Number(retryAfter));
}

/**
 * What to tell the user about an error: `{text, advice, signIn}` where signIn says the token is
 * unusable (show the sign-in form again).
 */
export function describeApiError(err) {
  const message = err && err.message ? err.message : String(err);
  const status = err instanceof ApiError ? err.status : 0;
  const code = err instanceof ApiError ? err.code : 'network';
  const head = status ? `${message || 'Request failed'} (${code}, HTTP ${status})` : message;
  switch (code) {
    case 'recorder_unavailable':
      return { text: head, advice: 'Recording needs the recorder sidecar (recorder/): start it, check that the server can reach it, then try again.', signIn: false };
    case 'recording_in_progress':
      return { text: head, advice: 'This room is already being recorded: stop that recording first, or watch it.', signIn: false };
    case 'no_recording':
      return { text: head, advice: 'The room has no recording in progress any more: the dashboard shows its last one.', signIn: false };
    default:
      break;
  }
  switch (status) {
    case 401:
      return { text: head, advice: 'Your admin token was refused or has expired. Sign in again with a valid token.', signIn: true };
    case 403:
      return { text: head, advice: 'This token may not do that: use an admin token with the roomAdmin grant (and no room, to see every room).', signIn: false };
    case 404:
      return { text: head, advice: 'It has probably just left or closed. The list has been refreshed.', signIn: false };
    case 429: {
      const wait = err.retryAfter ? ` in ${err.retryAfter} s` : ' in a minute';
      return { text: head, advice: `Too many failed sign-ins from this address. Try again${wait} with a valid token.`, signIn: true };
    }
    case 0:
      return { text: `Cannot reach the server: ${message}`, advice: 'Check that Switchyard is running; the dashboard keeps retrying.', signIn: false };
    default:
      return { text: head, advice: status >= 500 ? 'The server had a problem; try again shortly.' : 'Check the request and try again.', signIn: false };
  }
}

/** The `room` claim of a JWT (a room-scoped admin token), or '' (every room). Not verified. */
export function tokenRoom(token) {
  try {
    const part = token.split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const json = typeof atob === 'function' ? atob(b64) : Buffer.from(b64, 'base64').toString('binary');
    const claims = JSON.parse(decodeURIComponent(escape(json)));
    return typeof claims.room === 'string' ? claims.room : '';
  } catch {
    return '';
  }
}

/** Reconnection delay (ms) for the n-th attempt in a row (1, 2, 4 … 30 s, ±20 %). */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(30_000, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * One admin REST request authorised by `token`: resolves with the JSON answer (null when there is
 * none), rejects with an ApiError (status 0 when the server could not be reached).
 */
export async function apiRequest(token, method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      cache: 'no-store',
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new ApiError(0, 'network', e.message || 'network error');
  }
  const text = res.status === 204 ? '' : await res.text();
  if (!res.ok) throw apiErrorFrom(res.status, text, res.headers.get('Retry-After'));
  return text ? JSON.parse(text) : null;
}

/** The API path of a room. */
export const roomPath = (room) => `/api/rooms/${encodeURIComponent(room)}`;
