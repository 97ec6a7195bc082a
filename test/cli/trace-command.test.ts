/**
 * `pubsub broker trace` run as a user runs it (the real binary) against a running server while
 * MQTT.js clients publish: one line per packet until the duration ends, `--json` one object per
 * line, Ctrl-C stops it (and the server's trace closes), usage errors exit 2, the API's refusal 1.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { spawnChild, until } from '../helpers/child-process.ts';
import { uniqueName } from '../helpers/interop-tools.ts';
import { CLI, cliEnvironment, show } from '../helpers/pubsub-process.ts';
import { type ApiServer, startApiServer } from './run-cli.ts';

let api: ApiServer;
before(async () => {
  api = await startApiServer();
});
after(() => api.server.close());

const NS = ['--ns', 'local'];

const tracesOpen = () =>
  api.server.server.tenancy.tenant(api.server.accountId, 'local', 'default').broker.traces.size;

async function connect(t: TestContext, options: IClientOptions): Promise<MqttClient> {
  const client = await mqtt.connectAsync(api.server.url, { reconnectPeriod: 0, ...options });
  t.after(() => client.endAsync(true));
  return client;
}

describe('pubsub broker trace', () => {
  it('prints each PUBLISH of a topic filter as one line until the duration ends', async (t) => {
    const root = uniqueName('cli-trace');
    const run = api.run([
      'broker',
      'trace',
      'default',
      ...NS,
      '--topic',
      `${root}/#`,
      '--payload',
      '--duration',
      '2',
    ]);
    await until(() => tracesOpen() === 1, 'the trace open');
    const pub = await connect(t, { clientId: `${root}-pub`, protocolVersion: 5 });
    await pub.publishAsync(`${root}/a`, 'hi there', { qos: 1, retain: true });
    await pub.publishAsync('not-traced', 'x', { qos: 0 });
    const result = await run;
    assert.equal(result.code, 0, show(['broker', 'trace'], result));
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 1, result.stdout);
    assert.match(
      lines[0]!,
      new RegExp(
        `^\\S+Z in  ${root}-pub PUBLISH id=\\d+ topic=${root}/a qos=1 retain bytes=8 payload="hi there"$`,
      ),
    );
    assert.match(result.stderr, new RegExp(`Tracing topic ${root}/# on broker default.local until `));
    assert.match(result.stderr, /Trace ended \(duration\): 1 packets, 0 skipped\./);
  });

  it('--json prints every event as one JSON object per line, for a client id', async (t) => {
    const id = uniqueName('cli-json');
    const run = api.run([
      'broker',
      'trace',
      'default',
      ...NS,
      '--client-id',
      id,
      '--duration',
      '1',
      '--json',
    ]);
    await until(() => tracesOpen() === 1, 'the trace open');
    const client = await connect(t, { clientId: id, protocolVersion: 4 });
    await client.publishAsync('cli-json', 'x', { qos: 0 });
    const result = await run;
    assert.equal(result.code, 0, show(['broker', 'trace', '--json'], result));
    const events = result.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(events[0]!.event, 'start');
    assert.equal(events[0]!.client_id, id);
    assert.deepEqual(
      events.filter((e) => e.event === 'packet').map((e) => `${e.direction} ${e.type}`),
      ['in CONNECT', 'out CONNACK', 'in PUBLISH'],
    );
    assert.deepEqual(events.at(-1), { event: 'end', reason: 'duration', events: 3, skipped: 0 });
  });

  it('Ctrl-C stops it (exit 0) and closes the trace on the server', async (t) => {
    const child = spawnChild(
      t,
      process.execPath,
      [CLI, 'broker', 'trace', 'default', ...NS, '--topic', '#'],
      {
        env: cliEnvironment({ PUBSUB_API_URL: api.server.apiUrl, PUBSUB_API_TOKEN: api.server.adminToken }),
      },
    );
    await until(() => tracesOpen() === 1, 'the trace open');
    child.process.kill('SIGINT');
    const exit = await child.waitForExit();
    assert.equal(exit.code, 0, child.report());
    assert.match(child.stderr, /Trace stopped\./);
    await until(() => tracesOpen() === 0, 'the trace closed');
  });

  it('usage errors exit 2; the API refusing exits 1 with its message', async () => {
    for (const args of [[], ['--client-id', 'a', '--topic', 'b'], ['--topic', 'a', '--payload-bytes', '3']]) {
      const result = await api.run(['broker', 'trace', 'default', ...NS, ...args]);
      assert.equal(result.code, 2, show(args, result));
      assert.match(result.stderr, /--client-id|--payload/);
    }
    const tooLong = await api.run(['broker', 'trace', 'default', ...NS, '--topic', 'a', '--duration', '2h']);
    assert.equal(tooLong.code, 1, show(['--duration', '2h'], tooLong));
    assert.match(tooLong.stderr, /duration must be between 1 and 3600 seconds \(code 14009\)/);
    const invalid = await api.run(['broker', 'trace', 'default', ...NS, '--topic', 'a/#/b']);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /not a valid MQTT topic filter/);
  });
});
