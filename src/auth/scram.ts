/**
 * SCRAM-SHA-256 (RFC 5802 with RFC 7677's hash) as an MQTT 5.0 enhanced authentication method.
 *
 *   client-first  (CONNECT / AUTH 0x19 data): "n,," + "n=<user>,r=<client nonce>"
 *   server-first  (AUTH 0x18 data):           "r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>"
 *   client-final  (AUTH 0x18 data):           "c=biws,r=<nonce>,p=<base64 ClientProof>"
 *   server-final  (CONNACK / AUTH 0x00 data): "v=<base64 ServerSignature>"
 *
 * The server keeps only StoredKey = H(ClientKey) and ServerKey per user, never the password:
 *   SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i); ClientKey = HMAC(SaltedPassword, "Client Key")
 *   ServerKey = HMAC(SaltedPassword, "Server Key"); AuthMessage = client-first-bare "," server-first "," client-final-without-proof
 *   proof ok ⇔ H(ClientProof XOR HMAC(StoredKey, AuthMessage)) = StoredKey (compared in constant time)
 *
 * Channel binding is not offered (gs2 flag "n", or "y" since we advertise no -PLUS method);
 * "p=" is refused. Usernames are compared after NFKC normalisation (a subset of SASLprep).
 * An unknown user runs the same exchange against a fake credential derived from a secret, so
 * the answer does not reveal which usernames exist; it fails at the proof like a wrong password.
 *
 * Credentials file: one user per line, `username:salt:iterations:storedKey:serverKey` with the
 * binary fields in base64; `#` starts a comment. `scramCredentialLine` writes such a line.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../config.ts';
import type { AuthExchange, AuthStep, EnhancedAuthenticator } from './enhanced.ts';

export interface ScramCredential {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

const hmac = (key: Buffer, text: string | Buffer): Buffer => createHmac('sha256', key).update(text).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

/** Derives the stored credential for a password (RFC 5802 section 3). */
export function scramCredential(
  password: string,
  salt: Buffer = randomBytes(16),
  iterations = 4096,
): ScramCredential {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  return {
    salt,
    iterations,
    storedKey: sha256(hmac(salted, 'Client Key')),
    serverKey: hmac(salted, 'Server Key'),
  };
}

/** One line of a credentials file for `username` (which must not contain ':' or a newline). */
export function scramCredentialLine(username: string, password: string, iterations = 4096): string {
  if (/[:\r\n]/.test(username)) throw new Error('a SCRAM username must not contain ":" or a line break');
  const c = scramCredential(password, randomBytes(16), iterations);
  return [
    username.normalize('NFKC'),
    c.salt.toString('base64'),
    c.iterations,
    c.storedKey.toString('base64'),
    c.serverKey.toString('base64'),
  ].join(':');
}

/** Parses a credentials file; `source` names it in errors. */
export function parseScramUsers(text: string, source: string): Map<string, ScramCredential> {
  const users = new Map<string, ScramCredential>();
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split(':');
    const iterations = Number(parts[2]);
    const [salt, storedKey, serverKey] = [parts[1], parts[3], parts[4]].map((b) =>
      Buffer.from(b ?? '', 'base64'),
    );
    if (
      parts.length !== 5 ||
      parts[0] === '' ||
      !Number.isSafeInteger(iterations) ||
      iterations < 1 ||
      salt!.length === 0 ||
      storedKey!.length !== 32 ||
      serverKey!.length !== 32
    ) {
      throw new ConfigError(`${source}:${n + 1}: expected username:salt:iterations:storedKey:serverKey`);
    }
    users.set(parts[0]!.normalize('NFKC'), {
      salt: salt!,
      iterations,
      storedKey: storedKey!,
      serverKey: serverKey!,
    });
  }
  return users;
}

export interface ScramOptions {
  /** Server nonce generator (tests pin it to reproduce RFC 7677's example). */
  nonce?: () => string;
}

/** Parses "k=v,k=v" attributes (values may contain '='; RFC 5802 section 5.1). */
function attributes(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    if (part.length < 2 || part[1] !== '=') return undefined;
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

/** saslname decoding: "=2C" is ',' and "=3D" is '='; any other '=' is invalid. */
function decodeSaslName(name: string): string | undefined {
  if (/=(?!2C|3D)/.test(name)) return undefined;
  return name.replaceAll('=2C', ',').replaceAll('=3D', '=');
}

const fail = (detail: string): AuthStep => ({ outcome: 'fail', code: 'NOT_AUTHORIZED', detail });

export class ScramSha256 implements EnhancedAuthenticator {
  readonly method = 'SCRAM-SHA-256';
  readonly #lookup: (username: string) => ScramCredential | undefined;
  readonly #nonce: () => string;
  /** Keys fake credentials for unknown users, so they look like real ones. */
  readonly #fakeSecret = randomBytes(32);

  constructor(lookup: (username: string) => ScramCredential | undefined, options: ScramOptions = {}) {
    this.#lookup = lookup;
    this.#nonce = options.nonce ?? (() => randomBytes(18).toString('base64'));
  }

  begin(): AuthExchange {
    return new ScramExchange(this.#lookup, this.#nonce(), this.#fakeSecret);
  }
}

class ScramExchange implements AuthExchange {
  readonly #lookup: (username: string) => ScramCredential | undefined;
  readonly #serverNonce: string;
  readonly #fakeSecret: Buffer;
  #state: 'first' | 'final' | 'done' = 'first';
  #credential: ScramCredential | undefined;
  #known = false;
  #username = '';
  #gs2Header = '';
  #nonce = '';
  #clientFirstBare = '';
  #serverFirst = '';

  constructor(lookup: (u: string) => ScramCredential | undefined, serverNonce: string, fakeSecret: Buffer) {
    this.#lookup = lookup;
    this.#serverNonce = serverNonce;
    this.#fakeSecret = fakeSecret;
  }

  start(data: Buffer | undefined): AuthStep {
    if (this.#state !== 'first' || data === undefined) return fail('SCRAM: client-first-message missing');
    const text = data.toString('utf8');
    // gs2-header: cbind-flag "," [authzid] ","
    const m = /^([ny]|p=[^,]*),(a=[^,]*)?,(.*)$/s.exec(text);
    if (m === null) return fail('SCRAM: malformed client-first-message');
    if (m[1]!.startsWith('p=')) return fail('SCRAM: channel binding is not supported');
    if (m[2] !== undefined) return fail('SCRAM: authorization identity is not supported');
    const bare = attributes(m[3]!);
    const name = bare?.get('n');
    const clientNonce = bare?.get('r');
    if (name === undefined || clientNonce === undefined || clientNonce === '' || bare!.has('m')) {
      return fail('SCRAM: malformed client-first-message');
    }
    const username = decodeSaslName(name);
    if (username === undefined) return fail('SCRAM: malformed username');
    this.#username = username.normalize('NFKC');
    this.#gs2Header = text.slice(0, text.length - m[3]!.length);
    this.#clientFirstBare = m[3]!;
    this.#nonce = clientNonce + this.#serverNonce;
    const found = this.#lookup(this.#username);
    this.#known = found !== undefined;
    this.#credential = found ?? this.#fake(this.#username);
    this.#serverFirst = `r=${this.#nonce},s=${this.#credential.salt.toString('base64')},i=${this.#credential.iterations}`;
    this.#state = 'final';
    return { outcome: 'continue', data: Buffer.from(this.#serverFirst) };
  }

  continue(data: Buffer | undefined): AuthStep {
    if (this.#state !== 'final' || data === undefined) return fail('SCRAM: unexpected message');
    this.#state = 'done';
    const text = data.toString('utf8');
    const cut = text.lastIndexOf(',p=');
    if (cut < 0) return fail('SCRAM: client-final-message without proof');
    const withoutProof = text.slice(0, cut);
    const attrs = attributes(withoutProof);
    const proof = Buffer.from(text.slice(cut + 3), 'base64');
    if (attrs === undefined || attrs.get('c') !== Buffer.from(this.#gs2Header).toString('base64')) {
      return fail('SCRAM: channel binding data does not match');
    }
    if (attrs.get('r') !== this.#nonce) return fail('SCRAM: nonce does not match');
    const credential = this.#credential!;
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientSignature = hmac(credential.storedKey, authMessage);
    if (proof.length !== clientSignature.length) return fail('SCRAM: malformed proof');
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
    const ok = timingSafeEqual(sha256(clientKey), credential.storedKey);
    if (!ok || !this.#known)
      return { outcome: 'fail', code: 'BAD_CREDENTIALS', detail: 'SCRAM: authentication failed' };
    const serverSignature = hmac(credential.serverKey, authMessage);
    return {
      outcome: 'success',
      data: Buffer.from(`v=${serverSignature.toString('base64')}`),
      username: this.#username,
    };
  }

  /** A stable credential for an unknown user (same salt every time, so probing learns nothing). */
  #fake(username: string): ScramCredential {
    const key = hmac(this.#fakeSecret, username);
    return { salt: key.subarray(0, 16), iterations: 4096, storedKey: sha256(key), serverKey: key };
  }
}
