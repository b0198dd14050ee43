import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, retryAfterMs } from '../../host/web/backoff.js';

test('delays grow exponentially within [exp/2, exp] and stop at the cap', () => {
  const opts = { initial: 1000, max: 30000 };
  for (let attempt = 0; attempt < 12; attempt++) {
    const exp = Math.min(30000, 1000 * 2 ** attempt);
    for (const r of [0, 0.25, 0.5, 0.999]) {
      const d = backoffDelay(attempt, { ...opts, random: () => r });
      assert.ok(d >= exp / 2 && d <= exp, `attempt ${attempt}, r ${r}: ${d}`);
    }
  }
  assert.equal(backoffDelay(50, { ...opts, random: () => 0.999 }), 29985);
});

test('jitter spreads clients apart', () => {
  const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(3, { initial: 1000, max: 30000 })));
  assert.ok(delays.size > 10);
});

test("the server's retry is a floor", () => {
  assert.equal(backoffDelay(0, { initial: 1000, max: 30000, floor: 5000, random: () => 0 }), 5000);
});

test('Retry-After in seconds or as a date', () => {
  assert.equal(retryAfterMs('7'), 7000);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(retryAfterMs(null), 0);
  assert.equal(retryAfterMs('soon'), 0);
});
