/**
 * `pubsub broker create|update --limit name=value` run as a user runs it (the real binary):
 * the limits reach the broker object (`--json`, and `describe`'s `limits` line), `default`
 * returns one to the server's flag, a name that is no limit is a usage error (exit 2) and a
 * value the API refuses an API error (exit 1); and a limit set with the CLI is in force for an
 * MQTT.js client (CONNACK 0x97 past `max_connections`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { ReasonCode } from '../../src/protocol/index.ts';
import { WAIT_MS } from '../helpers/child-process.ts';
import { connackCode } from '../helpers/connack-code.ts';
import { uniqueName } from '../helpers/interop-tools.ts';
import { type ApiServer, fieldsOf, startApiServer } from './run-cli.ts';

interface Broker {
  name: string;
  limits: Record<string, number | string | null>;
}

let api: ApiServer;
before(async () => {
  api = await startApiServer();
  await api.ok(['namespace', 'create', 'cli-limits']);
});
after(() => api.server.close());

const NS = ['--ns', 'cli-limits'];

/** The CONNACK code an MQTT.js v5 client gets from broker `<name>.cli-limits` (0: accepted). */
const connackOf = (name: string): Promise<number> =>
  connackCode(api.server.url, 5, undefined, { username: `${name}.cli-limits` });

describe('pubsub broker --limit', () => {
  it('create sets limits, update changes and resets them field by field, describe shows them', async () => {
    const created = await api.json<Broker>([
      'broker',
      'create',
      'lim-a',
      ...NS,
      '--limit',
      'max_connections=100',
      '--limit',
      'max-topic-levels=8',
      '--limit',
      'rate_limit_action=disconnect',
    ]);
    assert.equal(created.limits.max_connections, 100);
    assert.equal(created.limits.max_topic_levels, 8, 'dashes are underscores');
    assert.equal(created.limits.rate_limit_action, 'disconnect');

    const updated = await api.json<Broker>([
      'broker',
      'update',
      'lim-a',
      ...NS,
      '--limit',
      'max_connections=default',
      '--limit',
      'max_client_messages_per_second=50',
    ]);
    assert.equal(updated.limits.max_connections, null);
    assert.equal(updated.limits.max_client_messages_per_second, 50);
    assert.equal(updated.limits.max_topic_levels, 8, 'limits not named are kept');

    const { stdout } = await api.ok(['broker', 'describe', 'lim-a', ...NS]);
    assert.equal(
      fieldsOf(stdout).get('limits'),
      'max_client_messages_per_second=50, max_topic_levels=8, rate_limit_action=disconnect',
    );
    const plain = await api.ok(['broker', 'create', 'lim-plain', ...NS]);
    assert.equal(fieldsOf(plain.stdout).get('limits'), 'server defaults');
  });

  it('a name that is no limit, or a value that is not a number, is a usage error (exit 2)', async () => {
    const unknown = await api.run(['broker', 'create', 'lim-x', ...NS, '--limit', 'max_conections=5']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown limit max_conections; one of max_connections, /);
    const nan = await api.run(['broker', 'create', 'lim-x', ...NS, '--limit', 'max_connections=many']);
    assert.equal(nan.code, 2);
    assert.match(nan.stderr, /max_connections takes a whole number or default/);
  });

  it("a value outside the server option's range is the API's error (exit 1)", async () => {
    const result = await api.run(['broker', 'create', 'lim-y', ...NS, '--limit', 'max_topic_length=4']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /max_topic_length must be >= 16/);
  });

  it('a max_connections set with the CLI refuses the MQTT client past it (CONNACK 0x97)', async (t) => {
    await api.ok(['broker', 'create', 'lim-c', ...NS, '--auth-type', 'none', '--limit', 'max_connections=1']);
    // One client stays connected (connackOf ends each one it opens).
    const held = await mqtt.connectAsync(api.server.url, {
      protocolVersion: 5,
      clientId: uniqueName('cli-lim'),
      username: 'lim-c.cli-limits',
      reconnectPeriod: 0,
      connectTimeout: WAIT_MS,
    });
    t.after(() => held.endAsync(true));
    assert.equal(await connackOf('lim-c'), ReasonCode.QuotaExceeded);
    await api.ok(['broker', 'update', 'lim-c', ...NS, '--limit', 'max_connections=2']);
    assert.equal(await connackOf('lim-c'), 0, 'raised at once');
  });
});
