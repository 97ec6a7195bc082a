/**
 * The `pubsub` command as `npm start` and an installed package run it: `bin/pubsub.js` executed
 * by its first line (`#!/usr/bin/env -S node --max-semi-space-size=8`), which gives Node the
 * heap settings that only take effect at start (docs/performance.md, "Young generation"). The
 * server it starts takes an MQTT.js client, and the process is Node with
 * those flags; the benches read the same line (bench/brokers.ts launcherNodeFlags).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import mqtt from 'mqtt';
import { launcherNodeFlags } from '../../bench/brokers.ts';
import { BIN, startServe } from '../helpers/pubsub-process.ts';

it('bin/pubsub.js runs `serve` with its node flags, and the server takes a client', async (t) => {
  const serve = await startServe(t, { launcher: true, dataDir: ':memory:' });
  const cmdline = readFileSync(`/proc/${serve.child.process.pid}/cmdline`, 'utf8').split('\0');
  assert.ok(cmdline.includes('--max-semi-space-size=8'), `the process: ${cmdline.join(' ')}`);
  assert.ok(cmdline.includes(BIN), `runs the launcher: ${cmdline.join(' ')}`);
  const client = await mqtt.connectAsync(serve.urls.mqtt!, { reconnectPeriod: 0 });
  t.after(() => client.endAsync());
  assert.equal(client.connected, true);
});

it("the benches start our broker with the launcher's flags", () => {
  assert.deepEqual(launcherNodeFlags(), ['--max-semi-space-size=8']);
});
