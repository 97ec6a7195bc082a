/**
 * A broker's signing keys: Ed25519, identified by `kid` = the RFC 7638 JWK thumbprint
 * (SHA-256, base64url, of `{"crv","kty","x"}`), as Cloudflare's were. Two are live at a time so
 * one can rotate: tokens are signed with the newest; rotation retires the oldest and adds a new
 * one, so a token survives one rotation and stops working at the second.
 *
 * Everything here is synchronous (node:crypto), so CONNECT and broker creation need no promise;
 * tokens are signed with `jose` (src/auth/credentials.ts).
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import type { JWK } from 'jose';

export const KEYS_PER_BROKER = 2;

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public JWK as published: kid, kty, crv, x, alg, use. */
  publicJwk: JWK;
}

/** RFC 7638 thumbprint of an OKP key: SHA-256 over its required members in lexical order. */
export function thumbprint(x: string): string {
  return createHash('sha256')
    .update(JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x }))
    .digest('base64url');
}

/** A new Ed25519 key: its kid and its private JWK (to store). */
export function generateSigningKey(): { kid: string; privateJwk: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' }) as JsonWebKey;
  return { kid: thumbprint(jwk.x!), privateJwk: JSON.stringify(jwk) };
}

/** Loads a stored key. */
export function loadSigningKey(kid: string, privateJwk: string): SigningKey {
  const jwk = JSON.parse(privateJwk) as JsonWebKey;
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  const publicKey = createPublicKey(privateKey);
  return {
    kid,
    privateKey,
    publicKey,
    publicJwk: { use: 'sig', kty: 'OKP', kid, crv: 'Ed25519', alg: 'EdDSA', x: jwk.x! },
  };
}
