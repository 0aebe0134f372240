/**
 * File transfer and chat over Switchyard data messages (no UI). Built on
 * `SwitchyardClient.sendData` and its `data` / `dataError` / `dataClose` events (switchyard.js).
 *
 * File protocol, all on the reliable (ordered) channel, so control and chunks stay in order:
 * - topic "file", payload = UTF-8 JSON control message:
 *     {"t":"offer","id","name","size","type"}   sender → recipients, before the first chunk
 *     {"t":"end","id","size","sha256"}          sender → recipients, after the last chunk
 *     {"t":"cancel","id","reason"?}             either side (a recipient sends it to the sender)
 * - topic "file-data", payload = 16-byte transfer id (the 32 hex digits of `id` as bytes), then
 *   up to 64 KiB of file bytes. Chunks come in file order.
 * The sender reads the file in 1 MiB slices (each read is a round trip to the browser's blob
 * store: reading 64 KiB at a time held a transfer to about 7 MiB/s), reading the next while
 * sending this one, and hashes it (SHA-256, incremental: see Sha256) while sending, so a file is
 * never held whole in memory. The receiver hashes as chunks arrive,
 * keeps them as Blob parts, and on "end" compares size and hash: state 'verified' (and a Blob URL
 * to download) or 'failed' with the reason. A `recipient_overflow` from the SFU means the stream
 * has a hole: both ends fail the transfer.
 *
 * Chat: topic "chat", payload = UTF-8 text.
 *
 * @example
 * const files = new FileTransfers(client);
 * files.addEventListener('update', (e) => render(e.detail)); // a transfer record changed
 * files.addEventListener('chat', (e) => show(e.detail));    // {from, fromId, to, text, self, time}
 * await files.send(file, 'bob');  // or null: everyone
 */

export const CHUNK_BYTES = 64 * 1024;
/** The sender reads the file in slices of this many bytes (a whole number of chunks). */
const READ_BYTES = 16 * CHUNK_BYTES;
const ID_BYTES = 16;
/** Received chunks are merged into Blobs of about this size (fewer, larger parts). */
const PART_BYTES = 4 * 1024 * 1024;
const RATE_WINDOW_MS = 1000;

export class FileTransfers extends EventTarget {
  /** @param {import('./switchyard.js').SwitchyardClient} client */
  constructor(client) {
    super();
    this.client = client;
    /** key -> transfer record (sends: id; receives: `${from}/${id}`) */
    this._transfers = new Map();
    this.chatLog = [];
    client.addEventListener('data', (e) => this.#onData(e.detail));
    client.addEventListener('dataError', (e) => this.#onDataError(e.detail));
    client.addEventListener('dataClose', () => this.#failAll('the connection to the server was lost'));
    client.addEventListener('participantLeft', (e) => this.#onLeft(e.detail.identity));
  }

  /** Snapshots of all transfers, oldest first. */
  list() {
    return [...this._transfers.values()].map(snapshot);
  }

  /** The live record of one transfer (by id), or null. */
  get(id) {
    for (const t of this._transfers.values()) if (t.id === id) return t;
    return null;
  }

  /**
   * Send a file (or a Blob with a `name`) to one participant (identity) or, with `to` null, to
   * everyone else. Resolves when the last message was handed to the channel (state 'sent');
   * rejects when the transfer failed or was cancelled.
   */
  async send(file, to = null) {
    const id = randomId();
    const t = {
      id,
      key: id,
      direction: 'send',
      name: file.name || 'file',
      size: file.size,
      type: file.type || 'application/octet-stream',
      bytes: 0,
      state: 'sending',
      sha256: null,
      from: this.client.you?.identity ?? null,
      to: to || null,
      error: null,
      url: null,
      started: Date.now(),
      rate: 0,
      _mark: { time: Date.now(), bytes: 0 },
    };
    this._transfers.set(t.key, t);
    this.#changed(t);
    try {
      await this.#waitReady();
      await this.#stream(t, file);
    } catch (err) {
      if (t.state === 'sending') this.#finish(t, 'failed', err.message || String(err));
    }
    if (t.state !== 'sent') throw new Error(`${t.name}: ${t.state}${t.error ? `: ${t.error}` : ''}`);
    return snapshot(t);
  }

  async #stream(t, file) {
    const dest = { to: t.to ? [t.to] : undefined };
    await this.#control(t.to, { t: 'offer', id: t.id, name: t.name, size: t.size, type: t.type });
    const prefix = hexToBytes(t.id);
    const hash = new Sha256();
    const read = (at) => file.slice(at, Math.min(at + READ_BYTES, t.size)).arrayBuffer();
    let offset = 0;
    let next = t.size > 0 ? read(0) : null;
    while (offset < t.size) {
      const slice = new Uint8Array(await next);
      if (t.state !== 'sending') return;
      if (!slice.length) throw new Error('the file could not be read to its end');
      const sliceEnd = offset + slice.length;
      next = sliceEnd < t.size ? read(sliceEnd) : null; // read ahead while this slice goes out
      hash.update(slice);
      for (let at = 0; at < slice.length; at += CHUNK_BYTES) {
        const chunk = slice.subarray(at, Math.min(at + CHUNK_BYTES, slice.length));
        const msg = new Uint8Array(ID_BYTES + chunk.length);
        msg.set(prefix);
        msg.set(chunk, ID_BYTES);
        await this.client.sendData(msg, { ...dest, topic: 'file-data' });
        if (t.state !== 'sending') return;
        offset += chunk.length;
        progress(t, offset);
        this.#changed(t);
      }
    }
    const sha256 = hash.hex();
    await this.#control(t.to, { t: 'end', id: t.id, size: t.size, sha256 });
    if (t.state !== 'sending') return;
    t.sha256 = sha256;
    this.#finish(t, 'sent');
  }

  /** Cancel a transfer (either direction) and tell the other side. */
  cancel(id) {
    const t = this.get(id);
    if (!t || !isActive(t)) return;
    this.#finish(t, 'cancelled', 'cancelled by you');
    const peer = t.direction === 'send' ? t.to : t.from;
    this.#control(peer, { t: 'cancel', id: t.id }).catch(() => {});
  }

  /** Send a chat message (UTF-8 text) to everyone, or to one identity. */
  async chat(text, to = null) {
    text = String(text);
    if (!text) return;
    await this.#waitReady();
    await this.client.sendData(new TextEncoder().encode(text), { to: to ? [to] : undefined, topic: 'chat' });
    this.#addChat({ from: this.client.you?.identity ?? null, fromId: this.client.you?.id ?? null, to: to ? [to] : [], text, self: true });
  }

  // ------------------------------------------------------------------ incoming

  #onData({ from, fromId, topic, to, payload }) {
    if (topic === 'chat') {
      return this.#addChat({ from, fromId, to, text: new TextDecoder().decode(payload), self: false });
    }
    if (topic === 'file-data') return this.#onChunk(from, payload);
    if (topic !== 'file') return;
    let msg;
    try {
      msg = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return console.warn('transfer: ignoring malformed control message from', from);
    }
    if (!msg || typeof msg.id !== 'string' || !/^[0-9a-f]{32}$/.test(msg.id)) return;
    if (msg.t === 'offer') return this.#onOffer(from, fromId, msg);
    if (msg.t === 'end') return this.#onEnd(from, msg);
    if (msg.t === 'cancel') return this.#onCancel(from, msg);
  }

  #onOffer(from, fromId, msg) {
    const key = `${from}/${msg.id}`;
    if (this._transfers.has(key)) return;
    const size = Number(msg.size);
    const t = {
      id: msg.id,
      key,
      direction: 'receive',
      name: String(msg.name || 'file').replace(/[\\/]/g, '_'),
      size: Number.isFinite(size) && size >= 0 ? size : 0,
      type: String(msg.type || 'application/octet-stream'),
      bytes: 0,
      state: 'receiving',
      sha256: null,
      from,
      fromId,
      to: this.client.you?.identity ?? null,
      error: null,
      url: null,
      started: Date.now(),
      rate: 0,
      _mark: { time: Date.now(), bytes: 0 },
      _hash: new Sha256(),
      _parts: [],
      _pending: [],
      _pendingBytes: 0,
    };
    this._transfers.set(key, t);
    this.#changed(t);
  }

  #onChunk(from, payload) {
    if (payload.byteLength < ID_BYTES) return;
    const id = bytesToHex(new Uint8Array(payload, 0, ID_BYTES));
    const t = this._transfers.get(`${from}/${id}`);
    if (!t || t.state !== 'receiving') return;
    const data = new Uint8Array(payload, ID_BYTES);
    if (t.bytes + data.length > t.size) {
      return this.#failReceive(t, `received more than the announced ${t.size} bytes`);
    }
    t._hash.update(data);
    t._pending.push(data);
    t._pendingBytes += data.length;
    if (t._pendingBytes >= PART_BYTES) flushParts(t);
    progress(t, t.bytes + data.length);
    this.#changed(t);
  }

  #onEnd(from, msg) {
    const t = this._transfers.get(`${from}/${msg.id}`);
    if (!t || t.state !== 'receiving') return;
    flushParts(t);
    t.sha256 = t._hash.hex();
    if (t.bytes !== t.size) {
      return this.#failReceive(t, `incomplete: received ${t.bytes} of ${t.size} bytes`);
    }
    if (t.sha256 !== String(msg.sha256 || '').toLowerCase()) {
      return this.#failReceive(t, 'checksum mismatch: the SHA-256 of the received data differs from the sender’s');
    }
    t.url = URL.createObjectURL(new Blob(t._parts, { type: t.type }));
    t._parts = [];
    this.#finish(t, 'verified');
  }

  #onCancel(from, msg) {
    // A sender cancelling its transfer to us, or a recipient declining ours.
    const received = this._transfers.get(`${from}/${msg.id}`);
    if (received && isActive(received)) {
      dropParts(received);
      return this.#finish(received, 'cancelled', `cancelled by ${this.#nameOf(from)}`);
    }
    const sent = this._transfers.get(msg.id);
    // A broadcast goes on for the others; a transfer to this one recipient stops.
    if (sent && sent.direction === 'send' && sent.to === from && isActive(sent)) {
      this.#finish(sent, 'cancelled', `cancelled by ${this.#nameOf(from)}`);
    }
  }

  #onDataError({ code, message, recipient, from }) {
    const why = `${message || code} (${code})`;
    for (const t of this._transfers.values()) {
      if (!isActive(t)) continue;
      if (t.direction === 'send') {
        const concerned = recipient ? t.to === recipient || (t.to === null && code === 'recipient_overflow') : true;
        if (!concerned || code === 'forged_sender') continue;
        if (code === 'recipient_overflow') {
          this.#finish(t, 'failed', `${this.#nameOf(recipient)} could not keep up, data was lost (recipient_overflow)`);
          this.#control(t.to, { t: 'cancel', id: t.id, reason: 'recipient_overflow' }).catch(() => {});
        } else {
          this.#finish(t, 'failed', why);
        }
      } else if (code === 'recipient_overflow' && from && t.from === from) {
        this.#failReceive(t, `data from ${this.#nameOf(from)} was lost: this browser could not keep up (recipient_overflow)`);
      }
    }
  }

  #onLeft(identity) {
    for (const t of this._transfers.values()) {
      if (!isActive(t)) continue;
      if (t.direction === 'receive' && t.from === identity) this.#failReceive(t, `${this.#nameOf(identity)} left`);
      if (t.direction === 'send' && t.to === identity) this.#finish(t, 'failed', `${this.#nameOf(identity)} left`);
    }
  }

  #failAll(reason) {
    for (const t of this._transfers.values()) {
      if (!isActive(t)) continue;
      if (t.direction === 'receive') this.#failReceive(t, reason);
      else this.#finish(t, 'failed', reason);
    }
  }

  // ------------------------------------------------------------------ helpers

  #failReceive(t, reason) {
    dropParts(t);
    if (!t.sha256 && t._hash) t.sha256 = t._hash.hex();
    this.#finish(t, 'failed', reason);
  }

  #finish(t, state, error = null) {
    t.state = state;
    t.error = error;
    t.finished = Date.now();
    this.#changed(t);
  }

  #control(to, msg) {
    return this.client.sendData(new TextEncoder().encode(JSON.stringify(msg)), {
      to: to ? [to] : undefined,
      topic: 'file',
    });
  }

  async #waitReady() {
    if (this.client.dataReady) return;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.client.removeEventListener('dataOpen', onOpen);
        reject(new Error('the data channel is not open (not connected?)'));
      }, 15000);
      const onOpen = () => {
        clearTimeout(timer);
        resolve();
      };
      this.client.addEventListener('dataOpen', onOpen, { once: true });
    });
  }

  #nameOf(identity) {
    for (const p of this.client.participants?.values?.() || []) if (p.identity === identity) return p.name;
    return identity || 'someone';
  }

  #addChat(entry) {
    entry = { ...entry, time: Date.now() };
    this.chatLog.push(entry);
    this.dispatchEvent(new CustomEvent('chat', { detail: entry }));
  }

  #changed(t) {
    this.dispatchEvent(new CustomEvent('update', { detail: t }));
  }
}

function isActive(t) {
  return t.state === 'sending' || t.state === 'receiving';
}

/** The public view of a transfer (what `window.switchyard.transfers()` returns). */
function snapshot(t) {
  return {
    id: t.id,
    direction: t.direction,
    name: t.name,
    size: t.size,
    bytes: t.bytes,
    state: t.state,
    sha256: t.sha256,
    from: t.from,
    to: t.to,
    error: t.error,
    url: t.url,
    rate: t.rate,
  };
}

/** Update bytes and the transfer rate (bytes/s, over about the last second). */
function progress(t, bytes) {
  const now = Date.now();
  t.bytes = bytes;
  const dt = now - t._mark.time;
  if (dt >= RATE_WINDOW_MS) {
    t.rate = ((bytes - t._mark.bytes) * 1000) / dt;
    t._mark = { time: now, bytes };
  } else if (!t.rate && now > t.started) {
    t.rate = (bytes * 1000) / (now - t.started);
  }
}

function flushParts(t) {
  if (!t._pending.length) return;
  t._parts.push(new Blob(t._pending));
  t._pending = [];
  t._pendingBytes = 0;
}

function dropParts(t) {
  if (t._parts) t._parts = [];
  if (t._pending) t._pending = [];
  t._pendingBytes = 0;
}

function randomId() {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(ID_BYTES)));
}

function bytesToHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

// ------------------------------------------------------------------ SHA-256 (FIPS 180-4)

const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/**
 * Incremental SHA-256: `new Sha256().update(a).update(b).hex()` equals the digest of a‖b, however
 * the input is split. (WebCrypto only hashes a whole buffer at once.)
 */
export class Sha256 {
  constructor() {
    this.h = Int32Array.from([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    this.w = new Int32Array(64);
    this.buf = new Uint8Array(64);
    this.bufLen = 0;
    this.length = 0; // bytes hashed so far
    this.done = null;
  }

  /** @param {ArrayBuffer|ArrayBufferView} data */
  update(data) {
    if (this.done) throw new Error('Sha256: update after digest');
    const bytes =
      data instanceof Uint8Array
        ? data
        : ArrayBuffer.isView(data)
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : new Uint8Array(data);
    const n = bytes.length;
    this.length += n;
    let i = 0;
    if (this.bufLen > 0) {
      const take = Math.min(64 - this.bufLen, n);
      this.buf.set(bytes.subarray(0, take), this.bufLen);
      this.bufLen += take;
      i = take;
      if (this.bufLen < 64) return this;
      this.#block(this.buf, 0);
      this.bufLen = 0;
    }
    for (; i + 64 <= n; i += 64) this.#block(bytes, i);
    if (i < n) {
      this.buf.set(bytes.subarray(i), 0);
      this.bufLen = n - i;
    }
    return this;
  }

  /** Finish and return the 32-byte digest (further calls return the same digest). */
  digest() {
    if (this.done) return this.done;
    const bits = this.length * 8;
    const pad = new Uint8Array((this.bufLen < 56 ? 56 : 120) - this.bufLen + 8);
    pad[0] = 0x80;
    const hi = Math.floor(bits / 0x100000000);
    const lo = bits >>> 0;
    const end = pad.length;
    pad[end - 8] = hi >>> 24;
    pad[end - 7] = hi >>> 16;
    pad[end - 6] = hi >>> 8;
    pad[end - 5] = hi;
    pad[end - 4] = lo >>> 24;
    pad[end - 3] = lo >>> 16;
    pad[end - 2] = lo >>> 8;
    pad[end - 1] = lo;
    const length = this.length;
    this.update(pad);
    this.length = length;
    const out = new Uint8Array(32);
    for (let j = 0; j < 8; j++) {
      const v = this.h[j];
      out[j * 4] = v >>> 24;
      out[j * 4 + 1] = v >>> 16;
      out[j * 4 + 2] = v >>> 8;
      out[j * 4 + 3] = v;
    }
    this.done = out;
    return out;
  }

  /** Finish and return the digest as lowercase hex. */
  hex() {
    return bytesToHex(this.digest());
  }

  #block(p, off) {
    const w = this.w;
    for (let j = 0; j < 16; j++, off += 4) {
      w[j] = (p[off] << 24) | (p[off + 1] << 16) | (p[off + 2] << 8) | p[off + 3];
    }
    for (let j = 16; j < 64; j++) {
      const a = w[j - 15];
      const b = w[j - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[j] = (w[j - 16] + s0 + w[j - 7] + s1) | 0;
    }
    const h = this.h;
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let j = 0; j < 64; j++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[j] + w[j]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0;
    h[5] = (h[5] + f) | 0;
    h[6] = (h[6] + g) | 0;
    h[7] = (h[7] + hh) | 0;
  }
}
