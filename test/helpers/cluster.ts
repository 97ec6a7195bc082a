/**
 * A cluster for a test: `nats-server` on free ports (client port and monitoring port, `-1`:
 * the server picks and logs them) and `pubsub serve --cluster` nodes joined to it, each with
 * its own data dir and ports. The suite runs inside describeWithTool(..., natsServer, ...).
 *
 * `nats.restart()` kills NATS (SIGKILL) and starts it again on the same client port, for the
 * link-loss tests; `nats.varz()` reads the monitoring endpoint's counters. JetStream is on
 * (`-js`, file store in a temporary directory kept across restarts and removed after the test).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { type Child, spawnChild, until } from './child-process.ts';
import { type RunningServe, startServe } from './pubsub-process.ts';

export interface Nats {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly monitorUrl: string;
  child: Child;
  /** GET /varz of the monitoring endpoint. */
  varz(): Promise<{ in_msgs: number; out_msgs: number; subscriptions: number; connections: number }>;
  /** SIGKILL, nothing listening on the port until `start`. */
  kill(): Promise<void>;
  /** Starts it again on the same ports. */
  start(): Promise<void>;
}

const CLIENT_PORT = /Listening for client connections on 127\.0\.0\.1:(\d+)/;
const MONITOR_PORT = /Starting http monitor on 127\.0\.0\.1:(\d+)/;

/**
 * JetStream on, its file store in `storeDir` (kept across `restart`, removed after the test);
 * `more`: further flags (a cluster member's name and routes).
 */
function spawnNats(t: TestContext, port: number, monitorPort: number, storeDir: string, more = ''): Child {
  return spawnChild(t, 'sh', [
    '-c',
    `exec nats-server -a 127.0.0.1 -p ${port} -m ${monitorPort} ${more} -js -sd '${storeDir}' 2>&1`,
  ]);
}

/** A port free now (bound, then closed): for a NATS server started later on a known port. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts nats-server on `port` (default: one it picks) and a monitoring port it picks. */
export async function startNats(t: TestContext, wanted = -1): Promise<Nats> {
  const storeDir = mkdtempSync(join(tmpdir(), 'pubsub-nats-'));
  let child = spawnNats(t, wanted, -1, storeDir);
  const monitorLine = await child.waitForLine((l) => MONITOR_PORT.test(l), 'nats-server monitoring port');
  const clientLine = await child.waitForLine((l) => CLIENT_PORT.test(l), 'nats-server client port');
  const port = Number(CLIENT_PORT.exec(clientLine)![1]);
  const monitorPort = Number(MONITOR_PORT.exec(monitorLine)![1]);
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  const nats: Nats = {
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorUrl,
    child,
    async varz() {
      return (await (await fetch(`${monitorUrl}/varz`)).json()) as Awaited<ReturnType<Nats['varz']>>;
    },
    async kill() {
      await child.kill();
    },
    async start() {
      child = spawnNats(t, port, monitorPort, storeDir);
      nats.child = child;
      await child.waitForLine((l) => /Server is ready/.test(l), 'nats-server ready again');
    },
  };
  t.after(async () => {
    await nats.child.kill();
    rmSync(storeDir, { recursive: true, force: true, maxRetries: 3 });
  });
  return nats;
}

/** A v5 subscriber at `url` to `topic` (QoS 1), and the payloads it receives, in order. */
export async function collecting(
  t: TestContext,
  url: string,
  topic: string,
): Promise<{ client: MqttClient; got: string[] }> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  t.after(() => client.endAsync(true));
  const got: string[] = [];
  client.on('message', (_topic, payload) => got.push(payload.toString()));
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, got };
}

/** One server of a NATS cluster (`startNatsCluster`). */
export interface NatsMember {
  readonly name: string;
  readonly url: string;
  readonly monitorUrl: string;
  /** SIGKILL. */
  kill(): Promise<void>;
}

/**
 * Starts `size` nats-servers clustered with each other (routes on ports free now, JetStream on,
 * each its own store directory) and waits until every one is ready and JetStream has elected
 * its metadata leader. `urls` lists every client URL, comma-separated, as `--cluster` takes it.
 */
export async function startNatsCluster(
  t: TestContext,
  size = 3,
): Promise<{ members: NatsMember[]; urls: string }> {
  const ports = await Promise.all(
    Array.from({ length: size }, async () => ({
      client: await freePort(),
      route: await freePort(),
      monitor: await freePort(),
    })),
  );
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(',');
  const members: NatsMember[] = [];
  const children: Child[] = [];
  for (const [i, p] of ports.entries()) {
    const storeDir = mkdtempSync(join(tmpdir(), 'pubsub-nats-'));
    const name = `nats-${i}`;
    const child = spawnNats(
      t,
      p.client,
      p.monitor,
      storeDir,
      `-n ${name} --cluster_name pubsub-test --cluster nats://127.0.0.1:${p.route} --routes ${routes}`,
    );
    children.push(child);
    t.after(async () => {
      await child.kill();
      rmSync(storeDir, { recursive: true, force: true, maxRetries: 3 });
    });
    members.push({
      name,
      url: `nats://127.0.0.1:${p.client}`,
      monitorUrl: `http://127.0.0.1:${p.monitor}`,
      kill: () => child.kill(),
    });
  }
  for (const child of children)
    await child.waitForLine((l) => /Server is ready/.test(l), 'nats-server ready');
  await until(
    async () => {
      for (const m of members) {
        const jsz = (await (await fetch(`${m.monitorUrl}/jsz`)).json()) as {
          meta_cluster?: { leader?: string };
        };
        if (!jsz.meta_cluster?.leader) return false;
      }
      return true;
    },
    'a JetStream metadata leader',
    20_000,
  );
  return { members, urls: members.map((m) => m.url).join(',') };
}

/** GET /cluster's result. */
export interface ClusterView {
  enabled: boolean;
  node: string;
  nodes: {
    name: string;
    self: boolean;
    link: string;
    connections: number | null;
    filters: number;
    uptimeSeconds: number | null;
    apiUrl: string | null;
  }[];
}

export interface Node extends RunningServe {
  /** The admin token of its data dir. */
  token: string;
  /** GET an admin API path with the node's token; the status and the parsed body (GET /cluster's shape). */
  api(path: string): Promise<{ status: number; body: { result: ClusterView } }>;
}

/**
 * Starts `pubsub serve --cluster <nats> --node-name <name>` and waits until it is ready (its
 * link up, the cluster's retained messages read); `dataDir` as startServe's.
 */
export async function startNode(
  t: TestContext,
  nats: Pick<Nats, 'url'>,
  name: string,
  args: string[] = [],
  dataDir?: string,
): Promise<Node> {
  const serve = await startServe(t, {
    args: ['--cluster', nats.url, '--node-name', name, ...args],
    ...(dataDir === undefined ? {} : { dataDir }),
  });
  const token = readFileSync(join(serve.dataDir, 'admin-token'), 'utf8').trim();
  const node: Node = {
    ...serve,
    token,
    async api(path: string) {
      const res = await fetch(`${serve.apiUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as { result: ClusterView } };
    },
  };
  await until(async () => (await node.api('/readyz')).status === 200, `${name} ready (cluster link up)`);
  return node;
}

/**
 * A context for a suite's `before`: what is started with it is stopped by `cleanup` (the
 * suite's `after`), last first.
 */
export function suiteContext(): { suite: TestContext; cleanup(): Promise<void> } {
  const cleanups: (() => unknown)[] = [];
  return {
    suite: { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext,
    async cleanup() {
      for (const fn of cleanups.reverse()) await fn();
    },
  };
}

/** A series' value on a node's /metrics (the first with that name), NaN when absent. */
export async function metric(node: { apiUrl: string }, name: string): Promise<number> {
  const text = await (await fetch(`${node.apiUrl}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
}

/**
 * The account that holds namespace `name` in the cluster: with one control plane, the nodes'
 * bootstrap namespaces `local` give way to the first node's, so a node's own account id may
 * not hold it. Asked with `node`'s admin token (an operator token: every node's works anywhere).
 */
export async function accountOf(node: Node, name: string): Promise<string> {
  const headers = { authorization: `Bearer ${node.token}` };
  const res = await fetch(`${node.apiUrl}/client/v4/accounts`, { headers });
  const accounts = ((await res.json()) as { result: { id: string }[] }).result;
  for (const { id } of accounts) {
    const ns = await fetch(`${node.apiUrl}/client/v4/accounts/${id}/pubsub/namespaces/${name}`, { headers });
    if (ns.status === 200) return id;
  }
  throw new Error(`no account holds namespace ${name}`);
}

/**
 * `mosquitto_sub -c -i <clientId> -q <qos> -t <clientId>/#` on `node`'s MQTT listener, line
 * buffered, with `more` arguments: a persistent session of the cluster tests' kind.
 */
export function persistentMosquittoSub(
  t: TestContext,
  node: { urls: Record<string, string> },
  clientId: string,
  qos: 1 | 2,
  more: string[],
): Child {
  const port = new URL(node.urls.mqtt!).port;
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    port,
    '-c',
    '-i',
    clientId,
    '-q',
    String(qos),
    '-t',
    `${clientId}/#`,
  ];
  return spawnChild(t, 'stdbuf', ['-oL', 'mosquitto_sub', ...args, ...more]);
}
