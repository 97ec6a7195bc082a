/**
 * Sandboxed functions in worker threads (issue 22, src/hooks/function/worker-pool.ts): an idle
 * server starts no worker and never loads QuickJS on its event loop, not even once a function
 * runs; a function that busy-loops 100 ms per call on one broker leaves another broker's QoS 1
 * round trips as they are with it idle (MQTT.js clients); a worker thread that dies mid-call
 * fails that batch by the broker's failure policy (fail-closed drops, fail-open forwards) and
 * is replaced, its function deployed again with its ctx.state as the answered calls left it.
 *
 * QuickJS must stay out of this test process's main thread: the file imports nothing that loads
 * it (no function-harness.ts), and a module hook records every resolution of quickjs-emscripten
 * made here before the server is imported.
 */
import assert from 'node:assert/strict';
import { registerHooks } from 'node:module';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { HookEntry, HookState } from '../../src/hooks/index.ts';

const quickjsResolved: string[] = [];
registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier.includes('quickjs')) quickjsResolved.push(specifier);
    return nextResolve(specifier, context);
  },
});
const { FunctionWorkerPool, OnPublishPipeline } = await import('../../src/hooks/index.ts');
const { PublishBudget } = await import('../../src/hooks/publish-budget.ts');
const { silentLogger } = await import('../../src/observability/index.ts');
const { Message } = await import('../../src/router/index.ts');
const { until } = await import('../helpers/child-process.ts');
const { addAnonymousBrokers, pubsubApi, startServer } = await import('../helpers/server.ts');
type TestServer = Awaited<ReturnType<typeof startServer>>;
type HookView = import('../../src/hooks/index.ts').HookView;

/** A function's state held in a Map, as the broker's HookState holds it. */
const mapState = (map: Map<string, string>): HookState => ({
  get: (k) => map.get(k),
  set: (k, v) => void map.set(k, v),
  delete: (k) => void map.delete(k),
  keys: () => map.keys(),
});

const SLOW = `
  export function onPublish(messages) {
    const end = Date.now() + 100;
    while (Date.now() < end) {}
    return messages;
  }`;

describe('function hooks in worker threads', () => {
  let ts: TestServer;
  const clients: mqtt.MqttClient[] = [];

  before(async () => {
    ts = await startServer({ httpPort: 0, functionCpuMs: 2000, hookWorkers: 2 });
    addAnonymousBrokers(ts, 'fnns', ['slow', 'steady']);
  });
  after(async () => {
    for (const c of clients) await c.endAsync(true);
    await ts.close();
  });
  const connect = async (broker: string): Promise<mqtt.MqttClient> => {
    const c = await mqtt.connectAsync(ts.url, { username: `${broker}.fnns`, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  };
  const hookView = async (broker: string): Promise<HookView> =>
    (await pubsubApi<HookView>(ts, 'GET', `/namespaces/fnns/brokers/${broker}/hook`)).result;

  /** QoS 1 publishes, one after the other (each waits for its PUBACK), for `ms`: round trips done. */
  const roundTrips = async (client: mqtt.MqttClient, ms: number): Promise<number> => {
    const end = performance.now() + ms;
    let done = 0;
    while (performance.now() < end) {
      await client.publishAsync('steady/t', `rt ${done}`, { qos: 1 });
      done++;
    }
    return done;
  };

  it('an idle server starts no worker; a deployed function runs in one, with QuickJS never loaded on the event loop', async () => {
    assert.equal(ts.server.functionPool.started, 0, 'no worker before the first deployment');
    const put = await pubsubApi(ts, 'PUT', '/namespaces/fnns/brokers/slow/hook/function', { code: SLOW });
    assert.equal(put.success, true, JSON.stringify(put.errors));
    assert.equal(ts.server.functionPool.started, 1, 'the deployment started one worker');
    const sub = await connect('slow');
    await sub.subscribeAsync('a/#', { qos: 0 });
    const got = new Promise<string>((resolve) => sub.once('message', (_t, p) => resolve(p.toString())));
    const pub = await connect('slow');
    await pub.publishAsync('a/1', 'through the function', { qos: 1 });
    assert.equal(await got, 'through the function');
    assert.equal((await hookView('slow')).metrics.calls >= 1, true);
    assert.deepEqual(quickjsResolved, [], 'quickjs-emscripten was resolved on the main thread');
  });

  it("a function busy-looping 100 ms per call leaves another broker's QoS 1 round trips as with it idle", async () => {
    const steady = await connect('steady');
    const idle = await roundTrips(steady, 1000);
    const feeder = await connect('slow');
    const feed = setInterval(() => feeder.publish('a/feed', 'x', { qos: 0 }), 5);
    try {
      const callsBefore = (await hookView('slow')).metrics.calls;
      await until(
        async () => (await hookView('slow')).metrics.pending > 0,
        'the slow function has a backlog',
      );
      const busy = await roundTrips(steady, 1000);
      const calls = (await hookView('slow')).metrics.calls - callsBefore;
      assert.ok(calls >= 5, `the slow function ran throughout the window (${calls} calls)`);
      // On the event loop each call would stall the server 100 ms: about 2 % of the idle count.
      // The busy loop holds a core of a machine the test shares, hence the generous bound.
      assert.ok(busy >= idle * 0.2, `round trips with the slow function busy: ${busy}, idle: ${idle}`);
    } finally {
      clearInterval(feed);
    }
  });
});

describe('a function worker that dies', () => {
  const COUNTER = `
    export function onPublish(messages, ctx) {
      for (const m of messages) {
        if (m.payload === 'slow') { console.log('started'); const end = Date.now() + 5000; while (Date.now() < end) {} }
        const n = (ctx.state.get('n') ?? 0) + 1;
        ctx.state.set('n', n);
        ctx.publish('count', String(n));
      }
      return messages;
    }`;

  for (const policy of ['fail-closed', 'fail-open'] as const) {
    it(`fails its batch in flight (${policy}) and is replaced; the function keeps its state`, async () => {
      const pool = new FunctionWorkerPool(1, silentLogger());
      const state = new Map<string, string>();
      const published: string[] = [];
      const logs: string[] = [];
      try {
        const hook = await pool.deploy({
          owner: 'b1',
          code: COUNTER,
          memoryLimitBytes: 32 * 1024 * 1024,
          cpuLimitMs: 10_000,
          stateLimitBytes: 1024,
          state: mapState(state),
          publishBudget: new PublishBudget(
            { messagesPerSecond: 100, bytesPerSecond: 10_000, burstMs: 1000 },
            () => {},
          ),
          publish: (topic, payload) => published.push(`${topic} ${payload.toString()}`),
          log: (_level, message) => logs.push(message),
        });
        const pipeline = new OnPublishPipeline(hook, {
          brokerName: 'b.ns.localhost',
          policy,
          batchSize: 1,
          batchWindowMs: 0,
          concurrency: 4,
          maxPending: 100,
          log: silentLogger(),
        });
        const decisions: string[] = [];
        const submit = (payload: string): void => {
          const entry: HookEntry = {
            message: new Message({
              topic: 't',
              payload: Buffer.from(payload),
              qos: 1,
              retain: false,
              senderId: 'c',
              properties: { payloadFormatIndicator: 1 },
            }),
            jti: undefined,
            decided: (m, failed) =>
              decisions.push(`${payload}: ${m ? 'forwarded' : 'dropped'}${failed ? ` (${failed})` : ''}`),
          };
          pipeline.submit(entry, undefined);
        };
        submit('a');
        submit('b');
        await until(() => decisions.length === 2, 'a and b decided');
        const first = pool.threads()[0]!;
        submit('slow');
        await until(() => logs.includes('started'), 'the slow call started');
        await first.terminate();
        await until(() => decisions.length === 3, 'the slow call decided');
        assert.match(decisions[2]!, policy === 'fail-closed' ? /^slow: dropped \(/ : /^slow: forwarded \(/);
        assert.match(decisions[2]!, /worker thread stopped/);
        submit('c');
        await until(() => decisions.length === 4, 'c decided after the replacement');
        assert.equal(decisions[3], 'c: forwarded');
        assert.notEqual(pool.threads()[0], first, 'a new thread took its place');
        assert.equal(pool.started, 1);
        assert.deepEqual(published, ['count 1', 'count 2', 'count 3'], 'the failed call left no trace');
        assert.equal(state.get('n'), '3');
        pipeline.close();
      } finally {
        await pool.close();
      }
    });
  }
});

describe('versions of a function on one worker', () => {
  it("share the broker's state and budget: a refusal met by the new version after the old closed is counted", async () => {
    const pool = new FunctionWorkerPool(2, silentLogger());
    const state = new Map<string, string>();
    const refusals: string[] = [];
    const budget = new PublishBudget(
      { messagesPerSecond: 2, bytesPerSecond: 10_000, burstMs: 1000 },
      (message) => refusals.push(message),
    );
    const options = (code: string) => ({
      owner: 'b1',
      code,
      memoryLimitBytes: 32 * 1024 * 1024,
      cpuLimitMs: 1000,
      stateLimitBytes: 1024,
      state: mapState(state),
      publishBudget: budget,
      publish: () => {},
      log: () => {},
    });
    const batch = [
      {
        mid: 0,
        broker: 'b.ns.localhost',
        topic: 't',
        clientId: 'c',
        receivedAt: 0,
        contentType: null,
        payloadFormatIndicator: 1 as const,
        payload: 'x',
      },
    ];
    try {
      const v1 = await pool.deploy(
        options(
          `export function onPublish(m, ctx) { ctx.state.set('v', 1); ctx.publish('a', 'x'); return m; }`,
        ),
      );
      await v1.run(batch);
      const v2 = await pool.deploy(
        options(`export function onPublish(m, ctx) {
          ctx.state.set('seen', ctx.state.get('v'));
          try { for (let i = 0; i < 5; i++) ctx.publish('a', 'x'); } catch (e) { ctx.state.set('refused', e.name); }
          return m;
        }`),
      );
      assert.equal(pool.started, 1, 'both versions on the broker’s worker');
      v1.close();
      await v2.run(batch);
      assert.equal(state.get('seen'), '1', 'the new version reads what the old one wrote');
      assert.equal(state.get('refused'), '"RangeError"');
      assert.equal(refusals.length, 1, 'the refusal reached the broker’s budget');
      v2.close();
    } finally {
      await pool.close();
    }
  });
});
