/**
 * Ownership without split brain (issue 19, src/cluster/session-fence.ts): a node cut off from
 * NATS by a silent partition (its TCP connection open, nothing passing: a proxy that stops
 * forwarding) stops serving persistent sessions 3 s after its last contact, while the client
 * resumes on another node from the journal, once the cut-off node is forgotten (adopted by B,
 * the first live node by name, or read for its CONNECT). Three
 * nats-servers (R3); node A reaches NATS only through the proxy, B and C directly.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { it, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { freePort, metric, startNatsCluster, startNode } from '../helpers/cluster.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';
import { RawClient } from '../helpers/raw-client.ts';

/** A TCP proxy to `target` whose `cut()` stops forwarding both ways and refuses new connections. */
async function silentProxy(
  t: TestContext,
  target: string,
): Promise<{ url: string; cut(): void; heal(): void }> {
  const { hostname, port } = new URL(target);
  const sockets: Socket[] = [];
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = tcpConnect(Number(port), hostname);
    sockets.push(client, upstream);
    for (const s of [client, upstream]) s.on('error', () => {});
    client.on('data', (d) => void (cut || upstream.write(d)));
    upstream.on('data', (d) => void (cut || client.write(d)));
  });
  const listenPort = await freePort();
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    url: `nats://127.0.0.1:${listenPort}`,
    cut() {
      cut = true;
    },
    heal() {
      cut = false;
      for (const s of sockets.splice(0)) s.destroy(); // the NATS client reconnects through it
    },
  };
}

describeWithTool('cluster: a node cut off from NATS stops serving persistent sessions', natsServer, () => {
  it('silent partition of A: its persistent client is closed 0x9C, persistent CONNECTs refused 0x88, clean ones served; the client resumes on B from the journal', async (t) => {
    const { members } = await startNatsCluster(t, 3);
    const proxy = await silentProxy(t, members[0]!.url);
    const replicas = ['--cluster-replicas', '3'];
    const direct = members
      .slice(1)
      .map((m) => m.url)
      .join(',');
    const a = await startNode(t, { url: proxy.url }, 'fence-a', replicas);
    const [b] = await Promise.all(
      ['b', 'c'].map((n) => startNode(t, { url: direct }, `fence-${n}`, replicas)),
    );
    const id = uniqueName('fenced');
    const persistent = (clientId: string): mqtt.IClientOptions => ({
      protocolVersion: 5,
      clientId,
      clean: false,
      reconnectPeriod: 0,
      properties: { sessionExpiryInterval: 300 },
    });
    // Y: an offline session on A with five messages queued (acknowledged, so in the journal).
    const y = await mqtt.connectAsync(a.urls.mqtt!, persistent(`${id}-y`));
    await y.subscribeAsync(`${id}/#`, { qos: 1 });
    await y.endAsync();
    const pub = await mqtt.connectAsync(a.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => pub.endAsync(true));
    for (let i = 0; i < 5; i++) await pub.publishAsync(`${id}/x`, `before-${i}`, { qos: 1 });
    // X: a persistent session connected on A when it is cut off.
    const x = await mqtt.connectAsync(a.urls.mqtt!, persistent(`${id}-x`));
    x.on('error', () => {});
    const closed = new Promise<number | undefined>((resolve) =>
      x.once('disconnect', (p) => resolve(p.reasonCode)),
    );

    const cutAt = Date.now();
    proxy.cut();
    const log = (node: { child: { lines: string[] } }) =>
      node.child.lines
        .filter((l) => /cluster_|journal|session/.test(l))
        .slice(-12)
        .join('\n');
    assert.equal(await closed, 0x9c, `DISCONNECT 0x9C Use another server\n${log(a)}`);
    const after = Date.now() - cutAt;
    // 3 s after the last contact, which a probe a second made up to a second before the cut.
    assert.ok(after >= 1500 && after < 8000, `fenced ${after} ms after the cut (3 s after the last contact)`);
    const refused = await RawClient.tcp(Number(new URL(a.urls.mqtt!).port), 5);
    t.after(() => refused.end());
    const ack = await refused.connect({
      clientId: `${id}-2`,
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    });
    assert.equal(ack.reasonCode, 0x88, 'a persistent session is refused: 0x88 Server unavailable');
    const clean = await mqtt.connectAsync(a.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
    await clean.endAsync(); // a clean session is served

    // The client resumes on B: B waits until A is forgotten, then reads the journal.
    const got: string[] = [];
    const onB = mqtt.connect(b!.urls.mqtt!, persistent(`${id}-y`));
    t.after(() => onB.endAsync(true));
    onB.on('message', (_t, payload) => got.push(payload.toString()));
    const connack = await new Promise<mqtt.IConnackPacket>((resolve) => onB.once('connect', resolve));
    assert.equal(connack.sessionPresent, true, `Session Present 1 on B\n${log(b!)}`);
    await until(
      () => got.length >= 5,
      () => `the five on B (${got.join(',')})`,
    );
    assert.deepEqual(got, ['before-0', 'before-1', 'before-2', 'before-3', 'before-4']);
    const fromJournal = // adopted once A was forgotten (B sorts first), or read for the CONNECT
      (await metric(b!, 'pubsub_cluster_sessions_recovered_total')) +
      (await metric(b!, 'pubsub_cluster_orphan_sessions_adopted_total'));
    assert.ok(fromJournal >= 1, 'B read it from the journal');
    assert.equal(await metric(a, 'pubsub_cluster_fenced_total'), 1);
    await onB.endAsync(false, { properties: { sessionExpiryInterval: 0 } }); // ended on B

    // Contact back: A checks what it held against the journal; Y ended on B since, so A's copy
    // (with the five) goes, and Y on A starts afresh.
    proxy.heal();
    await until(async () => (await metric(a, 'pubsub_cluster_fenced')) === 0, 'A unfenced');
    await until(async () => (await a.api('/readyz')).status === 200, 'A ready again');
    const again: string[] = [];
    const onA = mqtt.connect(a.urls.mqtt!, persistent(`${id}-y`));
    t.after(() => onA.endAsync(true));
    onA.on('message', (_t, payload) => again.push(payload.toString()));
    const ack2 = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
      onA.once('connect', resolve);
      onA.once('error', reject);
    });
    assert.equal(
      ack2.sessionPresent,
      false,
      `the session ended on B is not served from A's old copy\n${log(a)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(again, [], 'nothing of the old copy');
  });
});
