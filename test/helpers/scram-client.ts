/**
 * The client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677), for tests: builds client-first and
 * client-final and checks the server's signature. Written from the RFC, independently of
 * src/auth/scram.ts, so the two check each other.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

const hmac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();

export class ScramClient {
  readonly username: string;
  readonly password: string;
  readonly nonce: string;
  #clientFirstBare = '';
  #serverSignature: Buffer | undefined;

  constructor(username: string, password: string, nonce = randomBytes(18).toString('base64')) {
    this.username = username;
    this.password = password;
    this.nonce = nonce;
  }

  /** client-first-message: no channel binding, no authzid. */
  first(): Buffer {
    const name = this.username.replaceAll('=', '=3D').replaceAll(',', '=2C');
    this.#clientFirstBare = `n=${name},r=${this.nonce}`;
    return Buffer.from(`n,,${this.#clientFirstBare}`);
  }

  /** client-final-message for the server-first-message. */
  final(serverFirst: Buffer | string): Buffer {
    const sf = serverFirst.toString();
    const attrs = new Map(sf.split(',').map((kv) => [kv[0]!, kv.slice(2)]));
    const nonce = attrs.get('r')!;
    if (!nonce.startsWith(this.nonce)) throw new Error('server nonce does not extend ours');
    const salted = pbkdf2Sync(
      this.password,
      Buffer.from(attrs.get('s')!, 'base64'),
      Number(attrs.get('i')),
      32,
      'sha256',
    );
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${sf},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
    this.#serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** True when server-final carries the signature only the holder of ServerKey can make. */
  verify(serverFinal: Buffer | string | undefined): boolean {
    const text = serverFinal?.toString() ?? '';
    if (!text.startsWith('v=') || this.#serverSignature === undefined) return false;
    const got = Buffer.from(text.slice(2), 'base64');
    return got.length === this.#serverSignature.length && timingSafeEqual(got, this.#serverSignature);
  }
}
