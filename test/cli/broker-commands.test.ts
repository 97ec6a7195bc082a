/**
 * `pubsub broker create|update|list|describe|delete` run as a user runs them (the real binary)
 * against a running server: wrangler's flags (`--namespace/--ns` required, `--expiration` with
 * human durations, `--on-publish-url`), PATCH with only the flags given, tables and `--json`,
 * usage errors (exit 2) and API errors (exit 1); and a broker made with the CLI serving an
 * MQTT.js client until `broker delete` disconnects it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { show } from '../helpers/pubsub-process.ts';
import { type ApiServer, fieldsOf, row, startApiServer } from './run-cli.ts';

interface Broker {
  id: string;
  name: string;
  description: string;
  authType: string;
  auth_type: string;
  expiration: number | null;
  endpoint: string | null;
  endpoints: Record<string, string>;
  on_publish?: { url: string; policy?: string; timeout_ms?: number | null };
}

let api: ApiServer;
before(async () => {
  api = await startApiServer();
  await api.ok(['namespace', 'create', 'cli-brokers']);
});
after(() => api.server.close());

const NS = ['--ns', 'cli-brokers'];

describe('pubsub broker', () => {
  it('create takes wrangler flags and prints the broker as aligned fields', async () => {
    const { stdout, stderr } = await api.ok([
      'broker',
      'create',
      'cli-full',
      ...NS,
      '--description',
      'all flags',
      '--expiration',
      '1h30m',
      '--on-publish-url',
      'https://hooks.example.com/publish',
    ]);
    assert.match(stderr, /^Created broker cli-full in namespace cli-brokers\.$/m);
    const fields = fieldsOf(stdout);
    assert.equal(fields.get('name'), 'cli-full');
    assert.equal(fields.get('namespace'), 'cli-brokers');
    assert.equal(fields.get('auth type'), 'TOKEN', "the API's default");
    assert.equal(fields.get('expiration'), '1h30m (5400 s)');
    assert.equal(fields.get('on publish'), 'https://hooks.example.com/publish');
    assert.equal(fields.get('endpoint'), `mqtt://cli-full.cli-brokers.localhost:${api.server.port}`);
    assert.equal(fields.get('description'), 'all flags');
  });

  it('create --json prints the API result; --auth-type is case-insensitive, --namespace is --ns', async () => {
    const b = await api.json<Broker>([
      'broker',
      'create',
      'cli-json',
      '--namespace',
      'cli-brokers',
      '--auth-type',
      'mtls_and_token',
      '--expiration',
      '2 weeks',
    ]);
    assert.equal(b.name, 'cli-json');
    assert.equal(b.authType, 'MTLS_AND_TOKEN');
    assert.equal(b.auth_type, 'MTLS_AND_TOKEN');
    assert.equal(b.expiration, 14 * 86_400);
    assert.equal(b.on_publish, undefined);
    assert.match(b.id, /^[0-9a-f]{32}$/);
  });

  it('update sends only the flags given: each change leaves the other fields as they were', async () => {
    const created = await api.json<Broker>([
      'broker',
      'create',
      'cli-update',
      ...NS,
      '--description',
      'before',
      '--expiration',
      '1d',
      '--on-publish-url',
      'https://hooks.example.com/a',
    ]);

    const described = await api.json<Broker>([
      'broker',
      'update',
      'cli-update',
      ...NS,
      '--description',
      'after',
    ]);
    assert.equal(described.description, 'after');
    assert.equal(described.expiration, 86_400);
    assert.deepEqual(described.on_publish, {
      url: 'https://hooks.example.com/a',
      policy: 'fail-closed',
      timeout_ms: null,
    });
    assert.equal(described.authType, created.authType);

    const noExpiration = await api.json<Broker>([
      'broker',
      'update',
      'cli-update',
      ...NS,
      '--expiration',
      'none',
    ]);
    assert.equal(noExpiration.expiration, null);
    assert.equal(noExpiration.description, 'after');
    assert.deepEqual(noExpiration.on_publish, described.on_publish);

    const policy = await api.ok([
      'broker',
      'update',
      'cli-update',
      ...NS,
      '--on-publish-policy',
      'fail-open',
      '--on-publish-timeout',
      '2500',
    ]);
    const hookFields = fieldsOf(policy.stdout);
    assert.equal(hookFields.get('on publish policy'), 'fail-open');
    assert.equal(hookFields.get('on publish timeout'), '2500 ms');
    const reset = await api.json<Broker>([
      'broker',
      'update',
      'cli-update',
      ...NS,
      '--on-publish-timeout',
      'default',
    ]);
    assert.deepEqual(reset.on_publish, {
      url: 'https://hooks.example.com/a',
      policy: 'fail-open',
      timeout_ms: null,
    });
    const bad = await api.run(['broker', 'update', 'cli-update', ...NS, '--on-publish-policy', 'sometimes']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /fail-closed, fail-open/);

    const noHook = await api.json<Broker>(['broker', 'update', 'cli-update', ...NS, '--on-publish-url', '']);
    assert.equal(noHook.on_publish, undefined, "--on-publish-url '' clears the hook");
    assert.equal(noHook.expiration, null);

    const human = await api.ok([
      'broker',
      'update',
      'cli-update',
      ...NS,
      '--auth-type',
      'NONE',
      '--expiration',
      '45',
    ]);
    assert.match(human.stderr, /^Updated broker cli-update in namespace cli-brokers\.$/m);
    const fields = fieldsOf(human.stdout);
    assert.equal(fields.get('auth type'), 'NONE');
    assert.equal(fields.get('expiration'), '45s (45 s)');
    assert.equal(fields.get('on publish'), '-');
    assert.equal(fields.get('description'), 'after');
  });

  it("--mtls-client-id-pattern sets the broker's certificate pattern; update '' returns to the server's; a bad one is refused", async () => {
    const created = await api.ok([
      'broker',
      'create',
      'cli-mtls',
      ...NS,
      '--auth-type',
      'mtls',
      '--mtls-client-id-pattern',
      'fleet-(\\d+)',
    ]);
    assert.equal(fieldsOf(created.stdout).get('client id pattern'), 'fleet-(\\d+)');
    const described = await api.json<Broker & { mtls_client_id_pattern: string | null }>([
      'broker',
      'describe',
      'cli-mtls',
      ...NS,
    ]);
    assert.equal(described.mtls_client_id_pattern, 'fleet-(\\d+)');
    const reset = await api.json<{ mtls_client_id_pattern: string | null }>([
      'broker',
      'update',
      'cli-mtls',
      ...NS,
      '--mtls-client-id-pattern',
      '',
    ]);
    assert.equal(reset.mtls_client_id_pattern, null);
    const bad = await api.run(['broker', 'update', 'cli-mtls', ...NS, '--mtls-client-id-pattern', 'fleet-(']);
    assert.equal(bad.code, 1, show(['broker', 'update'], bad));
    assert.match(bad.stderr, /not a regular expression/);
  });

  it('update without any field flag is a usage error (exit 2) and changes nothing', async () => {
    await api.ok(['broker', 'create', 'cli-update-none', ...NS, '--description', 'same']);
    const args = ['broker', 'update', 'cli-update-none', ...NS];
    const r = await api.run(args);
    assert.equal(r.code, 2, show(args, r));
    assert.match(r.stderr, /nothing to update: give at least one of --description, --expiration/);
    assert.equal(
      (await api.json<Broker>(['broker', 'describe', 'cli-update-none', ...NS])).description,
      'same',
    );
  });

  it('list prints an aligned table and --json the array; an empty namespace says so on stderr', async () => {
    await api.ok(['namespace', 'create', 'cli-list-brokers']);
    const empty = await api.ok(['broker', 'list', '--ns', 'cli-list-brokers']);
    assert.equal(empty.stdout, '');
    assert.match(empty.stderr, /^No brokers in namespace cli-list-brokers\.$/m);
    assert.deepEqual(await api.json(['broker', 'list', '--ns', 'cli-list-brokers']), []);

    const ns = ['--ns', 'cli-list-brokers'];
    await api.ok([
      'broker',
      'create',
      'a',
      ...ns,
      '--expiration',
      '10m',
      '--on-publish-url',
      'http://h.example/x',
    ]);
    await api.ok(['broker', 'create', 'longer-name', ...ns, '--auth-type', 'NONE']);
    const { stdout } = await api.ok(['broker', 'list', ...ns]);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME +AUTH +EXPIRATION +ENDPOINT +ON PUBLISH$/);
    const endpointColumn = lines[0]!.indexOf('ENDPOINT');
    for (const line of lines.slice(1)) assert.match(line.slice(endpointColumn), /^mqtt:\/\//, line);
    assert.deepEqual(row(stdout, 'a'), [
      'a',
      'TOKEN',
      '10m (600 s)',
      `mqtt://a.cli-list-brokers.localhost:${api.server.port}`,
      'http://h.example/x',
    ]);
    assert.deepEqual(row(stdout, 'longer-name')?.slice(0, 3), ['longer-name', 'NONE', 'none']);

    const list = await api.json<Broker[]>(['broker', 'list', ...ns]);
    assert.deepEqual(list.map((b) => b.name).sort(), ['a', 'longer-name']);
  });

  it('describe shows one broker; --json its object; an unknown broker is the API error, exit 1', async () => {
    const created = await api.json<Broker>(['broker', 'create', 'cli-describe', ...NS]);
    const fields = fieldsOf((await api.ok(['broker', 'describe', 'cli-describe', ...NS])).stdout);
    assert.equal(fields.get('id'), created.id);
    assert.equal(fields.get('endpoint (ws)'), created.endpoints.ws);
    assert.equal(fields.get('mqtt user name'), 'cli-describe.cli-brokers');
    assert.deepEqual(await api.json<Broker>(['broker', 'describe', 'cli-describe', ...NS]), created);

    const args = ['broker', 'describe', 'cli-nope', ...NS];
    const r = await api.run(args);
    assert.equal(r.code, 1, show(args, r));
    assert.equal(r.stderr, 'pubsub: broker cli-nope not found in namespace cli-brokers (code 14006)\n');
    const wrongNs = await api.run(['broker', 'list', '--ns', 'cli-no-such-ns']);
    assert.equal(wrongNs.code, 1);
    assert.equal(wrongNs.stderr, 'pubsub: namespace cli-no-such-ns not found (code 14003)\n');
  });

  it('a broker name the API refuses prints its message and exits 1', async () => {
    const r = await api.run(['broker', 'create', 'Bad_Name!', ...NS]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^pubsub: invalid broker name: .* \(code 14001\)$/m);
    const dup = await api.run(['broker', 'create', 'cli-full', ...NS]);
    assert.equal(dup.code, 1);
    assert.match(
      dup.stderr,
      /^pubsub: broker cli-full already exists in namespace cli-brokers \(code 14005\)$/m,
    );
  });

  it('every verb requires --namespace/--ns (exit 2)', async () => {
    for (const args of [
      ['broker', 'create', 'x'],
      ['broker', 'update', 'x', '--description', 'y'],
      ['broker', 'list'],
      ['broker', 'describe', 'x'],
      ['broker', 'delete', 'x', '--yes'],
    ]) {
      const r = await api.run(args);
      assert.equal(r.code, 2, show(args, r));
      assert.match(r.stderr, /required option '--ns, --namespace <name>' not specified/, show(args, r));
    }
  });

  it('a bad --expiration is "<x> is not a time duration" and a bad --auth-type names the choices (exit 2)', async () => {
    const args = ['broker', 'create', 'cli-bad', ...NS, '--expiration', '5 fortnights'];
    const r = await api.run(args);
    assert.equal(r.code, 2, show(args, r));
    assert.match(r.stderr, /5 fortnights is not a time duration/);
    const update = await api.run(['broker', 'update', 'cli-full', ...NS, '--expiration', 'soon']);
    assert.equal(update.code, 2);
    assert.match(update.stderr, /soon is not a time duration/);
    const auth = await api.run(['broker', 'create', 'cli-bad', ...NS, '--auth-type', 'password']);
    assert.equal(auth.code, 2);
    assert.match(auth.stderr, /must be one of TOKEN, MTLS, MTLS_AND_TOKEN, NONE/);
    assert.equal((await api.run(['broker', 'describe', 'cli-bad', ...NS])).code, 1, 'nothing was created');
  });

  it('delete refuses without a terminal or --yes (exit 2); with --yes it deletes; --json prints null', async () => {
    await api.ok(['broker', 'create', 'cli-delete', ...NS]);
    const refused = await api.run(['broker', 'delete', 'cli-delete', ...NS]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /all existing clients will be disconnected\): not confirmed/);
    await api.ok(['broker', 'describe', 'cli-delete', ...NS]);

    const deleted = await api.ok(['broker', 'delete', 'cli-delete', ...NS, '--yes']);
    assert.match(deleted.stderr, /^Deleted broker cli-delete from namespace cli-brokers\.$/m);
    assert.equal((await api.run(['broker', 'describe', 'cli-delete', ...NS])).code, 1);

    await api.ok(['broker', 'create', 'cli-delete', ...NS]);
    assert.equal(await api.json(['broker', 'delete', 'cli-delete', ...NS, '-y']), null);
  });

  it('a broker created with the CLI serves MQTT.js by Host name until `broker delete` disconnects it (0x98)', async (t) => {
    await api.ok(['broker', 'create', 'cli-live', ...NS, '--auth-type', 'NONE']);
    const client = await mqtt.connectAsync(api.server.wsUrl, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      wsOptions: { headers: { host: `cli-live.cli-brokers.localhost:${new URL(api.server.wsUrl).port}` } },
    });
    t.after(() => client.endAsync(true));
    const received = new Promise<string>((resolve) => client.once('message', (_topic, p) => resolve(`${p}`)));
    await client.subscribeAsync('cli/live', { qos: 1 });
    await client.publishAsync('cli/live', 'made by the CLI', { qos: 1 });
    assert.equal(await received, 'made by the CLI');

    const disconnect = new Promise<number | undefined>((resolve) =>
      client.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    await api.ok(['broker', 'delete', 'cli-live', ...NS, '--yes']);
    assert.equal(await disconnect, 0x98); // Administrative action [MQTT-3.14.2.1]
  });
});
