/**
 * Switchyard data messages: the binary frame format, and the client's two data channels on the
 * publisher PC with the queueing and flow control behind `SwitchyardClient.sendData`. It never
 * touches the signaling WebSocket or the media tracks: switchyard.js calls it for each session.
 *
 * Data messages (protocol/src/data.rs): the publisher PC carries two data channels, created
 * before the first publisher offer of every session (also for receive-only participants, whose
 * offer then holds the data channels and an empty recvonly video section): "reliable" (ordered,
 * retransmitted) and "lossy" (unordered, no retransmits). Every message is binary: a 2-byte
 * big-endian header length, the JSON header, then the payload. The SFU relays frames of up to
 * 255 KiB (header included).
 *
 * @example
 * client.addEventListener('data', (e) => {
 *   const { from, topic, payload } = e.detail;
 *   if (topic === 'chat') console.log(from, new TextDecoder().decode(payload));
 * });
 * if (client.dataReady) await client.sendData(new TextEncoder().encode('hi'), { topic: 'chat' });
 * await client.sendData(bytes, { to: ['bob'], topic: 'file', reliable: true });
 *
 * Events of `SwitchyardClient` about data (all `CustomEvent`, payload in `event.detail`):
 * - `dataOpen`         {}   the reliable data channel opened (`client.dataReady` is now true)
 * - `dataClose`        {}   the data channels went away (drop, reconnect or leave)
 * - `data`             {from, fromId, topic, to, payload, reliable}   a message from another
 *                      participant: `from` is its identity, `fromId` its participant id (both
 *                      stamped by the SFU), `to` the identities it was addressed to ([] = everyone),
 *                      `payload` an ArrayBuffer, `reliable` which channel carried it
 * - `dataError`        {code, message, recipient, from, reliable}   the SFU refused or could not
 *                      deliver a data message: code is permission_denied | forged_sender |
 *                      unknown_recipient | too_large | bad_frame | recipient_unavailable |
 *                      recipient_overflow; `recipient` names the recipient concerned (told to the
 *                      sender), `from` the sender concerned (told to a recipient that missed data)
 *
 * `client.sendData(payload, {to, topic, reliable = true})` resolves once the frame was handed to
 * the channel. Sends on one channel keep their order; the client keeps at most ~1 MiB queued in
 * the browser (it waits for `bufferedamountlow`, threshold 256 KiB, before sending more), so
 * awaiting each call is all the flow control a sender needs. It rejects when the channel is not
 * open (see `dataReady`) or goes away, or when the frame is larger than the SFU relays.
 */

/** Largest data frame the SFU relays (2-byte length + header + payload). */
export const MAX_DATA_FRAME_BYTES = 255 * 1024;
/** Largest data-frame header the SFU accepts. */
export const MAX_DATA_HEADER_BYTES = 4096;
/** `bufferedAmountLowThreshold` of both data channels. */
const DATA_BUFFERED_LOW = 256 * 1024;
/** Never queue more than this in a data channel: wait for `bufferedamountlow` first. */
const DATA_BUFFERED_HIGH = 1024 * 1024;

/** Dispatches a client event, as `SwitchyardClient` does for its own. */
function emit(client, type, detail) {
  client.dispatchEvent(new CustomEvent(type, { detail }));
}

/**
 * Send a data message to the other participants through the SFU (`SwitchyardClient.sendData`).
 * @param {EventTarget} client  the SwitchyardClient whose channels carry it
 * @param {ArrayBuffer|ArrayBufferView|string} payload  bytes (a string is sent as UTF-8)
 * @param {object} [opts]
 * @param {string|string[]} [opts.to]  recipient identities; omitted or empty: everyone else
 * @param {string} [opts.topic]  application label (at most 64 characters), e.g. 'chat'
 * @param {boolean} [opts.reliable=true]  the ordered, reliable channel, or the lossy one
 * @returns {Promise<void>} resolves when the frame was handed to the channel
 */
export function sendDataMessage(client, payload, { to, topic, reliable = true } = {}) {
  const kind = reliable ? 'reliable' : 'lossy';
  const ch = reliable ? client.reliableChannel : client.lossyChannel;
  const header = {};
  const recipients = to == null ? [] : [].concat(to).filter((x) => x != null && x !== '').map(String);
  if (recipients.length) header.to = recipients;
  if (topic != null && topic !== '') header.topic = String(topic);
  let frame;
  try {
    frame = encodeDataFrame(header, payload);
  } catch (err) {
    return Promise.reject(err);
  }
  if (frame.byteLength > MAX_DATA_FRAME_BYTES) {
    return Promise.reject(
      new RangeError(`Data message of ${frame.byteLength} bytes is larger than the SFU relays (${MAX_DATA_FRAME_BYTES}).`),
    );
  }
  const run = () => sendFrame(client, ch, frame);
  const sent = client._dataQueues[kind].then(run, run);
  client._dataQueues[kind] = sent.catch(() => {});
  return sent;
}

async function sendFrame(client, ch, frame) {
  const usable = () => ch && ch.readyState === 'open' && (ch === client.reliableChannel || ch === client.lossyChannel);
  if (!usable()) throw new Error('The data channel is not open.');
  while (ch.bufferedAmount > 0 && ch.bufferedAmount + frame.byteLength > DATA_BUFFERED_HIGH) {
    await new Promise((resolve) => {
      const done = () => {
        ch.removeEventListener('bufferedamountlow', done);
        ch.removeEventListener('close', done);
        client._dataWaiters.delete(done);
        resolve();
      };
      ch.addEventListener('bufferedamountlow', done);
      ch.addEventListener('close', done);
      client._dataWaiters.add(done);
    });
    if (!usable()) throw new Error('The data channel closed.');
  }
  ch.send(frame);
}

/** Opens the "reliable" and "lossy" channels of a new session on the publisher PC `pc`. */
export function createDataChannels(client, pc) {
  closeDataChannels(client);
  const reliable = pc.createDataChannel('reliable');
  const lossy = pc.createDataChannel('lossy', { ordered: false, maxRetransmits: 0 });
  for (const [ch, isReliable] of [
    [reliable, true],
    [lossy, false],
  ]) {
    ch.binaryType = 'arraybuffer';
    ch.bufferedAmountLowThreshold = DATA_BUFFERED_LOW;
    ch.onmessage = (ev) => {
      if (ch === client.reliableChannel || ch === client.lossyChannel) onDataMessage(client, ev.data, isReliable);
    };
  }
  reliable.onopen = () => {
    if (reliable !== client.reliableChannel) return;
    client.dataReady = true;
    emit(client, 'dataOpen', {});
  };
  reliable.onclose = () => {
    if (reliable !== client.reliableChannel || !client.dataReady) return;
    client.dataReady = false;
    emit(client, 'dataClose', {});
  };
  client.reliableChannel = reliable;
  client.lossyChannel = lossy;
  client._dataQueues = { reliable: Promise.resolve(), lossy: Promise.resolve() };
}

/** Closes the current data channels: pending sends reject, `dataClose` fires if one was open. */
export function closeDataChannels(client) {
  const wasReady = client.dataReady;
  for (const ch of [client.reliableChannel, client.lossyChannel]) {
    if (!ch) continue;
    ch.onopen = ch.onclose = ch.onmessage = null;
    try {
      ch.close();
    } catch {}
  }
  client.reliableChannel = client.lossyChannel = null;
  client.dataReady = false;
  for (const wake of [...client._dataWaiters]) wake(); // their sends now reject
  if (wasReady) emit(client, 'dataClose', {});
}

function onDataMessage(client, data, reliable) {
  if (!(data instanceof ArrayBuffer)) return console.warn('switchyard: ignoring non-binary data message');
  let frame;
  try {
    frame = decodeDataFrame(data);
  } catch (err) {
    return console.warn('switchyard: ignoring malformed data frame:', err.message);
  }
  const h = frame.header;
  if (h.error) {
    const e = h.error;
    return emit(client, 'dataError', {
      code: e.code,
      message: e.message || '',
      recipient: e.recipient ?? null,
      from: e.from ?? null,
      reliable,
    });
  }
  emit(client, 'data', {
    from: h.from ?? null,
    fromId: h.fromId ?? null,
    topic: h.topic ?? null,
    to: Array.isArray(h.to) ? h.to : [],
    payload: frame.payload,
    reliable,
  });
}

/**
 * Builds a data frame: 2-byte big-endian header length, the JSON header, the payload.
 * @param {object} header  e.g. {to: ['bob'], topic: 'chat'} (never `from`: the SFU refuses it)
 * @param {ArrayBuffer|ArrayBufferView|string|null} payload
 * @returns {Uint8Array}
 */
export function encodeDataFrame(header, payload) {
  const json = new TextEncoder().encode(JSON.stringify(header || {}));
  if (json.length > MAX_DATA_HEADER_BYTES) {
    throw new RangeError(`Data header of ${json.length} bytes is too long (at most ${MAX_DATA_HEADER_BYTES}).`);
  }
  let body;
  if (payload == null) body = new Uint8Array(0);
  else if (typeof payload === 'string') body = new TextEncoder().encode(payload);
  else if (payload instanceof ArrayBuffer) body = new Uint8Array(payload);
  else if (ArrayBuffer.isView(payload)) body = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
  else throw new TypeError('sendData: payload must be an ArrayBuffer, a typed array or a string');
  const frame = new Uint8Array(2 + json.length + body.length);
  frame[0] = json.length >> 8;
  frame[1] = json.length & 0xff;
  frame.set(json, 2);
  frame.set(body, 2 + json.length);
  return frame;
}

/**
 * Splits a received data frame into its parsed JSON header and its payload (a copy).
 * @param {ArrayBuffer} buffer
 * @returns {{header: object, payload: ArrayBuffer}}
 */
export function decodeDataFrame(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 2) throw new Error('frame shorter than its header length');
  const len = (bytes[0] << 8) | bytes[1];
  if (bytes.length < 2 + len) throw new Error('frame shorter than its header length');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(2, 2 + len)));
  if (!header || typeof header !== 'object') throw new Error('header is not a JSON object');
  return { header, payload: buffer.slice(2 + len) };
}
