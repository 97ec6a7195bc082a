/**
 * GET .../pubsub/stats: each broker's figures now, under the admin token's permission and scope
 * (docs/api.md, "Broker figures"), read by MQTT.js traffic through a real server.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import mqtt from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { addAnonymousBrokers, startServer, type TestServer } from '../helpers/server.ts';

interface BrokerStats {
  namespace: string;
  broker: string;
  connections: number;
  messages_received: number;
  messages_sent: number;
  messages_dropped: number;
  bytes_received: number;
  bytes_sent: number;
}

let ts: TestServer;
before(async () => {
  ts = await startServer({ httpPort: 0 });
  addAnonymousBrokers(ts, 'stats-a', ['one']);
  addAnonymousBrokers(ts, 'stats-b', ['two']);
});
after(() => ts.close());

async function stats(
  token = ts.adminToken,
): Promise<{ status: number; brokers: BrokerStats[]; time: string }> {
  const res = await fetch(`${ts.apiUrl}/client/v4/accounts/${ts.accountId}/pubsub/stats`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const body = (await res.json()) as { result: { brokers: BrokerStats[]; time: string } | null };
  return { status: res.status, brokers: body.result?.brokers ?? [], time: body.result?.time ?? '' };
}

const of = (list: BrokerStats[], name: string) => list.find((b) => `${b.broker}.${b.namespace}` === name);

for (const protocolVersion of [4, 5] as const) {
  it(`counts a broker's connections and the messages its MQTT ${protocolVersion === 5 ? '5' : '3.1.1'} clients send and receive`, async () => {
    const before = of((await stats()).brokers, 'one.stats-a')!;
    const client = await mqtt.connectAsync(ts.url, {
      protocolVersion,
      username: 'one.stats-a',
      reconnectPeriod: 0,
    });
    try {
      await client.subscribeAsync('s/#');
      const received = new Promise<void>((resolve) => {
        let n = 0;
        client.on('message', () => ++n === 3 && resolve());
      });
      for (let i = 0; i < 3; i++) await client.publishAsync('s/x', String(i), { qos: 1 });
      await received;
      await until(
        async () => of((await stats()).brokers, 'one.stats-a')!.messages_sent >= before.messages_sent + 3,
        'the deliveries counted',
      );
      const now = await stats();
      const one = of(now.brokers, 'one.stats-a')!;
      assert.equal(one.connections, before.connections + 1);
      assert.equal(one.messages_received, before.messages_received + 3);
      assert.equal(one.messages_sent, before.messages_sent + 3);
      assert.equal(one.messages_dropped, before.messages_dropped);
      assert.ok(one.bytes_received > before.bytes_received);
      assert.ok(one.bytes_sent > before.bytes_sent);
      assert.equal(
        of(now.brokers, 'two.stats-b')!.messages_received,
        0,
        "another broker's figures stay apart",
      );
      assert.ok(Math.abs(Date.parse(now.time) - Date.now()) < 60_000);
    } finally {
      await client.endAsync();
    }
  });
}

it("a token limited to one namespace sees only that namespace's brokers; one without pubsub:read is refused", async () => {
  const made = await fetch(`${ts.apiUrl}/client/v4/accounts/${ts.accountId}/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ts.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'stats-a reader',
      permissions: ['pubsub:read'],
      resources: { namespaces: ['stats-a'] },
    }),
  });
  const limited = ((await made.json()) as { result: { value: string } }).result.value;
  assert.deepEqual(
    (await stats(limited)).brokers.map((b) => `${b.broker}.${b.namespace}`),
    ['one.stats-a'],
  );
  const all = (await stats()).brokers.map((b) => `${b.broker}.${b.namespace}`);
  for (const name of ['default.local', 'one.stats-a', 'two.stats-b']) assert.ok(all.includes(name), name);
  const editor = await fetch(`${ts.apiUrl}/client/v4/accounts/${ts.accountId}/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ts.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'tokens only', permissions: ['tokens:edit'] }),
  });
  const refused = await stats(((await editor.json()) as { result: { value: string } }).result.value);
  assert.equal(refused.status, 403);
});
