/**
 * Verifies a client's JWT at CONNECT, synchronously (node:crypto Ed25519), against the key set of
 * the broker it is for. A reconnect storm costs little: the decoded claims and the signature
 * result are cached per token string (bounded, least recently used evicted); what can change
 * after issue (the key set after a rotation, revocation, the clock) is checked on every use.
 *
 * Checks: three base64url parts; header alg EdDSA with a kid of a live key of the broker; the
 * signature; `aud` names the broker (a token of another broker fails); `exp` not passed; `nbf`
 * reached; `sub` and `jti` present; `topicAcl` parses (absent: `#`, Cloudflare's only value).
 */
import { verify } from 'node:crypto';
import type { SigningKey } from './key-set.ts';
import { parseTopicAcl, type TopicAcl } from './topic-acl.ts';

export interface VerifiedToken {
  sub: string;
  jti: string;
  /** The key that signed it. */
  kid: string;
  aud: string;
  /** Unix seconds, when the token expires. */
  exp: number | undefined;
  acl: TopicAcl;
}

export type Verification = { ok: true; token: VerifiedToken } | { ok: false; reason: string };

interface Decoded {
  kid: string;
  signedPart: Buffer;
  signature: Buffer;
  claims: Record<string, unknown>;
  /** kid → signature verdict, for keys tried so far. */
  verdicts: Map<string, boolean>;
  token: VerifiedToken | undefined;
  error: string | undefined;
}

/** Reads the unverified `aud` of a JWT, to route a connection before verifying. */
export function audienceOf(jwt: string): string | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { aud?: unknown };
    const aud = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
    return typeof aud === 'string' ? aud : undefined;
  } catch {
    return undefined;
  }
}

export class TokenVerifier {
  readonly #cache = new Map<string, Decoded>();
  readonly #capacity: number;

  constructor(capacity = 10_000) {
    this.#capacity = capacity;
  }

  verify(
    jwt: string,
    keys: ReadonlyMap<string, SigningKey>,
    audience: string,
    nowMs = Date.now(),
  ): Verification {
    const decoded = this.#decode(jwt);
    if (decoded.error !== undefined) return { ok: false, reason: decoded.error };
    const key = keys.get(decoded.kid);
    if (key === undefined)
      return { ok: false, reason: 'signed by a key this broker does not have (rotated or foreign)' };
    let good = decoded.verdicts.get(decoded.kid);
    if (good === undefined) {
      good = verify(null, decoded.signedPart, key.publicKey, decoded.signature);
      decoded.verdicts.set(decoded.kid, good);
    }
    if (!good) return { ok: false, reason: 'bad signature' };
    const token = decoded.token!;
    if (token.aud !== audience) return { ok: false, reason: `token is for broker ${token.aud}` };
    const now = nowMs / 1000;
    if (token.exp !== undefined && now >= token.exp) return { ok: false, reason: 'token expired' };
    const nbf = decoded.claims.nbf;
    if (typeof nbf === 'number' && now < nbf) return { ok: false, reason: 'token not yet valid' };
    return { ok: true, token };
  }

  #decode(jwt: string): Decoded {
    const hit = this.#cache.get(jwt);
    if (hit !== undefined) {
      this.#cache.delete(jwt);
      this.#cache.set(jwt, hit);
      return hit;
    }
    const decoded = decode(jwt);
    if (this.#cache.size >= this.#capacity) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(jwt, decoded);
    return decoded;
  }
}

function decode(jwt: string): Decoded {
  const fail = (error: string): Decoded => ({
    kid: '',
    signedPart: Buffer.alloc(0),
    signature: Buffer.alloc(0),
    claims: {},
    verdicts: new Map(),
    token: undefined,
    error,
  });
  const parts = jwt.split('.');
  if (parts.length !== 3) return fail('not a JWT');
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    return fail('not a JWT');
  }
  if (typeof header !== 'object' || header === null || typeof claims !== 'object' || claims === null)
    return fail('not a JWT');
  if (header.alg !== 'EdDSA') return fail(`unsupported alg ${String(header.alg)}`);
  if (typeof header.kid !== 'string') return fail('no kid in the header');
  const aud = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
  if (typeof claims.sub !== 'string' || claims.sub === '') return fail('no sub claim');
  if (typeof claims.jti !== 'string' || claims.jti === '') return fail('no jti claim');
  if (typeof aud !== 'string') return fail('no aud claim');
  if (claims.exp !== undefined && typeof claims.exp !== 'number') return fail('exp is not a number');
  let acl: TopicAcl;
  try {
    acl = parseTopicAcl(claims.topicAcl ?? '#');
  } catch (err) {
    return fail((err as Error).message);
  }
  return {
    kid: header.kid,
    signedPart: Buffer.from(`${parts[0]}.${parts[1]}`),
    signature: Buffer.from(parts[2]!, 'base64url'),
    claims,
    verdicts: new Map(),
    token: {
      sub: claims.sub,
      jti: claims.jti,
      kid: header.kid,
      aud,
      exp: claims.exp as number | undefined,
      acl,
    },
    error: undefined,
  };
}
