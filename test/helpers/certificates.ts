/**
 * Test PKI, generated at test time into a temporary directory with the broker's own X.509 writer
 * (src/transport/x509.ts): a CA, a server certificate for localhost / *.pubsub.localhost /
 * 127.0.0.1 / ::1 signed by it, a client certificate (CN `device-1`) signed by it, and a rogue
 * CA with its own client certificate (CN `intruder`) that the broker must not accept.
 * `remove()` deletes the directory; call it from `after`.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificate, generateKeyPair, type Issuer } from '../../src/transport/x509.ts';

export interface Pem {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
  fingerprint256: string;
}

export interface TestPki {
  dir: string;
  ca: Pem;
  server: Pem;
  client: Pem;
  rogueCa: Pem;
  rogueClient: Pem;
  /** A copy of `server` as `<name>.crt/.key`, for a test that then rewrites them (a reload). */
  copyServer(name: string): Pem;
  /** Issues another server certificate (e.g. to test a reload), written to the given file names. */
  issueServer(certFile: string, keyFile: string): Pem;
  /** Issues another client certificate signed by the test CA, written as `<name>.crt/.key`. */
  issueClient(name: string, commonName: string): Pem;
  remove(): void;
}

const DAY = 86_400_000;

export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'pubsub-pki-'));
  const notBefore = new Date(Date.now() - DAY);
  const notAfter = new Date(Date.now() + 30 * DAY);
  const write = (name: string, cert: string, key: string): Pem => {
    const certFile = join(dir, `${name}.crt`);
    const keyFile = join(dir, `${name}.key`);
    writeFileSync(certFile, cert);
    writeFileSync(keyFile, key, { mode: 0o600 });
    return { cert, key, certFile, keyFile, fingerprint256: new X509Certificate(cert).fingerprint256 };
  };
  const authority = (commonName: string): { issuer: Issuer; pem: string; key: string } => {
    const pair = generateKeyPair();
    const pem = createCertificate({
      commonName,
      publicKey: pair.publicKey,
      selfPrivateKey: pair.privateKey,
      notBefore,
      notAfter,
      ca: true,
    });
    const key = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    return { issuer: { commonName, ...pair }, pem, key };
  };
  const leaf = (issuer: Issuer, commonName: string, usage: 'serverAuth' | 'clientAuth'): [string, string] => {
    const pair = generateKeyPair();
    const server = usage === 'serverAuth';
    const pem = createCertificate({
      commonName,
      publicKey: pair.publicKey,
      issuer,
      notBefore,
      notAfter,
      dnsNames: server ? ['localhost', '*.pubsub.localhost'] : [],
      ipAddresses: server ? ['127.0.0.1', '::1'] : [],
      extendedKeyUsage: [usage],
    });
    return [pem, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()];
  };
  const ca = authority('pubsub test CA');
  const rogue = authority('rogue test CA');
  const server = write('server', ...leaf(ca.issuer, 'localhost', 'serverAuth'));
  return {
    dir,
    ca: write('ca', ca.pem, ca.key),
    server,
    client: write('client', ...leaf(ca.issuer, 'device-1', 'clientAuth')),
    rogueCa: write('rogue-ca', rogue.pem, rogue.key),
    rogueClient: write('rogue-client', ...leaf(rogue.issuer, 'intruder', 'clientAuth')),
    copyServer: (name) => write(name, server.cert, server.key),
    issueServer(certFile, keyFile) {
      const [cert, key] = leaf(ca.issuer, 'localhost', 'serverAuth');
      writeFileSync(keyFile, key, { mode: 0o600 });
      writeFileSync(certFile, cert);
      return { cert, key, certFile, keyFile, fingerprint256: new X509Certificate(cert).fingerprint256 };
    },
    issueClient: (name, commonName) => write(name, ...leaf(ca.issuer, commonName, 'clientAuth')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
