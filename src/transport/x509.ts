/**
 * A small X.509 v3 certificate writer (RFC 5280) on node:crypto, so that `--tls-self-signed`
 * and the tests' certificate authorities need no `openssl` binary and no dependency.
 *
 * Scope, on purpose narrow: ECDSA P-256 keys signed with SHA-256 (ecdsa-with-SHA256), a subject
 * and issuer of one Common Name, and the extensions a TLS peer checks: basicConstraints,
 * keyUsage, extendedKeyUsage, subjectAltName (DNS names, IP addresses), subject and authority
 * key identifiers. Everything is DER: definite lengths, minimal integers, named bit strings
 * without trailing zero bits. node:crypto parses and verifies the result (X509Certificate), so a
 * certificate this writes is checked by the same OpenSSL that serves it.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { isIP, isIPv4 } from 'node:net';

// ---- DER ----

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
const octetString = (b: Buffer): Buffer => tlv(0x04, b);
const utf8String = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const booleanTrue = (): Buffer => Buffer.from([0x01, 0x01, 0xff]);
/** A BIT STRING holding whole bytes. */
const bitString = (b: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), b);
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);

/** A non-negative INTEGER from big-endian bytes: leading zeros dropped, a 0x00 added when the top bit is set. */
function unsignedInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  return tlv(0x02, (trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const digits = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) digits.unshift(0x80 | (v & 0x7f));
    out.push(...digits);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-01-02T03:04:05.678Z
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii'))
    : tlv(0x18, Buffer.from(digits, 'ascii'));
}

// ---- certificate ----

const OID = {
  commonName: '2.5.4.3',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

const name = (commonName: string): Buffer =>
  sequence(set(sequence(oid(OID.commonName), utf8String(commonName))));

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical
    ? sequence(oid(id), booleanTrue(), octetString(value))
    : sequence(oid(id), octetString(value));
}

/** The key identifier of a public key: SHA-1 of its SubjectPublicKeyInfo (RFC 7093 allows any stable hash). */
function keyIdentifier(publicKey: KeyObject): Buffer {
  return createHash('sha1')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest();
}

function ipAddressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  // Expand `::` to the missing zero groups, then write eight 16-bit groups (hex groups only:
  // an embedded dotted IPv4 tail is not supported, nor needed for the names we certify).
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return out;
}

export interface Issuer {
  commonName: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface CertificateRequest {
  commonName: string;
  publicKey: KeyObject;
  /** Who signs; absent: self-signed with `selfPrivateKey`. */
  issuer?: Issuer;
  selfPrivateKey?: KeyObject;
  notBefore: Date;
  notAfter: Date;
  /** A certificate authority (may sign others), or a leaf. */
  ca?: boolean;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  extendedKeyUsage?: readonly ('serverAuth' | 'clientAuth')[];
}

/** A P-256 key pair, the kind this writer signs with and certifies. */
export function generateKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

/** Writes and signs a certificate; returns it as PEM. */
export function createCertificate(req: CertificateRequest): string {
  const issuerName = req.issuer?.commonName ?? req.commonName;
  const signingKey = req.issuer?.privateKey ?? req.selfPrivateKey;
  if (signingKey === undefined) throw new Error('createCertificate: an issuer or selfPrivateKey is needed');
  const issuerPublicKey = req.issuer?.publicKey ?? req.publicKey;
  const algorithm = sequence(oid(OID.ecdsaWithSha256));

  const extensions = [
    extension(OID.basicConstraints, true, req.ca ? sequence(booleanTrue()) : sequence()),
    // keyUsage bits: digitalSignature (0) for a leaf; plus keyCertSign (5), cRLSign (6) for a CA.
    extension(
      OID.keyUsage,
      true,
      req.ca ? bitString(Buffer.from([0x86]), 1) : bitString(Buffer.from([0x80]), 7),
    ),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(req.publicKey))),
    extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, keyIdentifier(issuerPublicKey)))),
  ];
  if (req.extendedKeyUsage && req.extendedKeyUsage.length > 0)
    extensions.push(
      extension(OID.extKeyUsage, false, sequence(...req.extendedKeyUsage.map((u) => oid(OID[u])))),
    );
  const altNames = [
    ...(req.dnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
    ...(req.ipAddresses ?? []).map((ip) => {
      if (isIP(ip) === 0) throw new Error(`createCertificate: not an IP address: ${ip}`);
      return tlv(0x87, ipAddressBytes(ip));
    }),
  ];
  if (altNames.length > 0) extensions.push(extension(OID.subjectAltName, false, sequence(...altNames)));

  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, 16 bytes (RFC 5280 4.1.2.2: at most 20)
  const tbs = sequence(
    explicit(0, unsignedInteger(Buffer.from([2]))), // v3
    unsignedInteger(serial),
    algorithm,
    name(issuerName),
    sequence(time(req.notBefore), time(req.notAfter)),
    name(req.commonName),
    req.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, signingKey); // DER ECDSA-Sig-Value
  const der = sequence(tbs, algorithm, bitString(signature));
  const base64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${base64}-----END CERTIFICATE-----\n`;
}
