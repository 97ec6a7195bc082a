/**
 * Two in-process Servers joined as a cluster (issue 18) on their own nats-server, for running
 * the conformance suites with their clients split across nodes (PUBSUB_TEST_CLUSTER=1,
 * v5-harness.ts; test/cluster/conformance.test.ts runs them so). Each pair has its own NATS:
 * pairs in one file never hear each other (they share broker addresses such as default.local).
 *
 * `settled()` waits until each node knows exactly as many filters and shared-group members
 * (connected ones too) of the other as the other holds, and both hold every retained message written so far: a subscription (or a retained
 * message) made on one node takes effect on the other a few milliseconds after its SUBACK (or
 * PUBACK) (docs/cluster.md). `connect(node)` gives a client an in-memory connection whose bytes
 * reach the node only once the pair is settled (in order), and `url(node)` a TCP relay doing the
 * same for MQTT.js, so whatever a test sends after a SUBACK, by any client and however it reads
 * the SUBACK, meets the subscription on both nodes.
 */
import assert from 'node:assert/strict';
import { createServer, type Server as NetServer, connect as netConnect } from 'node:net';
import { type Duplex, duplexPair } from 'node:stream';
import type { TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Server } from '../../src/server.ts';
import { until } from './child-process.ts';
import { collecting, startNats } from './cluster.ts';
import { startServer, type TestServer } from './server.ts';

export interface ServerPair {
  readonly a: TestServer;
  readonly b: TestServer;
  /** The other node of `server`'s pair. */
  other(server: Server): Server;
  /** Each node's view of the other's filters matches what the other holds. */
  settled(): Promise<void>;
  /** A client's end of an in-memory connection to `node`, its bytes held until `settled`. */
  connect(node: Server): Duplex;
  /** `mqtt://` URL of a TCP relay to `node` holding a client's bytes until `settled`, as `connect`. */
  url(node: Server): string;
  close(): Promise<void>;
}

let pairs = 0;

/**
 * Pipes `client` and `server` both ways, the client's bytes in order and each only once
 * `settled()` resolves; either side closing closes the other.
 */
function gate(client: Duplex, server: Duplex, settled: () => Promise<void>): void {
  let chain = Promise.resolve();
  const fail = (): void => {
    client.destroy();
    server.destroy();
  };
  client.on('data', (chunk: Buffer) => {
    chain = chain
      .then(settled)
      .then(() => void server.write(chunk))
      .catch(fail);
  });
  client.on('end', () => {
    chain = chain.then(() => void server.end());
  });
  server.on('data', (chunk: Buffer) => client.write(chunk));
  server.on('end', () => client.end());
  client.on('close', () => server.destroy());
  server.on('close', () => client.destroy());
  for (const end of [client, server]) end.on('error', () => {});
}

/**
 * Whether both nodes' retained caches hold every retained write made so far: nothing waits for
 * the stream, and each has read it past every write the stream acknowledged (docs/cluster.md:
 * a retained message set on one node is on the others a few milliseconds after its PUBACK).
 */
function retainedSettled(a: Server, b: Server): boolean {
  const [ra, rb] = [a.cluster!.retained, b.cluster!.retained];
  const last = Math.max(ra.acknowledged, rb.acknowledged);
  return ra.pending === 0 && rb.pending === 0 && ra.sequence >= last && rb.sequence >= last;
}

/** `of`'s own entry in its node list, and `from`'s view of it (undefined: `from` does not know it). */
function views(from: Server, of: Server) {
  const self = of.cluster!.nodes()[0]!;
  return { self, view: from.cluster!.nodes().find((n) => n.name === self.name) };
}

/** What `settled` waits on, for its failure message. */
function describeState(a: Server, b: Server): string {
  const side = (s: Server, other: Server): string => {
    const { self, view } = views(other, s);
    const r = s.cluster!.retained;
    return `${self.name}: ${self.filters} filters (the other knows ${view?.filters}), shared members ${self.sharedMembers}/${self.sharedConnected} connected (the other knows ${view?.sharedMembers}/${view?.sharedConnected}), retained pending ${r.pending}, read ${r.sequence}, acknowledged ${r.acknowledged}`;
  };
  return `${side(a, b)}; ${side(b, a)}`;
}

/** Whether `from` knows all of `of`'s filters and shared-group members (and nothing more). */
function knows(from: Server, of: Server): boolean {
  const { self, view } = views(from, of);
  return (
    view !== undefined &&
    view.filters === self.filters &&
    view.sharedMembers === self.sharedMembers &&
    view.sharedConnected === self.sharedConnected
  );
}

/** The id of the default broker `server` serves, undefined while it has none. */
export const defaultBrokerId = (server: Server): string | undefined =>
  server.tenancy.defaultTenant()?.broker.id;

export async function startPair(overrides: Parameters<typeof startServer>[0] = {}): Promise<ServerPair> {
  const cleanups: (() => unknown)[] = [];
  const context = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;
  const nats = await startNats(context);
  const n = ++pairs;
  const [a, b] = await Promise.all(
    ['a', 'b'].map((side) =>
      startServer({ ...overrides, cluster: nats.url, nodeName: `conf-${process.pid}-${n}-${side}` }),
    ),
  );
  let closed = false;
  const pair: ServerPair = {
    a: a!,
    b: b!,
    other: (server) => (server === a!.server ? b!.server : a!.server),
    async settled() {
      if (closed) return;
      // A node sends its turn's interest changes after the turn (setImmediate): let them go
      // first, or the counts compared below may still agree on the state before the change.
      await new Promise((resolve) => setImmediate(resolve));
      await until(
        () =>
          knows(a!.server, b!.server) && knows(b!.server, a!.server) && retainedSettled(a!.server, b!.server),
        () =>
          `both nodes to know each other filters and hold every retained message: ${describeState(a!.server, b!.server)}`,
      );
    },
    connect(node) {
      const [client, clientPeer] = duplexPair();
      const [serverPeer, server] = duplexPair();
      gate(clientPeer, serverPeer, () => pair.settled());
      node.accept(server, { transport: 'memory', remoteAddress: 'memory', remotePort: 0 });
      return client;
    },
    url: (node) => relays.get(node)!,
    async close() {
      closed = true;
      for (const relay of servers) relay.close();
      await Promise.all([a!.close(), b!.close()]);
      for (const fn of cleanups.reverse()) await fn();
    },
  };
  const relays = new Map<Server, string>();
  const servers: NetServer[] = [];
  for (const node of [a!, b!]) {
    const relay = createServer((client) =>
      gate(client, netConnect(node.port, '127.0.0.1'), () => pair.settled()),
    );
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    servers.push(relay);
    relays.set(node.server, `mqtt://127.0.0.1:${(relay.address() as { port: number }).port}`);
  }
  try {
    // Ready, not only linked: a node's bootstrap broker gives way to the cluster's at its control
    // plane sync (a client connected before would be disconnected with it), and two nodes started
    // at once on an empty bucket both seed it, one's default broker giving way to the other's
    // (docs/cluster.md). A node is not ready before it serves the cluster's default broker, so
    // once both are ready they serve the same one (test/cluster/bootstrap-race.test.ts).
    await until(() => a!.server.cluster!.ready && b!.server.cluster!.ready, 'both nodes ready (synced)');
    assert.ok(defaultBrokerId(a!.server) !== undefined, 'node a, ready, serves a default broker');
    assert.equal(defaultBrokerId(a!.server), defaultBrokerId(b!.server), 'both ready: one default broker');
    // The bootstrap account (and its admin token) of the node whose namespace `local` gave way
    // holds nothing: both TestServers name the one that holds it.
    const holds = (ts: TestServer): boolean => {
      try {
        a!.server.tenancy.getNamespace(ts.accountId, 'local');
        return true;
      } catch {
        return false;
      }
    };
    const owner = holds(a!) ? a! : b!;
    for (const ts of [a!, b!]) {
      ts.accountId = owner.accountId;
      ts.adminToken = owner.adminToken;
    }
    await pair.settled();
  } catch (err) {
    // What was started must not keep the test process alive once the test has failed.
    await pair.close();
    throw err;
  }
  return pair;
}

/**
 * An MQTT.js v5 client on `url` subscribed to `topic` at QoS 1, collecting each payload it gets
 * as text in `got` (closed when the test ends); resolves once the pair is settled.
 */
export async function collector(
  t: TestContext,
  pair: ServerPair,
  url: string,
  topic: string,
): Promise<{ client: MqttClient; got: string[] }> {
  const subscriber = await collecting(t, url, topic);
  await pair.settled();
  return subscriber;
}
