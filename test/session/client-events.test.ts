/**
 * Client events (src/session/client-events.ts), driven by MQTT.js over TCP in MQTT 3.1.1 and
 * 5.0: each connect, subscribe, unsubscribe, disconnect, takeover and authentication failure is
 * one structured log line with `event`, `broker`, `remote`, `transport` and `clientId`, and
 * nothing is logged twice; with `--client-events` the broker publishes connects and
 * disconnects on `$SYS/brokers/<broker>/clients/<clientId>/connected|disconnected`, which a
 * filter naming `$SYS` receives and `#` never does [MQTT-4.7.2-1]; without it, nothing.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { until, WAIT_MS } from '../helpers/child-process.ts';
import { uniqueName } from '../helpers/interop-tools.ts';
import { type CapturedLog, captureLog } from '../helpers/log-capture.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

type Version = 4 | 5;
const VERSIONS: Version[] = [4, 5];

async function serve(
  t: TestContext,
  overrides: Record<string, unknown> = {},
  log?: CapturedLog,
): Promise<TestServer> {
  const ts = await startServer(overrides, log === undefined ? {} : { logger: log.logger });
  t.after(() => ts.close());
  return ts;
}

async function connect(
  t: TestContext,
  ts: TestServer,
  version: Version,
  extra: IClientOptions = {},
): Promise<MqttClient> {
  const client = await mqtt.connectAsync(ts.url, {
    protocolVersion: version,
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    ...extra,
  });
  t.after(() => client.endAsync(true));
  return client;
}

/** The log lines of `clientId` that carry an event, in order. */
const eventsOf = (log: CapturedLog, clientId: string): Record<string, unknown>[] =>
  log.lines.filter((l) => l.clientId === clientId && typeof l.event === 'string');

/** Resolves when the broker no longer serves `clientId` on any connection. */
const released = (ts: TestServer, clientId: string): Promise<void> =>
  until(() => ts.server.defaultBroker.sessions.get(clientId)?.link === undefined, `release of ${clientId}`);

describe('client events in the log', () => {
  for (const version of VERSIONS) {
    it(`v${version}: connect, subscribe, unsubscribe and disconnect are one line each, with client, broker, address and transport`, async (t) => {
      const log = captureLog('info');
      const ts = await serve(t, {}, log);
      const clientId = uniqueName('events');
      const client = await connect(t, ts, version, { clientId });
      await client.subscribeAsync('a/+', { qos: 1 });
      await client.unsubscribeAsync('a/+');
      await client.endAsync();
      await released(ts, clientId);

      const events = eventsOf(log, clientId);
      assert.deepEqual(
        events.map((l) => l.event),
        ['client.connected', 'client.subscribed', 'client.unsubscribed', 'client.disconnected'],
      );
      for (const line of events) {
        assert.equal(line.broker, 'default.local');
        assert.equal(line.transport, 'tcp');
        assert.match(String(line.remote), /^127\.0\.0\.1:\d+$/);
        assert.equal(line.level, 30, 'info');
      }
      const [connected, subscribed, unsubscribed, disconnected] = events;
      assert.equal(connected!.version, version);
      assert.deepEqual([subscribed!.filters, subscribed!.reasonCodes], [['a/+'], [1]]);
      assert.deepEqual(unsubscribed!.filters, ['a/+']);
      assert.deepEqual([disconnected!.cause, disconnected!.reason], ['client', 0]);
      assert.equal(
        log.lines.filter((l) => l.clientId === clientId).length,
        events.length,
        'no other line about this client',
      );
    });
  }

  it('a connection lost without DISCONNECT is client.disconnected with cause network', async (t) => {
    const log = captureLog('info');
    const ts = await serve(t, {}, log);
    const clientId = uniqueName('lost');
    const client = await connect(t, ts, 4, { clientId });
    client.stream.destroy();
    await released(ts, clientId);
    const disconnected = eventsOf(log, clientId).filter((l) => l.event === 'client.disconnected');
    assert.equal(disconnected.length, 1);
    assert.equal(disconnected[0]!.cause, 'network');
  });

  it('a takeover: client.session_taken_over, the old connection disconnected (0x8E), the new one connected', async (t) => {
    const log = captureLog('info');
    const ts = await serve(t, {}, log);
    const clientId = uniqueName('takeover');
    await connect(t, ts, 5, { clientId });
    await connect(t, ts, 5, { clientId, clean: false });
    await until(() => eventsOf(log, clientId).length >= 4, 'the takeover events');
    const events = eventsOf(log, clientId);
    assert.deepEqual(
      events.map((l) => l.event),
      ['client.connected', 'client.session_taken_over', 'client.disconnected', 'client.connected'],
    );
    const old = events[2]!;
    assert.deepEqual([old.cause, old.reason, old.code], ['server', 0x8e, 'SESSION_TAKEN_OVER']);
    assert.equal(events[1]!.broker, 'default.local');
    assert.equal(log.lines.filter((l) => l.clientId === clientId).length, 4, 'nothing logged twice');
  });

  for (const version of VERSIONS) {
    it(`v${version}: a refused authentication is one client.auth_failed line at warn, naming the broker`, async (t) => {
      const log = captureLog('info');
      const ts = await serve(t, { allowAnonymous: 'false' }, log);
      const clientId = uniqueName('denied');
      await assert.rejects(
        mqtt.connectAsync(ts.url, {
          protocolVersion: version,
          reconnectPeriod: 0,
          clientId,
          connectTimeout: WAIT_MS,
        }),
      );
      await until(() => eventsOf(log, clientId).length > 0, 'the refusal line');
      const lines = log.lines.filter((l) => l.clientId === clientId);
      assert.equal(lines.length, 1, JSON.stringify(lines));
      const line = lines[0]!;
      assert.deepEqual(
        [line.event, line.level, line.broker, line.code, line.transport],
        ['client.auth_failed', 40, 'default.local', 'NOT_AUTHORIZED', 'tcp'],
      );
      assert.match(String(line.remote), /^127\.0\.0\.1:\d+$/);
    });
  }
});

/** Messages a client receives, by topic. */
function collect(client: MqttClient): { topic: string; payload: string; retain: boolean; qos: number }[] {
  const got: { topic: string; payload: string; retain: boolean; qos: number }[] = [];
  client.on('message', (topic, payload, packet) =>
    got.push({ topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos }),
  );
  return got;
}

describe('client events on $SYS/brokers/<broker>/clients/<clientId>/...', () => {
  for (const version of VERSIONS) {
    it(`with --client-events a $SYS subscriber sees a v${version} client connect and disconnect; # sees neither`, async (t) => {
      const ts = await serve(t, { clientEvents: true });
      const watcher = await connect(t, ts, 5, { clientId: uniqueName('watcher') });
      const seen = collect(watcher);
      await watcher.subscribeAsync([
        '$SYS/brokers/+/clients/+/connected',
        '$SYS/brokers/+/clients/+/disconnected',
      ]);
      const everything = await connect(t, ts, 4, { clientId: uniqueName('hash') });
      const all = collect(everything);
      await everything.subscribeAsync('#');

      const clientId = uniqueName('watched');
      const client = await connect(t, ts, version, { clientId, keepalive: 30 });
      await client.endAsync();
      const base = `$SYS/brokers/default.local/clients/${clientId}`;
      await until(() => seen.some((m) => m.topic === `${base}/disconnected`), 'the disconnected event');
      const mine = seen.filter((m) => m.topic.startsWith(`${base}/`));
      assert.deepEqual(
        mine.map((m) => [m.topic, m.qos, m.retain]),
        [
          [`${base}/connected`, 0, false],
          [`${base}/disconnected`, 0, false],
        ],
      );
      const connected = JSON.parse(mine[0]!.payload) as Record<string, unknown>;
      assert.equal(connected.clientid, clientId);
      assert.equal(connected.ipaddress, '127.0.0.1');
      assert.equal(connected.proto_ver, version);
      assert.equal(connected.keepalive, 30);
      assert.equal(typeof connected.connected_at, 'number');
      const disconnected = JSON.parse(mine[1]!.payload) as Record<string, unknown>;
      assert.equal(disconnected.clientid, clientId);
      assert.equal(disconnected.reason, 'normal');

      // One connection's deliveries are ordered: had # matched the events, they would precede this marker.
      await watcher.publishAsync('marker', 'after the events');
      await until(() => all.some((m) => m.topic === 'marker'), 'the marker at the # subscriber');
      assert.deepEqual(
        all.filter((m) => m.topic.startsWith('$')),
        [],
        '# never matches $SYS [MQTT-4.7.2-1]',
      );
    });
  }

  it('without --client-events nothing is published', async (t) => {
    const ts = await serve(t);
    const watcher = await connect(t, ts, 5, { clientId: uniqueName('watcher') });
    const seen = collect(watcher);
    await watcher.subscribeAsync([
      '$SYS/brokers/+/clients/+/connected',
      '$SYS/brokers/+/clients/+/disconnected',
      'marker',
    ]);
    const clientId = uniqueName('unwatched');
    const client = await connect(t, ts, 5, { clientId });
    await client.endAsync();
    // Released means the disconnect (and any event it would publish) has been routed.
    await released(ts, clientId);
    await watcher.publishAsync('marker', 'after');
    await until(() => seen.some((m) => m.topic === 'marker'), 'the marker');
    assert.deepEqual(
      seen.map((m) => m.topic),
      ['marker'],
    );
  });
});
