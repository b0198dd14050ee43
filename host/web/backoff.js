// @ts-check
/**
 * Reconnect delays: exponential backoff with "equal jitter" (half fixed, half random),
 * capped, and never below the server's `retry:` hint or a `Retry-After`.
 *
 * @param {number} attempt consecutive failures so far (0 for the first retry)
 * @param {{ initial: number, max: number, floor?: number, random?: () => number }} opts
 * @returns {number} milliseconds to wait
 */
export function backoffDelay(attempt, opts) {
  const random = opts.random ?? Math.random;
  const exp = Math.min(opts.max, opts.initial * 2 ** Math.min(attempt, 30));
  const jittered = exp / 2 + random() * (exp / 2);
  return Math.max(opts.floor ?? 0, Math.round(jittered));
}

/**
 * Parses a `Retry-After` header value (seconds or an HTTP date) into milliseconds.
 * @param {string | null} value
 * @param {number} [now]
 */
export function retryAfterMs(value, now = Date.now()) {
  if (!value) return 0;
  if (/^\d+$/.test(value.trim())) return parseInt(value, 10) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}
