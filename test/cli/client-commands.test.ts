/**
 * `pubsub broker clients|client|kick|retained|retained-delete` run as a user runs them (the
 * real binary) against a running server with MQTT.js clients connected: tables and `--json`,
 * `--prefix`, the kick an MQTT.js v5 client sees as DISCONNECT 0x98, retained messages by
 * filter with payloads, deletion by a topic with `/`, usage (exit 2) and API (exit 1) errors.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { uniqueName } from '../helpers/interop-tools.ts';
import { type ApiServer, fieldsOf, row, startApiServer } from './run-cli.ts';

let api: ApiServer;
before(async () => {
  api = await startApiServer();
});
after(() => api.server.close());

const NS = ['--ns', 'local'];

async function connect(t: TestContext, options: IClientOptions): Promise<MqttClient> {
  const client = await mqtt.connectAsync(api.server.url, { reconnectPeriod: 0, ...options });
  t.after(() => client.endAsync(true));
  return client;
}

describe('pubsub broker clients, client, kick', () => {
  it('clients lists connected clients as a table, --prefix narrows, --json prints the API result', async (t) => {
    const prefix = uniqueName('cli');
    const v5 = await connect(t, { clientId: `${prefix}-a`, protocolVersion: 5, keepalive: 25 });
    await v5.subscribeAsync('cli/#', { qos: 1 });
    await connect(t, { clientId: `${prefix}-b`, protocolVersion: 4 });
    const { stdout } = await api.ok(['broker', 'clients', 'default', ...NS, '--prefix', prefix]);
    const a = row(stdout, `${prefix}-a`);
    assert.ok(a, stdout);
    assert.deepEqual(a.slice(1, 6), ['yes', 'tcp', a[3]!, '5.0', '25']);
    assert.match(a[3]!, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(a.slice(7), ['1', '0', '0']);
    assert.equal(row(stdout, `${prefix}-b`)?.[4], '3.1.1');
    const json = await api.json<{ client_id: string }[]>([
      'broker',
      'clients',
      'default',
      ...NS,
      '--prefix',
      `${prefix}-b`,
    ]);
    assert.deepEqual(
      json.map((c) => c.client_id),
      [`${prefix}-b`],
    );
    const none = await api.ok(['broker', 'clients', 'default', ...NS, '--prefix', `${prefix}-zzz`]);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /No clients on broker default/);
  });

  it('client shows one client and its subscriptions, whatever its id (a `/` in it); an unknown one exits 1 with the API code', async (t) => {
    const id = `${uniqueName('cli-one')}/device`;
    const client = await connect(t, { clientId: id, protocolVersion: 5 });
    await client.subscribeAsync('$share/g/jobs/+', { qos: 1 });
    const { stdout } = await api.ok(['broker', 'client', 'default', id, ...NS]);
    const [head, subs] = stdout.split('\n\n');
    const fields = fieldsOf(`${head}\n`);
    assert.equal(fields.get('client id'), id);
    assert.equal(fields.get('connected'), 'yes');
    assert.equal(fields.get('mqtt'), '5.0');
    assert.equal(fields.get('subscriptions'), '1');
    assert.deepEqual(row(subs!, '$share/g/jobs/+'), ['$share/g/jobs/+', '1', 'no', 'no', '0', '-', 'g']);
    const unknown = await api.run(['broker', 'client', 'default', `${id}-nobody`, ...NS]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /code 14014/);
  });

  it('kick disconnects an MQTT.js v5 client with DISCONNECT 0x98; --discard-session needs --yes', async (t) => {
    const id = uniqueName('cli-kick');
    const client = await connect(t, {
      clientId: id,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 60 },
    });
    const reason = new Promise<number | undefined>((resolve) =>
      client.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    const kicked = await api.ok(['broker', 'kick', 'default', id, ...NS]);
    assert.match(kicked.stderr, new RegExp(`Client ${id} on broker default: disconnected\\.`));
    assert.equal(await reason, 0x98);
    const unconfirmed = await api.run(['broker', 'kick', 'default', id, ...NS, '--discard-session']);
    assert.equal(unconfirmed.code, 2, 'no terminal and no --yes');
    const discarded = await api.json<{ disconnected: boolean; session_discarded: boolean }>([
      'broker',
      'kick',
      'default',
      id,
      ...NS,
      '--discard-session',
      '--yes',
    ]);
    assert.deepEqual(discarded, { client_id: id, disconnected: false, session_discarded: true });
    const again = await api.run(['broker', 'kick', 'default', id, ...NS]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not connected to this broker \(code 14014\)/);
  });
});

describe('pubsub broker retained, retained-delete', () => {
  it('retained lists by --filter, --payload shows text; retained-delete takes a topic with /', async (t) => {
    const root = uniqueName('cli-ret');
    const client = await connect(t, { protocolVersion: 5 });
    await client.publishAsync(`${root}/a/b`, 'twenty one', { qos: 1, retain: true });
    await client.publishAsync(`${root}/bin`, Buffer.from([0, 1, 2]), { qos: 0, retain: true });
    const { stdout } = await api.ok([
      'broker',
      'retained',
      'default',
      ...NS,
      '--filter',
      `${root}/#`,
      '--payload',
    ]);
    assert.deepEqual(row(stdout, `${root}/a/b`)?.slice(1, 3), ['1', '10']);
    assert.equal(row(stdout, `${root}/a/b`)?.at(-1), 'twenty one');
    assert.equal(row(stdout, `${root}/bin`)?.at(-1), 'base64:AAEC');
    const cut = await api.ok([
      'broker',
      'retained',
      'default',
      ...NS,
      '--filter',
      `${root}/a/b`,
      '--payload',
      '--payload-bytes',
      '6',
    ]);
    assert.equal(row(cut.stdout, `${root}/a/b`)?.at(-1), 'twenty...');
    const bad = await api.run(['broker', 'retained', 'default', ...NS, '--filter', 'a/#/b']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /code 14009/);

    assert.equal((await api.run(['broker', 'retained-delete', 'default', `${root}/a/b`, ...NS])).code, 2);
    assert.equal(
      await api.json(['broker', 'retained-delete', 'default', `${root}/a/b`, ...NS, '--yes']),
      null,
    );
    const left = await api.json<{ topic: string }[]>([
      'broker',
      'retained',
      'default',
      ...NS,
      '--filter',
      `${root}/#`,
    ]);
    assert.deepEqual(
      left.map((m) => m.topic),
      [`${root}/bin`],
    );
    const gone = await api.run(['broker', 'retained-delete', 'default', `${root}/a/b`, ...NS, '--yes']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /code 14015/);
  });
});
