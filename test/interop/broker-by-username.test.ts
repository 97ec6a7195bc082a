/**
 * Naming a broker by the MQTT user name, with real clients over plain TCP to 127.0.0.1 (no
 * host name reaches the server): mosquitto_pub/mosquitto_sub with `-u devices.home` and MQTT.js
 * with `username`, against a server with two brokers besides the default. Each broker's
 * subscribers get only what was published to that broker; a user name naming a missing broker is
 * refused with CONNACK 0x87 (v5) / 0x05 (v3.1.1); the API shows the user name of each broker.
 */
import assert from 'node:assert/strict';
import { after, before, it, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import { type Child, spawnChild, until } from '../helpers/child-process.ts';
import { describeWithTool, mosquittoClients, uniqueName } from '../helpers/interop-tools.ts';
import { pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

let ts: TestServer;
before(async () => {
  ts = await startServer({ httpPort: 0 });
  for (const [path, body] of [
    ['/namespaces', { name: 'home' }],
    ['/namespaces/home/brokers', { name: 'devices', authType: 'NONE' }],
    ['/namespaces/home/brokers', { name: 'lights', authType: 'NONE' }],
  ] as const) {
    const env = await pubsubApi(ts, 'POST', path, body);
    assert.equal(env.success, true, JSON.stringify(env));
  }
});
after(() => ts.close());

const VERSION_FLAG = { 4: 'mqttv311', 5: 'mqttv5' } as const;

/** The arguments mosquitto_pub and mosquitto_sub share: this server, QoS 1, one topic, the user. */
function clientArgs(version: 4 | 5, topic: string, username: string | undefined): string[] {
  const user = username === undefined ? [] : ['-u', username];
  return [
    '-h',
    '127.0.0.1',
    '-p',
    String(ts.port),
    '-V',
    VERSION_FLAG[version],
    '-q',
    '1',
    '-t',
    topic,
    ...user,
  ];
}

/** `mosquitto_sub` as `username` (none: an ordinary client), once subscribed. */
async function subscribe(t: TestContext, version: 4 | 5, topic: string, username?: string): Promise<Child> {
  const args = ['-oL', 'mosquitto_sub', '-d', '-F', 'msg %p', ...clientArgs(version, topic, username)];
  const sub = spawnChild(t, 'stdbuf', args);
  await sub.waitForLine((line) => /received SUBACK/.test(line), 'SUBACK');
  return sub;
}

/** Runs `mosquitto_pub` as `username` to completion; resolves with its exit. */
async function publish(
  t: TestContext,
  version: 4 | 5,
  username: string | undefined,
  topic: string,
  payload: string,
) {
  const pub = spawnChild(t, 'mosquitto_pub', [...clientArgs(version, topic, username), '-m', payload]);
  return { exit: await pub.waitForExit(), pub };
}

const messages = (sub: Child): string[] =>
  sub.lines.filter((l) => l.startsWith('msg ')).map((l) => l.slice('msg '.length));

for (const version of [4, 5] as const) {
  const v = `MQTT ${version === 4 ? '3.1.1' : '5.0'}`;
  describeWithTool(`mosquitto clients name their broker by user name, ${v}`, mosquittoClients, () => {
    it(`${v}: -u devices.home and -u sensor@lights.home reach two brokers; nothing crosses`, async (t) => {
      const topic = uniqueName('by-username');
      const subs = {
        devices: await subscribe(t, version, topic, 'devices.home'),
        lights: await subscribe(t, version, topic, 'LIGHTS.home'),
        default: await subscribe(t, version, topic, 'alice'),
      };
      for (const [username, payload] of [
        ['sensor@devices.home', 'to devices'],
        ['sensor@lights.home', 'to lights'],
        [undefined, 'to default'],
      ] as const) {
        const { exit, pub } = await publish(t, version, username, topic, payload);
        assert.equal(exit.code, 0, pub.report());
      }
      // One last message per broker: once it has arrived, anything that leaked would have too.
      for (const username of ['devices.home', 'lights.home', 'bob.example']) {
        const { exit, pub } = await publish(t, version, username, topic, 'end');
        assert.equal(exit.code, 0, pub.report());
      }
      for (const sub of Object.values(subs)) await sub.waitForLine((l) => l === 'msg end', 'the end marker');
      assert.deepEqual(messages(subs.devices), ['to devices', 'end']);
      assert.deepEqual(messages(subs.lights), ['to lights', 'end']);
      assert.deepEqual(messages(subs.default), ['to default', 'end']);
    });

    it(`${v}: -u nosuch.home (a namespace of this server, no such broker) is refused`, async (t) => {
      const { exit, pub } = await publish(t, version, 'nosuch.home', 'x', 'x');
      assert.notEqual(exit.code, 0, pub.report());
      assert.match(pub.stderr, /not authori[sz]ed/i, pub.report());
    });
  });
}

for (const protocolVersion of [4, 5] as const) {
  const v = `MQTT ${protocolVersion === 4 ? '3.1.1' : '5.0'}`;
  it(`MQTT.js ${v}: username devices.home reaches that broker; nosuch.home gets ${protocolVersion === 5 ? '0x87' : '0x05'}`, async (t) => {
    const topic = uniqueName('mqttjs-by-username');
    const connect = (username: string) =>
      mqtt.connectAsync(ts.url, { protocolVersion, username, reconnectPeriod: 0, clientId: uniqueName('c') });
    const sub = await connect('devices.home');
    t.after(() => sub.endAsync(true));
    const pub = await connect('me@devices.home');
    t.after(() => pub.endAsync(true));
    const other = await connect('lights.home');
    t.after(() => other.endAsync(true));
    const got: string[] = [];
    sub.on('message', (_topic, payload) => got.push(payload.toString()));
    await sub.subscribeAsync(topic, { qos: 1 });
    await other.publishAsync(topic, 'from lights', { qos: 1 });
    await pub.publishAsync(topic, 'from devices', { qos: 1 });
    await until(() => got.length > 0, 'the message published to devices.home');
    assert.deepEqual(got, ['from devices']);
    const devices = ts.server.tenancy.tenant(ts.accountId, 'home', 'devices');
    assert.ok(devices.broker.sessions.has(sub.options.clientId!));

    await assert.rejects(connect('nosuch.home'), (err: Error & { code?: number }) => {
      assert.equal(err.code, protocolVersion === 5 ? 0x87 : 0x05);
      return true;
    });
  });
}

it('the API and the broker it describes give the user name that names it', async () => {
  const env = await pubsubApi<{ mqtt_username: string }>(ts, 'GET', '/namespaces/home/brokers/devices');
  assert.equal(env.result.mqtt_username, 'devices.home');
});
