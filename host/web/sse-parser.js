// @ts-check
/**
 * A spec-exact text/event-stream parser (WHATWG HTML, "Server-sent events",
 * "Interpreting an event stream"). Feed it decoded text in chunks of any size; it
 * handles CR, LF and CRLF line ends split across chunks, strips one leading BOM,
 * ignores `id` values containing NULL and non-numeric `retry` values, and keeps the
 * last event ID across events exactly as browsers do.
 *
 * Beyond what a browser exposes, each event also says whether it carried its own `id:`
 * field (`id`), so a client can de-duplicate by event ID without mistaking an event
 * that has none (a heartbeat, `closing`) for a repeat of the one before it.
 *
 * Work is linear in the input: each chunk is scanned once, and a line split over many
 * chunks is kept as a list of pieces joined once, when its end arrives.
 */

/**
 * @typedef {{ type: string, data: string, lastEventId: string, id: string | null }} ParsedEvent
 * @typedef {{ onEvent?: (e: ParsedEvent) => void, onRetry?: (ms: number) => void, onComment?: (text: string) => void }} ParserHandlers
 */

/**
 * @param {ParserHandlers} handlers
 */
export function createParser(handlers) {
  /** Pieces of the current, unterminated line. */
  let pieces = /** @type {string[]} */ ([]);
  let started = false;
  let pendingCR = false;
  let data = '';
  let type = '';
  let lastEventId = '';
  let idBuffer = '';
  /** This event's own `id:` field, if it had one. */
  let ownId = /** @type {string | null} */ (null);

  /** @param {string} line */
  function processLine(line) {
    if (line === '') {
      lastEventId = idBuffer;
      const id = ownId;
      ownId = null;
      if (data === '') {
        type = '';
        return;
      }
      const payload = data.endsWith('\n') ? data.slice(0, -1) : data;
      const event = { type: type || 'message', data: payload, lastEventId, id };
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
        if (!value.includes('\0')) idBuffer = ownId = value;
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
      let start = 0;
      if (pendingCR) {
        pendingCR = false;
        if (chunk.charCodeAt(0) === 10) start = 1; // the LF of a split CRLF
      }
      for (let i = start; i < chunk.length; i++) {
        const c = chunk.charCodeAt(i);
        if (c !== 13 && c !== 10) continue;
        pieces.push(chunk.slice(start, i));
        const line = pieces.length === 1 ? pieces[0] : pieces.join('');
        pieces = [];
        processLine(line);
        if (c === 13) {
          if (i + 1 === chunk.length) pendingCR = true;
          else if (chunk.charCodeAt(i + 1) === 10) i++;
        }
        start = i + 1;
      }
      if (start < chunk.length) pieces.push(chunk.slice(start));
    },
    /** Forgets a partial event (the stream ended); the last event ID is kept. */
    reset() {
      pieces = [];
      data = '';
      type = '';
      idBuffer = lastEventId;
      ownId = null;
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
