/**
 * Which node of a Switchyard cluster the client talks to. A node that does not serve the room
 * answers `join` with `redirect` {url} and closes with 4010: the client sends the same join to
 * that node at once (at most 3 redirects in a row, then it backs off). `joined` lists every live
 * node (`nodes` updates it); when the client's node cannot be reached (it died), the next connection goes to the next
 * node, which places the room anew. On a single server `url` is always the server's. It never
 * opens a socket: switchyard.js does.
 */

/** Close code after `redirect`. */
const REDIRECT_CLOSE_CODE = 4010;
/** Redirects followed in a row before backing off (nodes that disagree about a room). */
const MAX_REDIRECTS = 3;
/** Longest wait between reconnects in a cluster. */
const CLUSTER_BACKOFF_MAX_MS = 2000;
/** In a cluster, a node that has not opened the WebSocket by then counts as unreachable. */
const CONNECT_TIMEOUT_MS = 4000;

export class NodeRoute {
  /** @param {string} home  the WebSocket URL the client was given */
  constructor(home) {
    this.home = home;
    this.target = null; // the node to talk to, when not `home`
    this.pending = null; // a `redirect` whose close has not come yet
    this.followed = 0; // redirects followed in a row
    this.nodes = []; // every live node's WebSocket URL, from `joined`
    this.misses = 0; // connections in a row that never opened at `url`
  }

  /**
   * Watches a new WebSocket: in a cluster, `onTimeout` runs if it has not opened within 4 s (a
   * crashed host refuses nothing; the browser would wait for minutes). Returns what to call
   * when it opens.
   */
  watch(ws, onTimeout) {
    const timer = this.nodes.length > 1
      ? setTimeout(() => ws.readyState === WebSocket.CONNECTING && onTimeout(), CONNECT_TIMEOUT_MS)
      : null;
    return () => {
      clearTimeout(timer);
      this.misses = 0;
    };
  }

  /**
   * A connection to `url` never opened. Returns true when the client should join afresh at the
   * next node: at once for a fresh join, after a second miss while a session could still be
   * resumed at this node (a short network drop).
   */
  missed(resumable) {
    this.misses += 1;
    if (this.misses < (resumable ? 2 : 1) || !this.next()) return false;
    this.misses = 0;
    return true;
  }

  /** The WebSocket URL for the next connection. */
  get url() {
    return this.target || this.home;
  }

  /** `redirect` arrived: the close that follows sends the join to `url`. */
  noteRedirect(url) {
    this.pending = url;
  }

  /** On a close with `code`: whether to join at the redirect's node now (then `url` is it). */
  follow(code) {
    const go = code === REDIRECT_CLOSE_CODE && !!this.pending && this.followed < MAX_REDIRECTS;
    if (go) {
      this.target = this.pending;
      this.followed += 1;
    } else {
      this.followed = 0;
    }
    this.pending = null;
    return go;
  }

  /** `joined`: remember the cluster's nodes. */
  joined(nodes) {
    this.setNodes(nodes);
    this.followed = 0;
  }

  /** `joined` or `nodes`: the live nodes' WebSocket URLs. */
  setNodes(nodes) {
    this.nodes = Array.isArray(nodes) ? nodes.filter((n) => typeof n === 'string') : [];
  }

  /**
   * The longest wait between reconnects: in a cluster each try goes to another node, and a
   * dead node's rooms are placed anew within seconds, so tries stay frequent (2 s).
   */
  maxBackoff(single) {
    return this.nodes.length > 1 ? Math.min(single, CLUSTER_BACKOFF_MAX_MS) : single;
  }

  /** Aim at the next known node; false on a single server (nothing changes). */
  next() {
    const nodes = [...new Set([this.home, ...this.nodes])];
    if (nodes.length < 2) return false;
    const at = nodes.indexOf(this.url);
    this.target = nodes[(at + 1) % nodes.length];
    return true;
  }
}
