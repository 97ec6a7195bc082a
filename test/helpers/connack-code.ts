/**
 * What an MQTT.js client gets for one CONNECT: 0 when accepted, else the CONNACK code it reports
 * (v5 reason code or v3 return code), for tests of CONNECT refusals.
 */
import { connect as netConnect } from 'node:net';
import mqtt, { type IClientOptions } from 'mqtt';
import { WAIT_MS } from './child-process.ts';
import { uniqueName } from './interop-tools.ts';

/**
 * `from`: the local address to connect from (any 127.x.x.x reaches loopback; TCP URLs only);
 * `extra`: more MQTT.js options (a user name naming a broker).
 */
export async function connackCode(
  url: string,
  protocolVersion: 3 | 4 | 5,
  from?: string,
  extra: IClientOptions = {},
): Promise<number> {
  const options = {
    protocolVersion,
    clientId: uniqueName('connack'),
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    ...extra,
  };
  const { hostname, port } = new URL(url);
  const client =
    from === undefined
      ? mqtt.connect(url, options)
      : new mqtt.MqttClient(
          () => netConnect({ host: hostname, port: Number(port), localAddress: from }),
          options,
        );
  try {
    return await new Promise<number>((resolve) => {
      client.once('error', (err: Error & { code?: number }) => resolve(err.code ?? -1));
      client.once('connect', () => resolve(0));
    });
  } finally {
    await client.endAsync(true);
  }
}
