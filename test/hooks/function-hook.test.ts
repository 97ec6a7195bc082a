/**
 * Sandboxed on-publish functions, driven through FunctionHook directly: what a deployed module
 * can do (transform, drop, aggregate with ctx.publish and ctx.state, binary payloads, async),
 * what stops it (CPU and memory limits, state limit, bad code at deploy time), that a failed
 * call has no side effects, that nothing of the host is reachable from inside, and that
 * thousands of calls leave the sandbox heap where it was. Answers are checked with readVerdict,
 * as the hook pipeline does.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  FunctionDeployError,
  FunctionHook,
  type FunctionHookOptions,
  FunctionLimitError,
  FunctionRuntimeError,
  type HookState,
  MAX_CONSOLE_LINES_PER_CALL,
} from '../../src/hooks/function-hook.ts';
import { type HookMessage, readVerdict } from '../../src/hooks/hook-message.ts';

class MapState implements HookState {
  readonly map = new Map<string, string>();
  get(key: string): string | undefined {
    return this.map.get(key);
  }
  set(key: string, value: string): void {
    this.map.set(key, value);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  keys(): Iterable<string> {
    return this.map.keys();
  }
}

interface Published {
  topic: string;
  payload: Buffer;
  options: { qos: 0 | 1 | 2; retain: boolean; contentType?: string; payloadFormatIndicator?: 0 | 1 };
}

interface Harness {
  hook: FunctionHook;
  state: MapState;
  published: Published[];
  logs: Array<[string, string]>;
}

const MiB = 1024 * 1024;

async function deploy(code: string, overrides: Partial<FunctionHookOptions> = {}): Promise<Harness> {
  const state = (overrides.state as MapState | undefined) ?? new MapState();
  const published: Published[] = [];
  const logs: Array<[string, string]> = [];
  const hook = await FunctionHook.create({
    code,
    memoryLimitBytes: 32 * MiB,
    cpuLimitMs: 200,
    stateLimitBytes: 64 * 1024,
    state,
    publish: (topic, payload, options) => published.push({ topic, payload, options }),
    log: (level, message) => logs.push([level, message]),
    ...overrides,
  });
  return { hook, state, published, logs };
}

/** A text message (Payload Format Indicator 1). */
function text(mid: number, topic: string, payload: string): HookMessage {
  return {
    mid,
    broker: 'sensors.acme',
    topic,
    clientId: 'client-1',
    receivedAt: 1_700_000_000,
    contentType: null,
    payloadFormatIndicator: 1,
    payload,
  };
}

/** A binary message, as toHookMessage makes it (base64 + encoding). */
function binary(mid: number, topic: string, payload: Buffer): HookMessage {
  return {
    mid,
    broker: 'sensors.acme',
    topic,
    clientId: 'client-1',
    receivedAt: 1_700_000_000,
    contentType: null,
    payloadFormatIndicator: 0,
    payload: payload.toString('base64'),
    encoding: 'base64',
  };
}

function forwarded(batch: HookMessage[], answer: unknown): Map<number, string> {
  const verdict = readVerdict(batch, answer);
  assert.equal(verdict.invalid, 0);
  return new Map([...verdict.forward].map(([mid, payload]) => [mid, payload.toString('utf8')]));
}

const PASS_THROUGH = 'export function onPublish(messages) { return messages; }';

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

describe('FunctionHook: limits', () => {
  test('an infinite loop is stopped by the CPU limit, and the next call works', async (t) => {
    const { hook, state } = await deploy(
      `
      let calls = 0;
      export function onPublish(messages, ctx) {
        calls++;
        if (messages[0].payload === 'loop') {
          ctx.state.set('leak', 1);
          for (;;) { try { for (;;) {} } catch (e) {} finally { continue; } }
        }
        messages[0].payload = String(calls);
        return messages;
      }`,
      { cpuLimitMs: 50 },
    );
    t.after(() => hook.close());
    const started = performance.now();
    await assert.rejects(hook.run([text(0, 't', 'loop')]), (error: unknown) => {
      assert.ok(error instanceof FunctionLimitError);
      assert.equal(error.limit, 'cpu');
      assert.equal(error.message, 'onPublish exceeded its CPU time limit of 50 ms');
      return true;
    });
    t.diagnostic(`infinite loop stopped after ${(performance.now() - started).toFixed(0)} ms`);
    assert.equal(state.get('leak'), undefined);
    // The sandbox was rebuilt: module globals start again, the function works.
    const batch = [text(0, 't', 'fine')];
    assert.equal(forwarded(batch, await hook.run(batch)).get(0), '1');
  });

  test('an async loop of promise jobs is stopped by the same CPU limit', async (t) => {
    const { hook } = await deploy(
      `
      export async function onPublish(messages) {
        if (messages[0].payload === 'loop') for (;;) await null;
        return messages;
      }`,
      { cpuLimitMs: 50 },
    );
    t.after(() => hook.close());
    await assert.rejects(hook.run([text(0, 't', 'loop')]), { name: 'FunctionLimitError', limit: 'cpu' });
    assert.deepEqual([...forwarded([text(0, 't', 'ok')], await hook.run([text(0, 't', 'ok')])).keys()], [0]);
  });

  test('a memory bomb is stopped by the memory limit, and the next call works', async (t) => {
    const { hook } = await deploy(
      `
      export function onPublish(messages) {
        if (messages[0].payload === 'bomb') {
          const hoard = [];
          for (;;) hoard.push('x'.repeat(64 * 1024) + hoard.length);
        }
        if (messages[0].payload === 'big string') return [{ ...messages[0], payload: 'y'.repeat(64 * 1024 * 1024) }];
        return messages;
      }`,
      { memoryLimitBytes: 24 * MiB, cpuLimitMs: 5000 },
    );
    t.after(() => hook.close());
    for (const payload of ['bomb', 'big string']) {
      await assert.rejects(hook.run([text(0, 't', payload)]), (error: unknown) => {
        assert.ok(error instanceof FunctionLimitError, String(error));
        assert.equal(error.limit, 'memory');
        assert.equal(error.message, `onPublish exceeded its memory limit of ${24 * MiB} bytes`);
        return true;
      });
      const batch = [text(0, 't', 'ok')];
      assert.equal(forwarded(batch, await hook.run(batch)).get(0), 'ok');
    }
  });

  test('memory kept in module globals across calls counts against the limit', async (t) => {
    const { hook } = await deploy(
      `
      const kept = [];
      export function onPublish(messages) {
        kept.push(new Uint8Array(1024 * 1024).fill(kept.length));
        messages[0].payload = String(kept.length);
        return messages;
      }`,
      { memoryLimitBytes: 16 * MiB },
    );
    t.after(() => hook.close());
    let calls = 0;
    for (;;) {
      calls++;
      assert.ok(calls < 40, 'the limit never stopped the function');
      try {
        await hook.run([text(0, 't', '')]);
      } catch (error) {
        assert.ok(error instanceof FunctionLimitError && error.limit === 'memory', String(error));
        break;
      }
      assert.ok(hook.memoryUsage()!.wasmBytes <= 16 * MiB);
    }
    t.diagnostic(`stopped at call ${calls}`);
    const batch = [text(0, 't', '')];
    assert.equal(forwarded(batch, await hook.run(batch)).get(0), '1', 'module globals restart');
  });

  test('a batch too large for the memory limit is refused before it enters the sandbox', async (t) => {
    const { hook } = await deploy(PASS_THROUGH, { memoryLimitBytes: 16 * MiB });
    t.after(() => hook.close());
    await assert.rejects(hook.run([binary(0, 't', Buffer.alloc(9 * MiB))]), {
      name: 'FunctionLimitError',
      limit: 'memory',
    });
    assert.deepEqual([...forwarded([text(0, 't', 'ok')], await hook.run([text(0, 't', 'ok')])).keys()], [0]);
  });

  test('runaway recursion is a runtime error, and the sandbox stays usable', async (t) => {
    const { hook } = await deploy(`
      function down(n) { return down(n + 1) + 1; }
      export function onPublish(messages) {
        if (messages[0].payload === 'deep') down(0);
        return messages;
      }`);
    t.after(() => hook.close());
    await assert.rejects(hook.run([text(0, 't', 'deep')]), (error: unknown) => {
      assert.ok(error instanceof FunctionRuntimeError, String(error));
      assert.match(error.message, /stack overflow|too much recursion/i);
      return true;
    });
    assert.deepEqual([...forwarded([text(0, 't', 'ok')], await hook.run([text(0, 't', 'ok')])).keys()], [0]);
  });

  test('nesting deep enough to exhaust the host stack inside QuickJS fails the call; the next works', async (t) => {
    const { hook } = await deploy(`
      export function onPublish(messages) {
        if (messages[0].payload === 'deep') {
          let nested = [];
          for (let i = 0; i < 100000; i++) nested = [nested];
          JSON.stringify(nested);
        }
        return messages;
      }`);
    t.after(() => hook.close());
    await assert.rejects(hook.run([text(0, 't', 'deep')]), (error: unknown) => {
      assert.ok(error instanceof FunctionRuntimeError, String(error));
      assert.match(error.message, /stack/);
      return true;
    });
    assert.deepEqual([...forwarded([text(0, 't', 'ok')], await hook.run([text(0, 't', 'ok')])).keys()], [0]);
  });

  test('a thrown value whose getters never return is reported without hanging', async (t) => {
    const { hook } = await deploy(`
      class Endless extends Error { get message() { for (;;); } }
      export function onPublish(messages) { throw new Endless(); }`);
    t.after(() => hook.close());
    await assert.rejects(hook.run([text(0, 't', 'x')]), {
      name: 'FunctionRuntimeError',
      message: 'onPublish threw a value that could not be read',
    });
  });

  test('a regular expression that backtracks forever is stopped by the CPU limit', async (t) => {
    const { hook } = await deploy(
      `export function onPublish(m) { /(a+)+$/.test('a'.repeat(40) + 'b'); return m; }`,
      { cpuLimitMs: 50 },
    );
    t.after(() => hook.close());
    await assert.rejects(hook.run([text(0, 't', 'x')]), { name: 'FunctionLimitError', limit: 'cpu' });
  });

  test('a promise that can never settle fails the call at once', async (t) => {
    const { hook } = await deploy(`
      export function onPublish(messages) { return new Promise(() => {}); }`);
    t.after(() => hook.close());
    await assert.rejects(hook.run([text(0, 't', 'x')]), {
      name: 'FunctionRuntimeError',
      message:
        'onPublish returned a promise that never settled (the sandbox has no timers or I/O to settle it)',
    });
  });

  test('a rejected promise is a runtime error carrying the thrown value', async (t) => {
    const { hook } = await deploy(`
      export async function onPublish(messages) { await null; throw { code: 42 }; }`);
    t.after(() => hook.close());
    await assert.rejects(hook.run([text(0, 't', 'x')]), {
      name: 'FunctionRuntimeError',
      message: 'onPublish threw {"code":42}',
    });
  });
});

describe('FunctionHook: the host is not reachable from inside', () => {
  test('no require, process, fetch, timers, host functions or module loading', async (t) => {
    const { hook } = await deploy(`
      export async function onPublish(messages) {
        const names = ['require', 'process', 'fetch', 'setTimeout', 'setInterval', 'queueMicrotask',
          'XMLHttpRequest', 'WebSocket', 'Buffer', 'module', 'exports', '__dirname', 'std', 'os', 'print',
          'host', 'makeCall', 'describe', 'Deno', 'Bun'];
        const seen = {};
        for (const name of names) seen[name] = typeof globalThis[name];
        let dynamicImport;
        try { await import('fs'); dynamicImport = 'loaded'; } catch (e) { dynamicImport = e.name; }
        messages[0].payload = JSON.stringify({ seen, dynamicImport });
        return messages;
      }`);
    t.after(() => hook.close());
    const batch = [text(0, 't', '')];
    const { seen, dynamicImport } = JSON.parse(forwarded(batch, await hook.run(batch)).get(0)!);
    for (const [name, type] of Object.entries(seen)) assert.equal(type, 'undefined', name);
    assert.notEqual(dynamicImport, 'loaded');
  });

  test('a static import is refused at deploy time', async () => {
    await assert.rejects(
      deploy(`import fs from 'fs';\nexport function onPublish(m) { return m; }`),
      (error: unknown) => {
        assert.ok(error instanceof FunctionDeployError, String(error));
        assert.match(error.message, /^hook\.js/);
        assert.match(error.message, /fs/);
        return true;
      },
    );
  });
});

describe('FunctionHook.create: refusing bad code', () => {
  test('a syntax error is a FunctionDeployError naming the line', async () => {
    await assert.rejects(
      deploy(
        'export function onPublish(messages) {\n  return messages.map((m) => {\n    m.payload = ;\n  });\n}\n',
      ),
      (error: unknown) => {
        assert.ok(error instanceof FunctionDeployError, String(error));
        assert.equal(error.line, 3);
        assert.match(error.message, /^hook\.js:3(:\d+)?: SyntaxError: /);
        return true;
      },
    );
  });

  test('a module without an onPublish export is refused', async () => {
    for (const code of ['export function onpublish(m) { return m; }', 'export const onPublish = 42;', '']) {
      await assert.rejects(deploy(code), (error: unknown) => {
        assert.ok(error instanceof FunctionDeployError);
        assert.match(error.message, /must export a function named onPublish/);
        return true;
      });
    }
  });

  test('a top level that throws or exceeds a limit is refused', async () => {
    await assert.rejects(
      deploy('\nthrow new Error("config missing");\nexport function onPublish(m) { return m; }'),
      (error: unknown) => {
        assert.ok(error instanceof FunctionDeployError);
        assert.match(error.message, /^hook\.js:2(:\d+)?: Error: config missing$/);
        assert.equal(error.line, 2);
        return true;
      },
    );
    await assert.rejects(
      deploy('for (;;) {}\nexport function onPublish(m) { return m; }', { cpuLimitMs: 30 }),
      {
        name: 'FunctionDeployError',
        message: 'hook.js: the module top level exceeded its CPU time limit of 30 ms',
      },
    );
    await assert.rejects(
      deploy(
        'const a = []; for (;;) a.push(new Array(1e5).fill(1));\nexport function onPublish(m) { return m; }',
        {
          memoryLimitBytes: 16 * MiB,
          cpuLimitMs: 5000,
        },
      ),
      /FunctionDeployError|exceeded its memory limit/,
    );
  });

  test('an async top level (top-level await) is awaited', async (t) => {
    const { hook } = await deploy(`
      const config = await Promise.resolve({ suffix: '?' });
      export function onPublish(messages) { return messages.map((m) => ({ ...m, payload: m.payload + config.suffix })); }`);
    t.after(() => hook.close());
    const batch = [text(0, 't', 'a')];
    assert.equal(forwarded(batch, await hook.run(batch)).get(0), 'a?');
  });

  test('options out of range are refused', async () => {
    await assert.rejects(deploy(PASS_THROUGH, { memoryLimitBytes: 1000 }), RangeError);
    await assert.rejects(deploy(PASS_THROUGH, { cpuLimitMs: 0 }), RangeError);
    await assert.rejects(deploy(PASS_THROUGH, { stateLimitBytes: -1 }), RangeError);
  });

  test('run after close rejects', async () => {
    const { hook } = await deploy(PASS_THROUGH);
    hook.close();
    await assert.rejects(hook.run([text(0, 't', 'x')]), /closed/);
  });
});

describe('FunctionHook: resources over many calls', () => {
  test('10,000 calls leave the sandbox heap and object count where they were', async (t) => {
    const { hook, published } = await deploy(`
      export function onPublish(messages, ctx) {
        ctx.state.set('n', (ctx.state.get('n') ?? 0) + 1);
        if (ctx.state.get('n') % 1000 === 0) ctx.publish('progress', new Uint8Array([1, 2, 3]));
        return messages.map((m) => ({ ...m, payload: m.payload instanceof Uint8Array ? m.payload.reverse() : m.payload }));
      }`);
    t.after(() => hook.close());
    const batch = [text(0, 't', 'text'), binary(1, 't', Buffer.from([1, 2, 3, 4]))];
    const run = async (times: number) => {
      for (let i = 0; i < times; i++) readVerdict(batch, await hook.run(batch));
    };
    await run(100);
    const before = hook.memoryUsage()!;
    const rssBefore = process.memoryUsage().rss;
    await run(10_000);
    const after = hook.memoryUsage()!;
    t.diagnostic(
      `sandbox heap ${before.heapBytes} → ${after.heapBytes} bytes, objects ${before.objects} → ${after.objects}, ` +
        `WebAssembly memory ${before.wasmBytes} → ${after.wasmBytes} bytes, ` +
        `process RSS +${((process.memoryUsage().rss - rssBefore) / MiB).toFixed(1)} MiB`,
    );
    assert.ok(after.objects - before.objects < 50, `objects grew from ${before.objects} to ${after.objects}`);
    assert.ok(
      after.heapBytes - before.heapBytes < 64 * 1024,
      `heap grew from ${before.heapBytes} to ${after.heapBytes}`,
    );
    assert.equal(after.wasmBytes, before.wasmBytes);
    assert.equal(published.length, 10);
  });

  test('deploying and closing hundreds of functions, some failing, leaks nothing', async () => {
    for (let i = 0; i < 200; i++) {
      const { hook } = await deploy(
        `export function onPublish(m) { if (m[0].payload === 'loop') for (;;) {} return m; }`,
        { cpuLimitMs: 5 },
      );
      if (i % 20 === 0) await assert.rejects(hook.run([text(0, 't', 'loop')]), FunctionLimitError);
      await hook.run([text(0, 't', 'x')]);
      hook.close();
      await assert.rejects(deploy('export function onPublish( {'), FunctionDeployError);
    }
  });

  test('cost of a pass-through call (printed, not asserted)', async (t) => {
    const { hook } = await deploy(PASS_THROUGH);
    t.after(() => hook.close());
    const payload = JSON.stringify({ t: 21.5, unit: 'C', site: 'plant-7', seq: 123456 });
    for (const size of [1, 32]) {
      for (const kind of ['text', 'binary'] as const) {
        const batch = Array.from({ length: size }, (_, i) =>
          kind === 'text'
            ? text(i, `site/7/dev/${i}`, payload)
            : binary(i, `site/7/dev/${i}`, Buffer.from(payload)),
        );
        for (let i = 0; i < 200; i++) readVerdict(batch, await hook.run(batch));
        const calls = 2000;
        const started = performance.now();
        for (let i = 0; i < calls; i++) readVerdict(batch, await hook.run(batch));
        const perCall = ((performance.now() - started) * 1000) / calls;
        t.diagnostic(
          `pass-through, batch of ${size} ${kind} message(s) of ${payload.length} bytes: ` +
            `${perCall.toFixed(1)} µs per call, ${(perCall / size).toFixed(1)} µs per message`,
        );
      }
    }
  });
});
