/**
 * GET /metrics with real clients: MQTT.js (v3.1.1 and v5) and mosquitto_pub connect, publish,
 * are refused (a bad token at a TOKEN broker) and disconnect, each naming its broker by user
 * name, and the counters of that broker move by exactly what they did while every series of
 * the other brokers stays as it was. `promtool check metrics` passes on a scrape taken while
 * clients publish; `--metrics-token` makes the endpoint want that bearer token.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { describeWithTool, mosquittoClients, mosquittoPub, promtool } from '../helpers/interop-tools.ts';
import { seriesValue as value } from '../helpers/prometheus.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let ts: TestServer;
let dataDir: string;
before(async () => {
  // On disk, so that QoS 1 and retained messages go through SQLite commits (the commit histogram).
  dataDir = mkdtempSync(join(tmpdir(), 'pubsub-metrics-'));
  ts = await startServer({ httpPort: 0, dataDir });
  const { tenancy } = ts.server;
  tenancy.createNamespace(ts.accountId, { name: 'metrics' });
  tenancy.createBroker(ts.accountId, 'metrics', { name: 'alpha', authType: 'NONE' });
  tenancy.createBroker(ts.accountId, 'metrics', { name: 'secure', authType: 'TOKEN' });
});
after(async () => {
  await ts.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function scrape(server = ts, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${server.apiUrl}/metrics`, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** Every pubsub_ series of one broker, as `name{labels} value` lines. */
function seriesOf(text: string, namespace: string, broker: string): string[] {
  const mark = `namespace="${namespace}",broker="${broker}"`;
  return text.split('\n').filter((line) => line.startsWith('pubsub_') && line.includes(mark));
}

const ALPHA = { namespace: 'metrics', broker: 'alpha' };
const SECURE = { namespace: 'metrics', broker: 'secure' };

/** The change of each named series of `labels` between two scrapes. */
function moved(
  before: string,
  after: string,
  labels: Record<string, string>,
  names: Record<string, Record<string, string>>,
) {
  return Object.fromEntries(
    Object.entries(names).map(([key, extra]) => {
      const [name] = key.split('#') as [string];
      const l = { ...labels, ...extra };
      return [key, value(after, name, l) - value(before, name, l)];
    }),
  );
}

async function connect(
  version: 4 | 5,
  username: string,
  options: mqtt.IClientOptions = {},
): Promise<MqttClient> {
  return mqtt.connectAsync(ts.url, { protocolVersion: version, username, reconnectPeriod: 0, ...options });
}

describe('GET /metrics counts per broker what real clients do', () => {
  for (const version of [4, 5] as const) {
    it(`MQTT.js v${version === 4 ? '3.1.1' : '5'}: connect, subscribe, publish, disconnect move alpha's counters only`, async () => {
      const start = await scrape();
      const otherBrokers = [seriesOf(start, 'local', 'default'), seriesOf(start, 'metrics', 'secure')];
      // A persistent subscriber (session kept after it leaves) and a publisher.
      const persistent = version === 5 ? { properties: { sessionExpiryInterval: 60 } } : { clean: false };
      const sub = await connect(version, 'alpha.metrics', {
        clientId: `metrics-sub-v${version}`,
        ...persistent,
      });
      await sub.subscribeAsync('m/#', { qos: 1 });
      const pub = await connect(version, 'alpha.metrics');
      let got = 0;
      sub.on('message', () => got++);
      for (let i = 0; i < 3; i++) await pub.publishAsync('m/one', `q1-${i}`, { qos: 1 });
      for (let i = 0; i < 2; i++) await pub.publishAsync('m/zero', `q0-${i}`, { qos: 0 });
      await until(() => got === 5, 'five messages delivered');
      const during = await scrape();
      assert.deepEqual(
        moved(start, during, ALPHA, {
          'pubsub_connections#tcp': { transport: 'tcp' },
          pubsub_connections_accepted_total: {},
          'pubsub_sessions#online': { state: 'online' },
          pubsub_subscriptions: {},
          'pubsub_messages_received_total#0': { qos: '0' },
          'pubsub_messages_received_total#1': { qos: '1' },
          'pubsub_messages_sent_total#0': { qos: '0' },
          'pubsub_messages_sent_total#1': { qos: '1' },
        }),
        {
          'pubsub_connections#tcp': 2,
          pubsub_connections_accepted_total: 2,
          'pubsub_sessions#online': 1,
          pubsub_subscriptions: 1,
          'pubsub_messages_received_total#0': 2,
          'pubsub_messages_received_total#1': 3,
          'pubsub_messages_sent_total#0': 2,
          'pubsub_messages_sent_total#1': 3,
        },
      );
      // At least the five PUBLISH packets each way, with their topics and payloads.
      const bytes = moved(start, during, ALPHA, {
        pubsub_bytes_received_total: {},
        pubsub_bytes_sent_total: {},
      });
      assert.ok(bytes.pubsub_bytes_received_total! > 5 * 'm/zero'.length, JSON.stringify(bytes));
      assert.ok(bytes.pubsub_bytes_sent_total! > 5 * 'm/zero'.length, JSON.stringify(bytes));

      await Promise.all([sub.endAsync(), pub.endAsync()]);
      const end = await scrape();
      await until(
        async () => value(await scrape(), 'pubsub_connections', { ...ALPHA, transport: 'tcp' }) === 0,
        'both connections counted closed',
      );
      assert.deepEqual(
        moved(during, await scrape(), ALPHA, {
          'pubsub_sessions#online': { state: 'online' },
          'pubsub_sessions#offline': { state: 'offline' },
        }),
        { 'pubsub_sessions#online': -1, 'pubsub_sessions#offline': 1 },
      );
      assert.deepEqual([seriesOf(end, 'local', 'default'), seriesOf(end, 'metrics', 'secure')], otherBrokers);
    });

    it(`MQTT.js v${version === 4 ? '3.1.1' : '5'}: a bad token at a TOKEN broker counts as refused there (bad_credentials), nowhere else`, async () => {
      const start = await scrape();
      const others = [seriesOf(start, 'local', 'default'), seriesOf(start, 'metrics', 'alpha')];
      await assert.rejects(connect(version, 'secure.metrics', { password: 'not-a-token' }));
      const end = await scrape();
      assert.deepEqual(
        moved(start, end, SECURE, {
          pubsub_connections_refused_total: { reason: 'bad_credentials' },
          pubsub_auth_failures_total: { reason: 'bad_credentials' },
          pubsub_connections_accepted_total: {},
        }),
        {
          pubsub_connections_refused_total: 1,
          pubsub_auth_failures_total: 1,
          pubsub_connections_accepted_total: 0,
        },
      );
      assert.deepEqual([seriesOf(end, 'local', 'default'), seriesOf(end, 'metrics', 'alpha')], others);
    });
  }

  it('the message store commit histogram counts the commits of QoS 1 and retained messages', async () => {
    const start = await scrape();
    const client = await connect(5, 'alpha.metrics');
    await client.publishAsync('m/retained', 'kept', { qos: 1, retain: true });
    await client.endAsync();
    const end = await scrape();
    assert.ok(
      value(end, 'pubsub_store_commit_seconds_count', {}) >
        value(start, 'pubsub_store_commit_seconds_count', {}),
    );
    assert.equal(
      value(end, 'pubsub_retained_messages', ALPHA) - value(start, 'pubsub_retained_messages', ALPHA),
      1,
    );
    assert.equal(
      value(end, 'pubsub_retained_bytes', ALPHA) - value(start, 'pubsub_retained_bytes', ALPHA),
      'm/retained'.length + 'kept'.length, // topic and payload: what the bytes cap counts
    );
  });
});

describe('pubsub_messages_dropped_total{reason="expired"}', () => {
  for (const version of [4, 5] as const) {
    it(`MQTT.js v${version === 4 ? '3.1.1' : '5'} offline subscriber: a queued message whose expiry passed is dropped and counted once [MQTT-3.3.2-5]`, async () => {
      const clientId = `metrics-expiry-v${version}`;
      const persistent = version === 5 ? { properties: { sessionExpiryInterval: 60 } } : { clean: false };
      const options = { clientId, ...persistent };
      const sub = await connect(version, 'alpha.metrics', options);
      await sub.subscribeAsync(`exp/v${version}`, { qos: 1 });
      await sub.endAsync();
      const start = await scrape();
      // Queued for the offline session: one message that lives 1 s, one that never expires.
      const pub = await connect(5, 'alpha.metrics');
      await pub.publishAsync(`exp/v${version}`, 'short-lived', {
        qos: 1,
        properties: { messageExpiryInterval: 1 },
      });
      await pub.publishAsync(`exp/v${version}`, 'kept', { qos: 1 });
      await pub.endAsync();
      assert.equal(
        value(await scrape(), 'pubsub_queued_messages', ALPHA) -
          value(start, 'pubsub_queued_messages', ALPHA),
        2,
      );
      await new Promise((resolve) => setTimeout(resolve, 1100)); // the 1 s expiry passes
      const got: string[] = [];
      // Listening before CONNACK: the queue is sent right behind it.
      const back = mqtt.connect(ts.url, {
        protocolVersion: version,
        username: 'alpha.metrics',
        reconnectPeriod: 0,
        ...options,
        clean: false,
      });
      back.on('message', (_topic, payload) => got.push(payload.toString()));
      await until(() => got.length === 1, 'the unexpired message delivered');
      await back.endAsync();
      assert.deepEqual(got, ['kept']);
      const end = await scrape();
      assert.deepEqual(
        moved(start, end, ALPHA, {
          'pubsub_messages_dropped_total#expired': { reason: 'expired' },
          'pubsub_messages_dropped_total#queue_full': { reason: 'queue_full' },
        }),
        {
          'pubsub_messages_dropped_total#expired': 1,
          'pubsub_messages_dropped_total#queue_full': 0,
        },
      );
    });
  }
});

/** `mosquitto_pub` naming `user`'s broker; its exit code. */
async function mosquitto(
  t: TestContext,
  version: 4 | 5,
  user: string,
  extra: string[],
): Promise<number | null> {
  const flag = version === 5 ? 'mqttv5' : 'mqttv311';
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(ts.port),
    '-V',
    flag,
    '-u',
    user,
    '-t',
    'm/cli',
    '-m',
    'x',
    ...extra,
  ];
  return (await mosquittoPub(t, args)).exit?.code ?? null;
}

describeWithTool('GET /metrics counts mosquitto_pub', mosquittoClients, () => {
  for (const version of [4, 5] as const) {
    it(`mosquitto_pub v${version === 4 ? '3.1.1' : '5'}: a QoS 1 publish at alpha, a bad token at secure`, async (t) => {
      const start = await scrape();
      const defaults = seriesOf(start, 'local', 'default');
      assert.equal(await mosquitto(t, version, 'alpha.metrics', ['-q', '1']), 0);
      assert.notEqual(await mosquitto(t, version, 'secure.metrics', ['-P', 'not-a-token']), 0);
      await until(
        async () => value(await scrape(), 'pubsub_connections', { ...ALPHA, transport: 'tcp' }) === 0,
        'mosquitto_pub counted closed',
      );
      const end = await scrape();
      assert.deepEqual(
        moved(start, end, ALPHA, {
          pubsub_connections_accepted_total: {},
          'pubsub_messages_received_total#1': { qos: '1' },
        }),
        { pubsub_connections_accepted_total: 1, 'pubsub_messages_received_total#1': 1 },
      );
      assert.equal(
        value(end, 'pubsub_connections_refused_total', { ...SECURE, reason: 'bad_credentials' }) -
          value(start, 'pubsub_connections_refused_total', { ...SECURE, reason: 'bad_credentials' }),
        1,
      );
      assert.deepEqual(seriesOf(end, 'local', 'default'), defaults);
    });
  }
});

describeWithTool('promtool check metrics', promtool, () => {
  it('passes on a scrape taken while clients publish', async () => {
    const sub = await connect(5, 'alpha.metrics', {
      clientId: 'promtool-sub',
      properties: { sessionExpiryInterval: 60 },
    });
    await sub.subscribeAsync('load/#', { qos: 1 });
    const pub = await connect(5, 'alpha.metrics');
    let publishing = true;
    const load = (async () => {
      for (let i = 0; publishing; i++)
        await pub.publishAsync(`load/${i % 4}`, String(i), { qos: (i % 2) as 0 | 1 });
    })();
    try {
      await until(
        async () => value(await scrape(), 'pubsub_messages_received_total', { ...ALPHA, qos: '1' }) > 50,
        'load',
      );
      const text = await scrape();
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
      assert.match(text, /^nodejs_eventloop_lag_seconds\{node="[^"]+"\} \S+$/m);
      assert.match(text, /^process_cpu_seconds_total\{node="[^"]+"\} \S+$/m);
    } finally {
      publishing = false;
      await load;
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    }
  });
});

describe('--metrics-token', () => {
  let secured: TestServer;
  before(async () => {
    secured = await startServer({ httpPort: 0, metricsToken: 'scrape-secret' });
  });
  after(() => secured.close());

  it('no bearer token: 401 with WWW-Authenticate, in the API envelope (code 10000)', async () => {
    const res = await fetch(`${secured.apiUrl}/metrics`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    const body = (await res.json()) as { success: boolean; errors: { code: number }[] };
    assert.equal(body.success, false);
    assert.equal(body.errors[0]!.code, 10000);
  });

  it('another token, the admin token included: 403 (code 10000)', async () => {
    for (const token of ['scrape-secreT', 'scrape-secret-and-more', secured.adminToken]) {
      const res = await fetch(`${secured.apiUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 403, token);
      assert.equal(((await res.json()) as { errors: { code: number }[] }).errors[0]!.code, 10000);
    }
  });

  it('the metrics token: 200 and the metrics', async () => {
    const text = await scrape(secured, { authorization: 'Bearer scrape-secret' });
    assert.match(
      text,
      /^pubsub_connections_accepted_total\{namespace="local",broker="default",node="[^"]+"\} 0$/m,
    );
  });

  it('without --metrics-token the endpoint needs no token', async () => {
    assert.match(await scrape(), /^# TYPE pubsub_connections gauge$/m);
  });
});
