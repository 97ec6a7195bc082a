/**
 * Overload shedding on the input side (src/broker/input-shedding.ts), with real clients: once
 * the process has been over `--max-memory` for a while (PAUSE_AFTER_MS), the readers of the
 * broker with the most inbound bytes are paused (HOLD_OVERLOAD) and another broker's client is
 * served on; back under, they are read again. Each transition is logged once and the pause is counted on the paused broker.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { encode, type ProtocolVersion } from '../../src/protocol/index.ts';
import { until } from '../helpers/child-process.ts';
import { uniqueName } from '../helpers/interop-tools.ts';
import { captureLog } from '../helpers/log-capture.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { addAnonymousBrokers, startServer } from '../helpers/server.ts';

const VERSIONS: ProtocolVersion[] = [4, 5];
const MIB = 1024 * 1024;
const PAUSING = 'process overloaded: pausing the readers of the heaviest brokers';
const RESUMING = 'process recovered: resuming the readers of paused brokers';

/** Resolves once `count()` has not moved across two polls (10 ms apart); returns its value. */
async function settled(count: () => number, what: string): Promise<number> {
  let previous = -1;
  await until(() => {
    const now = count();
    const same = now === previous;
    previous = now;
    return same;
  }, what);
  return previous;
}

describe('overload: the readers of the heaviest broker are paused', () => {
  for (const version of VERSIONS) {
    it(`v${version}: a flooding broker's client is not read while the process is over --max-memory; another broker's client is served; reading resumes on recovery`, async (t) => {
      const log = captureLog('info');
      const ts = await startServer({ httpPort: 0 }, { logger: log.logger });
      t.after(() => ts.close());
      addAnonymousBrokers(ts, 'shed', ['light']);
      const heavy = ts.server.defaultBroker;
      const received = (): number => heavy.stats.received[0]!;

      const light = await mqtt.connectAsync(ts.url, {
        protocolVersion: version,
        clientId: uniqueName('light'),
        username: 'light.shed',
        reconnectPeriod: 0,
      });
      t.after(() => light.endAsync(true));
      await light.subscribeAsync('light/echo', { qos: 1 });

      const flooder = await RawClient.tcp(ts.port, version);
      t.after(() => flooder.destroy());
      await flooder.connect({ clientId: uniqueName('flooder') });
      const one = encode(
        { type: 'publish', topic: 'heavy/t', payload: Buffer.from('x'), qos: 0, retain: false, dup: false },
        version,
      );
      const batch = Buffer.concat(Array.from({ length: 500 }, () => one));
      let flooding = true;
      t.after(() => {
        flooding = false;
      });
      // As fast as the socket takes it: a paused reader stops the callbacks (TCP pushes back).
      const pump = (): void => {
        if (flooding && !flooder.isClosed) flooder.socket.write(batch, pump);
      };
      pump();
      const before = received();
      await until(() => received() > before + 20_000, 'the flood to be read');

      ts.server.overload.maxMemoryBytes = 1 * MIB; // below any process's RSS: judged at once
      assert.equal(ts.server.overload.overloaded, true);
      assert.deepEqual(ts.server.inputShedding.paused, [], 'a short overload pauses no one');
      await until(() => ts.server.inputShedding.paused.length > 0, 'the overload to last');
      assert.deepEqual(ts.server.inputShedding.paused, [heavy.address]);
      const paused = await settled(received, 'the flooder to stop being read');
      for (let i = 0; i < 3; i++) {
        const echoed = new Promise((resolve) => light.once('message', resolve));
        await light.publishAsync('light/echo', `served ${i}`, { qos: 1 });
        await echoed;
      }
      await new Promise((resolve) => setTimeout(resolve, 2 * ts.server.overload.tickMs));
      assert.equal(received(), paused, 'not read across ticks while overloaded');
      const metrics = await (await fetch(`${ts.apiUrl}/metrics`)).text();
      const holds = (broker: string) =>
        metrics.match(
          new RegExp(`^pubsub_overload_input_holds_total\\{[^}]*broker="${broker}"[^}]*\\} (\\d+)$`, 'm'),
        )?.[1];
      assert.equal(holds(ts.server.config.defaultBroker.split('.')[0]!), '1');
      assert.equal(holds('light'), '0');

      ts.server.overload.maxMemoryBytes = 1024 * 1024 * MIB;
      assert.equal(ts.server.overload.overloaded, false);
      assert.deepEqual(ts.server.inputShedding.paused, []);
      await until(() => received() > paused + 10_000, 'the flooder to be read again');
      flooding = false;
      assert.equal(log.withMessage(PAUSING).length, 1, 'the pause is logged once');
      assert.deepEqual(
        (log.withMessage(PAUSING)[0]!.brokers as { broker: string }[]).map((b) => b.broker),
        [heavy.address],
      );
      assert.equal(log.withMessage(RESUMING).length, 1, 'the resumption is logged once');
    });
  }
});
