/**
 * The TLS material and policy shared by the TLS and WSS listeners: certificate, key and client
 * CA read from PEM files, and the policy that goes with them into every secure context:
 * - TLS 1.2 at least (1.0/1.1 refused in the handshake);
 * - TLS 1.2 suites from `tlsCiphers` (default ECDHE + AEAD only: no CBC, no SHA-1 MAC, no
 *   static RSA); TLS 1.3 keeps Node's suites, all AEAD;
 * - no renegotiation (`SSL_OP_NO_RENEGOTIATION`): a TLS 1.2 client asking for one gets a
 *   no_renegotiation alert, never a new handshake; each one would cost the server a full
 *   key exchange, at the client's pace, for as long as the connection lives;
 * - the handshake bounded by `connectTimeout` (`handshakeTimeout`);
 * - the mutual-TLS rule.
 * The policy is part of the material handed to `setSecureContext`, so a reload keeps it.
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

import { constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  createSecureContext,
  type SecureContextOptions,
  type Server,
  type TLSSocket,
  type TlsOptions,
} from 'node:tls';
import type { Config } from '../config.ts';
import type { ConnectionInfo } from './connection-info.ts';

export type ClientAuth = 'none' | 'request' | 'require';
export type ClientCertificate = NonNullable<ConnectionInfo['clientCertificate']>;

export interface TlsFiles {
  cert: string;
  key: string;
  /** CA bundle that client certificates must chain to. */
  ca?: string | undefined;
}

/** What every handshake of the listeners obeys, from the config. */
export interface TlsPolicy {
  clientAuth: ClientAuth;
  /** Milliseconds a handshake may take before the socket is destroyed. */
  handshakeTimeoutMs: number;
  /** OpenSSL cipher list (TLS 1.2 names; TLS_ names set the TLS 1.3 suites). */
  ciphers: string;
}

/** The outcome of checking a peer after its handshake. */
export type PeerVerdict =
  | { accepted: true; clientCertificate?: ClientCertificate }
  | { accepted: false; reason: string };

function readMaterial(files: TlsFiles, ciphers: string): SecureContextOptions {
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
    ciphers,
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
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
  readonly policy: TlsPolicy;
  #material: SecureContextOptions;
  readonly #servers = new Set<Server>();

  constructor(files: TlsFiles, policy: TlsPolicy) {
    this.files = files;
    this.policy = policy;
    this.#material = readMaterial(files, policy.ciphers);
  }

  static fromConfig(config: Config, files: TlsFiles): TlsContext {
    return new TlsContext(files, {
      clientAuth: config.tlsClientAuth as ClientAuth,
      handshakeTimeoutMs: config.connectTimeout,
      ciphers: config.tlsCiphers,
    });
  }

  /** Options for tls.createServer / https.createServer. */
  serverOptions(): TlsOptions {
    return {
      ...this.#material,
      requestCert: this.policy.clientAuth !== 'none',
      rejectUnauthorized: false, // verifyPeer decides, so that every refusal is logged
      handshakeTimeout: this.policy.handshakeTimeoutMs,
    };
  }

  /** Registers a server for reloads. */
  attach(server: Server): void {
    this.#servers.add(server);
    server.once('close', () => this.#servers.delete(server));
  }

  /** Re-reads the files and serves them on new handshakes; throws (old material kept) when unusable. */
  reload(): void {
    const material = readMaterial(this.files, this.policy.ciphers);
    this.#material = material;
    for (const server of this.#servers) server.setSecureContext(material);
  }

  /** Applies the client-auth rule to a socket whose handshake just finished. */
  verifyPeer(socket: TLSSocket): PeerVerdict {
    if (this.policy.clientAuth === 'none') return { accepted: true };
    if (socket.authorized) {
      const cert = socket.getPeerX509Certificate();
      if (cert)
        return {
          accepted: true,
          clientCertificate: { subjectCN: commonNameOf(cert.subject), fingerprint256: cert.fingerprint256 },
        };
    }
    if (this.policy.clientAuth === 'request') return { accepted: true };
    const presented = socket.getPeerX509Certificate() !== undefined;
    return {
      accepted: false,
      reason: presented
        ? `client certificate not verified: ${String(socket.authorizationError)}`
        : 'no client certificate',
    };
  }
}
