/**
 * The on-publish webhook end to end (issue 9): a real HTTP server on loopback as the hook, a
 * real pubsub server, MQTT.js v5 publishers and subscribers. Covers batching, the signature
 * (checked with our verification helper against `/publickeys`, and by hand with node:crypto),
 * payload transformation and drops, order, HTTP 500 and timeouts under both failure policies
 * (with the v5 PUBACK a fail-closed publisher gets), and a slow hook pausing publishers with
 * bounded pending messages and nothing lost. An MQTT 3.1.1 publisher (mosquitto_pub) goes
 * through the hook too, and `--hook-ack before` acknowledges before the hook answers.
 * Egress (security review, finding 2): the tenant sees only failure classes (`http_error`,
 * `unreachable`, in the API and `pubsub broker hook show`) while the operator's log keeps the
 * status and errno; a redirect is a failure, not followed; a name that resolves to a refused
 * address at connect time (rebinding), or a refused address stored before the policy, is never
 * connected to (0.0.0.0 would reach the local hook server, so a leak would be seen).
 */
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { isValidBrokerRequest, verifyBrokerSignature } from '../../lib/verify-broker-request.mjs';
import type { HookMessage, HookView } from '../../src/hooks/index.ts';
import { until } from '../helpers/child-process.ts';
import { fakeResolver } from '../helpers/hosts.ts';
import { mosquittoClients, mosquittoPub } from '../helpers/interop-tools.ts';
import { captureLog } from '../helpers/log-capture.ts';
import { runCli } from '../helpers/pubsub-process.ts';
import { pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  messages: HookMessage[];
}

/** A webhook on 127.0.0.1 whose answer each test decides. */
class HookServer {
  readonly received: Received[] = [];
  answer: (messages: HookMessage[]) => {
    status: number;
    body?: unknown;
    headers?: Record<string, string>;
    delayMs?: number;
    /** Answer once this settles. */
    hold?: Promise<void>;
  } = (m) => ({
    status: 200,
    body: m,
  });
  readonly #server: Server;
  readonly #open = new Set<ServerResponse>();

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const messages = JSON.parse(body) as HookMessage[];
        this.received.push({ headers: req.headers, body, messages });
        const { status, body: out, headers, delayMs, hold } = this.answer(messages);
        const reply = () => {
          this.#open.delete(res);
          res.writeHead(status, { 'content-type': 'application/octet-stream', ...headers });
          res.end(out === undefined ? '' : JSON.stringify(out));
        };
        this.#open.add(res);
        if (hold !== undefined) hold.then(reply);
        else if (delayMs === undefined) reply();
        else if (Number.isFinite(delayMs)) setTimeout(reply, delayMs);
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
  }

  async close(): Promise<void> {
    for (const res of this.#open) res.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

describe('on-publish webhook', () => {
  let ts: TestServer;
  let hook: HookServer;
  let url: string;
  const clients: mqtt.MqttClient[] = [];
  const log = captureLog('warn');
  /** What `rebind.test` resolves to, one answer per lookup, then 0.0.0.0. */
  const rebind: string[][] = [];
  const hosts = fakeResolver({ 'rebind.test': () => rebind.shift() ?? ['0.0.0.0'] });
  /** The operator's log lines of failed hook calls. */
  const failureLog = (): string[] =>
    log.lines.filter((l) => String(l.msg).startsWith('on-publish hook failed')).map((l) => String(l.err));
  const api = <T>(method: string, path: string, body?: unknown) => pubsubApi<T>(ts, method, path, body);
  const setHook = async (onPublish: Record<string, unknown>): Promise<void> => {
    const env = await api('PATCH', '/namespaces/local/brokers/default', { on_publish: onPublish });
    assert.equal(env.success, true, JSON.stringify(env.errors));
  };
  const hookView = async (): Promise<HookView> =>
    (await api<HookView>('GET', '/namespaces/local/brokers/default/hook')).result;
  const connect = async (): Promise<mqtt.MqttClient> => {
    const c = await mqtt.connectAsync(ts.url, { protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  };
  /** A subscriber collecting `topic payload` lines of a filter. */
  const subscriber = async (filter: string): Promise<{ seen: string[]; client: mqtt.MqttClient }> => {
    const client = await connect();
    const seen: string[] = [];
    client.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString('utf8')}`));
    await client.subscribeAsync(filter, { qos: 1 });
    return { seen, client };
  };

  before(async () => {
    hook = new HookServer();
    url = await hook.listen();
    ts = await startServer(
      { httpPort: 0, hookMaxPending: 50, hookBatchWindowMs: 5 },
      { logger: log.logger, resolveHost: hosts.resolve },
    );
  });
  beforeEach(async () => {
    hook.received.length = 0;
    hook.answer = (m) => ({ status: 200, body: m });
    await setHook({ url, policy: 'fail-closed', timeout_ms: null });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await ts.close();
    await hook.close();
  });

  it('batches messages into signed POSTs; payloads transformed, left-out messages dropped, order kept', async () => {
    hook.answer = (messages) => ({
      status: 200,
      body: messages
        .filter((m) => !m.payload.includes('drop'))
        .map((m) => (m.payloadFormatIndicator === 1 ? { ...m, payload: m.payload.toUpperCase() } : m)),
    });
    const { seen } = await subscriber('batch/#');
    const pub = await connect();
    const sent = Array.from({ length: 40 }, (_, i) => (i % 10 === 3 ? `drop ${i}` : `msg ${i}`));
    await Promise.all(
      sent.map((p) =>
        pub.publishAsync('batch/a', p, { qos: 1, properties: { payloadFormatIndicator: true } }),
      ),
    );
    await pub.publishAsync('batch/bin', Buffer.from([0, 1, 2, 255]), { qos: 1 });
    const expected = sent.filter((p) => !p.startsWith('drop')).map((p) => `batch/a ${p.toUpperCase()}`);
    await until(() => seen.length === expected.length + 1, 'the forwarded messages');
    assert.deepEqual(seen.slice(0, expected.length), expected, 'transformed, dropped ones absent, in order');
    assert.ok(
      hook.received.some((r) => r.messages.length > 1),
      `messages published together share a POST (sizes ${hook.received.map((r) => r.messages.length)})`,
    );

    // The message shape, as documented.
    const first = hook.received[0]!.messages[0]!;
    assert.equal(first.mid, 0);
    assert.equal(first.broker, 'default.local.localhost', 'the host name clients use (--domain localhost)');
    assert.equal(first.topic, 'batch/a');
    assert.equal(first.payloadFormatIndicator, 1);
    assert.equal(first.contentType, null);
    assert.equal(typeof first.receivedAt, 'number');
    assert.ok(Math.abs(first.receivedAt - Date.now() / 1000) < 60);
    const binary = hook.received.flatMap((r) => r.messages).find((m) => m.topic === 'batch/bin')!;
    assert.equal(binary.encoding, 'base64');
    assert.deepEqual(Buffer.from(binary.payload, 'base64'), Buffer.from([0, 1, 2, 255]));

    // The signature: our helper against /publickeys, and node:crypto by hand.
    const jwks = (
      await api<{ keys: { kid: string; x: string }[] }>('GET', '/namespaces/local/brokers/default/publickeys')
    ).result;
    const r = hook.received[0]!;
    const parts = {
      body: r.body,
      signature: r.headers['x-signature-ed25519'] as string,
      timestamp: r.headers['x-signature-timestamp'] as string,
      keyId: r.headers['x-signature-key-id'] as string,
    };
    assert.deepEqual(await verifyBrokerSignature(parts, jwks), { ok: true });
    const jwk = jwks.keys.find((k) => k.kid === parts.keyId)!;
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
    assert.ok(
      verify(
        null,
        Buffer.from(parts.timestamp + parts.body),
        publicKey,
        Buffer.from(parts.signature, 'base64'),
      ),
    );

    // The fetch-API form, Cloudflare's shape: tampering, replay and unknown keys are refused.
    const request = (body: string, timestamp = parts.timestamp, keyId = parts.keyId) =>
      new Request('http://hook.example/', {
        method: 'POST',
        body,
        headers: {
          'X-Signature-Ed25519': parts.signature,
          'X-Signature-Timestamp': timestamp,
          'X-Signature-Key-Id': keyId,
        },
      });
    assert.equal(await isValidBrokerRequest(request(parts.body), JSON.stringify(jwks)), true);
    assert.equal(await isValidBrokerRequest(request(`${parts.body} `), jwks), false, 'body changed');
    const later = (Number(parts.timestamp) + 3600) * 1000;
    assert.equal(
      await isValidBrokerRequest(request(parts.body), jwks, { now: later }),
      false,
      'replayed an hour later',
    );
    assert.equal(await isValidBrokerRequest(request(parts.body, parts.timestamp, 'nope'), jwks), false);
  });

  it('a changed topic or an unknown mid drops that message, and is counted', async () => {
    hook.answer = (messages) => ({
      status: 200,
      body: messages.map((m) =>
        m.payload === 'retopic'
          ? { ...m, topic: 'elsewhere' }
          : m.payload === 'remid'
            ? { ...m, mid: 99 }
            : m,
      ),
    });
    const { seen } = await subscriber('shape/#');
    const pub = await connect();
    for (const p of ['retopic', 'remid', 'kept'])
      await pub.publishAsync('shape/x', p, { qos: 1, properties: { payloadFormatIndicator: true } });
    await until(() => seen.length === 1, 'the kept message');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(seen, ['shape/x kept']);
    assert.ok((await hookView()).metrics.invalid >= 2);
  });

  it('HTTP 500, fail-closed: nothing delivered, a v5 QoS 1 publisher gets PUBACK 0x80; fail-open: delivered unchanged', async () => {
    hook.answer = () => ({ status: 500, body: 'broken' });
    const { seen } = await subscriber('fail/#');
    const pub = await connect();
    await assert.rejects(
      pub.publishAsync('fail/closed', 'x', { qos: 1 }),
      (err: Error & { code?: number }) => {
        assert.equal(err.code, 0x80);
        return true;
      },
    );
    await pub.publishAsync('fail/closed', 'qos0', { qos: 0 });
    // The QoS 0 message has no acknowledgement to wait for: wait for the hook's count instead.
    let view = await hookView();
    await until(async () => (view = await hookView()).metrics.failedDropped >= 2, 'both messages failed');
    assert.deepEqual(seen, []);
    assert.equal(view.metrics.lastErrors.at(-1)!.message, 'http_error: the answer was not HTTP 200');
    assert.match(failureLog().at(-1)!, /answered HTTP 500$/, 'the status is in the operator log');

    await setHook({ policy: 'fail-open' });
    await pub.publishAsync('fail/open', 'unchanged', { qos: 1 });
    await until(() => seen.length === 1, 'the fail-open message');
    assert.deepEqual(seen, ['fail/open unchanged']);
    view = await hookView();
    assert.ok(view.metrics.failedForwarded >= 1);
  });

  it('503 is retried with the batch signed afresh; an unreachable hook is retried, then fails', async () => {
    let calls = 0;
    hook.answer = (m) => (++calls === 1 ? { status: 503 } : { status: 200, body: m });
    const { seen } = await subscriber('retry/#');
    const pub = await connect();
    const before = (await hookView()).metrics.retries;
    await pub.publishAsync('retry/a', 'after a 503', { qos: 1 });
    await until(() => seen.length === 1, 'the retried message');
    assert.deepEqual(seen, ['retry/a after a 503']);
    assert.equal(hook.received.length, 2, 'the same batch twice');
    assert.equal(hook.received[0]!.body, hook.received[1]!.body);
    assert.equal((await hookView()).metrics.retries, before + 1);

    // A port nothing listens on: connection refused, retried (--hook-retries 2), then the policy.
    const closed = new HookServer();
    const deadUrl = await closed.listen();
    await closed.close();
    await setHook({ url: deadUrl });
    await assert.rejects(pub.publishAsync('retry/b', 'nobody home', { qos: 1 }));
    const view = await hookView();
    assert.equal(view.metrics.retries, before + 3);
    assert.equal(view.metrics.lastErrors.at(-1)!.message, 'unreachable: no answer from the webhook');
    assert.match(failureLog().at(-1)!, /unreachable: ECONNREFUSED$/, 'the errno is in the operator log');
    const port = new URL(deadUrl).port;
    const shown = await runCli(['broker', 'hook', 'show', 'default', '--ns', 'local'], {
      env: { PUBSUB_API_URL: ts.apiUrl, PUBSUB_API_TOKEN: ts.adminToken },
    });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /webhook: unreachable: no answer from the webhook$/m);
    assert.doesNotMatch(shown.stdout, /ECONNREFUSED|HTTP 500/, 'no errno or status for the tenant');
    assert.equal(shown.stdout.split(`:${port}`).length, 2, 'the port only in the URL line');
  });

  it('a redirect is a failure (http_error), never followed', async () => {
    const elsewhere = new HookServer();
    const target = await elsewhere.listen();
    try {
      hook.answer = () => ({ status: 307, headers: { location: target } });
      const { seen } = await subscriber('redirect/#');
      const pub = await connect();
      await assert.rejects(pub.publishAsync('redirect/a', 'x', { qos: 1 }));
      assert.equal(hook.received.length, 1);
      assert.equal(elsewhere.received.length, 0, 'the Location was not followed');
      assert.deepEqual(seen, []);
      assert.equal(
        (await hookView()).metrics.lastErrors.at(-1)!.message,
        'http_error: the answer was not HTTP 200',
      );
      assert.match(failureLog().at(-1)!, /answered HTTP 307$/);
    } finally {
      await elsewhere.close();
    }
  });

  it('a name that resolves to a refused address when connecting is never connected to (DNS rebinding)', async () => {
    // Set through the API while rebind.test is loopback (allowed: the server binds loopback)...
    rebind.push(['127.0.0.1']);
    await setHook({ url: `http://rebind.test:${new URL(url).port}/hook` });
    // ...then it resolves to 0.0.0.0, which would reach the hook server on this host.
    const pub = await connect();
    await assert.rejects(pub.publishAsync('rebind/a', 'x', { qos: 1 }), (err: Error & { code?: number }) => {
      assert.equal(err.code, 0x80);
      return true;
    });
    assert.equal(hook.received.length, 0, 'nothing reached the hook');
    const view = await hookView();
    assert.equal(
      view.metrics.lastErrors.at(-1)!.message,
      "egress_refused: the URL's address is refused by the server's egress policy",
    );
    assert.match(failureLog().at(-1)!, /rebind\.test: 0\.0\.0\.0 is unspecified/);
  });

  it('a refused address stored before the policy (no API check) fails every call without connecting', async () => {
    ts.server.tenancy.updateBroker(ts.accountId, 'local', 'default', {
      onPublishUrl: `http://0.0.0.0:${new URL(url).port}/hook`,
    });
    const before = (await hookView()).metrics;
    const pub = await connect();
    await assert.rejects(pub.publishAsync('stored/a', 'x', { qos: 1 }));
    const after = (await hookView()).metrics;
    assert.equal(hook.received.length, 0, 'nothing reached the hook');
    assert.equal(after.failures, before.failures + 1);
    assert.equal(after.retries, before.retries, 'a refusal is not retried');
    assert.match(after.lastErrors.at(-1)!.message, /^egress_refused: /);
  });

  it('a hook that does not answer times out: dropped under fail-closed, forwarded under fail-open', async () => {
    hook.answer = () => ({ status: 200, delayMs: Number.POSITIVE_INFINITY });
    await setHook({ timeout_ms: 200 });
    const { seen } = await subscriber('slow/#');
    const pub = await connect();
    const started = Date.now();
    await assert.rejects(pub.publishAsync('slow/closed', 'x', { qos: 1 }));
    assert.ok(Date.now() - started >= 150, 'refused at the timeout, not before');
    assert.ok((await hookView()).metrics.timeouts >= 1);
    await setHook({ policy: 'fail-open' });
    await pub.publishAsync('slow/open', 'late but delivered', { qos: 1 });
    await until(() => seen.length === 1, 'the fail-open message');
    assert.deepEqual(seen, ['slow/open late but delivered']);
  });

  it('mosquitto_pub (MQTT 3.1.1, QoS 1) publishes through the hook; the subscriber gets the transformed payload', {
    skip: mosquittoClients.available ? false : 'needs mosquitto-clients',
  }, async (t) => {
    hook.answer = (messages) => ({
      status: 200,
      body: messages.map((m) => ({
        ...m,
        payload: `[${Buffer.from(m.payload, 'base64').toString()}]`,
        encoding: undefined,
      })),
    });
    const { seen } = await subscriber('v3/#');
    const pub = await mosquittoPub(t, [
      '-h',
      '127.0.0.1',
      '-p',
      String(ts.port),
      '-V',
      'mqttv311',
      '-q',
      '1',
      '-t',
      'v3/x',
      '-m',
      'from mosquitto',
    ]);
    assert.equal(pub.exit!.code, 0, pub.stderr);
    await until(() => seen.length === 1, 'the transformed message');
    assert.deepEqual(seen, ['v3/x [from mosquitto]']);
    assert.equal(
      hook.received.at(-1)!.messages[0]!.encoding,
      'base64',
      'no payload format indicator in 3.1.1: base64',
    );
  });

  it('a slow hook pauses publishers: pending stays bounded, and every message arrives in order', async () => {
    hook.answer = (m) => ({ status: 200, body: m, delayMs: 20 });
    const { seen } = await subscriber('flood/#');
    const pub = await connect();
    const view = () =>
      [...ts.server.tenancy.tenants()].find((t) => t.record.name === 'default')!.hooks.pipeline;
    let maxPending = 0;
    let paused = 0;
    const sampler = setInterval(() => {
      const p = view().view();
      maxPending = Math.max(maxPending, p.pending);
      paused = Math.max(paused, p.pausedPublishers);
    }, 2);
    const payload = 'x'.repeat(1000);
    const count = 600;
    const acks = Array.from({ length: count }, (_, i) =>
      pub.publishAsync('flood/a', `${i} ${payload}`, { qos: 1 }),
    );
    await Promise.all(acks);
    await until(() => seen.length === count, 'every message', 20_000);
    clearInterval(sampler);
    assert.deepEqual(
      seen.map((s) => Number(s.split(' ')[1])),
      Array.from({ length: count }, (_, i) => i),
    );
    assert.ok(paused >= 1, 'the publisher was paused');
    // 50 pending at most, plus what one socket read already held (1 KB messages: ~64 per 64 KiB).
    assert.ok(maxPending <= 50 + 70, `pending peaked at ${maxPending}`);
  });
});

describe('on-publish webhook with --hook-ack before', () => {
  let ts: TestServer;
  let hook: HookServer;
  const clients: mqtt.MqttClient[] = [];

  before(async () => {
    hook = new HookServer();
    const url = await hook.listen();
    ts = await startServer({ httpPort: 0, hookAck: 'before' });
    const env = await pubsubApi(ts, 'PATCH', '/namespaces/local/brokers/default', { on_publish: { url } });
    assert.equal(env.success, true);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await ts.close();
    await hook.close();
  });

  it('PUBACK comes before the hook has answered; the message is delivered once it does', async () => {
    let open: (() => void) | undefined;
    const hold = new Promise<void>((resolve) => {
      open = resolve;
    });
    hook.answer = (m) => ({ status: 200, body: m, hold });
    const sub = await mqtt.connectAsync(ts.url, { protocolVersion: 5, reconnectPeriod: 0 });
    const pub = await mqtt.connectAsync(ts.url, { protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(sub, pub);
    const seen: string[] = [];
    const delivered = new Promise<void>((resolve) =>
      sub.on('message', (_t, p) => {
        seen.push(p.toString());
        resolve();
      }),
    );
    await sub.subscribeAsync('early/#', { qos: 1 });
    await pub.publishAsync('early/x', 'hi', { qos: 1 }); // resolves on PUBACK, while the hook holds
    await until(() => hook.received.length === 1, 'the hook to receive the message');
    assert.deepEqual(seen, [], 'not delivered before the hook answered');
    open!();
    await delivered;
    assert.deepEqual(seen, ['hi']);
  });
});
