/**
 * What stops a sandboxed function: the CPU and memory limits (and the sandbox working again on
 * the next call), stack exhaustion, promises that cannot settle, code refused at deploy time,
 * the host being unreachable from inside, and the sandbox heap staying flat over thousands of
 * calls. Also prints (does not assert) the cost of a pass-through call.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  FunctionDeployError,
  FunctionLimitError,
  FunctionRuntimeError,
} from '../../src/hooks/function/index.ts';
import { readVerdict } from '../../src/hooks/index.ts';
import { binary, deploy, forwarded, MiB, PASS_THROUGH, text } from './function-harness.ts';

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
    const { hook } = await deploy(
      `
      export function onPublish(messages) {
        if (messages[0].payload === 'deep') {
          let nested = [];
          for (let i = 0; i < 100000; i++) nested = [nested];
          JSON.stringify(nested);
        }
        return messages;
      }`,
      // The CPU limit is wall time: on a loaded machine 100,000 iterations can pass the harness's
      // 200 ms before the stack runs out, and this test is about the stack.
      { cpuLimitMs: 10_000 },
    );
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
