/**
 * `GET|DELETE .../brokers/{broker}/retained` against a running server: messages retained by
 * MQTT.js (v5 with properties, v3.1.1) and mosquitto_pub, listed by filter as a subscriber would
 * receive them, paged without counting, payloads only when asked and cut to a size; invalid
 * filters refused in the envelope; deletion by ?topic= (any topic) or by path segment, with
 * nothing sent to subscribers, and curl showing how an encoded `/` in the path is refused.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { Message } from '../../src/router/index.ts';
import {
  curl,
  describeWithTool,
  mosquittoClients,
  mosquittoPub,
  uniqueName,
} from '../helpers/interop-tools.ts';
import { type Envelope, pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

interface Retained {
  topic: string;
  qos: number;
  payload_size: number;
  payload?: string;
  payload_truncated?: boolean;
  properties: Record<string, unknown>;
  stored_at: string;
  expires_at: string | null;
}

type PageEnvelope = Envelope<Retained[]> & {
  result_info: { page: number; per_page: number; count: number; has_more: boolean };
};

const RETAINED = '/namespaces/local/brokers/default/retained';

let ts: TestServer;
before(async () => {
  ts = await startServer({ httpPort: 0 });
});
after(() => ts.close());

async function connect(t: TestContext, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(ts.url, { reconnectPeriod: 0, protocolVersion: 5, ...options });
  t.after(() => client.endAsync(true));
  return client;
}

const list = (query: string) =>
  pubsubApi<Retained[]>(ts, 'GET', `${RETAINED}?${query}`) as Promise<PageEnvelope>;
const filter = (f: string, rest = '') => list(`filter=${encodeURIComponent(f)}${rest}`);

describe('admin API: retained messages', () => {
  it('lists what a filter matches with topic, QoS, size, v5 properties and times; no payload unless asked', async (t) => {
    const root = uniqueName('props');
    const v5 = await connect(t);
    const before = Date.now();
    await v5.publishAsync(`${root}/a`, 'hello world', {
      qos: 1,
      retain: true,
      properties: {
        contentType: 'text/plain',
        payloadFormatIndicator: true,
        responseTopic: 'replies',
        correlationData: Buffer.from([1, 2, 3]),
        userProperties: { site: 'lab' },
        messageExpiryInterval: 600,
      },
    });
    const v3 = await connect(t, { protocolVersion: 4 });
    await v3.publishAsync(`${root}/b/c`, 'x', { qos: 0, retain: true });
    await v3.publishAsync(`${root}x/other`, 'not matched', { qos: 0, retain: true });

    const env = await filter(`${root}/#`);
    assert.equal(env.success, true, JSON.stringify(env));
    assert.deepEqual(env.result_info, { page: 1, per_page: 1000, count: 2, has_more: false });
    const [a, c] = env.result;
    assert.equal(a!.topic, `${root}/a`);
    assert.equal(a!.qos, 1);
    assert.equal(a!.payload_size, 11);
    assert.equal(a!.payload, undefined);
    assert.deepEqual(a!.properties, {
      payload_format_indicator: 1,
      content_type: 'text/plain',
      response_topic: 'replies',
      correlation_data: 'AQID',
      user_properties: [{ key: 'site', value: 'lab' }],
      message_expiry_interval: 600,
    });
    assert.ok(Date.parse(a!.stored_at) >= before - 1000);
    assert.equal(Date.parse(a!.expires_at!), Date.parse(a!.stored_at) + 600_000);
    assert.equal(c!.topic, `${root}/b/c`);
    assert.deepEqual(c!.properties, {});
    assert.equal(c!.expires_at, null);

    const plus = await filter(`${root}/+/c`);
    assert.deepEqual(
      plus.result.map((m) => m.topic),
      [`${root}/b/c`],
    );
  });

  it('payload=true gives the payload in base64, cut to payload_bytes', async (t) => {
    const topic = uniqueName('payload');
    await (await connect(t)).publishAsync(topic, 'abcdefgh', { qos: 0, retain: true });
    const whole = await filter(topic, '&payload=true');
    assert.equal(whole.result[0]!.payload, Buffer.from('abcdefgh').toString('base64'));
    assert.equal(whole.result[0]!.payload_truncated, false);
    const cut = await filter(topic, '&payload=true&payload_bytes=3');
    assert.equal(Buffer.from(cut.result[0]!.payload!, 'base64').toString(), 'abc');
    assert.equal(cut.result[0]!.payload_truncated, true);
    const tooMany = await filter(topic, '&payload=true&payload_bytes=65537');
    assert.equal(tooMany.errors[0]!.code, 14009);
  });

  it('pages by page and per_page, saying has_more instead of counting every match', async (t) => {
    const root = uniqueName('pages');
    const client = await connect(t);
    for (const n of [1, 2, 3, 4, 5]) await client.publishAsync(`${root}/${n}`, `m${n}`, { retain: true });
    const seen: string[] = [];
    for (const [page, more] of [
      [1, true],
      [2, true],
      [3, false],
    ] as const) {
      const env = await filter(`${root}/+`, `&per_page=2&page=${page}`);
      assert.equal(env.result_info.has_more, more, `page ${page}`);
      seen.push(...env.result.map((m) => m.topic));
    }
    assert.deepEqual(
      seen,
      [1, 2, 3, 4, 5].map((n) => `${root}/${n}`),
    );
    const past = await filter(`${root}/+`, '&per_page=2&page=4');
    assert.deepEqual(past.result, []);
    assert.equal(past.result_info.has_more, false);
  });

  it('# does not reach $ topics [MQTT-4.7.2-1]; a $ filter does', async (t) => {
    const topic = `$${uniqueName('dollar')}/x`;
    // Retained server-side, as $SYS topics are (clients may not publish to $SYS).
    ts.server.tenancy
      .defaultTenant()!
      .broker.publish(new Message({ topic, payload: Buffer.from('d'), qos: 0, retain: true }));
    t.after(() => ts.server.tenancy.defaultTenant()!.broker.deleteRetained(topic));
    const all = await filter('#', '&per_page=1000');
    assert.ok(!all.result.some((m) => m.topic === topic));
    const dollar = await filter(topic);
    assert.deepEqual(
      dollar.result.map((m) => m.topic),
      [topic],
    );
  });

  it('an invalid filter is 400 (code 14009) in the envelope: misplaced wildcards, $share, empty', async () => {
    for (const f of ['a/#/b', 'a+/b', '$share/g/a/#', '']) {
      const env = await filter(f);
      assert.equal(env.success, false, f);
      assert.equal(env.result, null);
      assert.equal(env.errors[0]!.code, 14009, `${f}: ${JSON.stringify(env)}`);
    }
  });

  it('DELETE ?topic= removes a retained message (topic with /) without sending subscribers anything', async (t) => {
    const topic = `${uniqueName('del')}/a/b`;
    const client = await connect(t);
    await client.publishAsync(topic, 'old', { qos: 1, retain: true });
    const watcher = await connect(t);
    const received: string[] = [];
    let fenced: () => void;
    const fence = new Promise<void>((resolve) => {
      fenced = resolve;
    });
    watcher.on('message', (_t, p) => {
      received.push(`${p}`);
      if (`${p}` === 'fence') fenced();
    });
    await watcher.subscribeAsync(`${topic}/#`, { qos: 1 }); // `a/b/#` matches `a/b` too [MQTT-4.7.1-2]

    const env = await pubsubApi(ts, 'DELETE', `${RETAINED}?topic=${encodeURIComponent(topic)}`);
    assert.equal(env.success, true, JSON.stringify(env));
    assert.equal(env.result, null);
    await client.publishAsync(`${topic}/fence`, 'fence', { qos: 1 });
    await fence;
    assert.deepEqual(
      received,
      ['old', 'fence'],
      'the retained message on subscribe; nothing published by the delete',
    );
    assert.deepEqual((await filter(topic)).result, []);

    const late = await connect(t);
    const lateGot: string[] = [];
    late.on('message', (_t, p) => lateGot.push(`${p}`));
    await late.subscribeAsync(topic, { qos: 1 });
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(lateGot, [], 'a new subscriber gets no retained message');

    const again = await pubsubApi(ts, 'DELETE', `${RETAINED}?topic=${encodeURIComponent(topic)}`);
    assert.equal(again.errors[0]!.code, 14015);
    const wildcard = await pubsubApi(ts, 'DELETE', `${RETAINED}?topic=a/%23`);
    assert.equal(wildcard.errors[0]!.code, 14009);
    const none = await pubsubApi(ts, 'DELETE', RETAINED);
    assert.equal(none.errors[0]!.code, 14009);
  });

  it('DELETE .../retained/{topic} removes a one-segment topic, percent-encoded', async (t) => {
    const topic = `${uniqueName('seg')} é`;
    await (await connect(t)).publishAsync(topic, 'v', { qos: 0, retain: true });
    const env = await pubsubApi(ts, 'DELETE', `${RETAINED}/${encodeURIComponent(topic)}`);
    assert.equal(env.success, true, JSON.stringify(env));
    assert.deepEqual((await filter(topic)).result, []);
  });
});

describeWithTool('admin API: retained messages, with mosquitto_pub', mosquittoClients, () => {
  it('lists a message mosquitto_pub retained (v3.1.1, QoS 2)', async (t) => {
    const topic = `${uniqueName('mosq')}/t`;
    const pub = await mosquittoPub(t, [
      '-h',
      '127.0.0.1',
      '-p',
      String(ts.port),
      '-t',
      topic,
      '-m',
      'from mosquitto',
      '-q',
      '2',
      '-r',
    ]);
    assert.equal(pub.exit!.code, 0, pub.report());
    const env = await filter(topic, '&payload=true');
    assert.equal(env.result[0]!.qos, 2);
    assert.equal(Buffer.from(env.result[0]!.payload!, 'base64').toString(), 'from mosquitto');
  });
});

describeWithTool('admin API: retained messages, with curl', curl, () => {
  const run = promisify(execFile);
  const sh = async (script: string): Promise<string> => {
    const env = {
      ...process.env,
      TOKEN: ts.adminToken,
      BASE: `${ts.apiUrl}/client/v4/accounts/${ts.accountId}/pubsub${RETAINED}`,
    };
    return (await run('bash', ['-c', script], { env })).stdout;
  };

  it('curl: a %2F in the path is refused (400, code 7010); -G --data-urlencode topic= deletes', async (t) => {
    const topic = `${uniqueName('curl')}/a b/c`;
    await (await connect(t)).publishAsync(topic, 'v', { qos: 0, retain: true });
    const refused = await sh(
      `curl -s -w ' %{http_code}' -X DELETE -H "Authorization: Bearer $TOKEN" "$BASE/${encodeURIComponent(topic)}"`,
    );
    const [body, status] = [
      refused.slice(0, refused.lastIndexOf(' ')),
      refused.slice(refused.lastIndexOf(' ') + 1),
    ];
    assert.equal(status, '400', refused);
    assert.equal(JSON.parse(body).errors[0].code, 7010);

    const listed = JSON.parse(
      await sh(
        `curl -s -G -H "Authorization: Bearer $TOKEN" "$BASE" --data-urlencode 'filter=${topic.split('/')[0]}/#'`,
      ),
    ) as PageEnvelope;
    assert.deepEqual(
      listed.result.map((m) => m.topic),
      [topic],
    );

    const deleted = JSON.parse(
      await sh(
        `curl -s -G -X DELETE -H "Authorization: Bearer $TOKEN" "$BASE" --data-urlencode 'topic=${topic}'`,
      ),
    ) as Envelope;
    assert.equal(deleted.success, true, JSON.stringify(deleted));
    assert.deepEqual((await filter(topic)).result, []);
  });
});
