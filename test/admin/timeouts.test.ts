/**
 * The admin API's connection bounds over real sockets: a request whose body trickles in is
 * answered 408 and closed by --api-request-timeout-ms; a connection that sends nothing is
 * closed by --api-idle-timeout-ms; a kept-alive connection is closed after
 * --api-keep-alive-timeout-ms. The bounds in the assertions are generous ceilings (several
 * times the setting), not measurements.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers/server.ts';

/** Resolves with everything the server sent once it closes the socket, and when. */
function whenClosed(socket: Socket): Promise<{ data: string; ms: number }> {
  const start = performance.now();
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    data += chunk;
  });
  return new Promise((resolve) => {
    socket.on('error', () => {});
    socket.on('close', () => resolve({ data, ms: performance.now() - start }));
  });
}

function open(ts: TestServer): Promise<Socket> {
  const { port } = new URL(ts.apiUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('admin API timeouts', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startServer({
      httpPort: 0,
      apiRequestTimeoutMs: 1000,
      apiIdleTimeoutMs: 1500,
      apiKeepAliveTimeoutMs: 500,
    });
  });
  after(() => ts.close());

  it('a request body trickled one byte at a time is answered 408 and closed by the request timeout', async () => {
    const socket = await open(ts);
    const closed = whenClosed(socket);
    socket.write(
      `POST /client/v4/accounts/${ts.accountId}/pubsub/namespaces HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Authorization: Bearer ${ts.adminToken}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
    );
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(' ');
    }, 200);
    const { data, ms } = await closed;
    clearInterval(trickle);
    assert.match(data, /^HTTP\/1\.1 408 /, data);
    assert.ok(ms < 10_000, `closed after ${Math.round(ms)} ms`);
    assert.equal(ts.server.tenancy.listNamespaces(ts.accountId, { page: 1, perPage: 100 }).total, 1);
  });

  it('a connection that sends nothing is closed by the idle timeout', async () => {
    const socket = await open(ts);
    const { ms } = await whenClosed(socket);
    assert.ok(ms < 15_000, `closed after ${Math.round(ms)} ms`);
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    const socket = await open(ts);
    const closed = whenClosed(socket);
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const { data, ms } = await closed;
    assert.match(data, /^HTTP\/1\.1 200 /);
    assert.match(data, /keep-alive/i);
    assert.ok(ms < 10_000, `closed after ${Math.round(ms)} ms`);
  });

  it('a request that arrives in time is served as usual', async () => {
    const res = await fetch(`${ts.apiUrl}/healthz`);
    assert.equal(res.status, 200);
  });
});
