/**
 * `--max-address-connect-rate` (src/session/address-connect-rate.ts, checked by the connection
 * guard before authentication): the bucket itself with a fixed clock, then real clients from
 * 127.0.0.2 (MQTT.js v5, raw v3.1.1, mosquitto_pub -A) refused past the rate with v5 CONNACK
 * 0x9F Connection rate exceeded / v3.1.1 0x03 Server unavailable, counted as
 * `pubsub_connections_refused_total{reason="address_connection_rate_exceeded"}` (no broker),
 * while 127.0.0.1 connects as before.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { ConnectReturnCode, ReasonCode } from '../../src/protocol/index.ts';
import { AddressConnectRate } from '../../src/session/address-connect-rate.ts';
import { connackCode } from '../helpers/connack-code.ts';
import { describeWithTool, mosquittoClients, mosquittoPub, uniqueName } from '../helpers/interop-tools.ts';
import { processRefusals } from '../helpers/prometheus.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

describe('AddressConnectRate', () => {
  it('lets a burst of `rate` through, refuses the next, and refills at `rate` a second', () => {
    const r = new AddressConnectRate(3);
    for (let i = 0; i < 3; i++) assert.equal(r.take('10.0.0.1', 1000), true);
    assert.equal(r.take('10.0.0.1', 1000), false);
    assert.equal(r.take('10.0.0.2', 1000), true, 'another address has its own budget');
    assert.equal(r.take('10.0.0.1', 1200), false, 'a refused CONNECT spends nothing, 0.6 token back');
    assert.equal(r.take('10.0.0.1', 1340), true, 'one token back after 1/3 s');
    assert.equal(r.take('10.0.0.1', 1340), false);
  });

  it('counts an IPv6 address by its /64, and an IPv4-mapped address as the IPv4 one', () => {
    const r = new AddressConnectRate(1);
    assert.equal(r.take('2001:db8:1:2::1', 0), true);
    assert.equal(r.take('2001:db8:1:2:ffff::9', 0), false);
    assert.equal(r.take('2001:db8:1:3::1', 0), true);
    assert.equal(r.take('10.0.0.1', 0), true);
    assert.equal(r.take('::ffff:10.0.0.1', 0), false);
  });

  it('forgets an address 1 s after its last CONNECT, and holds no more than its cap', () => {
    const r = new AddressConnectRate(1, 100);
    for (let i = 0; i < 50; i++) r.take(`10.0.0.${i}`, 0);
    assert.equal(r.tracked, 50);
    r.take('10.1.0.1', 1000);
    assert.equal(r.tracked, 1, 'the 50 refilled buckets are dropped');
    for (let i = 0; i < 500; i++) r.take(`10.2.${i >> 8}.${i & 255}`, 1500);
    assert.equal(r.tracked, 100);
    assert.equal(new AddressConnectRate(0).take('10.0.0.1'), true);
  });
});

async function serve(t: TestContext, rate: number): Promise<TestServer> {
  const ts = await startServer({ httpPort: 0, maxAddressConnectRate: rate });
  t.after(() => ts.close());
  return ts;
}

/** A raw CONNECT of `version` from `from`: the CONNACK's code. */
async function rawFrom(t: TestContext, ts: TestServer, from: string, version: 4 | 5): Promise<number> {
  const socket = netConnect({ host: '127.0.0.1', port: ts.port, localAddress: from });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const raw = new RawClient(socket, version);
  t.after(() => raw.socket.destroy());
  return (await raw.connect({ clientId: uniqueName('ar') })).reasonCode;
}

describe('--max-address-connect-rate', () => {
  it('v5 (MQTT.js): the CONNECT past the rate from 127.0.0.2 gets CONNACK 0x9F; 127.0.0.1 connects on', async (t) => {
    const ts = await serve(t, 1);
    assert.equal(await connackCode(ts.url, 5, '127.0.0.2'), 0);
    assert.equal(await connackCode(ts.url, 5, '127.0.0.2'), ReasonCode.ConnectionRateExceeded);
    assert.equal(await connackCode(ts.url, 5), 0, '127.0.0.1 has its own budget');
    assert.equal(ts.server.guard.refused.get('ADDRESS_CONNECTION_RATE_EXCEEDED'), 1);
    assert.equal(await processRefusals(ts.apiUrl, 'address_connection_rate_exceeded'), 1);
  });

  it('v3.1.1 (raw): the CONNECT past the rate gets return code 0x03 Server unavailable', async (t) => {
    const ts = await serve(t, 1);
    assert.equal(await rawFrom(t, ts, '127.0.0.2', 4), 0);
    assert.equal(await rawFrom(t, ts, '127.0.0.2', 4), ConnectReturnCode.ServerUnavailable);
    assert.equal(await rawFrom(t, ts, '127.0.0.1', 4), 0);
  });

  it('off (0, the default) refuses nothing', async (t) => {
    const ts = await startServer({ httpPort: 0 });
    t.after(() => ts.close());
    for (let i = 0; i < 20; i++) assert.equal(await rawFrom(t, ts, '127.0.0.2', 5), 0);
    assert.equal(ts.server.guard.trackedAddresses, 0);
  });
});

describeWithTool('--max-address-connect-rate with mosquitto_pub', mosquittoClients, () => {
  for (const [version, words] of [
    ['mqttv5', /connection rate exceeded/i],
    ['mqttv311', /unavailable/i],
  ] as const) {
    it(`${version}: mosquitto_pub -A 127.0.0.2 past the rate is refused and says why`, async (t) => {
      const ts = await serve(t, 1);
      assert.equal(await rawFrom(t, ts, '127.0.0.2', 5), 0);
      const pub = await mosquittoPub(t, [
        ...['-h', '127.0.0.1', '-p', String(ts.port), '-A', '127.0.0.2', '-V', version],
        ...['-i', uniqueName('mp'), '-t', 'ar/x', '-m', 'm'],
      ]);
      assert.notEqual(pub.exit?.code, 0);
      assert.match(`${pub.lines.join('\n')}\n${pub.stderr}`, words);
    });
  }
});
