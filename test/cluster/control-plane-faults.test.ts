/**
 * The control plane across a node's link loss (issue 18): one node's link to NATS goes through a
 * TCP relay the test cuts, so the other node and NATS stay up. While cut, that node refuses
 * control-plane changes (503) and serves its cache; changes made elsewhere meanwhile (a
 * revocation, a new broker) are applied there when the link is back, before its /readyz is 200
 * again, so it never serves a stale revocation once ready.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { it, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { freePort, type Nats, type Node, startNats, startNode } from '../helpers/cluster.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';
import { startServe } from '../helpers/pubsub-process.ts';

/** A TCP relay on a fixed port to NATS: `cut` closes it and every connection through it, `restore` listens again. */
class Relay {
  readonly port: number;
  readonly #target: number;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;

  constructor(port: number, target: number) {
    this.port = port;
    this.#target = target;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async restore(): Promise<void> {
    const server = createServer((client) => {
      const upstream = tcpConnect(this.#target, '127.0.0.1');
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.#sockets.add(from);
        from.pipe(to);
        from.on('error', () => to.destroy());
        from.on('close', () => {
          this.#sockets.delete(from);
          to.destroy();
        });
      }
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.#server = server;
  }

  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server !== undefined) await new Promise((resolve) => server.close(resolve));
  }
}

async function relayTo(t: TestContext, nats: Nats): Promise<Relay> {
  const relay = new Relay(await freePort(), nats.port);
  t.after(() => relay.cut());
  return relay;
}

async function call(
  node: { apiUrl: string },
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: { result: unknown; errors: { code: number }[] } }> {
  const res = await fetch(`${node.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { result: unknown; errors: { code: number }[] } };
}

const readyz = async (node: { apiUrl: string }): Promise<number> =>
  (await fetch(`${node.apiUrl}/readyz`)).status;

/** A TOKEN broker made through `node`, and one client token of it. */
async function brokerWithToken(node: Node): Promise<{ path: string; jwt: string; jti: string }> {
  const ns = uniqueName('ns').toLowerCase();
  const base = `/client/v4/accounts/${node.accountId}/pubsub/namespaces`;
  assert.equal((await call(node, node.token, 'POST', base, { name: ns })).status, 200);
  const path = `${base}/${ns}/brokers/home`;
  assert.equal(
    (await call(node, node.token, 'POST', `${base}/${ns}/brokers`, { name: 'home', authType: 'TOKEN' }))
      .status,
    200,
  );
  const minted = (await call(node, node.token, 'GET', `${path}/credentials`)).body.result as Record<
    string,
    string
  >;
  const jwt = Object.values(minted)[0]!;
  const jti = (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
  return { path, jwt, jti };
}

describeWithTool('cluster: the control plane across a link loss', natsServer, () => {
  it('a revocation made on A while B is cut off is applied on B, its holder disconnected (0x98), before B is ready again', async (t) => {
    const nats = await startNats(t);
    const relay = await relayTo(t, nats);
    await relay.restore();
    const [a, b] = await Promise.all([
      startNode(t, nats, 'cut-a'),
      startServe(t, { args: ['--cluster', relay.url, '--node-name', 'cut-b'] }),
    ]);
    await until(async () => (await readyz(b)) === 200, 'B ready');
    const { path, jwt, jti } = await brokerWithToken(a);
    let holder: mqtt.MqttClient | undefined;
    await until(async () => {
      holder = await mqtt
        .connectAsync(b.urls.mqtt!, {
          protocolVersion: 5,
          reconnectPeriod: 0,
          username: 'x',
          password: jwt,
          clientId: '',
        })
        .catch(() => undefined);
      return holder !== undefined;
    }, 'the holder connected on B');
    t.after(() => holder!.endAsync(true));
    const reason = new Promise<number | undefined>((resolve) =>
      holder!.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );

    await relay.cut();
    await until(async () => (await readyz(b)) === 503, 'B not ready while cut off');
    const refused = await call(b, a.token, 'POST', `${path}/revocations?jti=${jti}`);
    assert.equal(refused.status, 503, 'B refuses control-plane changes while cut off');
    assert.equal(refused.body.errors[0]?.code, 14030);
    assert.equal((await call(a, a.token, 'POST', `${path}/revocations?jti=${jti}`)).status, 200);
    const later = uniqueName('later').toLowerCase();
    const namespaces = `/client/v4/accounts/${a.accountId}/pubsub/namespaces`;
    assert.equal((await call(a, a.token, 'POST', namespaces, { name: later })).status, 200);

    await relay.restore();
    await until(async () => (await readyz(b)) === 200, 'B ready again');
    const revocations = await call(b, a.token, 'GET', `${path}/revocations`);
    assert.deepEqual(revocations.body.result, [jti], 'the revocation is on B once B is ready');
    assert.equal((await call(b, a.token, 'GET', `${namespaces}/${later}`)).status, 200);
    assert.equal(await reason, 0x98);
  });

  it('a node started while NATS is unreachable syncs once it answers: what was made meanwhile is there when it is ready', async (t) => {
    const nats = await startNats(t);
    const relay = await relayTo(t, nats);
    const a = await startNode(t, nats, 'late-a');
    const b = await startServe(t, { args: ['--cluster', relay.url, '--node-name', 'late-b'] });
    const { path, jti } = await brokerWithToken(a);
    assert.equal(await readyz(b), 503);
    await relay.restore();
    await until(async () => (await readyz(b)) === 200, 'B ready once NATS answers');
    const onB = await call(b, a.token, 'GET', `${path}/revocations`);
    assert.equal(onB.status, 200);
    assert.deepEqual(onB.body.result, []);
    assert.equal((await call(a, a.token, 'POST', `${path}/revocations?jti=${jti}`)).status, 200);
    await until(
      async () =>
        JSON.stringify((await call(b, a.token, 'GET', `${path}/revocations`)).body.result) === `["${jti}"]`,
      'the revocation on B',
      1000,
    );
  });
});
