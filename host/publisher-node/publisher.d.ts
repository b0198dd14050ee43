/** How a publisher retries; every attempt of one publish carries the same idempotency key. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 5). */
  attempts: number;
  /** Backoff before the first retry, doubling after each (default 100). */
  baseDelayMs: number;
  /** Longest wait between attempts, Retry-After included (default 5000). */
  maxDelayMs: number;
  /** Longest one attempt may take (default 10000). */
  timeoutMs: number;
}

export declare const DEFAULT_RETRY: Readonly<RetryOptions>;

/** A bearer token, or a function asked for one before every attempt. */
export type TokenSource = string | (() => string | Promise<string>);

export interface PublisherOptions {
  /** The deployment, e.g. `https://sse.example.com` (the host, or Envoy in front). */
  baseUrl: string;
  /** A publisher-role token. */
  token: TokenSource;
  retry?: Partial<RetryOptions>;
  /** Another fetch (tests, proxies). */
  fetch?: typeof fetch;
}

/** One event of a batch. */
export interface PublishEvent {
  channel: string;
  /** 1-64 characters of `[A-Za-z0-9_.:-]`. */
  type: string;
  /** Any JSON value but null. */
  data: unknown;
}

export type PublishErrorKind = 'refused' | 'gave-up' | 'reply' | 'config';

export declare class PublishError extends Error {
  readonly kind: PublishErrorKind;
  /** HTTP status of a refusal. */
  readonly status: number | null;
  /** The host's error code of a refusal (`FORBIDDEN`, `IDEMPOTENCY_KEY_REUSED`, ...). */
  readonly code: string | null;
  /** Attempts made before giving up. */
  readonly attempts: number | null;
}

export declare class Publisher {
  constructor(options: PublisherOptions);
  publish(companyId: string, channel: string, type: string, data: unknown): Promise<string>;
  publishBatch(companyId: string, events: PublishEvent[], options?: { idempotencyKey?: string }): Promise<string[]>;
  broadcast(companyId: string, channel: string, type: string, data: unknown): Promise<string>;
  broadcastDashboardUpdate(companyId: string, data: unknown): Promise<string>;
  broadcastEvidenceUpdate(companyId: string, data: unknown): Promise<string>;
  broadcastReportUpdate(companyId: string, data: unknown): Promise<string>;
}

/** Sets the publisher the module-level helpers use. */
export declare function configure(options: PublisherOptions): Publisher;
export declare function broadcast(companyId: string, channel: string, type: string, data: unknown): Promise<string>;
export declare function broadcastDashboardUpdate(companyId: string, data: unknown): Promise<string>;
export declare function broadcastEvidenceUpdate(companyId: string, data: unknown): Promise<string>;
export declare function broadcastReportUpdate(companyId: string, data: unknown): Promise<string>;
