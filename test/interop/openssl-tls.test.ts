/**
 * The TLS and WSS listeners' cipher policy as OpenSSL's own client sees it: `openssl s_client`
 * offering only a CBC/SHA-1 suite over TLS 1.2 is refused in the handshake, one offering an
 * ECDHE + AEAD suite is served, and TLS 1.3 is negotiated as before. The test certificate is
 * ECDSA (P-256), so the ECDSA forms of the suites are the ones that test the list (an RSA suite
 * is refused for want of an RSA key, whatever the list says).
 */
import assert from 'node:assert/strict';
import { after, before, it, type TestContext } from 'node:test';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import { spawnChild } from '../helpers/child-process.ts';
import { describeWithTool, openssl } from '../helpers/interop-tools.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let pki: TestPki;
let ts: TestServer;
before(async () => {
  pki = createTestPki();
  ts = await startServer({ tlsCert: pki.server.certFile, tlsKey: pki.server.keyFile });
});
after(async () => {
  await ts?.close();
  pki?.remove();
});

/** `openssl s_client` against `port` with these options; stdin closed, so it quits after the handshake. */
async function sClient(
  t: TestContext,
  port: string,
  options: string[],
): Promise<{ code: number | null; output: string }> {
  const child = spawnChild(t, 'openssl', [
    's_client',
    '-connect',
    `127.0.0.1:${port}`,
    '-servername',
    'localhost',
    '-CAfile',
    pki.ca.certFile,
    ...options,
  ]);
  child.process.stdin!.end();
  const exit = await child.waitForExit();
  return { code: exit.code, output: `${child.lines.join('\n')}\n${child.stderr}` };
}

describeWithTool('openssl s_client against the TLS and WSS listeners', openssl, () => {
  for (const name of ['tls', 'wss'] as const) {
    const port = (): string => new URL(name === 'tls' ? ts.tlsUrl : ts.wssUrl).port;

    for (const cipher of ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-ECDSA-AES128-SHA256']) {
      it(`${name}: -tls1_2 -cipher ${cipher} is refused in the handshake`, async (t) => {
        const { code, output } = await sClient(t, port(), ['-tls1_2', '-cipher', cipher]);
        assert.notEqual(code, 0, output);
        assert.match(output, /alert handshake failure/, output);
      });
    }

    it(`${name}: -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 is served`, async (t) => {
      const { code, output } = await sClient(t, port(), [
        '-tls1_2',
        '-cipher',
        'ECDHE-ECDSA-AES128-GCM-SHA256',
      ]);
      assert.equal(code, 0, output);
      assert.match(output, /Cipher is ECDHE-ECDSA-AES128-GCM-SHA256/, output);
      assert.match(output, /Verify return code: 0 \(ok\)/, output);
    });

    it(`${name}: -tls1_3 is served with a TLS 1.3 suite`, async (t) => {
      const { code, output } = await sClient(t, port(), ['-tls1_3']);
      assert.equal(code, 0, output);
      assert.match(output, /New, TLSv1\.3, Cipher is TLS_/, output);
    });
  }
});
