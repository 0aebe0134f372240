// Server-Sent Events parsing for the admin event stream (`GET /api/events`): an incremental
// `text/event-stream` parser and a one-shot helper. Pure: it never fetches, and never touches the
// DOM (admin-stream.js reads the stream; recordings.js uses it too).
//
// Server-Sent Events parser (https://html.spec.whatwg.org/multipage/server-sent-events.html)

/**
 * An incremental `text/event-stream` parser: feed it decoded text as it arrives (in chunks of any
 * size, split anywhere), get back the complete events. `lastEventId` persists across events as
 * the spec says; `retry` holds the last reconnection time the server asked for (ms), if any.
 */
export class SseParser {
  constructor() {
    this.buffer = '';
    this.skipLf = false; // the previous chunk ended in CR: an LF starting the next one is its pair
    this.lastEventId = '';
    this.retry = null;
    this.resetEvent();
  }

  resetEvent() {
    this.eventType = '';
    this.data = [];
    this.hasData = false;
  }

  /** Feeds text; returns the events completed by it: `{id, event, data}` (id as a string). */
  push(text) {
    const events = [];
    if (this.skipLf && text.startsWith('\n')) text = text.slice(1);
    this.skipLf = false;
    this.buffer += text;
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      if (cr < 0 && lf < 0) break;
      let end;
      let next;
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        end = cr;
        if (cr + 1 < this.buffer.length) {
          next = this.buffer[cr + 1] === '\n' ? cr + 2 : cr + 1;
        } else {
          next = cr + 1;
          this.skipLf = true;
        }
      } else {
        end = lf;
        next = lf + 1;
      }
      this.line(this.buffer.slice(start, end), events);
      start = next;
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  line(line, events) {
    if (line === '') {
      if (this.hasData) {
        events.push({
          id: this.lastEventId,
          event: this.eventType || 'message',
          data: this.data.join('\n'),
        });
      }
      this.resetEvent();
      return;
    }
    if (line.startsWith(':')) return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event': this.eventType = value; break;
      case 'data': this.data.push(value); this.hasData = true; break;
      case 'id': if (!value.includes('\0')) this.lastEventId = value; break;
      case 'retry': if (/^\d+$/.test(value)) this.retry = Number(value); break;
      default: break;
    }
  }
}

/**
 * One-shot convenience over SseParser: parses `chunk` appended to the unparsed `rest` of a
 * previous call, up to the last blank line. Returns `{events, rest}`; pass `rest` back in with
 * the next chunk. (Ids do not carry over between calls; SseParser keeps them.)
 */
export function parseSseChunk(rest, chunk) {
  const text = (rest || '') + chunk;
  // A lone CR at the very end may be the first half of a CRLF: not a boundary yet.
  const boundary = /(?:\r\n|\r(?!\n|$)|\n)(?:\r\n|\r(?!\n|$)|\n)/g;
  let cut = 0;
  for (let m; (m = boundary.exec(text));) cut = m.index + m[0].length;
  const events = cut ? new SseParser().push(text.slice(0, cut)) : [];
  return { events, rest: text.slice(cut) };
}
