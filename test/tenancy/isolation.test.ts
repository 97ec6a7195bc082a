/**
 * Brokers are isolated tenants, over real MQTT connections: the default broker on TCP, two
 * brokers of one namespace reached over WebSocket by their Host names
 * (`<broker>.<namespace>.localhost`). Nothing crosses brokers; client ids are per broker;
 * deleting a broker disconnects its clients with 0x98; unknown brokers, brokers needing
 * credentials and anonymous access switched off are refused at CONNECT.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { uniqueName } from '../helpers/interop-tools.ts';
import { type Envelope, pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

async function api(ts: TestServer, method: string, path: string, body?: unknown): Promise<Envelope> {
  const env = await pubsubApi(ts, method, path, body);
  assert.equal(env.success, true, JSON.stringify(env));
  return env;
}

/** An MQTT.js v5 client over WebSocket to 127.0.0.1 with the given Host header. */
function viaHost(ts: TestServer, host: string, opts: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(ts.wsUrl, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    wsOptions: { headers: { host } },
    ...opts,
  } as mqtt.IClientOptions);
}

/** Collects every message a client receives. */
function inbox(client: mqtt.MqttClient): string[] {
  const got: string[] = [];
  client.on('message', (topic, payload) => got.push(`${topic}=${payload}`));
  return got;
}

describe('tenant isolation over real connections', () => {
  let ts: TestServer;
  const clients: mqtt.MqttClient[] = [];
  const track = (c: mqtt.MqttClient): mqtt.MqttClient => {
    clients.push(c);
    return c;
  };

  before(async () => {
    ts = await startServer({ httpPort: 0 });
    await api(ts, 'POST', '/namespaces', { name: 'iso' });
    await api(ts, 'POST', '/namespaces/iso/brokers', { name: 'alpha', authType: 'NONE' });
    await api(ts, 'POST', '/namespaces/iso/brokers', { name: 'beta', authType: 'NONE' });
    await api(ts, 'POST', '/namespaces/iso/brokers', { name: 'locked', authType: 'TOKEN' });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await ts.close();
  });

  it('a # subscriber on one broker sees nothing published on another, in any direction', async () => {
    const alphaSub = track(await viaHost(ts, 'alpha.iso.localhost'));
    const betaSub = track(await viaHost(ts, `beta.iso.localhost:${new URL(ts.wsUrl).port}`));
    const defaultSub = track(await mqtt.connectAsync(ts.url, { protocolVersion: 5, reconnectPeriod: 0 }));
    const [a, b, d] = [inbox(alphaSub), inbox(betaSub), inbox(defaultSub)];
    await Promise.all([alphaSub, betaSub, defaultSub].map((c) => c.subscribeAsync('#', { qos: 1 })));

    const alphaPub = track(await viaHost(ts, 'ALPHA.iso.localhost'));
    const betaPub = track(await viaHost(ts, 'beta.iso.localhost'));
    const defaultPub = track(await mqtt.connectAsync(ts.url, { protocolVersion: 5, reconnectPeriod: 0 }));
    await alphaPub.publishAsync('t', 'from-alpha', { qos: 1 });
    await betaPub.publishAsync('t', 'from-beta', { qos: 1 });
    await defaultPub.publishAsync('t', 'from-default', { qos: 1 });
    // A QoS 1 round trip on each subscriber's own broker proves earlier deliveries are done.
    for (const [sub, pub, marker] of [
      [alphaSub, alphaPub, 'end-a'],
      [betaSub, betaPub, 'end-b'],
      [defaultSub, defaultPub, 'end-d'],
    ] as const) {
      const seen = new Promise<void>((resolve) =>
        sub.on('message', (_t, p) => {
          if (`${p}` === marker) resolve();
        }),
      );
      await pub.publishAsync('t', marker, { qos: 1 });
      await seen;
    }
    assert.deepEqual(a, ['t=from-alpha', 't=end-a']);
    assert.deepEqual(b, ['t=from-beta', 't=end-b']);
    assert.deepEqual(d, ['t=from-default', 't=end-d']);
  });

  it('retained messages stay in their broker', async () => {
    const pub = track(await viaHost(ts, 'alpha.iso.localhost'));
    await pub.publishAsync('kept', 'alpha-retained', { qos: 1, retain: true });
    const other = track(await viaHost(ts, 'beta.iso.localhost'));
    const got = inbox(other);
    await other.subscribeAsync('kept', { qos: 1 });
    const same = track(await viaHost(ts, 'alpha.iso.localhost'));
    const retained = new Promise<string>((resolve) => same.once('message', (_t, p) => resolve(`${p}`)));
    await same.subscribeAsync('kept', { qos: 1 });
    assert.equal(await retained, 'alpha-retained');
    assert.deepEqual(got, []);
  });

  it('the same client id can be connected on two brokers at once (no takeover)', async () => {
    const id = uniqueName('same-id');
    const onAlpha = track(await viaHost(ts, 'alpha.iso.localhost', { clientId: id }));
    let alphaDropped = false;
    onAlpha.on('disconnect', () => {
      alphaDropped = true;
    });
    onAlpha.on('close', () => {
      alphaDropped = true;
    });
    const onBeta = track(await viaHost(ts, 'beta.iso.localhost', { clientId: id }));
    await onBeta.subscribeAsync('ping', { qos: 1 });
    await onAlpha.subscribeAsync('ping', { qos: 1 }); // still alive: a round trip works
    assert.equal(alphaDropped, false);
    assert.equal(onAlpha.connected && onBeta.connected, true);
  });

  it('an unknown broker host name is refused at CONNECT (0x87) and the server keeps serving', async () => {
    await assert.rejects(viaHost(ts, 'ghost.iso.localhost'), (err: Error & { code?: number }) => {
      assert.equal(err.code, 0x87);
      return true;
    });
    const ok = track(await viaHost(ts, 'alpha.iso.localhost'));
    assert.ok(ok.connected);
  });

  it('a TOKEN broker refuses a client without a token or with a password that is not one (0x86)', async () => {
    await assert.rejects(viaHost(ts, 'locked.iso.localhost'), (err: Error & { code?: number }) => {
      assert.equal(err.code, 0x86);
      return true;
    });
    await assert.rejects(
      viaHost(ts, 'locked.iso.localhost', { username: 'x', password: 'not-a-jwt' }),
      (err: Error & { code?: number }) => {
        assert.equal(err.code, 0x86);
        return true;
      },
    );
  });

  it('deleting a broker disconnects its clients with DISCONNECT 0x98 and leaves others alone', async () => {
    await api(ts, 'POST', '/namespaces/iso/brokers', { name: 'doomed', authType: 'NONE' });
    const victim = track(await viaHost(ts, 'doomed.iso.localhost'));
    const bystander = track(await viaHost(ts, 'alpha.iso.localhost'));
    const reason = new Promise<number | undefined>((resolve) =>
      victim.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    await api(ts, 'DELETE', '/namespaces/iso/brokers/doomed');
    assert.equal(await reason, 0x98);
    await bystander.subscribeAsync('still/here', { qos: 1 });
    await assert.rejects(
      viaHost(ts, 'doomed.iso.localhost'),
      (err: Error & { code?: number }) => err.code === 0x87,
    );
  });
});

describe('anonymous access', () => {
  it('with --allow-anonymous false the default broker refuses v5 (0x87) and v3.1.1 (5) clients', async (t) => {
    const ts = await startServer({ allowAnonymous: 'false' });
    t.after(() => ts.close());
    for (const [protocolVersion, code] of [
      [5, 0x87],
      [4, 5],
    ] as const)
      await assert.rejects(
        mqtt.connectAsync(ts.url, { protocolVersion, reconnectPeriod: 0 }),
        (err: Error & { code?: number }) => {
          assert.equal(err.code, code);
          return true;
        },
      );
  });

  it('auto allows anonymous clients on loopback only', async (t) => {
    const ts = await startServer({ allowAnonymous: 'auto' });
    t.after(() => ts.close());
    assert.equal(ts.server.tenancy.anonymousAllowed, true);
    const c = await mqtt.connectAsync(ts.url, { protocolVersion: 5, reconnectPeriod: 0 });
    await c.endAsync();
  });
});
