/**
 * The per-connection bad-input lines (`protocol error; disconnecting`, `invalid CONNECT;
 * closing`) share the client-event log rate (`--client-log-rate`, observability/log-sampler.ts):
 * a flood of malformed packets over many connections makes a bounded number of lines, the first
 * ones logged, the rest counted in `suppressed` and `pubsub_log_lines_suppressed_total`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { until } from '../helpers/child-process.ts';
import { uniqueName } from '../helpers/interop-tools.ts';
import { captureLog } from '../helpers/log-capture.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const LOG_RATE = 5;
const CONNECTIONS = 120;
/** Packet type 0 is reserved: malformed in every version [MQTT-2.1.2] (v5 table 2-1). */
const RESERVED_TYPE = [0x00, 0x00];
/** A CONNECT whose protocol name is not MQTT: an invalid CONNECT [MQTT-3.1.2-1]. */
const BAD_CONNECT = [0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x58, 0x58, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00];

/** One connection that sends bad input (every third a bad CONNECT, else a reserved packet after CONNECT), until the server closes it. */
async function misbehave(ts: TestServer, i: number): Promise<void> {
  const raw = await RawClient.tcp(ts.port, i % 2 === 0 ? 4 : 5);
  try {
    if (i % 3 === 0) raw.sendRaw(BAD_CONNECT);
    else {
      await raw.connect({ clientId: uniqueName('bad') });
      raw.sendRaw(RESERVED_TYPE);
    }
    await raw.closed();
  } finally {
    raw.socket.destroy();
  }
}

async function suppressedMetric(ts: TestServer): Promise<number> {
  const text = await (await fetch(`${ts.apiUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('pubsub_log_lines_suppressed_total{'));
  return Number(line?.slice(line.lastIndexOf(' ') + 1));
}

describe('protocol-error log lines under --client-log-rate', () => {
  it(`${CONNECTIONS} connections of malformed input (v3.1.1 and v5) make a bounded number of lines, the rest counted as suppressed`, async (t) => {
    const log = captureLog('info');
    const ts = await startServer({ httpPort: 0, clientLogRate: LOG_RATE }, { logger: log.logger });
    t.after(() => ts.close());
    const started = Date.now();
    for (let i = 0; i < CONNECTIONS; i += 20)
      await Promise.all(Array.from({ length: 20 }, (_, k) => misbehave(ts, i + k)));
    const flooded = Date.now();
    const suppressedInFlood = ts.server.clientLog.suppressed;
    // Once the window has turned, the next bad connection's line says how many were dropped.
    let n = CONNECTIONS;
    await until(async () => {
      await misbehave(ts, n++);
      return log.lines.some((l) => typeof l.suppressed === 'number');
    }, 'a line carrying `suppressed`');
    const windows = Math.ceil((Date.now() - started) / 1000) + 1;

    const bad = [
      ...log.withMessage('protocol error; disconnecting'),
      ...log.withMessage('invalid CONNECT; closing'),
    ];
    assert.ok(bad.length >= 1, 'the first ones are logged');
    assert.ok(
      bad.length <= LOG_RATE * windows,
      `${bad.length} bad-input lines in ${windows} one-second windows at ${LOG_RATE}/s`,
    );
    assert.ok(
      suppressedInFlood >= CONNECTIONS - LOG_RATE * (Math.ceil((flooded - started) / 1000) + 1),
      `${suppressedInFlood} lines dropped during the flood`,
    );
    assert.equal(await suppressedMetric(ts), ts.server.clientLog.suppressed);
  });
});
