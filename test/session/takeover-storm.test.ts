/**
 * Takeover and reconnect storms (src/session/connection-guard.ts `admitClientId`, the log
 * sampler of src/observability/log-sampler.ts): two clients fighting over one client id, each
 * reconnecting at once when taken over, are held to `--max-client-connect-rate` CONNECTs per
 * back-off (v5 CONNACK 0x9F Connection rate exceeded, v3.1.1 0x03) instead of hundreds a
 * second; the client events they cause are logged at most `--client-log-rate` a second, the
 * next line logged saying how many were dropped. Other client ids are not affected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { ConnectReturnCode, ReasonCode } from '../../src/protocol/index.ts';
import { WAIT_MS } from '../helpers/child-process.ts';
import { uniqueName } from '../helpers/interop-tools.ts';
import { captureLog } from '../helpers/log-capture.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer } from '../helpers/server.ts';

type Version = 4 | 5;
const VERSIONS: Version[] = [4, 5];
const RATE = 5;
const LOG_RATE = 20;
const LOOP_MS = 2500;

describe('takeover loop between two clients', () => {
  for (const version of VERSIONS) {
    it(`v${version}: connects per client id fall to --max-client-connect-rate per back-off, the rest refused (${version === 5 ? '0x9F' : '0x03'}); the log is sampled`, async (t) => {
      const log = captureLog('info');
      const ts = await startServer(
        { maxClientConnectRate: RATE, clientLogRate: LOG_RATE },
        { logger: log.logger },
      );
      t.after(() => ts.close());
      const clientId = uniqueName('fight');
      const refusals: number[] = [];
      const fighters: MqttClient[] = [];
      for (let i = 0; i < 2; i++) {
        const c = mqtt.connect(ts.url, {
          protocolVersion: version,
          clientId,
          reconnectPeriod: 5, // back at once, as the measured loop did, refused or not
          reconnectOnConnackError: true,
          connectTimeout: WAIT_MS,
        });
        c.on('error', (err: Error & { code?: number }) => {
          if (err.code !== undefined) refusals.push(err.code);
        });
        fighters.push(c);
      }
      const start = Date.now();
      await new Promise((r) => setTimeout(r, LOOP_MS));
      await Promise.all(fighters.map((c) => c.endAsync(true)));
      const seconds = (Date.now() - start) / 1000;
      const stats = ts.server.defaultBroker.stats;

      // Without the limit the pair makes hundreds of connects in this time. With it: a burst of
      // RATE, a 1 s back-off, a burst, a 2 s back-off...
      assert.ok(stats.connectionsAccepted <= 3 * RATE, `${stats.connectionsAccepted} connects accepted`);
      assert.ok(stats.connectionsAccepted >= RATE, `${stats.connectionsAccepted} connects accepted`);
      const refused = stats.connectionsRefused.get('CONNECTION_RATE_EXCEEDED') ?? 0;
      assert.ok(refused > 0, 'some connects were refused');
      assert.ok(refusals.length > 0);
      const expected =
        version === 5 ? ReasonCode.ConnectionRateExceeded : ConnectReturnCode.ServerUnavailable;
      assert.ok(
        refusals.every((code) => code === expected),
        `CONNACK codes: ${[...new Set(refusals)]}`,
      );

      const events = log.lines.filter((l) => typeof l.event === 'string' && l.event !== 'client.auth_failed');
      assert.ok(
        events.length <= LOG_RATE * Math.ceil(seconds + 1),
        `${events.length} client event lines in ${seconds} s`,
      );
      const dropped = events.reduce((n, l) => n + (typeof l.suppressed === 'number' ? l.suppressed : 0), 0);
      assert.ok(ts.server.clientLog.suppressed > 0, 'lines were dropped');
      assert.ok(dropped > 0, 'a logged line says how many were dropped before it');
      assert.ok(dropped <= ts.server.clientLog.suppressed);

      // Another client id of the same broker connects at once.
      const other = await mqtt.connectAsync(ts.url, {
        protocolVersion: version,
        clientId: uniqueName('other'),
        reconnectPeriod: 0,
      });
      await other.endAsync();
    });
  }

  it('the back-off doubles: the same id is refused again at once after its next burst, for longer', async (t) => {
    const ts = await startServer({ maxClientConnectRate: 2 });
    t.after(() => ts.close());
    const clientId = uniqueName('backoff');
    const attempt = async (): Promise<{ code: number; detail: string | undefined }> => {
      const c = await RawClient.tcp(ts.port, 5);
      try {
        const ack = await c.connect({ clientId });
        return { code: ack.reasonCode, detail: ack.properties?.reasonString };
      } finally {
        c.destroy();
      }
    };
    assert.equal((await attempt()).code, 0);
    assert.equal((await attempt()).code, 0);
    const first = await attempt();
    assert.equal(first.code, ReasonCode.ConnectionRateExceeded);
    assert.match(first.detail ?? '', /refused for 1000 ms/);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await attempt()).code, 0, 'allowed again after the back-off');
    assert.equal((await attempt()).code, 0);
    const second = await attempt();
    assert.equal(second.code, ReasonCode.ConnectionRateExceeded);
    assert.match(second.detail ?? '', /refused for 2000 ms/);
  });
});
