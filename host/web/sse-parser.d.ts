/** Types of `@sse-edge/client/parser`: a spec-exact text/event-stream parser. */

export interface ParsedEvent {
  /** `event:` field, or `message`. */
  type: string;
  /** `data:` lines joined with `\n`. */
  data: string;
  /** The last event ID as a browser keeps it (carried over from earlier events). */
  lastEventId: string;
  /** This event's own `id:` field, or null when it had none. */
  id: string | null;
}

export interface ParserHandlers {
  onEvent?: (event: ParsedEvent) => void;
  /** A valid `retry:` field, in milliseconds. */
  onRetry?: (ms: number) => void;
  /** A comment line (`: text`), e.g. a heartbeat. */
  onComment?: (text: string) => void;
}

export interface Parser {
  /** Feeds decoded text; chunks may split lines anywhere. Linear in the input. */
  feed(chunk: string): void;
  /** Forgets a partial event (the stream ended); the last event ID is kept. */
  reset(): void;
  /** The last event ID, as a browser would send it in `Last-Event-ID`. */
  lastEventId: string;
}

export function createParser(handlers: ParserHandlers): Parser;
