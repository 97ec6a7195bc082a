/**
 * The `pubsub serve` process as a user runs it: started with flags or environment variables,
 * announcing its listener on stdout, serving real clients, shutting down on SIGTERM (v5 clients
 * told DISCONNECT 0x8B, exit code 0) and refusing bad usage with exit code 2.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import type { Child } from '../helpers/child-process.ts';
import {
  describeWithTool,
  mosquittoClients,
  mosquittoPub,
  mosquittoSub,
  uniqueName,
} from '../helpers/interop-tools.ts';
import { spawnServe, startServe } from '../helpers/pubsub-process.ts';

const LISTENING = /^pubsub: mqtt listening on mqtt:\/\/127\.0\.0\.1:(\d+)$/;

/** Starts `pubsub serve` (fresh data directory) and resolves with its port once it announces the listener. */
async function serve(
  t: TestContext,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: Child; port: number; url: string }> {
  const { child } = await startServe(t, { args, env });
  const line = await child.waitForLine((l) => LISTENING.test(l), 'the listening line');
  const port = Number(LISTENING.exec(line)![1]);
  assert.ok(port > 0 && port !== 1883, `an OS-picked port, got ${port}`);
  return { child, port, url: `mqtt://127.0.0.1:${port}` };
}

/** An MQTT.js v5 round trip on `url`; leaves the client connected for the caller. */
async function roundTrip(t: TestContext, url: string): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  t.after(() => client.endAsync(true));
  const topic = uniqueName('cli/mqttjs');
  const received = new Promise<string>((resolve) =>
    client.once('message', (_t, payload) => resolve(`${payload}`)),
  );
  await client.subscribeAsync(topic, { qos: 1 });
  await client.publishAsync(topic, 'via mqtt.js', { qos: 1 });
  assert.equal(await received, 'via mqtt.js');
  return client;
}

/** SIGTERM: the connected v5 client gets DISCONNECT 0x8B, and the process exits 0 within 5 s. */
async function terminate(child: Child, client: mqtt.MqttClient): Promise<void> {
  const disconnect = new Promise<number | undefined>((resolve) =>
    client.once('disconnect', (packet) => resolve(packet.reasonCode)),
  );
  child.process.kill('SIGTERM');
  assert.equal(await disconnect, 0x8b); // Server shutting down [MQTT-4.13.2]
  assert.deepEqual(await child.waitForExit(5000), { code: 0, signal: null }, child.report());
}

describe('pubsub serve', () => {
  it('serves MQTT.js, then on SIGTERM tells v5 clients DISCONNECT 0x8B and exits 0', async (t) => {
    const { child, url } = await serve(t, ['--port', '0']);
    await terminate(child, await roundTrip(t, url));
  });

  it('takes the port from PUBSUB_PORT like --port', async (t) => {
    const { child, url } = await serve(t, [], { PUBSUB_PORT: '0' });
    await roundTrip(t, url);
    child.process.kill('SIGTERM');
    assert.deepEqual(await child.waitForExit(5000), { code: 0, signal: null }, child.report());
  });

  it('refuses a bad flag value with exit code 2 and says why on stderr', async (t) => {
    const { child } = spawnServe(t, { args: ['--port', '70000'] });
    const exit = await child.waitForExit();
    assert.equal(exit.code, 2, child.report());
    assert.match(child.stderr, /^pubsub: --port: port must be between 0 and 65535, got 70000$/m);
    assert.equal(
      child.lines.some((l) => LISTENING.test(l)),
      false,
    );
  });
});

describeWithTool('pubsub serve with mosquitto clients', mosquittoClients, () => {
  it('round-trips mosquitto_pub to mosquitto_sub and MQTT.js, then shuts down on SIGTERM', async (t) => {
    const { child, port, url } = await serve(t, ['--port', '0']);
    const topic = uniqueName('cli/mosquitto');
    const common = ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv5', '-q', '1', '-t', topic];
    const sub = await mosquittoSub(t, [...common, '-C', '1', '-W', '30']);
    const pub = await mosquittoPub(t, [...common, '-m', 'via mosquitto']);
    assert.equal(pub.exit!.code, 0, pub.report());
    await sub.waitForLine((l) => l === 'via mosquitto', 'the message');
    assert.equal((await sub.waitForExit()).code, 0, sub.report());
    await terminate(child, await roundTrip(t, url));
  });
});
