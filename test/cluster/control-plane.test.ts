/**
 * One control plane for the cluster (issue 18): namespaces, brokers and their keys, client
 * credentials and revocations, admin API tokens and on-publish functions made through any
 * node's API are the same on every node (the JetStream KV bucket is the source of truth, each
 * node's SQLite its cache), with real nats-server, real `pubsub serve --cluster` nodes and real
 * clients (MQTT.js v5 and v3.1.1, mosquitto_pub/sub).
 */
import assert from 'node:assert/strict';
import { after, before, it, type TestContext } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { metric, type Nats, type Node, startNats, startNode } from '../helpers/cluster.ts';
import {
  describeWithTool,
  mosquittoClients,
  mosquittoPub,
  mosquittoSub,
  natsServer,
  uniqueName,
} from '../helpers/interop-tools.ts';

interface Answer<T = unknown> {
  status: number;
  body: { success: boolean; result: T; errors: { code: number; message: string }[] };
}

const cleanups: (() => unknown)[] = [];
/** The suite's own context: what it starts is stopped when the suite ends. */
const suite = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;

let nats: Nats;
let a: Node;
let b: Node;
/** An account made for the suite on node A; A's bootstrap token (operator) manages it everywhere. */
let account: string;

/** An admin API call on `node` with `token` (default: node A's bootstrap token, an operator's). */
async function call<T = unknown>(
  node: Node,
  method: string,
  path: string,
  body?: unknown,
  token = a.token,
): Promise<Answer<T>> {
  const url = path.startsWith('/client') ? path : `/client/v4/accounts/${account}/pubsub${path}`;
  const res = await fetch(`${node.apiUrl}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer<T>['body'] };
}

async function ok<T = unknown>(node: Node, method: string, path: string, body?: unknown): Promise<T> {
  const answer = await call<T>(node, method, path, body);
  assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body.result;
}

/**
 * A GET's body on `node`, without the endpoints a broker object names: they hold the node's own
 * listener ports (the same on every node behind a load balancer, not in a test on one machine).
 */
async function body(node: Node, path: string, token?: string): Promise<unknown> {
  const answer = await call(node, 'GET', path, undefined, token);
  assert.equal(answer.status, 200, `GET ${path}: ${JSON.stringify(answer.body)}`);
  return JSON.parse(JSON.stringify(answer.body), (key, value) =>
    key === 'endpoint' || key === 'endpoints' ? undefined : value,
  );
}

/** A TOKEN broker made on `node`: its namespace name and broker name. */
async function brokerOn(node: Node): Promise<{ ns: string; broker: string; path: string }> {
  const ns = uniqueName('ns').toLowerCase();
  await ok(node, 'POST', '/namespaces', { name: ns });
  await ok(node, 'POST', `/namespaces/${ns}/brokers`, { name: 'home', authType: 'TOKEN' });
  return { ns, broker: 'home', path: `/namespaces/${ns}/brokers/home` };
}

/** Client tokens minted by `node` for a broker: [client id, JWT][]. */
async function mint(node: Node, path: string, number = 1): Promise<[string, string][]> {
  return Object.entries(
    await ok<Record<string, string>>(node, 'GET', `${path}/credentials?number=${number}`),
  );
}

const jtiOf = (jwt: string): string =>
  (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;

/** An MQTT.js client on `node` with the client token `jwt` (v5, the token's own client id). */
function open(node: Node, jwt: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(node.urls.mqtt!, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    username: 'anything',
    password: jwt,
    clientId: '',
    ...options,
  });
}

async function connect(
  t: TestContext,
  node: Node,
  jwt: string,
  options: IClientOptions = {},
): Promise<MqttClient> {
  const client = await open(node, jwt, options);
  t.after(() => client.endAsync(true));
  return client;
}

/** The CONNACK code a connection with `jwt` to `node` is refused with (v5), undefined when accepted. */
async function refusal(node: Node, jwt: string): Promise<number | undefined> {
  try {
    await (await open(node, jwt)).endAsync(true);
    return undefined;
  } catch (err) {
    return (err as { code?: number }).code;
  }
}

/** Resolves with the reason code of the server's DISCONNECT (v5), or 'closed' on a close without one. */
function ended(client: MqttClient): Promise<number | 'closed'> {
  return new Promise((resolve) => {
    client.once('disconnect', (packet) => resolve(packet.reasonCode ?? 0));
    client.once('close', () => resolve('closed'));
  });
}

describeWithTool('cluster: one control plane', natsServer, () => {
  before(async () => {
    nats = await startNats(suite);
    [a, b] = await Promise.all([startNode(suite, nats, 'ctl-a'), startNode(suite, nats, 'ctl-b')]);
    account = (await ok<{ id: string }>(a, 'POST', '/client/v4/accounts', { name: 'control plane' })).id;
    await until(async () => (await call(b, 'GET', '/namespaces')).status === 200, 'the account on B');
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  it('a broker created through A is usable on B within a second (token minted on A, MQTT.js on B)', async (t) => {
    const { path } = await brokerOn(a);
    const created = Date.now();
    const [[, jwt]] = (await mint(a, path)) as [[string, string]];
    await until(async () => (await refusal(b, jwt)) === undefined, 'a connection on B', 1000);
    assert.ok(Date.now() - created < 1000, `usable on B after ${Date.now() - created} ms`);
    assert.ok((await connect(t, b, jwt)).connected);
  });

  describeWithTool('with mosquitto clients', mosquittoClients, () => {
    it('mosquitto_sub on B and mosquitto_pub on A share a broker made on B, with tokens minted on A and B', async (t) => {
      const { path, ns } = await brokerOn(b);
      const [[subId, subJwt]] = (await mint(a, path)) as [[string, string]];
      const [[pubId, pubJwt]] = (await mint(b, path)) as [[string, string]];
      const topic = `ctl/${uniqueName('t')}`;
      const sub = await mosquittoSub(t, [
        ...['-p', String(b.port('mqtt')), '-V', 'mqttv5', '-i', subId, '-u', `home.${ns}`, '-P', subJwt],
        ...['-t', topic, '-q', '1'],
      ]);
      await until(async () => {
        const pub = await mosquittoPub(t, [
          ...['-p', String(a.port('mqtt')), '-V', 'mqttv5', '-i', pubId, '-u', `home.${ns}`, '-P', pubJwt],
          ...['-t', topic, '-m', 'across', '-q', '1'],
        ]);
        assert.equal(pub.exit?.code, 0, pub.lines.join('\n'));
        return sub.lines.some((l) => l === 'across');
      }, 'the message on B');
    });
  });

  it('a client token revoked on A disconnects its holder on B within a second (v5 0x98) and is refused on reconnect', async (t) => {
    const { path } = await brokerOn(a);
    const [[, victim], [, bystander]] = (await mint(a, path, 2)) as [[string, string], [string, string]];
    await until(async () => (await refusal(b, victim)) === undefined, 'the broker on B');
    const held = await connect(t, b, victim);
    const other = await connect(t, b, bystander);
    const reason = ended(held);
    const revoked = Date.now();
    await ok(a, 'POST', `${path}/revocations?jti=${jtiOf(victim)}`);
    assert.equal(await reason, 0x98);
    assert.ok(Date.now() - revoked < 1000, `disconnected after ${Date.now() - revoked} ms`);
    assert.equal(await refusal(b, victim), 0x86, 'a revoked token is refused on B');
    assert.ok(other.connected, 'the other token is untouched');
    assert.deepEqual((await call(b, 'GET', `${path}/revocations`)).body.result, [jtiOf(victim)]);
  });

  it('a client token revoked on A closes its v3.1.1 holder on B and refuses it again', async (t) => {
    const { path } = await brokerOn(a);
    const [[clientId, jwt]] = (await mint(a, path)) as [[string, string]];
    await until(async () => (await refusal(b, jwt)) === undefined, 'the broker on B');
    const held = await connect(t, b, jwt, { protocolVersion: 4, clientId });
    const closed = new Promise<void>((resolve) => held.once('close', () => resolve()));
    await ok(a, 'POST', `${path}/revocations?jti=${jtiOf(jwt)}`);
    await closed;
    await assert.rejects(connect(t, b, jwt, { protocolVersion: 4, clientId }));
  });

  it('a broker deleted through B disconnects its clients on A (0x98); a key rotation on B retires the key on A', async (t) => {
    const first = await brokerOn(a);
    const [[, jwt]] = (await mint(a, first.path)) as [[string, string]];
    await until(async () => (await call(b, 'GET', first.path)).status === 200, 'the broker on B');
    const onA = await connect(t, a, jwt);
    const reason = ended(onA);
    await ok(b, 'DELETE', first.path);
    assert.equal(await reason, 0x98);
    assert.equal((await call(a, 'GET', first.path)).status, 404);

    const second = await brokerOn(a);
    const [[, old]] = (await mint(a, second.path)) as [[string, string]];
    const live = await connect(t, a, old);
    const gone = ended(live);
    await until(async () => (await call(b, 'GET', second.path)).status === 200, 'the broker on B');
    await ok(b, 'POST', `${second.path}/publickeys/rotate`);
    await ok(b, 'POST', `${second.path}/publickeys/rotate`); // the token's key is retired now
    assert.equal(await gone, 0x98);
    assert.deepEqual(
      (await call(a, 'GET', `${second.path}/publickeys`)).body.result,
      (await call(b, 'GET', `${second.path}/publickeys`)).body.result,
    );
  });

  it('an admin API token created on A authenticates on B; deleted on B, A refuses it', async () => {
    const created = await ok<{ id: string; value: string }>(
      a,
      'POST',
      `/client/v4/accounts/${account}/tokens`,
      {
        name: 'made on A',
      },
    );
    const onB = await call(b, 'GET', '/namespaces', undefined, created.value);
    assert.equal(onB.status, 200, JSON.stringify(onB.body));
    await ok(b, 'DELETE', `/client/v4/accounts/${account}/tokens/${created.id}`);
    assert.equal((await call(a, 'GET', '/namespaces', undefined, created.value)).status, 403);
  });

  it('a function deployed through A runs on B for messages published on B', async (t) => {
    const { path } = await brokerOn(a);
    const code = `export function onPublish(messages) {
      for (const m of messages) { m.payload = 'hooked ' + m.topic; delete m.encoding; m.payloadFormatIndicator = 1; }
      return messages;
    }`;
    const deployed = await ok<{ version: number }>(a, 'PUT', `${path}/hook/function`, { code });
    const onB = await ok<{ function: { version: number } | null }>(b, 'GET', `${path}/hook`);
    assert.equal(onB.function?.version, deployed.version);
    const [[, jwt]] = (await mint(b, path)) as [[string, string]];
    const client = await connect(t, b, jwt);
    const got: string[] = [];
    client.on('message', (_topic, payload) => got.push(payload.toString()));
    await client.subscribeAsync('fn/x', { qos: 1 });
    await client.publishAsync('fn/x', 'raw', { qos: 1 });
    await until(() => got.length > 0, 'the hooked message');
    assert.deepEqual(got, ['hooked fn/x']);
    await ok(b, 'DELETE', `${path}/hook/function`);
    assert.equal((await ok<{ function: unknown }>(a, 'GET', `${path}/hook`)).function, null);
  });

  it('GET of the same resources on A and B gives equal bodies', async () => {
    const { path, ns } = await brokerOn(a);
    await ok(b, 'PATCH', path, { description: 'edited on B', limits: { max_connections: 7 } });
    const [[, jwt]] = (await mint(a, path)) as [[string, string]];
    await ok(b, 'POST', `${path}/revocations?jti=${jtiOf(jwt)},not-minted-here`);
    for (const p of [
      '/namespaces',
      `/namespaces/${ns}`,
      `/namespaces/${ns}/brokers`,
      path,
      `${path}/publickeys`,
      `${path}/revocations`,
      `/client/v4/accounts`,
    ]) {
      assert.deepEqual(await body(b, p), await body(a, p), p);
    }
    const broker = await ok<{ description: string }>(a, 'GET', path);
    assert.equal(broker.description, 'edited on B');
  });

  it('the same namespace created on A and B at the same moment: one wins, the other is refused (409), both agree', async () => {
    const name = uniqueName('race').toLowerCase();
    const answers = await Promise.all([a, b].map((n) => call(n, 'POST', '/namespaces', { name })));
    assert.deepEqual(
      answers.map((x) => x.status).sort(),
      [200, 409],
      JSON.stringify(answers.map((x) => x.body)),
    );
    await until(async () => {
      const [onA, onB] = await Promise.all([a, b].map((n) => call(n, 'GET', `/namespaces/${name}`)));
      return onA!.status === 200 && JSON.stringify(onA!.body) === JSON.stringify(onB!.body);
    }, 'one record on both nodes');
    // Refused either by the bucket (the other node's create came first there: 14031, a conflict
    // counted on this node) or by this node's own store (the other's record had already arrived:
    // the name is taken here). Both nodes stay synced (GET /metrics).
    const series = async (metricName: string) => Promise.all([a, b].map((n) => metric(n, metricName)));
    const loser = answers.findIndex((x) => x.status === 409);
    const conflicts = await series('pubsub_cluster_control_plane_conflicts_total');
    if (answers[loser]!.body.errors[0]?.code === 14031)
      assert.ok(conflicts[loser]! >= 1, `conflict counted on the refusing node: ${conflicts}`);
    assert.deepEqual(await series('pubsub_cluster_control_plane_synced'), [1, 1]);
  });

  it('an expired revocation pruned by both nodes at once is gone everywhere, and neither change is refused', async () => {
    const { path } = await brokerOn(a);
    const [[, short]] = Object.entries(
      await ok<Record<string, string>>(a, 'GET', `${path}/credentials?expiration=1`),
    ) as [[string, string]];
    await ok(a, 'POST', `${path}/revocations?jti=${jtiOf(short)}`);
    await until(async () => (await call(b, 'GET', `${path}/revocations`)).body.result !== null, 'on B');
    await new Promise((resolve) => setTimeout(resolve, 2100)); // the token expires
    // Each revoke prunes the expired revocation first, on both nodes at the same moment.
    const answers = await Promise.all(
      [a, b].map((n, i) => call(n, 'POST', `${path}/revocations?jti=other-${i}`)),
    );
    assert.deepEqual(
      answers.map((x) => x.status),
      [200, 200],
      JSON.stringify(answers.map((x) => x.body)),
    );
    for (const n of [a, b]) {
      let held = '';
      await until(
        async () =>
          (held = JSON.stringify(
            ((await call(n, 'GET', `${path}/revocations`)).body.result as string[]).sort(),
          )) === JSON.stringify(['other-0', 'other-1']),
        () => `only the two new revocations (${n === a ? 'A' : 'B'} holds ${held})`,
      );
    }
  });

  it('a node started later has all of it, its own bootstrap broker giving way to the cluster one', async (t) => {
    const { path, ns } = await brokerOn(a);
    const [[, jwt]] = (await mint(a, path)) as [[string, string]];
    await ok(a, 'POST', `${path}/revocations?jti=${jtiOf(jwt)}`);
    const c = await startNode(t, nats, 'ctl-c');
    for (const p of [
      `/namespaces/${ns}/brokers`,
      `${path}/publickeys`,
      `${path}/revocations`,
      '/client/v4/accounts',
    ])
      assert.deepEqual(await body(c, p), await body(a, p), p);
    assert.equal(await refusal(c, jwt), 0x86);
    // Every account's namespaces, \`local\` included: C's own bootstrap namespace and broker gave way.
    const accounts = (await call<{ id: string }[]>(a, 'GET', '/client/v4/accounts')).body.result;
    let locals = 0;
    for (const { id } of accounts) {
      const p = `/client/v4/accounts/${id}/pubsub/namespaces`;
      assert.deepEqual(await body(c, p), await body(a, p), p);
      if ((await call(a, 'GET', `${p}/local/brokers/default`)).status !== 200) continue;
      locals++;
      assert.deepEqual(await body(c, `${p}/local/brokers`), await body(a, `${p}/local/brokers`));
    }
    assert.equal(locals, 1, 'one default.local in the cluster');
    // C's own admin token (its bootstrap) works on A as well.
    assert.equal((await call(a, 'GET', '/client/v4/accounts', undefined, c.token)).status, 200);
  });
});
