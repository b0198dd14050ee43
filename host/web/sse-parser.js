// @ts-check
/**
 * A spec-exact text/event-stream parser (WHATWG HTML, "Server-sent events",
 * "Interpreting an event stream"). Feed it decoded text in chunks of any size; it
 * handles CR, LF and CRLF line ends split across chunks, strips one leading BOM,
 * ignores `id` values containing NULL and non-numeric `retry` values, and keeps the
 * last event ID across events exactly as browsers do.
 */

/**
 * @typedef {{ type: string, data: string, lastEventId: string }} ParsedEvent
 * @typedef {{ onEvent?: (e: ParsedEvent) => void, onRetry?: (ms: number) => void, onComment?: (text: string) => void }} ParserHandlers
 */

/**
 * @param {ParserHandlers} handlers
 */
export function createParser(handlers) {
  let buffer = '';
  let started = false;
  let pendingCR = false;
  let data = '';
  let type = '';
  let lastEventId = '';
  let idBuffer = '';

  /** @param {string} line */
  function processLine(line) {
    if (line === '') {
      lastEventId = idBuffer;
      if (data === '') {
        type = '';
        return;
      }
      const payload = data.endsWith('\n') ? data.slice(0, -1) : data;
      const event = { type: type || 'message', data: payload, lastEventId };
      data = '';
      type = '';
      handlers.onEvent?.(event);
      return;
    }
    if (line.startsWith(':')) {
      handlers.onComment?.(line.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        type = value;
        break;
      case 'data':
        data += value + '\n';
        break;
      case 'id':
        if (!value.includes('\0')) idBuffer = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) handlers.onRetry?.(parseInt(value, 10));
        break;
      default:
        break;
    }
  }

  return {
    /** @param {string} chunk */
    feed(chunk) {
      if (chunk.length === 0) return;
      if (!started) {
        started = true;
        if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
      }
      let text = chunk;
      if (pendingCR) {
        pendingCR = false;
        if (text.startsWith('\n')) text = text.slice(1); // the LF of a split CRLF
      }
      buffer += text;
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const c = buffer[i];
        if (c === '\r' || c === '\n') {
          processLine(buffer.slice(start, i));
          if (c === '\r') {
            if (i + 1 === buffer.length) pendingCR = true;
            else if (buffer[i + 1] === '\n') i++;
          }
          start = i + 1;
        }
      }
      buffer = buffer.slice(start);
    },
    /** Forgets a partial event (the stream ended); the last event ID is kept. */
    reset() {
      buffer = '';
      data = '';
      type = '';
      idBuffer = lastEventId;
      pendingCR = false;
      started = false;
    },
    /** The last event ID, as a browser would send it in `Last-Event-ID`. */
    get lastEventId() {
      return lastEventId;
    },
    /** @param {string} id */
    set lastEventId(id) {
      lastEventId = id;
      idBuffer = id;
    },
  };
}
