/**
 * Shared by the v5 conformance files (one per area): a server per file, packet-level clients
 * over in-memory duplexes, and the SUBSCRIBE / PUBLISH / receive steps every test repeats.
 * `harness()` registers the file's before/after hooks and returns the helpers bound to it.
 *
 * With PUBSUB_TEST_CLUSTER=1 (test/cluster/conformance.test.ts) every server is a two-node
 * cluster on its own NATS (server-pair.ts): `ts` is node A, and the clients a test opens on a
 * server alternate between its two nodes (the first on A, the second on B, ...), so a suite's
 * subscriber and publisher sit on different nodes; their bytes reach a node once both nodes
 * know each other's subscriptions (server-pair.ts `connect`).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before } from 'node:test';
import type {
  ConnectPacket,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubscriptionRequest,
} from '../../src/protocol/index.ts';
import type { Server } from '../../src/server.ts';
import type { BrokerStats } from '../../src/session/index.ts';
import { PACKET_WAIT_MS, RawClient } from './raw-client.ts';
import { startServer, type TestServer } from './server.ts';
import { type ServerPair, startPair } from './server-pair.ts';
import { expectAck } from './wire.ts';

export type Overrides = Parameters<typeof startServer>[0];

/** The default broker's plain counters (BrokerStats' number fields). */
type CounterName = {
  [K in keyof BrokerStats]: BrokerStats[K] extends number ? K : never;
}[keyof BrokerStats];

export interface Harness {
  /** The file's server (default config unless `harness` was given overrides). */
  readonly ts: TestServer;
  uid(): string;
  /** Another server, closed after the file. */
  serverWith(overrides: Overrides): Promise<TestServer>;
  /**
   * The `mqtt://` URL for a real client (MQTT.js) of `server` (default: the file's): its own URL
   * on one node; in cluster mode the node whose turn it is, as `open` picks.
   */
  url(server?: TestServer): string;
  /** The processes behind `server` (default: the file's): itself, or in cluster mode both nodes of its pair. */
  nodes(server?: Server): Server[];
  /** The node `c` was opened on (the file's server on one node). */
  node(c: RawClient): Server;
  /** A counter of the default broker of `server` (default: the file's), summed over its nodes. */
  stat(name: CounterName, server?: Server): number;
  open(version: ProtocolVersion, server?: Server): RawClient;
  /**
   * A new client on the node `c` was opened on (the file's server on one node): a return to the
   * same node, as a sticky load balancer gives (persistent sessions stay on their node: issue 19).
   */
  reopen(c: RawClient, version: ProtocolVersion): RawClient;
  connected(version: ProtocolVersion, fields?: Partial<ConnectPacket>, server?: Server): Promise<RawClient>;
  subscribe(
    c: RawClient,
    topicFilter: string,
    qos: QoS,
    options?: Partial<SubscriptionRequest>,
    properties?: Properties,
  ): Promise<number[]>;
  publish(
    c: RawClient,
    topic: string,
    payload: string | Buffer,
    qos?: QoS,
    extra?: Partial<PublishPacket>,
  ): Promise<void>;
  receive(c: RawClient, timeoutMs?: number): Promise<PublishPacket>;
}

let packetIds = 0;
/** A packet id for a packet a test sends by hand (one counter for the whole file). */
export const pid = (): number => (packetIds = (packetIds % 0xfff0) + 1);

export const text = (p: PublishPacket): string => p.payload.toString();
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The conformance suites run against two-node clusters (test/cluster/conformance.test.ts). */
export const CLUSTER_MODE = process.env.PUBSUB_TEST_CLUSTER === '1';

export function harness(prefix: string, overrides: Overrides = {}): Harness {
  let ts: TestServer | undefined;
  const extra: { close(): Promise<void> }[] = [];
  const clients: RawClient[] = [];
  /** Cluster mode: each node's pair, and how many clients the test opened on each pair so far. */
  const pairs = new Map<Server, ServerPair>();
  const opened = new Map<ServerPair, number>();
  /** Cluster mode: the node each client was opened on. */
  const nodeOf = new WeakMap<RawClient, Server>();
  let counter = 0;
  const start = async (o: Overrides): Promise<TestServer> => {
    if (!CLUSTER_MODE) return startServer(o);
    const pair = await startPair(o);
    pairs.set(pair.a.server, pair).set(pair.b.server, pair);
    extra.push(pair);
    return pair.a;
  };
  /** Cluster mode: the node of `server`'s pair whose turn it is, and the pair. */
  const place = (server: Server): [Server, ServerPair | undefined] => {
    const pair = pairs.get(server);
    if (pair === undefined) return [server, undefined];
    const n = opened.get(pair) ?? 0;
    opened.set(pair, n + 1);
    return [n % 2 === 0 ? server : pair.other(server), pair];
  };
  before(async () => {
    ts = await start(overrides);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
    opened.clear();
  });
  after(async () => {
    await Promise.all([CLUSTER_MODE ? undefined : ts?.close(), ...extra.map((s) => s.close())]);
  });

  const h: Harness = {
    get ts() {
      return ts!;
    },
    uid: () => `${prefix}-${process.pid}-${++counter}`,
    async serverWith(o) {
      const s = await start(o);
      if (!CLUSTER_MODE) extra.push(s);
      return s;
    },
    url(server = ts!) {
      const [node, pair] = place(server.server);
      return pair === undefined ? server.url : pair.url(node);
    },
    nodes(server = ts!.server) {
      const pair = pairs.get(server);
      return pair === undefined ? [server] : [pair.a.server, pair.b.server];
    },
    stat(name, server = ts!.server) {
      return h.nodes(server).reduce((n, node) => n + node.defaultBroker.stats[name], 0);
    },
    open(version, server = ts!.server) {
      const [node, pair] = place(server);
      const c =
        pair === undefined ? RawClient.memory(node, version) : new RawClient(pair.connect(node), version);
      clients.push(c);
      nodeOf.set(c, node);
      return c;
    },
    node: (c) => nodeOf.get(c) ?? ts!.server,
    reopen(c, version) {
      const node = h.node(c);
      const pair = pairs.get(node);
      const again =
        pair === undefined ? RawClient.memory(node, version) : new RawClient(pair.connect(node), version);
      clients.push(again);
      nodeOf.set(again, node);
      return again;
    },
    async connected(version, fields = {}, server = ts!.server) {
      const c = h.open(version, server);
      const ack = await c.connect({ clientId: h.uid(), ...fields });
      assert.equal(ack.reasonCode, 0, `CONNACK success, got ${JSON.stringify(ack)}`);
      return c;
    },
    async subscribe(c, topicFilter, qos, options = {}, properties) {
      c.send({
        type: 'subscribe',
        packetId: pid(),
        subscriptions: [
          { topicFilter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0, ...options },
        ],
        ...(properties ? { properties } : {}),
      });
      return (await c.expect('suback')).reasonCodes;
    },
    async publish(c, topic, payload, qos = 0, more = {}) {
      const packetId = pid();
      c.send({
        type: 'publish',
        topic,
        payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
        qos,
        retain: false,
        dup: false,
        ...(qos > 0 ? { packetId } : {}),
        ...more,
      });
      if (qos === 1) {
        const ack = await expectAck(c, 'puback');
        assert.equal(ack.packetId, packetId);
        // A success: 0x00, or 0x10 No matching subscribers when nothing subscribes to the topic (v5).
        assert.ok(
          ack.reasonCode === 0 || ack.reasonCode === 0x10,
          `PUBACK reason 0x${ack.reasonCode.toString(16)}`,
        );
      }
      if (qos === 2) {
        await c.expect('pubrec');
        c.send({ type: 'pubrel', packetId, reasonCode: 0 });
        await c.expect('pubcomp');
      }
    },
    async receive(c, timeoutMs = PACKET_WAIT_MS) {
      const p = await c.expect('publish', timeoutMs);
      if (p.qos === 1) c.send({ type: 'puback', packetId: p.packetId!, reasonCode: 0 });
      if (p.qos === 2) {
        c.send({ type: 'pubrec', packetId: p.packetId!, reasonCode: 0 });
        await c.expect('pubrel');
        c.send({ type: 'pubcomp', packetId: p.packetId!, reasonCode: 0 });
      }
      return p;
    },
  };
  return h;
}
