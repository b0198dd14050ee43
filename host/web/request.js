// @ts-check
/**
 * What every request of the client shares: the query string, the token, and how an
 * HTTP failure is classified (retry, wait, or stop).
 */
import { retryAfterMs } from './backoff.js';

/** A request the server refused; `kind` says what the client does about it. */
export class HttpError extends Error {
  /**
   * @param {number} status
   * @param {number} retryAfter milliseconds the server asked to wait (0: none)
   */
  constructor(status, retryAfter = 0) {
    super(`HTTP ${status}`);
    this.name = 'HttpError';
    this.status = status;
    this.retryAfter = retryAfter;
    /**
     * - `auth`: 401/403, refresh the token and `connect()`;
     * - `stopped`: 204, the server said stop (EventSource spec);
     * - `request`: another 4xx, the request itself is wrong and repeating it will not help;
     * - `retry`: 408, 425, 429 and 5xx, worth another attempt after a delay.
     * @type {'auth'|'stopped'|'request'|'retry'}
     */
    this.kind = classify(status);
  }
}

/** @param {number} status */
function classify(status) {
  if (status === 401 || status === 403) return 'auth';
  if (status === 204) return 'stopped';
  if (status >= 400 && status < 500 && ![408, 425, 429].includes(status)) return 'request';
  return 'retry';
}

/** The error of a `token()` function that failed: an auth error, never a network retry. */
export class TokenError extends Error {
  /** @param {unknown} cause */
  constructor(cause) {
    super(`token() failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'TokenError';
    this.cause = cause;
    this.kind = /** @type {const} */ ('auth');
  }
}

/**
 * The server ended the stream because this user or token was revoked (a `closing` event
 * with reason `revoked`). An auth error: only a new token helps, and the client waits
 * for one instead of reconnecting (see connection.js).
 */
export class RevokedError extends Error {
  constructor() {
    super('access revoked by the server: supply a new token');
    this.name = 'RevokedError';
    this.code = /** @type {const} */ ('REVOKED');
    this.kind = /** @type {const} */ ('auth');
  }
}

/** True for errors after which the client stops until told to `connect()` again. */
export function isFinal(err) {
  return err?.kind === 'auth' || err?.kind === 'stopped' || err?.kind === 'request';
}

/**
 * The HttpError for a response that is not what was asked for, or null when it is.
 * @param {Response} res
 * @param {number} maxDelay cap on `Retry-After`
 */
export function refusal(res, maxDelay) {
  if (res.status === 200) return null;
  return new HttpError(res.status, Math.min(maxDelay, retryAfterMs(res.headers.get('retry-after'))));
}

/**
 * `companyId=…&channel=…&…` for a stream or poll request.
 * @param {string} companyId @param {string[]} channels @param {Record<string, string>} extra
 */
export function query(companyId, channels, extra = {}) {
  const p = new URLSearchParams({ companyId });
  for (const c of channels) p.append('channel', c);
  for (const [k, v] of Object.entries(extra)) if (v) p.set(k, v);
  return p.toString();
}

/**
 * The current token: a string, or what a function returns (it is called on every
 * attempt). A token function that throws or rejects gives a TokenError.
 * @param {string | (() => string | Promise<string>) | undefined} token
 * @returns {Promise<string | undefined>}
 */
export async function resolveToken(token) {
  try {
    return typeof token === 'function' ? await token() : token;
  } catch (err) {
    throw new TokenError(err);
  }
}

/**
 * The Authorization header for a token value (none without a token).
 * @param {string | undefined} value
 * @returns {Record<string, string>}
 */
export function bearer(value) {
  return value ? { Authorization: `Bearer ${value}` } : {};
}

/**
 * The Authorization header for the current token; see `resolveToken`.
 * @param {string | (() => string | Promise<string>) | undefined} token
 * @returns {Promise<Record<string, string>>}
 */
export async function authHeaders(token) {
  return bearer(await resolveToken(token));
}

/** Channels as a list, whether given as one name or several. */
export function channelList(channel) {
  return Array.isArray(channel) ? [...channel] : [channel];
}
