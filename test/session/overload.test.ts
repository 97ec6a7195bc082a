/**
 * Overload protection (src/observability/overload-watch.ts, connection-guard.ts) with real
 * clients: over `--max-memory` (resident memory), the V8 heap's limit or `--max-event-loop-lag`,
 * new CONNECTs get v5 CONNACK 0x89 Server busy or v3.1.1 0x03, the clients already connected
 * keep being served, each transition is logged once and counted, and the process recovers by
 * itself once back under. The default limit is a share of the cgroup's memory.max or the machine's memory.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import { DEFAULT_MEMORY_SHARE, defaultMemoryLimit, type MemoryProbe } from '../../src/observability/index.ts';
import { ConnectReturnCode, ReasonCode } from '../../src/protocol/index.ts';
import { until } from '../helpers/child-process.ts';
import { connackCode } from '../helpers/connack-code.ts';
import { describeWithTool, mosquittoClients, mosquittoPub, uniqueName } from '../helpers/interop-tools.ts';
import { type CapturedLog, captureLog } from '../helpers/log-capture.ts';
import { startServe } from '../helpers/pubsub-process.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

type Version = 4 | 5;
const VERSIONS: Version[] = [4, 5];
const BUSY: Record<Version, number> = { 5: ReasonCode.ServerBusy, 4: ConnectReturnCode.ServerUnavailable };
const MIB = 1024 * 1024;

async function serve(
  t: TestContext,
  overrides: Record<string, unknown>,
  log: CapturedLog,
  memoryProbe?: MemoryProbe,
): Promise<TestServer> {
  const ts = await startServer(
    { httpPort: 0, ...overrides },
    { logger: log.logger, ...(memoryProbe === undefined ? {} : { memoryProbe }) },
  );
  t.after(() => ts.close());
  return ts;
}

const overloadLines = (log: CapturedLog) => log.withMessage('process overloaded: refusing new connections');
const recoveryLines = (log: CapturedLog) => log.withMessage('process recovered: accepting new connections');

describe('overload: memory above --max-memory', () => {
  for (const version of VERSIONS) {
    it(`v${version}: new connections get CONNACK ${BUSY[version]} while over; the connected client is still served; recovery when the limit is raised`, async (t) => {
      const log = captureLog('info');
      const ts = await serve(t, {}, log);
      const existing = await mqtt.connectAsync(ts.url, {
        protocolVersion: version,
        clientId: uniqueName('existing'),
        reconnectPeriod: 0,
      });
      t.after(() => existing.endAsync(true));
      await existing.subscribeAsync('overload/echo', { qos: 1 });

      ts.server.overload.maxMemoryBytes = 1 * MIB; // below any process's RSS
      assert.equal(ts.server.overload.overloaded, true);
      assert.equal(await connackCode(ts.url, version), BUSY[version]);
      assert.equal(await connackCode(ts.url, version), BUSY[version]);
      assert.equal(ts.server.guard.refused.get('SERVER_BUSY'), 2);
      const echoed = new Promise((resolve) => existing.once('message', resolve));
      await existing.publishAsync('overload/echo', 'still served', { qos: 1 });
      await echoed;
      const metrics = await (await fetch(`${ts.apiUrl}/metrics`)).text();
      assert.match(metrics, /^pubsub_overloaded\{node="[^"]+"\} 1$/m);
      assert.match(metrics, /^pubsub_overload_transitions_total\{node="[^"]+"\} 1$/m);

      ts.server.overload.maxMemoryBytes = 1024 * 1024 * MIB;
      assert.equal(ts.server.overload.overloaded, false);
      assert.equal(await connackCode(ts.url, version), 0);
      assert.equal(overloadLines(log).length, 1, 'the transition is logged once');
      assert.equal(overloadLines(log)[0]!.reason, 'memory');
      assert.equal(recoveryLines(log).length, 1);
      assert.equal(ts.server.overload.transitions, 1);
    });
  }

  it('the V8 heap near its own limit overloads whatever --max-memory says (memory probe injected)', async (t) => {
    const log = captureLog('info');
    let heapUsed = 10 * MIB;
    const probe: MemoryProbe = { rss: () => 50 * MIB, heap: () => ({ used: heapUsed, limit: 100 * MIB }) };
    const ts = await serve(t, { maxMemory: 1024 }, log, probe);
    assert.equal(await connackCode(ts.url, 5), 0);
    heapUsed = 95 * MIB;
    await until(() => ts.server.overload.overloaded, 'the watch to see the heap');
    assert.equal(await connackCode(ts.url, 5), ReasonCode.ServerBusy);
    assert.equal(overloadLines(log)[0]!.reason, 'heap');
    heapUsed = 85 * MIB; // under the entry mark, above the leaving one: still overloaded
    await new Promise((r) => setTimeout(r, 3 * ts.server.overload.tickMs));
    assert.equal(ts.server.overload.overloaded, true);
    heapUsed = 50 * MIB;
    await until(() => !ts.server.overload.overloaded, 'recovery');
    assert.equal(await connackCode(ts.url, 5), 0);
    assert.equal(overloadLines(log).length, 1);
    assert.equal(recoveryLines(log).length, 1);
  });
});

describe('overload: event-loop lag above --max-event-loop-lag', () => {
  it('a stalled loop overloads the process until the lag is gone', async (t) => {
    const log = captureLog('info');
    const ts = await serve(t, { maxEventLoopLag: 100 }, log);
    const end = Date.now() + 400;
    while (Date.now() < end) {
      // a synchronous stall, as a huge SUBSCRIBE or a GC pause makes
    }
    await until(() => overloadLines(log).length === 1, 'the stall to be seen');
    assert.equal(overloadLines(log)[0]!.reason, 'event_loop_lag');
    await until(() => recoveryLines(log).length === 1, 'recovery once the loop runs freely');
    assert.equal(await connackCode(ts.url, 4), 0);
  });
});

describeWithTool('overload with `pubsub serve --max-memory`', mosquittoClients, () => {
  it('a server started below its own RSS refuses mosquitto_pub (v5: server busy) and keeps running', async (t) => {
    const serve = await startServe(t, { dataDir: ':memory:', args: ['--max-memory', '1'] });
    const port = String(serve.port('mqtt'));
    const pub = await mosquittoPub(t, [
      '-h',
      '127.0.0.1',
      '-p',
      port,
      '-V',
      'mqttv5',
      '-t',
      'o/x',
      '-m',
      'm',
    ]);
    assert.notEqual(pub.exit?.code, 0);
    assert.match(`${pub.lines.join('\n')}\n${pub.stderr}`, /server busy/i);
    assert.equal(serve.child.exit, undefined, 'the server is still running');
    await serve.stop();
  });
});

describe('the default memory limit', () => {
  it(`is ${DEFAULT_MEMORY_SHARE * 100} % of the cgroup's memory.max when set, else of the machine's memory`, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pubsub-cgroup-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'memory.max');
    writeFileSync(file, '536870912\n');
    assert.equal(
      defaultMemoryLimit(file),
      Math.floor(Math.min(totalmem(), 536870912) * DEFAULT_MEMORY_SHARE),
    );
    writeFileSync(file, 'max\n');
    assert.equal(defaultMemoryLimit(file), Math.floor(totalmem() * DEFAULT_MEMORY_SHARE));
    assert.equal(defaultMemoryLimit(join(dir, 'absent')), Math.floor(totalmem() * DEFAULT_MEMORY_SHARE));
  });
});
