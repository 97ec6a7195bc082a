/**
 * `--listen-backlog`: every MQTT listener (TCP, TLS, WebSocket) listens with the configured
 * backlog, read back from the kernel with `ss` (a listening socket's Send-Q is its backlog).
 * Node's default, 511, overflowed in a 20,000-connection storm while the event loop was busy.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { it } from 'node:test';
import { createTestPki } from '../helpers/certificates.ts';
import { describeWithTool, ss } from '../helpers/interop-tools.ts';
import { startServer } from '../helpers/server.ts';

/** The backlog the kernel holds for the socket listening on 127.0.0.1:`port`. */
function backlogOf(port: number): number {
  const out = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
  const fields = out.trim().split(/\s+/); // State Recv-Q Send-Q Local Peer
  return Number(fields[2]);
}

describeWithTool('--listen-backlog', ss, () => {
  it('sets the backlog of the TCP, TLS and WebSocket listeners; the default is 4096 (capped by somaxconn)', async (t) => {
    const pki = createTestPki();
    t.after(() => pki.remove());
    const custom = await startServer({
      listenBacklog: 777,
      tlsCert: pki.server.certFile,
      tlsKey: pki.server.keyFile,
      wsPort: 0,
    });
    t.after(() => custom.close());
    for (const url of [custom.url, custom.tlsUrl, custom.wsUrl])
      assert.equal(backlogOf(Number(new URL(url).port)), 777, url);

    const plain = await startServer({});
    t.after(() => plain.close());
    const somaxconn = Number(execFileSync('cat', ['/proc/sys/net/core/somaxconn'], { encoding: 'utf8' }));
    assert.equal(backlogOf(Number(new URL(plain.url).port)), Math.min(4096, somaxconn));
  });
});
