/**
 * The TLS material and policy shared by the TLS and WSS listeners: certificate, key and client
 * CA read from PEM files, minimum TLS 1.2, and the mutual-TLS rule.
 *
 * Reload (SIGHUP): `reload()` re-reads the files, builds a secure context to prove they are
 * usable, then hands them to every attached tls.Server with `setSecureContext`. Handshakes from
 * then on use the new certificate; established connections keep theirs and are not dropped.
 * A failed reload throws and leaves the old certificate in service.
 *
 * Client certificates: OpenSSL is asked for one (`requestCert`) when client auth is `request` or
 * `require`, and is told never to abort the handshake itself (`rejectUnauthorized: false`), so
 * that every refusal goes through `verifyPeer`, is logged with the client's address and the
 * reason, and the socket is destroyed before a single MQTT byte is read. (With OpenSSL refusing
 * on its own, a certificate from another CA would be dropped with no event to log.)
 */

import { readFileSync } from 'node:fs';
import {
  createSecureContext,
  type SecureContextOptions,
  type Server,
  type TLSSocket,
  type TlsOptions,
} from 'node:tls';
import type { Config } from '../config.ts';
import type { ConnectionInfo } from '../session/connection.ts';

export type ClientAuth = 'none' | 'request' | 'require';
export type ClientCertificate = NonNullable<ConnectionInfo['clientCertificate']>;

export interface TlsFiles {
  cert: string;
  key: string;
  /** CA bundle that client certificates must chain to. */
  ca?: string | undefined;
}

/** The outcome of checking a peer after its handshake. */
export type PeerVerdict =
  | { accepted: true; clientCertificate?: ClientCertificate }
  | { accepted: false; reason: string };

function readMaterial(files: TlsFiles): SecureContextOptions {
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${(err as Error).message}`);
    }
  };
  const material: SecureContextOptions = {
    cert: read('certificate', files.cert),
    key: read('key', files.key),
    minVersion: 'TLSv1.2',
  };
  if (files.ca) material.ca = read('CA', files.ca);
  try {
    createSecureContext(material); // proves the PEMs parse and the key matches the certificate
  } catch (err) {
    throw new Error(`TLS certificate ${files.cert} / key ${files.key} unusable: ${(err as Error).message}`);
  }
  return material;
}

/** `CN=a\nO=b` → `a` (the first CN; empty when there is none). */
function commonNameOf(subject: string): string {
  for (const line of subject.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return '';
}

export class TlsContext {
  readonly files: TlsFiles;
  readonly clientAuth: ClientAuth;
  readonly handshakeTimeoutMs: number;
  #material: SecureContextOptions;
  readonly #servers = new Set<Server>();

  constructor(files: TlsFiles, clientAuth: ClientAuth, handshakeTimeoutMs: number) {
    this.files = files;
    this.clientAuth = clientAuth;
    this.handshakeTimeoutMs = handshakeTimeoutMs;
    this.#material = readMaterial(files);
  }

  static fromConfig(config: Config, files: TlsFiles): TlsContext {
    return new TlsContext(files, config.tlsClientAuth as ClientAuth, config.connectTimeout);
  }

  /** Options for tls.createServer / https.createServer. */
  serverOptions(): TlsOptions {
    return {
      ...this.#material,
      requestCert: this.clientAuth !== 'none',
      rejectUnauthorized: false, // verifyPeer decides, so that every refusal is logged
      handshakeTimeout: this.handshakeTimeoutMs,
    };
  }

  /** Registers a server for reloads. */
  attach(server: Server): void {
    this.#servers.add(server);
    server.once('close', () => this.#servers.delete(server));
  }

  /** Re-reads the files and serves them on new handshakes; throws (old material kept) when unusable. */
  reload(): void {
    const material = readMaterial(this.files);
    this.#material = material;
    for (const server of this.#servers) server.setSecureContext(material);
  }

  /** Applies the client-auth rule to a socket whose handshake just finished. */
  verifyPeer(socket: TLSSocket): PeerVerdict {
    if (this.clientAuth === 'none') return { accepted: true };
    if (socket.authorized) {
      const cert = socket.getPeerX509Certificate();
      if (cert)
        return {
          accepted: true,
          clientCertificate: { subjectCN: commonNameOf(cert.subject), fingerprint256: cert.fingerprint256 },
        };
    }
    if (this.clientAuth === 'request') return { accepted: true };
    const presented = socket.getPeerX509Certificate() !== undefined;
    return {
      accepted: false,
      reason: presented
        ? `client certificate not verified: ${String(socket.authorizationError)}`
        : 'no client certificate',
    };
  }
}
