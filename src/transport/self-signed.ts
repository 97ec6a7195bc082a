/**
 * The development certificate behind `--tls-self-signed`: a self-signed P-256 certificate for
 * `localhost`, `*.localhost`, 127.0.0.1 and ::1, written into a directory (the data dir) as
 * `tls-self-signed-cert.pem` and `tls-self-signed-key.pem` (mode 0600), and reused on the next
 * start while it parses, matches its key and stays valid for at least another day.
 *
 * Generated with our own X.509 writer (x509.ts) rather than the `openssl` binary: no program to
 * find on PATH (Windows, slim containers), no child process, and the same code makes the test
 * suite's certificate authorities. docs/transports.md says why.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCertificate, generateKeyPair } from './x509.ts';

export const SELF_SIGNED_NAMES = ['localhost', '*.localhost'] as const;
export const SELF_SIGNED_ADDRESSES = ['127.0.0.1', '::1'] as const;
/** 397 days: under the 398-day cap browsers put on server certificates. */
const VALIDITY_DAYS = 397;
const DAY_MS = 86_400_000;

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

export interface DevelopmentCertificate extends CertificateFiles {
  /** SHA-256 of the certificate, `AB:CD:…` as browsers and `openssl x509 -fingerprint` show it. */
  fingerprint256: string;
  /** base64 SHA-256 of the public key (SPKI): Chromium's --ignore-certificate-errors-spki-list takes it. */
  spkiSha256: string;
  validTo: Date;
  /** True when this call generated it, false when an existing one was reused. */
  generated: boolean;
}

/** SHA-256 of a certificate's SubjectPublicKeyInfo, base64 (HPKP / Chromium SPKI pin format). */
export function spkiSha256(certificate: X509Certificate): string {
  return createHash('sha256')
    .update(certificate.publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
}

function describe(
  files: CertificateFiles,
  cert: X509Certificate,
  generated: boolean,
): DevelopmentCertificate {
  return {
    ...files,
    fingerprint256: cert.fingerprint256,
    spkiSha256: spkiSha256(cert),
    validTo: new Date(cert.validTo),
    generated,
  };
}

/** The existing certificate in `files` when it is still usable, else undefined. */
function reusable(files: CertificateFiles, now: number): X509Certificate | undefined {
  if (!existsSync(files.certFile) || !existsSync(files.keyFile)) return undefined;
  try {
    const cert = new X509Certificate(readFileSync(files.certFile));
    const key = createPrivateKey(readFileSync(files.keyFile));
    if (!cert.checkPrivateKey(key)) return undefined;
    if (new Date(cert.validTo).getTime() < now + DAY_MS) return undefined;
    if (!SELF_SIGNED_NAMES.every((n) => cert.subjectAltName?.includes(`DNS:${n}`))) return undefined;
    return cert;
  } catch {
    return undefined;
  }
}

/** Returns the development certificate in `dir`, generating it when missing, unusable or expiring. */
export function ensureDevelopmentCertificate(dir: string, now = Date.now()): DevelopmentCertificate {
  const files = {
    certFile: join(dir, 'tls-self-signed-cert.pem'),
    keyFile: join(dir, 'tls-self-signed-key.pem'),
  };
  const existing = reusable(files, now);
  if (existing) return describe(files, existing, false);
  mkdirSync(dir, { recursive: true });
  const { privateKey, publicKey } = generateKeyPair();
  const pem = createCertificate({
    commonName: 'localhost',
    publicKey,
    selfPrivateKey: privateKey,
    notBefore: new Date(now - 5 * 60_000), // tolerate a little clock skew
    notAfter: new Date(now + VALIDITY_DAYS * DAY_MS),
    dnsNames: SELF_SIGNED_NAMES,
    ipAddresses: SELF_SIGNED_ADDRESSES,
    extendedKeyUsage: ['serverAuth'],
  });
  writeFileSync(files.keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(files.certFile, pem);
  return describe(files, new X509Certificate(pem), true);
}
