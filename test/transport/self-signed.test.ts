/**
 * The `--tls-self-signed` development certificate and the X.509 writer under it: names and
 * addresses, self-signature, key match, reuse while valid, renewal when expiring or broken.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect, createServer } from 'node:tls';
import { ensureDevelopmentCertificate } from '../../src/transport/self-signed.ts';

const dir = mkdtempSync(join(tmpdir(), 'pubsub-self-signed-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('development certificate (--tls-self-signed)', () => {
  it('is a self-signed server certificate for localhost, *.localhost, 127.0.0.1 and ::1 with a private key file', () => {
    const dev = ensureDevelopmentCertificate(join(dir, 'a'));
    assert.equal(dev.generated, true);
    const cert = new X509Certificate(readFileSync(dev.certFile));
    assert.equal(
      cert.subjectAltName,
      'DNS:localhost, DNS:*.localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    assert.ok(cert.verify(cert.publicKey) && cert.issuer === cert.subject, 'self-signed');
    assert.equal(cert.ca, false);
    assert.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(dev.keyFile))));
    assert.equal(statSync(dev.keyFile).mode & 0o077, 0, 'key readable by the owner only');
    assert.equal(dev.fingerprint256, cert.fingerprint256);
    assert.match(dev.spkiSha256, /^[A-Za-z0-9+/]{43}=$/);
    const days = (dev.validTo.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 390 && days < 398, `valid ~397 days, got ${days}`);
  });

  it('is trusted by a TLS client given it as its CA (as mosquitto_sub --cafile or curl --cacert would)', async () => {
    const dev = ensureDevelopmentCertificate(join(dir, 'trust'));
    const server = createServer({ cert: readFileSync(dev.certFile), key: readFileSync(dev.keyFile) }, (s) =>
      s.end(),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      for (const servername of ['localhost', undefined]) {
        const authorized = await new Promise<boolean>((resolve, reject) => {
          const socket = connect(
            { host: '127.0.0.1', port, ca: readFileSync(dev.certFile), servername },
            () => {
              resolve(socket.authorized);
              socket.end();
            },
          );
          socket.on('error', reject);
        });
        assert.equal(authorized, true, `servername ${servername}`);
      }
    } finally {
      server.close();
    }
  });

  it('is reused while valid, and renewed when it expires within a day or no longer matches its key', () => {
    const where = join(dir, 'b');
    const first = ensureDevelopmentCertificate(where);
    const again = ensureDevelopmentCertificate(where);
    assert.equal(again.generated, false);
    assert.equal(again.fingerprint256, first.fingerprint256);

    const nearExpiry = first.validTo.getTime() - 3_600_000;
    const renewed = ensureDevelopmentCertificate(where, nearExpiry);
    assert.equal(renewed.generated, true);
    assert.notEqual(renewed.fingerprint256, first.fingerprint256);

    const other = ensureDevelopmentCertificate(join(dir, 'c'));
    writeFileSync(renewed.keyFile, readFileSync(other.keyFile));
    const rekeyed = ensureDevelopmentCertificate(where);
    assert.equal(rekeyed.generated, true, 'a key that does not match is replaced');

    writeFileSync(rekeyed.certFile, 'garbage');
    assert.equal(
      ensureDevelopmentCertificate(where).generated,
      true,
      'an unreadable certificate is replaced',
    );
  });
});
