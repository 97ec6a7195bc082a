/**
 * aedes (devDependency) as a peer broker for the benchmark: MQTT over TCP and over WebSocket
 * (ws' createWebSocketStream, as aedes documents), aedes defaults (in-memory persistence).
 * Nagle stays on, as in Node's `net` default, unless --nodelay; the WebSocket http server gets
 * the same setting (Node's http default would be noDelay true).
 *
 *   node bench/aedes-server.ts [--host 127.0.0.1] [--tcp 0] [--ws 0] [--nodelay]
 *
 * Prints one JSON line {"tcp":port,"ws":port} once both listen; exits on SIGTERM/SIGINT.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { parseArgs } from 'node:util';
import { Aedes } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    tcp: { type: 'string', default: '0' },
    ws: { type: 'string', default: '0' },
    nodelay: { type: 'boolean', default: false },
  },
});
const noDelay = values.nodelay;

const aedes = await Aedes.createBroker();
const tcp = createServer({ noDelay }, aedes.handle);
const http = createHttpServer({ noDelay });
const wss = new WebSocketServer({ server: http });
wss.on('connection', (socket, req) => {
  aedes.handle(createWebSocketStream(socket), req);
});

const listen = (server: Server | ReturnType<typeof createHttpServer>, port: number): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, values.host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });

const tcpPort = await listen(tcp, Number(values.tcp));
const wsPort = await listen(http, Number(values.ws));
process.stdout.write(`${JSON.stringify({ tcp: tcpPort, ws: wsPort })}\n`);

const stop = (): void => {
  tcp.close();
  http.close();
  aedes.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
