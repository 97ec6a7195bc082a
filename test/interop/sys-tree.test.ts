/**
 * The $SYS tree (src/broker/sys-tree.ts) with real clients: `mosquitto_sub -t '$SYS/#'` against
 * the default broker of `pubsub serve --sys-interval 1` prints mosquitto's topics in mosquitto's
 * formats; `#` and a leading `+` never reach them [MQTT-4.7.2-1]; MQTT.js (3.1.1 and 5.0) sees one
 * broker's figures move while another's stay as they were; `--sys-interval 0` publishes nothing;
 * a broker's `sys_topics` (admin API, `pubsub broker update --sys-topics`) turns its tree off and
 * on; a token's topicAcl decides who may read it; a client cannot publish into it.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { spawnChild, until, WAIT_MS } from '../helpers/child-process.ts';
import { describeWithTool, mosquittoClients, uniqueName } from '../helpers/interop-tools.ts';
import { runCli, show, startServe } from '../helpers/pubsub-process.ts';
import { addAnonymousBrokers, pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

type Version = 4 | 5;
const VERSIONS: Version[] = [4, 5];

const COUNT = /^\d+$/;
const LOAD = /^\d+\.\d\d$/;
/** Every topic of the tree with the format of its value (mosquitto's). */
const TOPICS: Record<string, RegExp> = {
  version: /^pubsub version \d+\.\d+\.\d+/,
  uptime: /^\d+ seconds$/,
  'clients/connected': COUNT,
  'clients/disconnected': COUNT,
  'clients/total': COUNT,
  'clients/maximum': COUNT,
  'clients/expired': COUNT,
  'messages/received': COUNT,
  'messages/sent': COUNT,
  'messages/stored': COUNT,
  'retained messages/count': COUNT,
  'subscriptions/count': COUNT,
  'bytes/received': COUNT,
  'bytes/sent': COUNT,
};
for (const name of ['messages/received', 'messages/sent', 'bytes/received', 'bytes/sent', 'connections'])
  for (const period of ['1min', '5min', '15min']) TOPICS[`load/${name}/${period}`] = LOAD;
const TREE = Object.keys(TOPICS).map((name) => `$SYS/broker/${name}`);

async function serve(t: TestContext, overrides: Record<string, unknown> = {}): Promise<TestServer> {
  const ts = await startServer({ sysInterval: 1, ...overrides });
  t.after(() => ts.close());
  return ts;
}

interface Received {
  topic: string;
  text: string;
  retain: boolean;
}

/** An MQTT.js client that records every message it receives. */
interface Watcher {
  client: MqttClient;
  got: Received[];
  /** The last value received on `$SYS/broker/<name>`. */
  latest(name: string): string | undefined;
  /** Messages on `$SYS` topics. */
  sys(): Received[];
}

async function watcher(
  t: TestContext,
  ts: TestServer,
  version: Version,
  extra: IClientOptions = {},
): Promise<Watcher> {
  const client = await mqtt.connectAsync(ts.url, {
    protocolVersion: version,
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    clientId: uniqueName('sys'),
    ...extra,
  });
  t.after(() => client.endAsync(true));
  const got: Received[] = [];
  client.on('message', (topic, payload, packet) =>
    got.push({ topic, text: payload.toString(), retain: packet.retain }),
  );
  return {
    client,
    got,
    latest: (name) => got.findLast((m) => m.topic === `$SYS/broker/${name}`)?.text,
    sys: () => got.filter((m) => m.topic.startsWith('$SYS')),
  };
}

/** Publishes `sentinel/<id>` from `w` (subscribed to it) and waits for it: everything sent before has arrived. */
async function roundTrip(w: Watcher): Promise<void> {
  const topic = `sentinel/${uniqueName('s')}`;
  await w.client.subscribeAsync(topic);
  await w.client.publishAsync(topic, 'x');
  await until(() => w.got.some((m) => m.topic === topic), `the sentinel on ${topic}`);
}

describeWithTool('$SYS with mosquitto_sub', mosquittoClients, () => {
  it("mosquitto_sub -t '$SYS/#' -V mqttv311 against the default broker prints every topic of the tree, in mosquitto's formats", async (t) => {
    const server = await startServe(t, { args: ['--sys-interval', '1'] });
    const sub = spawnChild(t, 'mosquitto_sub', [
      ...['-h', '127.0.0.1', '-p', String(server.port('mqtt')), '-V', 'mqttv311'],
      ...['-t', '$SYS/#', '-C', String(TREE.length), '-F', '%t\t%p'],
    ]);
    assert.deepEqual(await sub.waitForExit(WAIT_MS), { code: 0, signal: null }, sub.report());
    const values = new Map(sub.lines.map((line) => line.split('\t') as [string, string]));
    assert.deepEqual([...values.keys()].sort(), [...TREE].sort(), 'each topic once, retained');
    for (const [name, format] of Object.entries(TOPICS))
      assert.match(values.get(`$SYS/broker/${name}`)!, format, name);
    assert.equal(values.get('$SYS/broker/clients/connected'), '1', 'mosquitto_sub itself');
    assert.equal(values.get('$SYS/broker/subscriptions/count'), '1');
  });

  it('mosquitto_sub -C 10 ends with ten $SYS messages, and a -t # subscriber sees none of them', async (t) => {
    const server = await startServe(t, { args: ['--sys-interval', '1'] });
    const port = String(server.port('mqtt'));
    const all = spawnChild(t, 'mosquitto_sub', ['-p', port, '-V', 'mqttv311', '-t', '#', '-v']);
    const sys = spawnChild(t, 'mosquitto_sub', [
      '-p',
      port,
      '-V',
      'mqttv311',
      '-t',
      '$SYS/#',
      '-C',
      '10',
      '-v',
    ]);
    assert.deepEqual(await sys.waitForExit(WAIT_MS), { code: 0, signal: null }, sys.report());
    assert.equal(sys.lines.length, 10);
    assert.ok(sys.lines.every((l) => l.startsWith('$SYS/broker/')));
    // A second round of the tree (uptime moves every second) reaches a $SYS subscriber, not `#`.
    const later = spawnChild(t, 'mosquitto_sub', [
      '-p',
      port,
      '-V',
      'mqttv311',
      '-t',
      '$SYS/broker/uptime',
      '-C',
      '2',
    ]);
    assert.deepEqual(await later.waitForExit(WAIT_MS), { code: 0, signal: null }, later.report());
    const spawnPub = spawnChild(t, 'mosquitto_pub', ['-p', port, '-t', 'plain/topic', '-m', 'hello']);
    await spawnPub.waitForExit(WAIT_MS);
    await until(() => all.lines.includes('plain/topic hello'), 'the plain message on #');
    assert.deepEqual(all.lines, ['plain/topic hello'], '# never matches $SYS [MQTT-4.7.2-1]');
  });
});

describe('$SYS with MQTT.js', () => {
  for (const version of VERSIONS) {
    it(`v${version}: # and +/broker/# get nothing of the tree while $SYS/# gets its updates [MQTT-4.7.2-1]`, async (t) => {
      const ts = await serve(t);
      const wild = await watcher(t, ts, version);
      await wild.client.subscribeAsync(['#', '+/broker/#', '+/+/uptime']);
      const sys = await watcher(t, ts, version);
      await sys.client.subscribeAsync('$SYS/#');
      // A live update (not the retained copy) came after the wildcard subscriptions were made.
      await until(
        () => sys.sys().some((m) => !m.retain && m.topic === '$SYS/broker/uptime'),
        'a live uptime',
      );
      await roundTrip(wild);
      assert.deepEqual(wild.sys(), []);
    });

    it(`v${version}: a late subscriber gets every topic retained with current values, and updates come as they change`, async (t) => {
      const ts = await serve(t);
      const publisher = await watcher(t, ts, version);
      for (let i = 0; i < 3; i++) await publisher.client.publishAsync('data/x', `m${i}`, { qos: 1 });
      const sys = await watcher(t, ts, version);
      await sys.client.subscribeAsync('$SYS/#');
      await until(() => sys.sys().length >= TREE.length, 'the retained tree');
      const first = sys.got.slice(0, TREE.length);
      assert.deepEqual(first.map((m) => m.topic).sort(), [...TREE].sort());
      assert.ok(
        first.every((m) => m.retain),
        'retained on subscribe [MQTT-3.3.1-8]',
      );
      assert.equal(sys.latest('messages/received'), '3');
      assert.equal(sys.latest('clients/connected'), '2');
      assert.equal(sys.latest('clients/maximum'), '2');
      await publisher.client.endAsync();
      await until(() => sys.latest('clients/connected') === '1', 'clients/connected back to 1');
      assert.equal(sys.latest('clients/maximum'), '2', 'the maximum stays');
      assert.ok(Number(sys.latest('load/messages/received/1min')) > 0);
    });
  }

  it("v5: one broker's figures move with its clients while another broker's stay as they were", async (t) => {
    const ts = await serve(t);
    addAnonymousBrokers(ts, 'sysns', ['alpha', 'beta']);
    const alpha = await watcher(t, ts, 5, { username: 'alpha.sysns' });
    const beta = await watcher(t, ts, 5, { username: 'beta.sysns' });
    await alpha.client.subscribeAsync('$SYS/broker/#');
    await beta.client.subscribeAsync('$SYS/broker/#');
    await until(() => beta.latest('messages/received') === '0', "beta's first figures");
    const publisher = await watcher(t, ts, 5, { username: 'pub@alpha.sysns' });
    for (let i = 0; i < 5; i++) await publisher.client.publishAsync('alpha/data', 'x'.repeat(100));
    await publisher.client.publishAsync('alpha/kept', 'r', { retain: true, qos: 1 });
    await until(() => alpha.latest('messages/received') === '6', 'alpha counts 6 messages received');
    const seen = beta.got.length;
    // Both trees refresh on the same tick: wait for beta's next uptime, then compare.
    await until(
      () => beta.got.slice(seen).some((m) => m.topic === '$SYS/broker/uptime'),
      "beta's next refresh",
    );
    assert.equal(alpha.latest('clients/connected'), '2');
    assert.equal(alpha.latest('retained messages/count'), '1');
    assert.ok(Number(alpha.latest('bytes/received')) > 500);
    assert.ok(Number(alpha.latest('load/messages/received/1min')) > 0);
    assert.equal(beta.latest('messages/received'), '0');
    assert.equal(beta.latest('clients/connected'), '1');
    assert.equal(beta.latest('retained messages/count'), '0');
    assert.equal(beta.latest('load/messages/received/1min'), '0.00');
    assert.ok(Number(beta.latest('bytes/received')) < Number(alpha.latest('bytes/received')));
  });

  for (const version of VERSIONS)
    it(`v${version}: --sys-interval 0 publishes no $SYS tree, neither retained nor live`, async (t) => {
      const ts = await serve(t, { sysInterval: 0 });
      const sys = await watcher(t, ts, version);
      await sys.client.subscribeAsync('$SYS/#');
      await roundTrip(sys);
      const other = await watcher(t, ts, version); // a figure changes (clients/connected)
      await other.client.publishAsync('data/x', 'x');
      await sleep(1500); // a tick of interval 1 would have come by now
      await roundTrip(sys);
      assert.deepEqual(sys.sys(), []);
    });

  it('the $SYS tree is not among the tenant retained messages (admin API) and a client cannot publish into it', async (t) => {
    const ts = await serve(t, { httpPort: 0 });
    const sys = await watcher(t, ts, 4);
    await sys.client.subscribeAsync('$SYS/#');
    await until(() => sys.latest('uptime') !== undefined, 'the tree');
    await sys.client.publishAsync('$SYS/broker/uptime', 'spoofed', { retain: true, qos: 1 });
    const late = await watcher(t, ts, 4);
    await late.client.subscribeAsync('$SYS/broker/uptime');
    await until(() => late.latest('uptime') !== undefined, 'the retained uptime');
    assert.match(late.latest('uptime')!, /^\d+ seconds$/);
    const retained = await pubsubApi<unknown[]>(
      ts,
      'GET',
      `/namespaces/local/brokers/default/retained?filter=${encodeURIComponent('$SYS/#')}`,
    );
    assert.equal(retained.success, true);
    assert.deepEqual(retained.result, []);
  });
});

describe('$SYS per broker: sys_topics and topic ACLs', () => {
  it('the admin API shows sys_topics (default true); false at create hides the tree, PATCH true brings it, false drops it', async (t) => {
    const ts = await serve(t, { httpPort: 0 });
    await pubsubApi(ts, 'POST', '/namespaces', { name: 'sysapi' });
    const created = await pubsubApi<{ sys_topics: boolean }>(ts, 'POST', '/namespaces/sysapi/brokers', {
      name: 'quiet',
      authType: 'NONE',
      sys_topics: false,
    });
    assert.equal(created.success, true, JSON.stringify(created.errors));
    assert.equal(created.result.sys_topics, false);
    const other = await pubsubApi<{ sys_topics: boolean }>(ts, 'POST', '/namespaces/sysapi/brokers', {
      name: 'loud',
      authType: 'NONE',
    });
    assert.equal(other.result.sys_topics, true);

    const sys = await watcher(t, ts, 5, { username: 'quiet.sysapi' });
    await sys.client.subscribeAsync('$SYS/#');
    await sleep(1500); // a tick of interval 1 would have come by now
    await roundTrip(sys);
    assert.deepEqual(sys.sys(), [], 'off: nothing, retained or live');

    const on = await pubsubApi<{ sys_topics: boolean }>(ts, 'PATCH', '/namespaces/sysapi/brokers/quiet', {
      sys_topics: true,
    });
    assert.equal(on.result.sys_topics, true);
    await until(() => sys.latest('uptime') !== undefined, 'the tree after PATCH sys_topics true');

    await pubsubApi(ts, 'PATCH', '/namespaces/sysapi/brokers/quiet', { sys_topics: false });
    const late = await watcher(t, ts, 5, { username: 'quiet.sysapi' });
    await late.client.subscribeAsync('$SYS/#');
    await roundTrip(late);
    assert.deepEqual(late.sys(), [], 'turned off: its retained values are gone');
    const described = await pubsubApi<{ sys_topics: boolean }>(ts, 'GET', '/namespaces/sysapi/brokers/quiet');
    assert.equal(described.result.sys_topics, false);
  });

  it('pubsub broker create|update --sys-topics sets it, and describe shows it', async (t) => {
    const ts = await serve(t, { httpPort: 0 });
    const env = { PUBSUB_API_URL: ts.apiUrl, PUBSUB_API_TOKEN: ts.adminToken };
    const cli = async (args: string[]): Promise<string> => {
      const r = await runCli(args, { env });
      assert.equal(r.code, 0, show(args, r));
      return r.stdout;
    };
    await cli(['namespace', 'create', 'syscli']);
    const made = await cli([
      'broker',
      'create',
      'b1',
      '--ns',
      'syscli',
      '--auth-type',
      'NONE',
      '--sys-topics',
      'false',
    ]);
    assert.match(made, /^\$SYS topics: +off$/m);
    const sys = await watcher(t, ts, 4, { username: 'b1.syscli' });
    await sys.client.subscribeAsync('$SYS/broker/version');
    await roundTrip(sys);
    assert.deepEqual(sys.sys(), []);
    const updated = await cli(['broker', 'update', 'b1', '--ns', 'syscli', '--sys-topics', 'true']);
    assert.match(updated, /^\$SYS topics: +on$/m);
    const late = await watcher(t, ts, 4, { username: 'b1.syscli' });
    await late.client.subscribeAsync('$SYS/broker/version');
    await until(() => late.latest('version') !== undefined, 'the version once on');
    const bad = await runCli(['broker', 'update', 'b1', '--ns', 'syscli', '--sys-topics', 'maybe'], { env });
    assert.equal(bad.code, 2, show(['--sys-topics', 'maybe'], bad));
  });

  for (const version of VERSIONS)
    it(`v${version}: a token whose topicAcl does not grant $SYS is refused the subscription (${version === 5 ? '0x87' : '0x80'}); one granting sub:$SYS/broker/# reads it`, async (t) => {
      const ts = await serve(t);
      const { tenancy } = ts.server;
      tenancy.createNamespace(ts.accountId, { name: 'sysacl' });
      tenancy.createBroker(ts.accountId, 'sysacl', { name: 'secure', authType: 'TOKEN' });
      const issue = async (acl: string[]): Promise<[string, string]> => {
        const tokens = await tenancy.issueCredentials(ts.accountId, 'sysacl', 'secure', {
          number: 1,
          clientIds: [],
          expiration: undefined,
          topicAcl: acl,
        });
        return Object.entries(tokens)[0]!;
      };
      const [deniedId, deniedJwt] = await issue(['sensors/#']);
      const denied = await watcher(t, ts, version, {
        clientId: deniedId,
        username: 'x@secure.sysacl',
        password: deniedJwt,
      });
      await assert.rejects(
        denied.client.subscribeAsync('$SYS/#'),
        (err: { packet?: { granted?: number[] } }) => {
          assert.deepEqual(err.packet?.granted, [version === 5 ? 0x87 : 0x80]);
          return true;
        },
      );
      const [readerId, readerJwt] = await issue(['sub:$SYS/broker/#']);
      const reader = await watcher(t, ts, version, {
        clientId: readerId,
        username: 'x@secure.sysacl',
        password: readerJwt,
      });
      const granted = await reader.client.subscribeAsync('$SYS/broker/#');
      assert.equal(granted[0]!.qos, 0);
      await until(() => reader.latest('clients/connected') !== undefined, 'the tree for the granted token');
      assert.equal(reader.latest('clients/connected'), '2');
      assert.deepEqual(
        denied.sys(),
        [],
        'the refused subscription got nothing while the granted one got the tree',
      );
    });
});
