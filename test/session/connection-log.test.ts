/**
 * A connection's log lines name the client once: the connection's logger carries `clientId`,
 * so the lines it writes must not repeat it (a JSON line with the key twice is read differently
 * by different log tools). Read from the raw lines, as a JSON parse keeps only one of two keys.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const MAX_KEEPALIVE = 30;

const rawLines: string[] = [];
let ts: TestServer;
before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') rawLines.push(line);
      callback();
    },
  });
  ts = await startServer({ maxKeepalive: MAX_KEEPALIVE }, { logger: pino({ level: 'warn' }, sink) });
});
after(async () => {
  await ts?.close();
});

/** The one raw line whose msg is `msg` and that names `clientId`. */
function lineFor(msg: string, clientId: string): string {
  const lines = rawLines.filter((l) => {
    const parsed = JSON.parse(l) as Record<string, unknown>;
    return parsed.msg === msg && parsed.clientId === clientId;
  });
  assert.equal(lines.length, 1, `lines "${msg}" for ${clientId}: ${JSON.stringify(rawLines)}`);
  return lines[0]!;
}

const occurrences = (line: string, key: string): number => line.split(`"${key}":`).length - 1;

describe('connection log lines', () => {
  it('a refused CONNECT is logged with clientId once', async () => {
    const client = RawClient.memory(ts.server, 4);
    const connack = await client.connect({ clientId: 'refused-log', keepalive: MAX_KEEPALIVE + 1 });
    assert.notEqual(connack.reasonCode, 0);
    await client.closed();
    assert.equal(occurrences(lineFor('connection refused', 'refused-log'), 'clientId'), 1);
  });

  it('a protocol error of a connected client is logged with clientId once', async () => {
    const client = RawClient.memory(ts.server, 4);
    assert.equal(
      (await client.connect({ clientId: 'second-connect-log', keepalive: MAX_KEEPALIVE })).reasonCode,
      0,
    );
    client.send({
      type: 'connect',
      protocolName: 'MQTT',
      protocolVersion: 4,
      clean: true,
      keepalive: MAX_KEEPALIVE,
      clientId: 'second-connect-log',
    }); // [MQTT-3.1.0-2]
    await client.closed();
    assert.equal(occurrences(lineFor('protocol error; disconnecting', 'second-connect-log'), 'clientId'), 1);
  });
});
