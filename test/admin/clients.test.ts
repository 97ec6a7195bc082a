/**
 * `GET|DELETE .../brokers/{broker}/clients[/{client_id}]` against a running server with real
 * clients connected: MQTT.js v5 and v3.1.1 (TCP and WebSocket), mosquitto_sub, a raw client
 * that never acknowledges (in flight), an offline persistent session (queued). The kick gives a
 * v5 client DISCONNECT 0x98 and publishes its will; one broker's clients never show through
 * another broker's path.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { describeWithTool, mosquittoClients, mosquittoSub, uniqueName } from '../helpers/interop-tools.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { type Envelope, pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

interface Client {
  client_id: string;
  connected: boolean;
  transport: string | null;
  remote_address: string | null;
  remote_port: number | null;
  protocol_version: number | null;
  keep_alive: number | null;
  connected_at: string | null;
  subscription_count: number;
  inflight: number;
  queued: number;
  session_expiry_interval: number;
  session_expires_at: string | null;
  subscriptions?: {
    filter: string;
    qos: number;
    no_local: boolean;
    retain_as_published: boolean;
    retain_handling: number;
    subscription_id: number | null;
    share_group: string | null;
  }[];
}

type ListEnvelope = Envelope<Client[]> & {
  result_info: { page: number; per_page: number; count: number; total_count: number; total_pages: number };
};

const CLIENTS = '/namespaces/local/brokers/default/clients';

let ts: TestServer;
before(async () => {
  ts = await startServer({ httpPort: 0 });
  ts.server.tenancy.createNamespace(ts.accountId, { name: 'other' });
  ts.server.tenancy.createBroker(ts.accountId, 'other', { name: 'b', authType: 'NONE' });
});
after(() => ts.close());

async function connect(t: TestContext, url: string, options: IClientOptions): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...options });
  t.after(() => client.endAsync(true));
  return client;
}

const list = (query = '') => pubsubApi<Client[]>(ts, 'GET', `${CLIENTS}${query}`) as Promise<ListEnvelope>;
const one = (id: string) => pubsubApi<Client>(ts, 'GET', `${CLIENTS}/${encodeURIComponent(id)}`);

describe('admin API: clients', () => {
  it('lists MQTT.js v5 (TCP) and v3.1.1 (WebSocket) clients with their connection and session fields', async (t) => {
    const prefix = uniqueName('list');
    const v5 = await connect(t, ts.url, {
      clientId: `${prefix}-v5`,
      protocolVersion: 5,
      keepalive: 30,
      properties: { sessionExpiryInterval: 600 },
    });
    await v5.subscribeAsync(['a/#', 'b/+'], { qos: 1 });
    await connect(t, ts.wsUrl, { clientId: `${prefix}-v3`, protocolVersion: 4, keepalive: 45 });
    const started = Date.now();

    const env = await list(`?client_id_prefix=${prefix}`);
    assert.equal(env.success, true, JSON.stringify(env));
    assert.deepEqual(env.result_info, { page: 1, per_page: 1000, count: 2, total_count: 2, total_pages: 1 });
    const [first, second] = env.result;
    assert.equal(first!.client_id, `${prefix}-v5`, 'in the order the sessions were created');
    assert.equal(first!.connected, true);
    assert.equal(first!.transport, 'tcp');
    assert.equal(first!.remote_address, '127.0.0.1');
    assert.equal(first!.remote_port, (v5.stream as unknown as { localPort: number }).localPort);
    assert.equal(first!.protocol_version, 5);
    assert.equal(first!.keep_alive, 30);
    assert.ok(Math.abs(Date.parse(first!.connected_at!) - started) < 5000, first!.connected_at!);
    assert.equal(first!.subscription_count, 2);
    assert.equal(first!.inflight, 0);
    assert.equal(first!.queued, 0);
    assert.equal(first!.session_expiry_interval, 600);
    assert.equal(first!.session_expires_at, null, 'no expiry clock while connected');
    assert.equal(first!.subscriptions, undefined, 'the list has counts, not subscriptions');
    assert.equal(second!.client_id, `${prefix}-v3`);
    assert.equal(second!.transport, 'ws');
    assert.equal(second!.protocol_version, 4);
    assert.equal(second!.keep_alive, 45);
    assert.equal(second!.session_expiry_interval, 0);
  });

  it('pages with page and per_page and narrows with client_id_prefix', async (t) => {
    const prefix = uniqueName('page');
    for (const n of [1, 2, 3]) await connect(t, ts.url, { clientId: `${prefix}-${n}`, protocolVersion: 5 });
    const p1 = await list(`?client_id_prefix=${prefix}&per_page=2`);
    assert.deepEqual(
      p1.result.map((c) => c.client_id),
      [`${prefix}-1`, `${prefix}-2`],
    );
    assert.deepEqual(p1.result_info, { page: 1, per_page: 2, count: 2, total_count: 3, total_pages: 2 });
    const p2 = await list(`?client_id_prefix=${prefix}&per_page=2&page=2`);
    assert.deepEqual(
      p2.result.map((c) => c.client_id),
      [`${prefix}-3`],
    );
    const none = await list(`?client_id_prefix=${prefix}-9`);
    assert.deepEqual(none.result, []);
    assert.equal(none.result_info.total_count, 0);
    const bad = await list('?per_page=0');
    assert.equal(bad.success, false);
    assert.equal(bad.errors[0]!.code, 14009);
  });

  it('describes one client with its subscriptions: QoS granted, options, subscription id, share group', async (t) => {
    const id = uniqueName('detail');
    const client = await connect(t, ts.url, {
      clientId: id,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 0xffffffff },
    });
    await client.subscribeAsync('plain/+', {
      qos: 2,
      nl: true,
      rap: true,
      rh: 2,
      properties: { subscriptionIdentifier: 7 },
    });
    await client.subscribeAsync('$share/workers/jobs/#', { qos: 1 });
    const env = await one(id);
    assert.equal(env.success, true, JSON.stringify(env));
    assert.equal(env.result.session_expiry_interval, 0xffffffff);
    assert.deepEqual(env.result.subscriptions, [
      {
        filter: 'plain/+',
        qos: 2,
        no_local: true,
        retain_as_published: true,
        retain_handling: 2,
        subscription_id: 7,
        share_group: null,
      },
      {
        filter: '$share/workers/jobs/#',
        qos: 1,
        no_local: false,
        retain_as_published: false,
        retain_handling: 0,
        subscription_id: null,
        share_group: 'workers',
      },
    ]);
    const missing = await one(`${id}-nobody`);
    assert.equal(missing.success, false);
    assert.equal(missing.errors[0]!.code, 14014);
  });

  it('counts in-flight messages (a raw v3.1.1 client that never acknowledges) and queued ones (an offline v5 session)', async (t) => {
    const raw = await RawClient.tcp(ts.port, 4);
    t.after(() => raw.socket.destroy());
    const rawId = uniqueName('raw');
    await raw.connect({ clientId: rawId, keepalive: 0 });
    raw.send({
      type: 'subscribe',
      packetId: 1,
      subscriptions: [
        { topicFilter: 'count/raw', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    });
    await raw.expect('suback');

    const offlineId = uniqueName('offline');
    const offline = await mqtt.connectAsync(ts.url, {
      clientId: offlineId,
      protocolVersion: 5,
      clean: false,
      reconnectPeriod: 0,
      properties: { sessionExpiryInterval: 300 },
    });
    await offline.subscribeAsync('count/offline', { qos: 1 });
    await offline.endAsync();
    t.after(() => pubsubApi(ts, 'DELETE', `${CLIENTS}/${offlineId}?discard_session=true`));

    const publisher = await connect(t, ts.url, { protocolVersion: 5 });
    for (let i = 0; i < 3; i++) {
      await publisher.publishAsync('count/raw', `m${i}`, { qos: 1 });
      await publisher.publishAsync('count/offline', `m${i}`, { qos: 1 });
    }
    const rawView = (await one(rawId)).result;
    assert.equal(rawView.inflight, 3);
    assert.equal(rawView.protocol_version, 4);
    assert.equal(rawView.keep_alive, 0);
    const offView = (await one(offlineId)).result;
    assert.equal(offView.connected, false);
    assert.equal(offView.queued, 3);
    assert.equal(offView.transport, null);
    assert.equal(offView.protocol_version, null);
    assert.equal(offView.connected_at, null);
    const expires = Date.parse(offView.session_expires_at!) - Date.now();
    assert.ok(expires > 290_000 && expires <= 300_000, `expires in ${expires} ms`);
    const listed = await list(`?client_id_prefix=${offlineId}`);
    assert.equal(listed.result[0]!.connected, false, 'offline persistent sessions are listed');
  });

  it('DELETE disconnects an MQTT.js v5 client with DISCONNECT 0x98 and publishes its will [MQTT-3.1.2-8]', async (t) => {
    const id = uniqueName('kick');
    const watcher = await connect(t, ts.url, { protocolVersion: 5 });
    await watcher.subscribeAsync(`will/${id}`, { qos: 1 });
    const will = new Promise<string>((resolve) => watcher.once('message', (_t, p) => resolve(`${p}`)));
    const victim = await connect(t, ts.url, {
      clientId: id,
      protocolVersion: 5,
      will: { topic: `will/${id}`, payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    const reason = new Promise<number | undefined>((resolve) =>
      victim.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    const env = await pubsubApi(ts, 'DELETE', `${CLIENTS}/${id}`);
    assert.equal(env.success, true, JSON.stringify(env));
    assert.deepEqual(env.result, { client_id: id, disconnected: true, session_discarded: false });
    assert.equal(await reason, 0x98);
    assert.equal(await will, 'gone');
    const again = await pubsubApi(ts, 'DELETE', `${CLIENTS}/${id}`);
    assert.equal(again.success, false, 'not connected any more');
    assert.equal(again.errors[0]!.code, 14014);
  });

  it('DELETE closes an MQTT.js v3.1.1 client (no DISCONNECT in 3.1.1); its persistent session stays', async (t) => {
    const id = uniqueName('kick3');
    const victim = await connect(t, ts.url, { clientId: id, protocolVersion: 4, clean: false });
    await victim.subscribeAsync('kept/#', { qos: 1 });
    const closed = new Promise<void>((resolve) => victim.once('close', () => resolve()));
    const env = await pubsubApi(ts, 'DELETE', `${CLIENTS}/${id}`);
    assert.equal(env.success, true, JSON.stringify(env));
    await closed;
    const kept = await one(id);
    assert.equal(kept.result.connected, false);
    assert.equal(kept.result.subscription_count, 1);
    const discarded = await pubsubApi(ts, 'DELETE', `${CLIENTS}?client_id=${id}&discard_session=true`);
    assert.deepEqual(discarded.result, { client_id: id, disconnected: false, session_discarded: true });
    assert.equal((await one(id)).errors[0]!.code, 14014, 'the session is gone');
  });

  it('discard_session=true on a connected client disconnects it and ends its session', async (t) => {
    const id = uniqueName('discard');
    const victim = await connect(t, ts.url, {
      clientId: id,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 3600 },
    });
    await victim.subscribeAsync('x/#');
    const reason = new Promise<number | undefined>((resolve) =>
      victim.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    const env = await pubsubApi(ts, 'DELETE', `${CLIENTS}/${id}?discard_session=true`);
    assert.deepEqual(env.result, { client_id: id, disconnected: true, session_discarded: true });
    assert.equal(await reason, 0x98);
    assert.equal((await one(id)).success, false);
  });

  it("one broker's clients never show through another broker's path", async (t) => {
    const id = uniqueName('elsewhere');
    // Named by MQTT user name `<broker>.<namespace>` (docs/auth.md).
    const client = await connect(t, ts.url, { clientId: id, protocolVersion: 5, username: 'b.other' });
    const here = await list(`?client_id_prefix=${id}`);
    assert.deepEqual(here.result, []);
    assert.equal((await one(id)).errors[0]!.code, 14014);
    const kick = await pubsubApi(ts, 'DELETE', `${CLIENTS}/${id}?discard_session=true`);
    assert.equal(kick.errors[0]!.code, 14014);
    assert.equal(client.connected, true);
    const there = await pubsubApi<Client[]>(
      ts,
      'GET',
      `/namespaces/other/brokers/b/clients?client_id_prefix=${id}`,
    );
    assert.deepEqual(
      there.result.map((c) => c.client_id),
      [id],
    );
    const missing = await pubsubApi(ts, 'GET', '/namespaces/other/brokers/nope/clients');
    assert.equal(missing.errors[0]!.code, 14006);
  });

  it('a client id with a `/` is refused in the path (400, code 7010) and kicked through ?client_id=', async (t) => {
    const id = `${uniqueName('slash')}/device`;
    await connect(t, ts.url, { clientId: id, protocolVersion: 5 });
    const refused = await one(id);
    assert.equal(refused.errors[0]!.code, 7010);
    const env = await pubsubApi(ts, 'DELETE', `${CLIENTS}?client_id=${encodeURIComponent(id)}`);
    assert.equal(env.success, true, JSON.stringify(env));
  });
  it('GET .../client?client_id= describes a client id a path segment cannot carry (`/`, `..`, over 100 characters), with its subscriptions', async (t) => {
    const BROKER = CLIENTS.replace(/clients$/, 'client');
    for (const id of [`${uniqueName('slash')}/device`, '..', `${uniqueName('long')}-${'x'.repeat(120)}`]) {
      const client = await connect(t, ts.url, { clientId: id, protocolVersion: 5 });
      await client.subscribeAsync('odd/ids/#', { qos: 1 });
      const env = await pubsubApi<Client>(ts, 'GET', `${BROKER}?client_id=${encodeURIComponent(id)}`);
      assert.equal(env.success, true, JSON.stringify(env));
      assert.equal(env.result!.client_id, id);
      assert.deepEqual(
        env.result!.subscriptions?.map((s) => [s.filter, s.qos]),
        [['odd/ids/#', 1]],
      );
      await client.endAsync(true);
    }
    const missing = await pubsubApi(ts, 'GET', `${BROKER}?client_id=${encodeURIComponent('no/such/client')}`);
    assert.equal(missing.errors[0]!.code, 14014);
    const noId = await pubsubApi(ts, 'GET', BROKER);
    assert.equal(noId.success, false);
  });
});

describeWithTool('admin API: clients, with mosquitto_sub', mosquittoClients, () => {
  it('lists a mosquitto_sub v3.1.1 client with its keep alive and subscription', async (t) => {
    const id = uniqueName('mosq');
    await mosquittoSub(t, [
      '-h',
      '127.0.0.1',
      '-p',
      String(ts.port),
      '-i',
      id,
      '-k',
      '20',
      '-t',
      'mosq/#',
      '-q',
      '1',
    ]);
    const env = await one(id);
    assert.equal(env.success, true, JSON.stringify(env));
    assert.equal(env.result.connected, true);
    assert.equal(env.result.protocol_version, 4);
    assert.equal(env.result.keep_alive, 20);
    assert.deepEqual(
      env.result.subscriptions!.map((s) => [s.filter, s.qos]),
      [['mosq/#', 1]],
    );
  });
});
