// Spec edge cases of the event-stream parser (WHATWG HTML "Server-sent events").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createParser } from '../../host/web/sse-parser.js';

function parse(chunks) {
  const events = [];
  const retries = [];
  const comments = [];
  const p = createParser({ onEvent: (e) => events.push(e), onRetry: (r) => retries.push(r), onComment: (c) => comments.push(c) });
  for (const c of chunks) p.feed(c);
  return { events, retries, comments, lastEventId: p.lastEventId };
}

const STREAM = '\uFEFFretry: 2500\n: hello\nid: 1\nevent: a\ndata: x\ndata: y\n\ndata: no-id-keeps-last\n\r\nid: 2\r\ndata:z\r\r: c\ndata: w\n\n';

test('fields, multi-line data, comments, retry, id persistence', () => {
  const r = parse([STREAM]);
  assert.deepEqual(r.events, [
    { type: 'a', data: 'x\ny', lastEventId: '1', id: '1' },
    { type: 'message', data: 'no-id-keeps-last', lastEventId: '1', id: null },
    { type: 'message', data: 'z', lastEventId: '2', id: '2' },
    { type: 'message', data: 'w', lastEventId: '2', id: null },
  ]);
  assert.deepEqual(r.retries, [2500]);
  assert.deepEqual(r.comments, ['hello', 'c']);
});

test('a split at every character boundary gives the same events', () => {
  const whole = parse([STREAM]).events;
  for (let i = 0; i <= STREAM.length; i++) {
    assert.deepEqual(parse([STREAM.slice(0, i), STREAM.slice(i)]).events, whole, `split at ${i}`);
  }
  assert.deepEqual(parse([...STREAM]).events, whole, 'one character at a time');
});

test('CR, LF and CRLF all end lines, also when CRLF is split', () => {
  for (const eol of ['\n', '\r', '\r\n']) {
    const s = `data: a${eol}data: b${eol}${eol}`;
    assert.deepEqual(parse([s]).events.map((e) => e.data), ['a\nb'], JSON.stringify(eol));
  }
  assert.deepEqual(parse(['data: a\r', '\n\r', '\n']).events.map((e) => e.data), ['a']);
});

test('only one leading BOM is stripped', () => {
  const r = parse(['\uFEFF\uFEFFdata: 1\n\ndata: 2\n\n']);
  assert.deepEqual(r.events.map((e) => e.data), ['2']);
});

test('an id containing NULL is ignored; an empty id resets', () => {
  const r = parse(['id: 5\ndata: a\n\nid: x\0y\ndata: b\n\nid\ndata: c\n\n']);
  assert.deepEqual(r.events.map((e) => e.lastEventId), ['5', '5', '']);
});

test('retry must be all ASCII digits', () => {
  assert.deepEqual(parse(['retry: 03000\nretry: 1000x\nretry: -1\nretry\n\n']).retries, [3000]);
});

test('empty data dispatches nothing but still commits the id; unterminated events are dropped', () => {
  const r = parse(['id: 7\n\ndata\n\ndata:\ndata:\n\ndata: tail']);
  assert.deepEqual(r.events.map((e) => e.data), ['', '\n']);
  assert.equal(r.events[0].lastEventId, '7');
  assert.equal(r.lastEventId, '7');
});

test('field names are case-sensitive and the first space only is stripped', () => {
  const r = parse(['Data: x\nevent:  two\ndata:  lead\n\n']);
  assert.deepEqual(r.events, [{ type: ' two', data: ' lead', lastEventId: '', id: null }]);
});

test("each event says whether it had its own id, so a heartbeat is not a repeat of the event before it", () => {
  const r = parse(['id: e-5\nevent: x\ndata: 1\n\nevent: heartbeat\ndata: {}\n\nevent: closing\ndata: {}\n\nid: e-6\ndata: 2\n\n']);
  assert.deepEqual(r.events.map((e) => [e.type, e.id, e.lastEventId]), [
    ['x', 'e-5', 'e-5'],
    ['heartbeat', null, 'e-5'],
    ['closing', null, 'e-5'],
    ['message', 'e-6', 'e-6'],
  ]);
  const nul = parse(['id: a\0b\ndata: 3\n\n']);
  assert.equal(nul.events[0].id, null, 'an id with NULL is no id');
});

test('parsing is linear in the input: a 4 MiB line fed one character at a time', { timeout: 60_000 }, () => {
  // Rescanning the buffered line on every chunk (the old parser) makes this about 8e12
  // character visits; a linear parser does it in well under a second. node's test
  // timeout below is a hang guard at a thousand times the linear cost, not a speed
  // measurement.
  const big = 'x'.repeat(4 << 20);
  const events = [];
  const p = createParser({ onEvent: (e) => events.push(e) });
  p.feed('data: ');
  for (let i = 0; i < big.length; i += 1) p.feed(big[i]);
  p.feed('\n\n');
  assert.equal(events.length, 1);
  assert.equal(events[0].data.length, big.length);
});
