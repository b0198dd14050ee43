// @sse-edge/publisher: publish events to sse-edge from a Node backend.
//
// Every publish carries a fresh Idempotency-Key, the same on each of its attempts: the
// host records the key with the events (atomically), so a retry after a lost reply
// stores nothing twice and answers with the first attempt's IDs. Retries are bounded and
// happen only for what a retry can fix (unreachable host, 408, 429, 5xx).
import { randomUUID } from 'node:crypto';

/** The retry policy when none is given. */
export const DEFAULT_RETRY = Object.freeze({ attempts: 5, baseDelayMs: 100, maxDelayMs: 5000, timeoutMs: 10000 });

/**
 * Why a publish did not succeed. `kind`: `refused` (final: `status` and the host's
 * `code`), `gave-up` (every attempt failed with a retryable reason; `attempts`),
 * `reply` (a 200 without a publish reply) or `config`.
 */
export class PublishError extends Error {
  constructor(kind, message, { status = null, code = null, attempts = null } = {}) {
    super(message);
    this.name = 'PublishError';
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.attempts = attempts;
  }
}

/** Whether a reply with `status` may succeed if sent again. */
function retryable(status) {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501);
}

/** Full jitter: a random wait up to base * 2^(retry - 1), capped; or Retry-After, capped. */
function backoff(retry, n, retryAfterMs) {
  if (retryAfterMs != null) return Math.min(retryAfterMs, retry.maxDelayMs);
  const ceiling = Math.min(retry.baseDelayMs * 2 ** Math.min(n - 1, 20), retry.maxDelayMs);
  return Math.random() * ceiling;
}

/** A client of one sse-edge deployment; share one per process. */
export class Publisher {
  /**
   * @param {{baseUrl: string, token: string | (() => string | Promise<string>),
   *          retry?: Partial<typeof DEFAULT_RETRY>, fetch?: typeof fetch}} options
   */
  constructor({ baseUrl, token, retry = {}, fetch: fetchImpl = globalThis.fetch } = {}) {
    if (typeof baseUrl !== 'string' || !/^https?:\/\//.test(baseUrl)) {
      throw new PublishError('config', `baseUrl must start with http:// or https://, got ${JSON.stringify(baseUrl)}`);
    }
    if (typeof token !== 'string' && typeof token !== 'function') {
      throw new PublishError('config', 'token must be a string or a function returning one');
    }
    if (typeof fetchImpl !== 'function') throw new PublishError('config', 'no fetch: Node 18 or later is needed');
    this.endpoint = `${baseUrl.replace(/\/+$/, '')}/sse/publish`;
    this.token = typeof token === 'function' ? token : () => token;
    this.retry = { ...DEFAULT_RETRY, ...retry };
    for (const [name, value] of Object.entries(this.retry)) {
      if (!Number.isFinite(value) || value < (name === 'attempts' ? 1 : 0)) {
        throw new PublishError('config', `retry.${name} must be a finite number (attempts at least 1), got ${value}`);
      }
    }
    this.retry.attempts = Math.floor(this.retry.attempts);
    // setTimeout fires at once past 2^31 - 1 ms.
    this.retry.maxDelayMs = Math.min(this.retry.maxDelayMs, 3_600_000);
    this.fetch = fetchImpl;
  }

  /** One event of `type` on `channel` of `companyId`; resolves to its ID. */
  async publish(companyId, channel, type, data) {
    const reply = await this.#send({ companyId, channel, type, data }, randomUUID());
    if (typeof reply?.id !== 'string') throw new PublishError('reply', `unexpected reply: ${JSON.stringify(reply)}`);
    return reply.id;
  }

  /**
   * Several events of one company (`{channel, type, data}` each), stored all or none and
   * in order; resolves to their IDs. `idempotencyKey`: your own key (1-255 visible ASCII).
   */
  async publishBatch(companyId, events, { idempotencyKey = randomUUID() } = {}) {
    if (typeof idempotencyKey !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
      throw new PublishError('config', 'an idempotency key is 1-255 visible ASCII characters');
    }
    const body = { events: events.map(({ channel, type, data }) => ({ companyId, channel, type, data })) };
    const reply = await this.#send(body, idempotencyKey);
    if (!Array.isArray(reply?.ids)) throw new PublishError('reply', `unexpected reply: ${JSON.stringify(reply)}`);
    return reply.ids;
  }

  /** The seed's `broadcast(companyId, channel, type, data)`. */
  broadcast(companyId, channel, type, data) {
    return this.publish(companyId, channel, type, data);
  }

  /** The seed's helper: `dashboard-update` on `dashboard-updates`. */
  broadcastDashboardUpdate(companyId, data) {
    return this.publish(companyId, 'dashboard-updates', 'dashboard-update', data);
  }

  /** The seed's helper: `evidence-update` on `evidence-updates`. */
  broadcastEvidenceUpdate(companyId, data) {
    return this.publish(companyId, 'evidence-updates', 'evidence-update', data);
  }

  /** The seed's helper: `report-update` on `report-updates` (`broadcast` for `report-ready`). */
  broadcastReportUpdate(companyId, data) {
    return this.publish(companyId, 'report-updates', 'report-update', data);
  }

  async #send(body, key) {
    const payload = JSON.stringify(body);
    let last = '';
    for (let attempt = 1; attempt <= this.retry.attempts; attempt++) {
      let retryAfterMs = null;
      try {
        const res = await this.fetch(this.endpoint, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${await this.token()}`,
            'content-type': 'application/json',
            'idempotency-key': key,
          },
          body: payload,
          // A redirect would turn the POST into a GET elsewhere: it is a refusal here.
          redirect: 'manual',
          signal: AbortSignal.timeout(this.retry.timeoutMs),
        });
        if (res.ok) return await res.json();
        const text = await res.text().catch(() => '');
        let code = null;
        let message = text;
        try {
          ({ error: code, message = '' } = JSON.parse(text));
        } catch {
          /* not the host's JSON error body (a proxy's page) */
        }
        if (!retryable(res.status)) {
          throw new PublishError('refused', `publish refused: ${res.status} ${code ?? ''}: ${message}`, {
            status: res.status,
            code,
          });
        }
        const after = Number(res.headers.get('retry-after'));
        if (Number.isFinite(after) && after >= 0 && res.headers.has('retry-after')) retryAfterMs = after * 1000;
        last = `${res.status} ${code ?? ''} ${message}`;
      } catch (e) {
        if (e instanceof PublishError) throw e;
        last = e?.cause?.message ?? e?.message ?? String(e);
      }
      if (attempt < this.retry.attempts) {
        await new Promise((r) => setTimeout(r, backoff(this.retry, attempt, retryAfterMs)));
      }
    }
    throw new PublishError('gave-up', `publish gave up after ${this.retry.attempts} attempts: ${last}`, {
      attempts: this.retry.attempts,
    });
  }
}

let configured = null;

/** Sets the publisher the module-level helpers use (the seed's style); returns it. */
export function configure(options) {
  configured = new Publisher(options);
  return configured;
}

function current() {
  if (!configured) throw new PublishError('config', 'call configure({ baseUrl, token }) first');
  return configured;
}

/** The seed's `broadcast`, through the configured publisher. */
export const broadcast = (companyId, channel, type, data) => current().broadcast(companyId, channel, type, data);
/** The seed's `broadcastDashboardUpdate`, through the configured publisher. */
export const broadcastDashboardUpdate = (companyId, data) => current().broadcastDashboardUpdate(companyId, data);
/** The seed's `broadcastEvidenceUpdate`, through the configured publisher. */
export const broadcastEvidenceUpdate = (companyId, data) => current().broadcastEvidenceUpdate(companyId, data);
/** The seed's `broadcastReportUpdate`, through the configured publisher. */
export const broadcastReportUpdate = (companyId, data) => current().broadcastReportUpdate(companyId, data);
