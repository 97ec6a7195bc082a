/**
 * The broker object's `limits` through the admin API (docs/api.md, docs/limits.md): set on
 * create, shown on GET with every field (null: the server's flag), merged field by field on
 * PATCH (null returns a field to the server's flag), kept across a restart, and refused with
 * 400 in the Cloudflare envelope: code 14009 naming a field that is no limit, 6009 for a value
 * out of its option's range, not an integer, or an unknown action. Also with curl, as the guide's users call it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { curl, describeWithTool } from '../helpers/interop-tools.ts';
import { type Envelope, pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

type Limits = Record<string, number | string | null>;
interface Broker {
  name: string;
  limits: Limits;
}

const run = promisify(execFile);
const curlJson = async (args: string[]): Promise<Envelope<Broker>> =>
  JSON.parse((await run('curl', ['-sS', ...args])).stdout) as Envelope<Broker>;

async function serve(t: TestContext, dataDir = ':memory:'): Promise<TestServer> {
  const ts = await startServer({ httpPort: 0, dataDir });
  t.after(() => ts.close());
  return ts;
}

async function withNamespace(ts: TestServer, ns: string): Promise<void> {
  assert.equal((await pubsubApi(ts, 'POST', '/namespaces', { name: ns })).success, true);
}

const EVERY_FIELD = [
  'max_connections',
  'max_subscriptions_per_client',
  'max_messages_per_second',
  'max_bytes_per_second',
  'max_client_messages_per_second',
  'max_client_bytes_per_second',
  'max_retained_messages',
  'max_retained_bytes',
  'max_topic_length',
  'max_topic_levels',
  'max_queued_messages',
  'max_queued_bytes',
  'rate_limit_action',
];

describe('broker limits in the admin API', () => {
  it('set on create, shown on GET with every field (null: the server default), merged on PATCH', async (t) => {
    const ts = await serve(t);
    await withNamespace(ts, 'lim');
    const created = await pubsubApi<Broker>(ts, 'POST', '/namespaces/lim/brokers', {
      name: 'a',
      limits: { max_connections: 100, rate_limit_action: 'disconnect' },
    });
    assert.equal(created.success, true, JSON.stringify(created.errors));
    assert.deepEqual(Object.keys(created.result.limits).sort(), [...EVERY_FIELD].sort());
    assert.equal(created.result.limits.max_connections, 100);
    assert.equal(created.result.limits.rate_limit_action, 'disconnect');
    assert.equal(created.result.limits.max_topic_levels, null);

    const patched = await pubsubApi<Broker>(ts, 'PATCH', '/namespaces/lim/brokers/a', {
      limits: { max_connections: null, max_topic_levels: 4 },
    });
    assert.equal(patched.success, true, JSON.stringify(patched.errors));
    const got = await pubsubApi<Broker>(ts, 'GET', '/namespaces/lim/brokers/a');
    assert.equal(got.result.limits.max_connections, null, 'null returns to the server default');
    assert.equal(got.result.limits.max_topic_levels, 4);
    assert.equal(got.result.limits.rate_limit_action, 'disconnect', 'a field not given is kept');

    // A PATCH without limits leaves them; a broker without any shows every field null.
    await pubsubApi(ts, 'PATCH', '/namespaces/lim/brokers/a', { description: 'x' });
    assert.equal(
      (await pubsubApi<Broker>(ts, 'GET', '/namespaces/lim/brokers/a')).result.limits.max_topic_levels,
      4,
    );
    const plain = await pubsubApi<Broker>(ts, 'POST', '/namespaces/lim/brokers', { name: 'b' });
    assert.ok(Object.values(plain.result.limits).every((v) => v === null));
  });

  it('kept across a restart on the same data directory', async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pubsub-limits-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await startServer({ httpPort: 0, dataDir });
    try {
      await withNamespace(first, 'lim');
      await pubsubApi(first, 'POST', '/namespaces/lim/brokers', {
        name: 'a',
        limits: { max_retained_messages: 7 },
      });
    } finally {
      await first.close();
    }
    const second = await serve(t, dataDir);
    const got = await pubsubApi<Broker>(second, 'GET', '/namespaces/lim/brokers/a');
    assert.equal(got.result.limits.max_retained_messages, 7);
    const tenant = [...second.server.tenancy.tenants()].find((x) => x.record.name === 'a');
    assert.equal(tenant?.broker.limits.maxRetainedMessages, 7, 'the live broker applies it');
  });

  const refused: [string, Limits, number, RegExp][] = [
    [
      'an unknown field',
      { max_conections: 5 },
      14009,
      /limits\.max_conections is not a limit; the limits are max_connections, /,
    ],
    ['a number below its option minimum', { max_topic_length: 5 }, 6009, /max_topic_length must be >= 16/],
    [
      'a number above its option maximum',
      { max_subscriptions_per_client: 10_000_001 },
      6009,
      /must be <= 10000000/,
    ],
    ['a fraction', { max_connections: 1.5 }, 6009, /max_connections must be integer/],
    [
      'an unknown action',
      { rate_limit_action: 'drop' },
      6009,
      /rate_limit_action must be equal to one of the allowed values/,
    ],
  ];
  for (const [what, limits, code, message] of refused) {
    it(`refuses ${what} with 400 code ${code} in the envelope, on create and on update`, async (t) => {
      const ts = await serve(t);
      await withNamespace(ts, 'lim');
      const create = await pubsubApi(ts, 'POST', '/namespaces/lim/brokers', { name: 'a', limits });
      assert.equal(create.success, false);
      assert.equal(create.errors[0]?.code, code);
      assert.match(create.errors[0]?.message ?? '', message);
      await pubsubApi(ts, 'POST', '/namespaces/lim/brokers', { name: 'a' });
      const update = await pubsubApi(ts, 'PATCH', '/namespaces/lim/brokers/a', { limits });
      assert.equal(update.errors[0]?.code, code);
      assert.match(update.errors[0]?.message ?? '', message);
    });
  }
});

describeWithTool('broker limits with curl', curl, () => {
  it('PATCH sets a limit and GET shows it', async (t) => {
    const ts = await serve(t);
    await withNamespace(ts, 'lim');
    await pubsubApi(ts, 'POST', '/namespaces/lim/brokers', { name: 'a' });
    const url = `${ts.apiUrl}/client/v4/accounts/${ts.accountId}/pubsub/namespaces/lim/brokers/a`;
    const auth = ['-H', `Authorization: Bearer ${ts.adminToken}`];
    const patched = await curlJson([
      '-X',
      'PATCH',
      url,
      ...auth,
      '-H',
      'Content-Type: application/json',
      '--data',
      '{"limits":{"max_client_messages_per_second":50}}',
    ]);
    assert.equal(patched.result.limits.max_client_messages_per_second, 50);
    const got = await curlJson([url, ...auth]);
    assert.equal(got.result.limits.max_client_messages_per_second, 50);
  });
});
