/**
 * Verifies a client's JWT at CONNECT, synchronously (node:crypto Ed25519), against the key set of
 * the broker it is for. A reconnect storm costs little: a token whose signature verified against
 * one of the broker's live keys, and whose claims are valid, is cached by its string with its
 * decoded claims (least recently used evicted, bounded in entries and in bytes of token text);
 * what can change after issue (the key set after a rotation, the clock; revocation, checked by
 * the caller) is checked on every use.
 *
 * Nothing about a token that did not verify is kept: garbage, a forged signature or a key this
 * broker lacks costs its checks each time and never a cache entry, so unauthenticated clients
 * cannot fill the cache or evict the tokens of real ones.
 *
 * Checks, in order: at most MAX_JWT_BYTES of text (before anything is decoded), three unpadded
 * base64url parts, the signature in its one canonical spelling
 * (64 bytes); header alg EdDSA with a kid of a live key of the
 * broker; the signature; then the claims: no member name repeated in the header or the claims
 * (JSON.parse keeps the last of two `exp`s, another parser the first: a token must read one
 * way), `sub` and `jti` present, `aud` a string, `exp` a
 * number if present, `topicAcl` parses (absent: `#`, Cloudflare's only value). On every use:
 * the kid is still a live key, `aud` names the broker (a token of another broker fails), `exp`
 * not passed, `nbf` reached, both with `clockSkewSeconds` of leeway (`--jwt-clock-skew`).
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

/** A token whose signature verified under `token.kid` (a key thumbprint: one key, one verdict). */
interface Verified {
  token: VerifiedToken;
  /** Unix seconds before which the token is not valid, when it says. */
  nbf: number | undefined;
}

export interface TokenCacheLimits {
  /** Verified tokens kept at most. */
  maxEntries?: number;
  /** Sum of the kept tokens' lengths at most (a token is ASCII: characters are bytes). */
  maxBytes?: number;
  /** Seconds a token is still accepted after `exp`, and already before `nbf`; default 0. */
  clockSkewSeconds?: number;
}

/**
 * Longest token read at all (Cloudflare's limit): a longer one is refused before it is split or
 * decoded. CONNECT admission applies the same bound to the password before routing reads it.
 */
export const MAX_JWT_BYTES = 4096;

const NOT_A_KEY = 'signed by a key this broker does not have (rotated or foreign)';

/** Reads the unverified `aud` of a JWT, to route a connection before verifying. */
export function audienceOf(jwt: string): string | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return undefined;
  const claims = parseJson(parts[1]!);
  if (claims === undefined) return undefined;
  const aud = audienceIn(claims);
  return typeof aud === 'string' ? aud : undefined;
}

/** The `aud` claim, or its first entry when it is a list. */
function audienceIn(claims: Record<string, unknown>): unknown {
  return Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
}

export class TokenVerifier {
  /** Insertion order is recency: a hit is moved to the end, the first entry is evicted. */
  readonly #cache = new Map<string, Verified>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #skew: number;
  #bytes = 0;

  constructor(limits: TokenCacheLimits = {}) {
    this.#maxEntries = limits.maxEntries ?? 10_000;
    this.#maxBytes = limits.maxBytes ?? 4 * 1024 * 1024;
    this.#skew = limits.clockSkewSeconds ?? 0;
  }

  /** Tokens cached. */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /** Sum of the cached tokens' lengths. */
  get cacheBytes(): number {
    return this.#bytes;
  }

  /** Whether `jwt` is cached (its recency is left as it is). */
  isCached(jwt: string): boolean {
    return this.#cache.has(jwt);
  }

  verify(
    jwt: string,
    keys: ReadonlyMap<string, SigningKey>,
    audience: string,
    nowMs = Date.now(),
  ): Verification {
    let entry = this.#cache.get(jwt);
    if (entry !== undefined) {
      this.#cache.delete(jwt);
      this.#cache.set(jwt, entry);
      if (!keys.has(entry.token.kid)) return { ok: false, reason: NOT_A_KEY };
    } else {
      const checked = check(jwt, keys);
      if (!('token' in checked)) return { ok: false, reason: checked.error };
      entry = checked;
      this.#remember(jwt, entry);
    }
    const { token, nbf } = entry;
    if (token.aud !== audience) return { ok: false, reason: `token is for broker ${token.aud}` };
    const now = nowMs / 1000;
    if (token.exp !== undefined && now >= token.exp + this.#skew)
      return { ok: false, reason: 'token expired' };
    if (nbf !== undefined && now < nbf - this.#skew) return { ok: false, reason: 'token not yet valid' };
    return { ok: true, token };
  }

  /** Caches a verified token, evicting the least recently used until both bounds hold. */
  #remember(jwt: string, entry: Verified): void {
    if (jwt.length > this.#maxBytes) return;
    this.#cache.set(jwt, entry);
    this.#bytes += jwt.length;
    while (this.#cache.size > this.#maxEntries || this.#bytes > this.#maxBytes) {
      const oldest = this.#cache.keys().next().value!;
      this.#cache.delete(oldest);
      this.#bytes -= oldest.length;
    }
  }
}

/** A JWS compact part: unpadded base64url, nothing else [RFC 7515 section 2]. */
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const ED25519_SIGNATURE_BYTES = 64;

/**
 * Parses the header, verifies the signature with the key its kid names, and only then reads
 * the claims: nothing of an unverified payload is parsed.
 */
function check(jwt: string, keys: ReadonlyMap<string, SigningKey>): Verified | { error: string } {
  if (jwt.length > MAX_JWT_BYTES) return { error: `token longer than ${MAX_JWT_BYTES} bytes` };
  const parts = jwt.split('.');
  if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) return { error: 'not a JWT' };
  const header = parseJson(parts[0]!);
  if (header === undefined) return { error: 'not a JWT' };
  if (header === REPEATED) return { error: 'a header member is repeated' };
  if (header.alg !== 'EdDSA') return { error: `unsupported alg ${String(header.alg)}` };
  if (typeof header.kid !== 'string') return { error: 'no kid in the header' };
  const key = keys.get(header.kid);
  if (key === undefined) return { error: NOT_A_KEY };
  // One spelling per signature: Node's base64url decoder skips stray characters and ignores
  // the unused low bits of the last one, so without this check one valid token had many
  // accepted spellings (each its own cache entry, enough to flush the cache).
  const signature = Buffer.from(parts[2]!, 'base64url');
  if (signature.length !== ED25519_SIGNATURE_BYTES || signature.toString('base64url') !== parts[2])
    return { error: 'bad signature' };
  const signedPart = Buffer.from(`${parts[0]}.${parts[1]}`);
  if (!verify(null, signedPart, key.publicKey, signature)) return { error: 'bad signature' };
  const claims = parseJson(parts[1]!);
  if (claims === undefined) return { error: 'not a JWT' };
  if (claims === REPEATED) return { error: 'a claim is repeated' };
  const aud = audienceIn(claims);
  if (typeof claims.sub !== 'string' || claims.sub === '') return { error: 'no sub claim' };
  if (typeof claims.jti !== 'string' || claims.jti === '') return { error: 'no jti claim' };
  if (typeof aud !== 'string') return { error: 'no aud claim' };
  if (claims.exp !== undefined && typeof claims.exp !== 'number') return { error: 'exp is not a number' };
  let acl: TopicAcl;
  try {
    acl = parseTopicAcl(claims.topicAcl ?? '#');
  } catch (err) {
    return { error: (err as Error).message };
  }
  return {
    token: {
      sub: claims.sub,
      jti: claims.jti,
      kid: header.kid,
      aud,
      exp: claims.exp as number | undefined,
      acl,
    },
    nbf: typeof claims.nbf === 'number' ? claims.nbf : undefined,
  };
}

/** What parseJson answers for an object with a member name twice (RFC 7515 section 4, RFC 7519 section 4). */
const REPEATED: Record<string, unknown> = Object.freeze({});

/** A base64url JSON object (REPEATED when a member name repeats), or undefined. */
function parseJson(part: string): Record<string, unknown> | undefined {
  let text: string;
  let value: unknown;
  try {
    text = Buffer.from(part, 'base64url').toString('utf8');
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  return hasRepeatedMember(text) ? REPEATED : (value as Record<string, unknown>);
}

/**
 * Whether any object in `json` (valid JSON) names a member twice, after unescaping
 * (`"s\u0075b"` is `"sub"`). One pass: a stack of the member names of each open object
 * (null for an array); a string right after `{` or `,` inside an object is a member name.
 */
function hasRepeatedMember(json: string): boolean {
  const open: (Set<string> | null)[] = [];
  let expectName = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '{') {
      open.push(new Set());
      expectName = true;
    } else if (c === '[') {
      open.push(null);
      expectName = false;
    } else if (c === '}' || c === ']') {
      open.pop();
      expectName = false;
    } else if (c === ',') {
      const top = open.at(-1);
      expectName = top !== undefined && top !== null;
    } else if (c === '"') {
      let end = i + 1;
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      if (expectName) {
        const names = open.at(-1)!;
        const name = JSON.parse(json.slice(i, end + 1)) as string;
        if (names.has(name)) return true;
        names.add(name);
        expectName = false;
      }
      i = end;
    }
  }
  return false;
}
