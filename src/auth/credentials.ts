/**
 * Minting client credentials for a broker, as Cloudflare's `GET .../credentials` did: EdDSA JWTs
 * with header `{alg: EdDSA, kid, typ: JWT}` and claims `iat`, `sub` (the MQTT client id),
 * `jti` (a ULID, for revocation), `topicAcl`, `aud` (`<broker>.<namespace>`, so a client with no
 * SNI or Host is routed by its token) and `exp` when an expiry applies.
 *
 * Expiry: the broker's `expiration` and the request's, the shortest wins; a request expiration
 * of -1 means no `exp` at all (Cloudflare's documented meaning).
 *
 * jose is imported at the first minting (not at start): the broker verifies tokens with
 * token-verifier.ts, so a server that never mints does not load it.
 */
import type { SigningKey } from './key-set.ts';
import { topicAclClaim } from './topic-acl.ts';
import { ulid } from './ulid.ts';

export const MAX_TOKENS_PER_REQUEST = 100;

export interface MintRequest {
  /** `<broker>.<namespace>`: the audience. */
  audience: string;
  /** Generated client ids start with the broker name. */
  brokerName: string;
  brokerExpiration: number | null;
  /** How many to mint with generated client ids (ignored when clientIds are given). */
  number: number;
  clientIds: string[];
  /** Seconds; -1: no expiry; undefined: the broker's. */
  expiration: number | undefined;
  topicAcl: string[];
}

/** The lifetime in seconds of tokens minted for this request, or undefined for none. */
export function lifetimeOf(
  brokerExpiration: number | null,
  requested: number | undefined,
): number | undefined {
  if (requested === -1) return undefined;
  const candidates = [brokerExpiration, requested].filter((v): v is number => typeof v === 'number' && v > 0);
  return candidates.length === 0 ? undefined : Math.min(...candidates);
}

/** What minting produced: client id → JWT in request order, and each token's id and expiry. */
export interface Minted {
  tokens: Record<string, string>;
  issued: { jti: string; exp: number | undefined }[];
}

/** Mints the tokens. */
export async function mintTokens(key: SigningKey, req: MintRequest, now = Date.now()): Promise<Minted> {
  const ids =
    req.clientIds.length > 0
      ? req.clientIds
      : Array.from({ length: req.number }, () => req.brokerName + ulid(now));
  const iat = Math.floor(now / 1000);
  const lifetime = lifetimeOf(req.brokerExpiration, req.expiration);
  const exp = lifetime === undefined ? undefined : iat + lifetime;
  const { SignJWT } = await import('jose');
  const tokens: Record<string, string> = {};
  const issued: Minted['issued'] = [];
  for (const sub of ids) {
    const jti = ulid(now);
    const jwt = new SignJWT({ topicAcl: topicAclClaim(req.topicAcl) })
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'JWT' })
      .setIssuedAt(iat)
      .setSubject(sub)
      .setJti(jti)
      .setAudience(req.audience);
    if (exp !== undefined) jwt.setExpirationTime(exp);
    tokens[sub] = await jwt.sign(key.privateKey);
    issued.push({ jti, exp });
  }
  return { tokens, issued };
}
