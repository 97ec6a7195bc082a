/**
 * Sandboxed on-publish functions, driven through FunctionHook directly: what a deployed module
 * can do (transform, drop, aggregate with ctx.publish and ctx.state, binary payloads, async,
 * console) and that a failed call has no side effects. Answers are checked with readVerdict, as
 * the hook pipeline does. Limits, isolation and bad code: function-limits.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FunctionRuntimeError, MAX_CONSOLE_LINES_PER_CALL } from '../../src/hooks/function/index.ts';
import { readVerdict } from '../../src/hooks/index.ts';
import { binary, deploy, forwarded, MapState, text } from './function-harness.ts';

describe('FunctionHook: what a deployed function does', () => {
  test('transforms payloads: text and binary messages come back upper-cased', async (t) => {
    const { hook } = await deploy(`
      const decoder = new TextDecoder();
      const encoder = new TextEncoder();
      export function onPublish(messages) {
        for (const m of messages) {
          m.payload = typeof m.payload === 'string'
            ? m.payload.toUpperCase()
            : encoder.encode(decoder.decode(m.payload).toUpperCase());
        }
        return messages;
      }`);
    t.after(() => hook.close());
    const batch = [text(0, 'a', 'hello'), binary(1, 'b', Buffer.from('grüße from 3.1.1'))];
    const out = forwarded(batch, await hook.run(batch));
    assert.deepEqual(
      out,
      new Map([
        [0, 'HELLO'],
        [1, 'GRÜSSE FROM 3.1.1'],
      ]),
    );
  });

  test("messages arrive with the webhook's fields; binary payloads are Uint8Arrays", async (t) => {
    const { hook } = await deploy(`
      export function onPublish(messages, ctx) {
        const seen = messages.map((m) => ({ ...m, payload: typeof m.payload === 'string' ? m.payload : Array.from(m.payload), bytes: m.payload instanceof Uint8Array }));
        return [{ ...messages[0], payload: JSON.stringify({ broker: ctx.broker, seen }) }];
      }`);
    t.after(() => hook.close());
    const batch = [
      { ...text(0, 'a/b', 'héllo'), jti: 'token-7', contentType: 'text/plain' },
      binary(1, 'a/c', Buffer.from([0, 255])),
    ];
    const answer = JSON.parse(forwarded(batch, await hook.run(batch)).get(0)!);
    assert.deepEqual(answer, {
      broker: 'sensors.acme',
      seen: [
        {
          mid: 0,
          broker: 'sensors.acme',
          topic: 'a/b',
          clientId: 'client-1',
          receivedAt: 1_700_000_000,
          contentType: 'text/plain',
          payloadFormatIndicator: 1,
          payload: 'héllo',
          jti: 'token-7',
          bytes: false,
        },
        {
          mid: 1,
          broker: 'sensors.acme',
          topic: 'a/c',
          clientId: 'client-1',
          receivedAt: 1_700_000_000,
          contentType: null,
          payloadFormatIndicator: 0,
          payload: [0, 255],
          bytes: true,
        },
      ],
    });
  });

  test('drops messages by content: the ones left out are not forwarded', async (t) => {
    const { hook } = await deploy(`
      export function onPublish(messages) {
        return messages.filter((m) => !String(m.payload).includes('secret'));
      }`);
    t.after(() => hook.close());
    const batch = [text(0, 't', 'ok 1'), text(1, 't', 'top secret'), text(2, 't', 'ok 2')];
    assert.deepEqual([...forwarded(batch, await hook.run(batch)).keys()], [0, 2]);
  });

  test('aggregates: a rolling average kept in ctx.state is published to another topic', async (t) => {
    const { hook, state, published } = await deploy(`
      export function onPublish(messages, ctx) {
        const window = ctx.state.get('window') ?? [];
        for (const m of messages) window.push(JSON.parse(m.payload).t);
        while (window.length > 4) window.shift();
        ctx.state.set('window', window);
        const avg = window.reduce((a, b) => a + b, 0) / window.length;
        ctx.publish('stats/' + ctx.broker + '/avg', JSON.stringify({ avg }), { qos: 1, retain: true, contentType: 'application/json' });
        return messages;
      }`);
    t.after(() => hook.close());
    const readings = [10, 20, 30, 40, 50, 60];
    for (const [i, value] of readings.entries()) {
      const batch = [text(0, 'site/temp', JSON.stringify({ t: value }))];
      assert.deepEqual([...forwarded(batch, await hook.run(batch)).keys()], [0], `call ${i}`);
    }
    assert.deepEqual(
      published.map((p) => JSON.parse(p.payload.toString()).avg),
      [10, 15, 20, 25, 35, 45],
    );
    assert.deepEqual(published[0], {
      topic: 'stats/sensors.acme/avg',
      payload: Buffer.from('{"avg":10}'),
      options: { qos: 1, retain: true, contentType: 'application/json', payloadFormatIndicator: 1 },
    });
    assert.equal(state.get('window'), '[30,40,50,60]');
  });

  test('binary payloads round-trip byte for byte, whatever the function returns them as', async (t) => {
    const { hook, published } = await deploy(`
      export function onPublish(messages, ctx) {
        const [a, b, c, d] = messages;
        ctx.publish('copy', a.payload);
        ctx.publish('text', 'nul \\u0000 kept');
        ctx.publish('view', new Uint8Array(a.payload.buffer, 1, 2));
        b.payload = b.payload.buffer;                        // ArrayBuffer
        c.payload = new DataView(c.payload.buffer);          // another view type
        d.payload = Array.from(d.payload);                   // numbers, as a Worker would
        return [a, b, c, d];
      }`);
    t.after(() => hook.close());
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const batch = [
      binary(0, 'x', all),
      binary(1, 'x', Buffer.from([0xff, 0xfe, 0x00])),
      binary(2, 'x', Buffer.alloc(0)),
      binary(3, 'x', Buffer.from([0xc3, 0x28])),
    ];
    const verdict = readVerdict(batch, await hook.run(batch));
    assert.equal(verdict.invalid, 0);
    assert.deepEqual(verdict.forward.get(0), all);
    assert.deepEqual(verdict.forward.get(1), Buffer.from([0xff, 0xfe, 0x00]));
    assert.deepEqual(verdict.forward.get(2), Buffer.alloc(0));
    assert.deepEqual(verdict.forward.get(3), Buffer.from([0xc3, 0x28]));
    assert.deepEqual(published, [
      { topic: 'copy', payload: all, options: { qos: 0, retain: false } },
      {
        topic: 'text',
        payload: Buffer.from('nul \u0000 kept'),
        options: { qos: 0, retain: false, payloadFormatIndicator: 1 },
      },
      { topic: 'view', payload: Buffer.from([1, 2]), options: { qos: 0, retain: false } },
    ]);
  });

  test('an async onPublish is awaited, promise chains included, within the same call', async (t) => {
    const { hook, published } = await deploy(`
      const later = (v) => new Promise((resolve) => Promise.resolve().then(() => resolve(v)));
      export async function onPublish(messages, ctx) {
        const n = await later(messages.length);
        await null;
        ctx.publish('count', String(n));
        return (await later(messages)).map((m) => ({ ...m, payload: m.payload + '!' }));
      }`);
    t.after(() => hook.close());
    const batch = [text(0, 't', 'a'), text(1, 't', 'b')];
    assert.deepEqual(
      forwarded(batch, await hook.run(batch)),
      new Map([
        [0, 'a!'],
        [1, 'b!'],
      ]),
    );
    assert.deepEqual(
      published.map((p) => p.payload.toString()),
      ['2'],
    );
  });

  test('the answer is handed over as returned: a non-array is left for readVerdict to refuse', async (t) => {
    const { hook } = await deploy(`
      export function onPublish(messages) {
        if (messages[0].payload === 'object') return { ok: true };
        if (messages[0].payload === 'nothing') return undefined;
        return 'text';
      }`);
    t.after(() => hook.close());
    assert.deepEqual(await hook.run([text(0, 't', 'object')]), { ok: true });
    assert.equal(await hook.run([text(0, 't', 'nothing')]), undefined);
    assert.equal(await hook.run([text(0, 't', 'other')]), 'text');
    assert.throws(() => readVerdict([text(0, 't', 'x')], { ok: true }), /not a JSON array/);
  });

  test('an empty batch resolves to [] without running the function', async (t) => {
    const { hook, logs } = await deploy(`
      export function onPublish(messages) { console.log('ran'); return messages; }`);
    t.after(() => hook.close());
    assert.deepEqual(await hook.run([]), []);
    assert.deepEqual(logs, []);
  });

  test('console.log/warn/error reach the log sink, bounded per call', async (t) => {
    const { hook, logs } = await deploy(`
      console.log('loaded');
      export function onPublish(messages) {
        console.log('n =', messages.length, { a: 1 }, [2]);
        console.info('info'); console.debug('debug');
        console.warn('careful');
        console.error(new TypeError('bad'));
        if (messages[0].payload === 'flood') for (let i = 0; i < 1000; i++) console.log(i);
        return messages;
      }`);
    t.after(() => hook.close());
    await hook.run([text(0, 't', 'x')]);
    assert.deepEqual(logs.slice(0, 5), [
      ['info', 'loaded'],
      ['info', 'n = 1 {"a":1} [2]'],
      ['info', 'info'],
      ['info', 'debug'],
      ['warn', 'careful'],
    ]);
    assert.equal(logs[5]![0], 'error');
    assert.match(logs[5]![1], /^TypeError: bad/);
    logs.length = 0;
    await hook.run([text(0, 't', 'flood')]);
    assert.equal(logs.length, MAX_CONSOLE_LINES_PER_CALL + 1);
    assert.deepEqual(logs.at(-1), ['warn', 'console: 905 more lines dropped (at most 100 per call)']);
  });
});

describe('FunctionHook: side effects only on success', () => {
  test('a call that throws publishes nothing and leaves the state as it was', async (t) => {
    const { hook, published, state } = await deploy(`
      export function onPublish(messages, ctx) {
        ctx.publish('derived', 'x');
        ctx.state.set('seen', (ctx.state.get('seen') ?? 0) + 1);
        if (messages[0].payload === 'fail') throw new Error('nope');
        return messages;
      }`);
    t.after(() => hook.close());
    await hook.run([text(0, 't', 'ok')]);
    await assert.rejects(hook.run([text(0, 't', 'fail')]), (error: unknown) => {
      assert.ok(error instanceof FunctionRuntimeError);
      assert.equal(error.message, 'onPublish threw Error: nope');
      assert.match(error.sandboxStack, /onPublish \(hook\.js:5/);
      assert.doesNotMatch(error.sandboxStack, /prelude/);
      return true;
    });
    assert.equal(published.length, 1);
    assert.equal(state.get('seen'), '1');
    await hook.run([text(0, 't', 'ok')]);
    assert.equal(published.length, 2);
    assert.equal(state.get('seen'), '2');
  });

  test("reads see the call's own writes; state.delete and state.keys reflect them", async (t) => {
    const state = new MapState();
    state.set('old', '"kept"');
    state.set('gone', '1');
    const { hook } = await deploy(
      `
      export function onPublish(messages, ctx) {
        ctx.state.set('new', { n: 1 });
        const seen = ctx.state.get('new');
        const deleted = ctx.state.delete('gone');
        const again = ctx.state.delete('gone');
        messages[0].payload = JSON.stringify({ seen, deleted, again, keys: ctx.state.keys().sort(), missing: ctx.state.get('missing') ?? null });
        return messages;
      }`,
      { state },
    );
    t.after(() => hook.close());
    const batch = [text(0, 't', '')];
    assert.deepEqual(JSON.parse(forwarded(batch, await hook.run(batch)).get(0)!), {
      seen: { n: 1 },
      deleted: true,
      again: false,
      keys: ['new', 'old'],
      missing: null,
    });
    assert.deepEqual(
      [...state.map],
      [
        ['old', '"kept"'],
        ['new', '{"n":1}'],
      ],
    );
  });

  test('ctx.state.set beyond the state limit throws a RangeError inside the function', async (t) => {
    const { hook, state } = await deploy(
      `
      export function onPublish(messages, ctx) {
        ctx.state.set('a', 'x'.repeat(40));                 // 1 + 42 bytes
        try {
          ctx.state.set('b', 'y'.repeat(60));
        } catch (e) {
          messages[0].payload = e.name + ': ' + e.message;
        }
        if (messages[0].topic === 'uncaught') ctx.state.set('c', 'z'.repeat(100));
        return messages;
      }`,
      { stateLimitBytes: 100 },
    );
    t.after(() => hook.close());
    const batch = [text(0, 't', '')];
    assert.equal(
      forwarded(batch, await hook.run(batch)).get(0),
      'RangeError: ctx.state.set: the state would hold 106 bytes, over its limit of 100 bytes',
    );
    assert.deepEqual([...state.map.keys()], ['a']);
    await assert.rejects(hook.run([text(0, 'uncaught', '')]), FunctionRuntimeError);
    assert.deepEqual([...state.map.keys()], ['a']);
  });

  test('ctx.publish refuses invalid topics, options and payloads inside the function', async (t) => {
    const { hook, published } = await deploy(`
      export function onPublish(messages, ctx) {
        const attempts = [
          () => ctx.publish('a/+/b', 'x'),
          () => ctx.publish('a/#', 'x'),
          () => ctx.publish('', 'x'),
          () => ctx.publish('$SYS/fake', 'x'),
          () => ctx.publish('nul\\u0000', 'x'),
          () => ctx.publish(42, 'x'),
          () => ctx.publish('t', 42),
          () => ctx.publish('t', 'x', { qos: 3 }),
          () => ctx.publish('t', 'x', { retain: 'yes' }),
          () => ctx.publish('t', 'x', { contentType: 7 }),
        ];
        messages[0].payload = JSON.stringify(attempts.map((f) => {
          try { f(); return 'published'; } catch (e) { return e.name; }
        }));
        return messages;
      }`);
    t.after(() => hook.close());
    const batch = [text(0, 't', '')];
    assert.deepEqual(JSON.parse(forwarded(batch, await hook.run(batch)).get(0)!), [
      'TypeError',
      'TypeError',
      'TypeError',
      'TypeError',
      'TypeError',
      'TypeError',
      'TypeError',
      'RangeError',
      'TypeError',
      'TypeError',
    ]);
    assert.deepEqual(published, []);
  });
});
