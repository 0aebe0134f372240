/**
 * Switchyard access tokens: the token of each (re)join, given by the app or fetched from the
 * server's dev-token endpoint. It never opens the WebSocket or retries: switchyard.js does.
 */

/** A fatal problem: stop trying, report state 'failed'. */
export class FatalError extends Error {}

/**
 * The token for the next (re)join of `client`: its `token` (a string, or an async function called
 * each time), else a dev token, whose identity the client keeps for its reconnects.
 */
export async function getToken(client) {
  if (typeof client.token === 'function') return await client.token();
  if (client.token) return client.token;
  const { token, identity } = await client.fetchDevToken({
    room: client.room,
    name: client.name,
    identity: client.identity || undefined,
  });
  client.identity = identity;
  return token;
}

/**
 * The default `fetchDevToken`: `GET /api/dev-token` on the server of the WebSocket URL `url`.
 * Throws FatalError when that cannot work (dev tokens disabled, a 4xx answer).
 */
export async function defaultDevToken(url, { room, name, identity }) {
  const base = new URL(url);
  base.protocol = base.protocol === 'wss:' ? 'https:' : 'http:';
  const u = new URL('/api/dev-token', base);
  u.searchParams.set('room', room);
  if (name) u.searchParams.set('name', name);
  if (identity) u.searchParams.set('identity', identity);
  const res = await fetch(u); // a network error throws -> treated as "server unreachable"
  if (res.status === 404) {
    throw new FatalError(
      'This server requires an access token (dev tokens are disabled). Ask the operator for a token link.',
    );
  }
  if (!res.ok) {
    if (res.status >= 500) throw new Error(`dev-token: HTTP ${res.status}`); // retry
    throw new FatalError(`Could not get a dev token: HTTP ${res.status} ${await res.text()}`);
  }
  return res.json();
}
