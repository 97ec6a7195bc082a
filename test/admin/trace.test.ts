/**
 * `GET .../brokers/{broker}/trace` against a running server, read as a user reads it (fetch's
 * body stream, `curl -N`), while real clients (MQTT.js v5 and v3.1.1, mosquitto_pub) talk:
 * a client's packets in and out, a topic filter's PUBLISH packets, payloads only when asked and
 * cut, the duration bound, a slow reader's skipped count, another broker's traffic never shown,
 * the end when the reader leaves, the broker is deleted or the server stops, the admin token,
 * and a clear 400 for every bad parameter.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it, type TestContext } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { spawnChild, until } from '../helpers/child-process.ts';
import {
  curl,
  describeWithTool,
  mosquittoClients,
  mosquittoPub,
  uniqueName,
} from '../helpers/interop-tools.ts';
import { type Envelope, startServer, type TestServer } from '../helpers/server.ts';

interface TraceEvent {
  event: string;
  data: Record<string, unknown>;
}

let ts: TestServer;
before(async () => {
  ts = await startServer({ httpPort: 0, traceMaxDuration: 120 });
  ts.server.tenancy.createNamespace(ts.accountId, { name: 'other' });
  ts.server.tenancy.createBroker(ts.accountId, 'other', { name: 'b', authType: 'NONE' });
});
after(() => ts.close());

const tracePath = (server: TestServer, ns = 'local', broker = 'default') =>
  `${server.apiUrl}/client/v4/accounts/${server.accountId}/pubsub/namespaces/${ns}/brokers/${broker}/trace`;

const tracesOpen = (server: TestServer, ns = 'local', broker = 'default') =>
  server.server.tenancy.tenant(server.accountId, ns, broker).broker.traces.size;

/** The events of a Server-Sent Events stream read so far (a last, partial block left out). */
function parseEvents(text: string): TraceEvent[] {
  const events: TraceEvent[] = [];
  for (const block of text.split('\n\n').slice(0, -1)) {
    const name = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (name !== undefined && data !== undefined) events.push({ event: name, data: JSON.parse(data) });
  }
  return events;
}

/** An open trace read with fetch: its events as they come; `close` drops the connection. */
class TraceReader {
  readonly events: TraceEvent[] = [];
  readonly done: Promise<void>;
  readonly #abort: AbortController;

  private constructor(response: Response, abort: AbortController) {
    this.#abort = abort;
    this.done = (async () => {
      let text = '';
      try {
        for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
          text += chunk;
          const end = text.lastIndexOf('\n\n');
          if (end === -1) continue;
          this.events.push(...parseEvents(text.slice(0, end + 2)));
          text = text.slice(end + 2);
        }
      } catch (err) {
        if (!abort.signal.aborted) throw err;
      }
    })();
  }

  static async open(t: TestContext, query: string, server = ts, ns = 'local', broker = 'default') {
    const abort = new AbortController();
    const response = await fetch(`${tracePath(server, ns, broker)}?${query}`, {
      headers: { authorization: `Bearer ${server.adminToken}` },
      signal: abort.signal,
    });
    assert.equal(response.status, 200, await (response.status === 200 ? '' : response.text()));
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = new TraceReader(response, abort);
    t.after(() => reader.close());
    await until(() => reader.events.some((e) => e.event === 'start'), 'the start event');
    return reader;
  }

  packets(): Record<string, unknown>[] {
    return this.events.filter((e) => e.event === 'packet').map((e) => e.data);
  }

  async waitFor(what: string, predicate: (p: Record<string, unknown>) => boolean) {
    await until(() => this.packets().some(predicate), what);
    return this.packets().find(predicate)!;
  }

  close(): void {
    this.#abort.abort();
  }
}

async function connect(t: TestContext, options: IClientOptions, url = ts.url): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...options });
  t.after(() => client.endAsync(true));
  return client;
}

/** A request refused before any stream: its status and envelope (`token` null: none sent). */
async function refusal(query: string, token: string | null = ts.adminToken) {
  const response = await fetch(`${tracePath(ts)}?${query}`, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: (await response.json()) as Envelope<null> };
}

describe('admin API: packet trace', () => {
  it('a client trace shows every packet of an MQTT.js v5 client, in and out, with v5 properties and no payload', async (t) => {
    const id = uniqueName('trace-v5');
    const trace = await TraceReader.open(t, `client_id=${encodeURIComponent(id)}`);
    const client = await connect(t, {
      clientId: id,
      protocolVersion: 5,
      username: 'someone',
      password: 'secret-password',
      properties: { sessionExpiryInterval: 30 },
    });
    await client.subscribeAsync('trace-v5/+', { qos: 1, properties: { subscriptionIdentifier: 9 } });
    const received = new Promise((resolve) => client.once('message', resolve));
    await client.publishAsync('trace-v5/x', 'hello', {
      qos: 1,
      properties: { userProperties: { k: 'v' }, contentType: 'text/plain' },
    });
    await received;
    const other = await connect(t, { clientId: uniqueName('bystander'), protocolVersion: 5 });
    await other.publishAsync('elsewhere', 'not traced', { qos: 0 });
    await trace.waitFor('the PUBACK to the client', (p) => p.type === 'PUBACK' && p.direction === 'out');
    await trace.waitFor('the PUBLISH out', (p) => p.type === 'PUBLISH' && p.direction === 'out');

    const packets = trace.packets();
    assert.ok(
      packets.every((p) => p.client_id === id),
      'only the traced client',
    );
    const seen = packets.map((p) => `${p.direction} ${p.type}`);
    for (const expected of [
      'in CONNECT',
      'out CONNACK',
      'in SUBSCRIBE',
      'out SUBACK',
      'in PUBLISH',
      'out PUBACK',
      'out PUBLISH',
    ])
      assert.ok(seen.includes(expected), `${expected} in ${seen.join(', ')}`);
    assert.ok(seen.indexOf('in CONNECT') < seen.indexOf('out CONNACK'), 'in wire order');
    const connectEvent = packets.find((p) => p.type === 'CONNECT')!;
    assert.equal(connectEvent.protocol_version, 5);
    assert.equal(connectEvent.username, 'someone');
    assert.equal(connectEvent.password_size, 'secret-password'.length);
    assert.ok(!JSON.stringify(packets).includes('secret-password'), 'never the password');
    assert.deepEqual(connectEvent.properties, { session_expiry_interval: 30 });
    const subscribe = packets.find((p) => p.type === 'SUBSCRIBE')!;
    assert.deepEqual(subscribe.subscriptions, [
      { filter: 'trace-v5/+', qos: 1, no_local: false, retain_as_published: false, retain_handling: 0 },
    ]);
    assert.deepEqual(subscribe.properties, { subscription_identifiers: [9] });
    assert.deepEqual(packets.find((p) => p.type === 'SUBACK')!.reason_codes, [1]);
    const publishIn = packets.find((p) => p.type === 'PUBLISH' && p.direction === 'in')!;
    assert.equal(publishIn.topic, 'trace-v5/x');
    assert.equal(publishIn.qos, 1);
    assert.equal(publishIn.dup, false);
    assert.equal(publishIn.retain, false);
    assert.equal(typeof publishIn.packet_id, 'number');
    assert.equal(publishIn.payload_size, 5);
    assert.equal(publishIn.payload, undefined, 'no payload unless payload=true');
    assert.deepEqual(publishIn.properties, {
      content_type: 'text/plain',
      user_properties: [{ key: 'k', value: 'v' }],
    });
    const puback = packets.find((p) => p.type === 'PUBACK')!;
    assert.equal(puback.packet_id, publishIn.packet_id);
    assert.equal(puback.reason_code, 0);
    const publishOut = packets.find((p) => p.type === 'PUBLISH' && p.direction === 'out')!;
    assert.equal(publishOut.topic, 'trace-v5/x');
    assert.deepEqual(
      (publishOut.properties as { subscription_identifiers: number[] }).subscription_identifiers,
      [9],
    );

    await client.endAsync();
    await trace.waitFor('the DISCONNECT', (p) => p.type === 'DISCONNECT' && p.direction === 'in');
  });

  it('a topic trace with a wildcard shows matching PUBLISH packets of MQTT.js v3.1.1 clients, in and out, with the payload cut', async (t) => {
    const root = uniqueName('trace-topic');
    const trace = await TraceReader.open(
      t,
      `topic=${encodeURIComponent(`${root}/+/temp`)}&payload=true&payload_bytes=5`,
    );
    const sub = await connect(t, { clientId: uniqueName('sub'), protocolVersion: 4 });
    await sub.subscribeAsync(`${root}/#`, { qos: 0 });
    const pub = await connect(t, { clientId: uniqueName('pub'), protocolVersion: 4 });
    await pub.publishAsync(`${root}/kitchen/temp`, 'twenty-one degrees', { qos: 1, retain: true });
    await pub.publishAsync(`${root}/kitchen/humidity`, 'ignored', { qos: 0 });
    await pub.publishAsync(`${root}/hall/temp`, Buffer.from([0xff, 0x00, 0xfe, 0x01, 0x02, 0x03]), {
      qos: 0,
    });
    await pub.publishAsync(`${root}/hall/temp`, 'é€€€', { qos: 0 });
    await trace.waitFor('the last PUBLISH out', (p) => p.direction === 'out' && p.payload_size === 11);

    const packets = trace.packets();
    assert.ok(
      packets.every((p) => p.type === 'PUBLISH'),
      'PUBLISH packets only',
    );
    assert.ok(!packets.some((p) => String(p.topic).endsWith('humidity')), 'only matching topics');
    const first = packets.filter((p) => p.topic === `${root}/kitchen/temp`);
    assert.deepEqual(
      first.map((p) => p.direction),
      ['in', 'out'],
    );
    assert.equal(first[0]!.retain, true);
    assert.equal(first[0]!.qos, 1);
    assert.equal(first[0]!.properties, undefined, 'no properties in v3.1.1');
    assert.deepEqual(
      [first[0]!.payload, first[0]!.payload_encoding, first[0]!.payload_truncated, first[0]!.payload_size],
      ['twent', 'utf8', true, 18],
    );
    assert.equal(first[1]!.qos, 0, 'out at the subscription QoS');
    const binary = packets.find((p) => p.payload_size === 6)!;
    assert.deepEqual(
      [binary.payload, binary.payload_encoding, binary.payload_truncated],
      [Buffer.from([0xff, 0x00, 0xfe, 0x01, 0x02]).toString('base64'), 'base64', true],
    );
    const cutText = packets.find((p) => p.payload_size === 11)!;
    assert.deepEqual(
      [cutText.payload, cutText.payload_encoding],
      ['é€', 'utf8'],
      'a cut character is dropped',
    );
  });

  describeWithTool('mosquitto_pub', mosquittoClients, () => {
    it('a topic trace shows mosquitto_pub v5 and v3.1.1 PUBLISH packets', async (t) => {
      const topic = uniqueName('trace-mosq');
      const trace = await TraceReader.open(t, `topic=${encodeURIComponent(topic)}&payload=true`);
      for (const version of ['mqttv5', 'mqttv311']) {
        const pub = await mosquittoPub(t, [
          '-p',
          String(ts.port),
          '-V',
          version,
          '-q',
          '1',
          '-t',
          topic,
          '-m',
          version,
        ]);
        assert.equal(pub.exit?.code, 0, pub.report());
      }
      await trace.waitFor('the v3.1.1 message', (p) => p.payload === 'mqttv311');
      assert.deepEqual(
        trace.packets().map((p) => [p.direction, p.type, p.topic, p.qos, p.payload]),
        [
          ['in', 'PUBLISH', topic, 1, 'mqttv5'],
          ['in', 'PUBLISH', topic, 1, 'mqttv311'],
        ],
      );
    });
  });

  describeWithTool('curl -N', curl, () => {
    it('the stream ends after its duration with an end event, read by curl -N', async (t) => {
      const topic = uniqueName('trace-curl');
      const started = Date.now();
      const reader = spawnChild(t, 'curl', [
        '-sN',
        '-H',
        `Authorization: Bearer ${ts.adminToken}`,
        `${tracePath(ts)}?topic=${topic}&duration=1`,
      ]);
      await reader.waitForLine((line) => line === 'event: start', 'the start event');
      await until(() => tracesOpen(ts) > 0, 'the trace open');
      const pub = await connect(t, { protocolVersion: 5 });
      await pub.publishAsync(topic, 'x', { qos: 1 });
      const exit = await reader.waitForExit();
      assert.equal(exit.code, 0, reader.report());
      assert.ok(Date.now() - started >= 1000, 'not before its duration');
      const events = parseEvents(`${reader.lines.join('\n')}\n\n`);
      assert.deepEqual(
        events.map((e) => e.event),
        ['start', 'packet', 'end'],
      );
      assert.deepEqual(events[2]!.data, { reason: 'duration', events: 1, skipped: 0 });
      assert.equal(tracesOpen(ts), 0);
    });
  });

  it("another broker's traffic never appears, even under '#'", async (t) => {
    const trace = await TraceReader.open(t, 'topic=%23', ts, 'other', 'b');
    const marker = uniqueName('trace-b');
    const onDefault = await connect(t, { protocolVersion: 5 });
    await onDefault.publishAsync(`${marker}/default`, 'x', { qos: 1 });
    const onB = await connect(t, { protocolVersion: 4, username: 'b.other' });
    await onB.publishAsync(`${marker}/b`, 'x', { qos: 1 });
    await trace.waitFor('the message on broker b', (p) => p.topic === `${marker}/b`);
    assert.ok(!trace.packets().some((p) => p.topic === `${marker}/default`));
    assert.equal(trace.events[0]!.data.broker, 'b.other');
  });

  it('a closed HTTP connection closes its trace at once', async (t) => {
    const trace = await TraceReader.open(t, 'client_id=nobody&duration=60');
    assert.equal(tracesOpen(ts), 1);
    trace.close();
    await until(() => tracesOpen(ts) === 0, 'the trace closed');
  });

  it('a reader that is behind gets a count of the skipped packets, and later ones again', async (t) => {
    const server = await startServer({ httpPort: 0, traceBufferBytes: 4096 });
    t.after(() => server.close());
    const topic = uniqueName('trace-slow');
    const url = new URL(`${tracePath(server)}?topic=${topic}&payload=true&payload_bytes=65536`);
    let text = '';
    const response = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const req = request(url, { headers: { authorization: `Bearer ${server.adminToken}` } }, resolve);
      req.on('error', reject);
      req.end();
    });
    t.after(() => response.destroy());
    response.setEncoding('utf8');
    response.pause(); // reads nothing while the messages pass
    const pub = await connect(t, { protocolVersion: 5 }, server.url);
    const big = 'x'.repeat(60_000);
    const count = 600;
    for (let i = 0; i < count; i++) pub.publish(topic, big, { qos: 0 });
    await pub.publishAsync(topic, 'flushed', { qos: 1 });
    const stats = server.server.tenancy.tenant(server.accountId, 'local', 'default').broker.stats;
    await until(() => stats.received[0]! >= count, 'every message received');
    response.on('data', (chunk: string) => {
      text += chunk;
    });
    response.resume();
    await until(() => parseEvents(text).some((e) => e.event === 'skipped'), 'a skipped event');
    await pub.publishAsync(topic, 'marker', { qos: 1 });
    await until(() => parseEvents(text).some((e) => e.data.payload === 'marker'), 'the marker after');
    const events = parseEvents(text);
    const skipped = events
      .filter((e) => e.event === 'skipped')
      .reduce((sum, e) => sum + (e.data.skipped as number), 0);
    const packets = events.filter((e) => e.event === 'packet').length;
    assert.ok(skipped > 0);
    assert.equal(packets + skipped, count + 2, 'every matching packet shown or counted');
  });

  it('deleting the broker ends its traces', async (t) => {
    const name = uniqueName('gone')
      .slice(0, 40)
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-');
    ts.server.tenancy.createBroker(ts.accountId, 'other', { name, authType: 'NONE' });
    const trace = await TraceReader.open(t, 'topic=%23', ts, 'other', name);
    ts.server.tenancy.deleteBroker(ts.accountId, 'other', name);
    await trace.done;
    assert.deepEqual(trace.events.at(-1), {
      event: 'end',
      data: { reason: 'broker deleted', events: 0, skipped: 0 },
    });
  });

  it('stopping the server ends open traces instead of waiting for them', async (t) => {
    const server = await startServer({ httpPort: 0 });
    const trace = await TraceReader.open(t, 'topic=%23&duration=60', server);
    await server.close();
    await trace.done;
    assert.equal(trace.events.at(-1)?.data.reason, 'server shutting down');
  });

  it('requires the admin token', async () => {
    for (const token of [null, 'wrong']) {
      const { status, body } = await refusal('topic=%23', token);
      assert.equal(status, 403);
      assert.equal(body.errors[0]!.code, 10000);
    }
    assert.equal(tracesOpen(ts), 0);
  });

  it('refuses bad parameters with 400 in the envelope, naming the problem', async () => {
    const cases: [string, number, RegExp][] = [
      ['', 14009, /exactly one of client_id .* and topic/],
      ['client_id=a&topic=b', 14009, /exactly one of/],
      ['clientId=a&client_id=a', 14009, /client_id or clientId, not both/],
      ['topic=a/%23/b', 14009, /not a valid MQTT topic filter/],
      ['topic=%24share/g/a', 14009, /without \$share/],
      ['topic=a&duration=0', 14009, /duration must be between 1 and 120/],
      ['topic=a&duration=121', 14009, /duration must be between 1 and 120/],
      ['topic=a&duration=abc', 6009, /duration/],
      ['topic=a&payload=true&payload_bytes=0', 14009, /payload_bytes must be between 1 and 65536/],
      ['topic=a&payload_bytes=10', 14009, /payload_bytes needs payload=true/],
      ['topic=a&payload=yes', 6009, /payload/],
    ];
    for (const [query, code, message] of cases) {
      const { status, body } = await refusal(query);
      assert.equal(status, 400, query);
      assert.equal(body.success, false, query);
      assert.equal(body.errors[0]!.code, code, query);
      assert.match(body.errors[0]!.message, message, query);
    }
    assert.equal(tracesOpen(ts), 0);
  });

  it('accepts the issue spelling clientId and payloadBytes', async (t) => {
    const id = uniqueName('spelling');
    const trace = await TraceReader.open(t, `clientId=${id}&payload=true&payloadBytes=2`);
    const client = await connect(t, { clientId: id, protocolVersion: 5 });
    await client.publishAsync('spelling', 'abc', { qos: 0 });
    const publish = await trace.waitFor('the PUBLISH', (p) => p.type === 'PUBLISH');
    assert.equal(publish.payload, 'ab');
  });
});
