/**
 * Process-wide connection caps (src/session/connection-guard.ts) with real clients:
 * `--max-connections-per-address` and `--max-connections` refuse the CONNECT past the cap with
 * v5 CONNACK 0x97 Quota exceeded and v3.1.1 0x03 Server unavailable (MQTT.js, mosquitto_pub),
 * count it by reason in `pubsub_connections_refused_total`, leave other addresses and the
 * connections already in alone, and free the place when a connection closes.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { ConnectReturnCode, ReasonCode } from '../../src/protocol/index.ts';
import { until, WAIT_MS } from '../helpers/child-process.ts';
import { connackCode } from '../helpers/connack-code.ts';
import { describeWithTool, mosquittoClients, mosquittoPub, uniqueName } from '../helpers/interop-tools.ts';
import { processRefusals } from '../helpers/prometheus.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

type Version = 4 | 5;
const VERSIONS: Version[] = [4, 5];
/** What each version's CONNACK says for a connection cap: v5 0x97, v3.1.1 0x03. */
const QUOTA: Record<Version, number> = {
  5: ReasonCode.QuotaExceeded,
  4: ConnectReturnCode.ServerUnavailable,
};

async function serve(t: TestContext, overrides: Record<string, unknown>): Promise<TestServer> {
  const ts = await startServer({ httpPort: 0, ...overrides });
  t.after(() => ts.close());
  return ts;
}

async function connect(t: TestContext, ts: TestServer, version: Version): Promise<MqttClient> {
  const client = await mqtt.connectAsync(ts.url, {
    protocolVersion: version,
    clientId: uniqueName('cap'),
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
  });
  t.after(() => client.endAsync(true));
  return client;
}

/** A v5 CONNECT over TCP from the local address `from` (any 127.x.x.x reaches loopback). */
async function connectFrom(ts: TestServer, from: string): Promise<RawClient> {
  const socket = netConnect({ host: '127.0.0.1', port: ts.port, localAddress: from });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return new RawClient(socket, 5);
}

describe('--max-connections-per-address', () => {
  for (const version of VERSIONS) {
    it(`v${version}: the connection past the address's cap gets CONNACK ${QUOTA[version]}; closing one frees its place`, async (t) => {
      const ts = await serve(t, { maxConnectionsPerAddress: 2 });
      const first = await connect(t, ts, version);
      await connect(t, ts, version);
      assert.equal(await connackCode(ts.url, version), QUOTA[version]);
      assert.equal(ts.server.guard.refused.get('MAX_CONNECTIONS_PER_ADDRESS'), 1);
      assert.equal(await processRefusals(ts.apiUrl, 'max_connections_per_address'), 1);
      // The clients in are untouched by the refusal.
      await first.publishAsync('cap/still', 'here', { qos: 1 });
      await first.endAsync();
      await until(() => ts.server.guard.held === 1, 'the closed connection to free its place');
      await connect(t, ts, version);
    });
  }

  it('another address is not refused for one address being at its cap', async (t) => {
    const ts = await serve(t, { maxConnectionsPerAddress: 1 });
    const a1 = await connectFrom(ts, '127.0.0.1');
    t.after(() => a1.destroy());
    assert.equal((await a1.connect({ clientId: uniqueName('a1') })).reasonCode, 0);
    const a2 = await connectFrom(ts, '127.0.0.1');
    t.after(() => a2.destroy());
    assert.equal((await a2.connect({ clientId: uniqueName('a2') })).reasonCode, ReasonCode.QuotaExceeded);
    const b1 = await connectFrom(ts, '127.0.0.2');
    t.after(() => b1.destroy());
    assert.equal((await b1.connect({ clientId: uniqueName('b1') })).reasonCode, 0);
  });
});

describe('--max-connections', () => {
  for (const version of VERSIONS) {
    it(`v${version}: the connection past the process's cap gets CONNACK ${QUOTA[version]}, counted as max_connections`, async (t) => {
      const ts = await serve(t, { maxConnections: 2 });
      await connect(t, ts, version);
      await connect(t, ts, version);
      assert.equal(await connackCode(ts.url, version), QUOTA[version]);
      assert.equal(ts.server.guard.refused.get('MAX_CONNECTIONS'), 1);
      assert.equal(await processRefusals(ts.apiUrl, 'max_connections'), 1);
    });
  }
});

describeWithTool('connection caps with mosquitto_pub', mosquittoClients, () => {
  for (const [version, words] of [
    ['mqttv5', /quota exceeded/i],
    ['mqttv311', /unavailable/i],
  ] as const) {
    it(`${version}: mosquitto_pub past --max-connections is refused and says why`, async (t) => {
      const ts = await serve(t, { maxConnections: 1 });
      await connect(t, ts, 5);
      const pub = await mosquittoPub(t, [
        '-h',
        '127.0.0.1',
        '-p',
        String(ts.port),
        '-V',
        version,
        '-i',
        uniqueName('mp'),
        '-t',
        'cap/x',
        '-m',
        'm',
      ]);
      assert.notEqual(pub.exit?.code, 0);
      assert.match(`${pub.lines.join('\n')}\n${pub.stderr}`, words);
    });
  }
});
