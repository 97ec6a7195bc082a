/**
 * What an MQTT.js client gets for one CONNECT: 0 when accepted, else the CONNACK code it reports
 * (v5 reason code or v3 return code), for tests of CONNECT refusals.
 */
import mqtt from 'mqtt';
import { WAIT_MS } from './child-process.ts';
import { uniqueName } from './interop-tools.ts';

export async function connackCode(url: string, protocolVersion: 3 | 4 | 5): Promise<number> {
  const client = mqtt.connect(url, {
    protocolVersion,
    clientId: uniqueName('connack'),
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
  });
  try {
    return await new Promise<number>((resolve) => {
      client.once('error', (err: Error & { code?: number }) => resolve(err.code ?? -1));
      client.once('connect', () => resolve(0));
    });
  } finally {
    await client.endAsync(true);
  }
}
