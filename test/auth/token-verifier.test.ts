/**
 * TokenVerifier on its own: only tokens whose signature verified against a live key of the
 * broker are cached (garbage, forged, foreign and tampered tokens never are), the cache is
 * bounded in bytes of token text as well as in entries (least recently used evicted), and a
 * cached token still meets the per-use checks: key set, audience, clock.
 */
import assert from 'node:assert/strict';
import { randomBytes, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { generateSigningKey, loadSigningKey, type SigningKey } from '../../src/auth/key-set.ts';
import { TokenVerifier } from '../../src/auth/token-verifier.ts';

const AUD = 'home.creds';
const newKey = (): SigningKey => {
  const { kid, privateJwk } = generateSigningKey();
  return loadSigningKey(kid, privateJwk);
};
const live = newKey();
const foreign = newKey();
const keys = new Map([[live.kid, live]]);

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A JWT signed by `key` (EdDSA), with `header` fields over the usual ones. */
function jwt(
  claims: Record<string, unknown>,
  key: SigningKey = live,
  header: Record<string, unknown> = {},
): string {
  const signed = `${b64({ alg: 'EdDSA', typ: 'JWT', kid: key.kid, ...header })}.${b64(claims)}`;
  return `${signed}.${sign(null, Buffer.from(signed), key.privateKey).toString('base64url')}`;
}

let serial = 0;
/** Claims of a valid token; every call has a distinct sub and jti of the same length. */
function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const n = String(++serial).padStart(6, '0');
  return { sub: `client${n}`, jti: `jti${n}`, aud: AUD, topicAcl: '#', ...extra };
}

describe('TokenVerifier', () => {
  it('a valid token verifies and is cached; a cached token still meets the key set, audience and clock on every use', () => {
    const v = new TokenVerifier();
    const now = Date.now();
    const token = jwt(claims({ exp: Math.floor(now / 1000) + 60, nbf: Math.floor(now / 1000) - 1 }));
    const first = v.verify(token, keys, AUD, now);
    assert.ok(first.ok, JSON.stringify(first));
    assert.ok(v.isCached(token));
    assert.equal(v.cacheBytes, token.length);
    assert.ok(v.verify(token, keys, AUD, now).ok, 'a hit');
    assert.deepEqual(v.verify(token, new Map(), AUD, now), {
      ok: false,
      reason: 'signed by a key this broker does not have (rotated or foreign)',
    });
    assert.deepEqual(v.verify(token, keys, 'other.creds', now), {
      ok: false,
      reason: `token is for broker ${AUD}`,
    });
    assert.deepEqual(v.verify(token, keys, AUD, now + 61_000), { ok: false, reason: 'token expired' });
    assert.deepEqual(v.verify(token, keys, AUD, now - 5_000), { ok: false, reason: 'token not yet valid' });
    assert.equal(v.cacheSize, 1);
  });

  it('garbage, forged, foreign and tampered tokens are refused and never enter the cache', () => {
    const v = new TokenVerifier();
    const good = jwt(claims());
    const [h, p] = good.split('.') as [string, string, string];
    const refused: [string, string, string][] = [
      ['not three parts', 'garbage', 'not a JWT'],
      ['three parts of nothing', 'a.b.c', 'not a JWT'],
      ['alg none', `${b64({ alg: 'none', kid: live.kid })}.${p}.`, 'unsupported alg none'],
      ['no kid', jwt(claims(), live, { kid: undefined }), 'no kid in the header'],
      ['a key the broker does not have', jwt(claims(), foreign), 'signed by a key'],
      ['another key under a live kid', jwt(claims(), foreign, { kid: live.kid }), 'bad signature'],
      ['a random signature', `${h}.${p}.${randomBytes(64).toString('base64url')}`, 'bad signature'],
      ['a short signature', `${h}.${p}.AAAA`, 'bad signature'],
      [
        'claims changed after signing',
        `${h}.${b64({ ...claims(), sub: 'admin' })}.${good.split('.')[2]}`,
        'bad signature',
      ],
      ['signed, but no sub', jwt({ jti: 'j', aud: AUD }), 'no sub claim'],
      ['signed, but claims not JSON', signedRaw('not json'), 'not a JWT'],
    ];
    for (const [what, token, reason] of refused) {
      const result = v.verify(token, keys, AUD);
      assert.equal(result.ok, false, what);
      assert.ok(!result.ok && result.reason.startsWith(reason), `${what}: ${JSON.stringify(result)}`);
      assert.equal(v.isCached(token), false, what);
    }
    // A flood of distinct forgeries: none is kept, so none can evict a real token.
    const real = jwt(claims());
    assert.ok(v.verify(real, keys, AUD).ok);
    const small = new TokenVerifier({ maxEntries: 1 });
    assert.ok(small.verify(real, keys, AUD).ok);
    for (let i = 0; i < 500; i++) {
      const forged = `${h}.${b64(claims())}.${randomBytes(64).toString('base64url')}`;
      assert.equal(v.verify(forged, keys, AUD).ok, false);
      assert.equal(small.verify(forged, keys, AUD).ok, false);
    }
    assert.equal(v.cacheSize, 1, 'only the real token');
    assert.equal(v.cacheBytes, real.length);
    assert.ok(small.isCached(real), 'the real token survived 500 forgeries in a one-entry cache');
  });

  it('a valid token has one accepted spelling: padding, stray characters or other low bits in the signature are refused and not cached', () => {
    const v = new TokenVerifier();
    const good = jwt(claims());
    const [h, p, sig] = good.split('.') as [string, string, string];
    assert.equal(sig.length, 86);
    const last = sig.at(-1)!;
    // The last character carries 2 unused bits: its neighbours in the alphabet decode the same.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBytes = alphabet[(alphabet.indexOf(last) ^ 1) % 64]!;
    const variants = [
      `${good}==`,
      `${good}!!`,
      `${h}.${p}.${sig.slice(0, 40)}!${sig.slice(40)}`,
      `${h}.${p}.${sig.slice(0, 40)} ${sig.slice(40)}`,
      `${h}.${p}.${sig.slice(0, -1)}${sameBytes}`,
      `${h}=.${p}.${sig}`,
      `${h}.${p}+.${sig}`,
    ];
    assert.deepEqual(
      Buffer.from(variants[4]!.split('.')[2]!, 'base64url'),
      Buffer.from(sig, 'base64url'),
      'the low-bits variant decodes to the same bytes',
    );
    for (const variant of variants) {
      const result = v.verify(variant, keys, AUD);
      assert.equal(result.ok, false, variant);
      assert.ok(!v.isCached(variant));
    }
    assert.equal(v.cacheSize, 0);
    assert.ok(v.verify(good, keys, AUD).ok);
  });

  it('the byte cap evicts the least recently used tokens; a token over the cap is verified but not kept', () => {
    const tokens = [1, 2, 3, 4].map(() => jwt(claims()));
    const length = tokens[0]!.length;
    assert.ok(
      tokens.every((t) => t.length === length),
      'same length',
    );
    const v = new TokenVerifier({ maxEntries: 100, maxBytes: 3 * length });
    for (const t of tokens.slice(0, 3)) assert.ok(v.verify(t, keys, AUD).ok);
    assert.equal(v.cacheBytes, 3 * length);
    assert.ok(v.verify(tokens[0]!, keys, AUD).ok, 'touch the first: the second is now the oldest');
    assert.ok(v.verify(tokens[3]!, keys, AUD).ok);
    assert.deepEqual(
      tokens.map((t) => v.isCached(t)),
      [true, false, true, true],
    );
    assert.equal(v.cacheSize, 3);
    assert.equal(v.cacheBytes, 3 * length);

    const long = jwt(claims({ note: 'x'.repeat(4 * length) }));
    assert.ok(v.verify(long, keys, AUD).ok);
    assert.equal(v.isCached(long), false);
    assert.deepEqual(
      tokens.map((t) => v.isCached(t)),
      [true, false, true, true],
      'and evicts nothing',
    );
  });

  it('the entry cap evicts the least recently used tokens too', () => {
    const v = new TokenVerifier({ maxEntries: 2 });
    const [a, b, c] = [1, 2, 3].map(() => jwt(claims())) as [string, string, string];
    for (const t of [a, b, a, c]) assert.ok(v.verify(t, keys, AUD).ok);
    assert.deepEqual(
      [a, b, c].map((t) => v.isCached(t)),
      [true, false, true],
    );
    assert.equal(v.cacheBytes, a.length + c.length);
  });
});

describe('TokenVerifier: the shape of a token', () => {
  /** A token signed by the live key over `header` and `payload` given as JSON text. */
  const raw = (header: string, payload: string): string => {
    const signed = `${Buffer.from(header).toString('base64url')}.${Buffer.from(payload).toString('base64url')}`;
    return `${signed}.${sign(null, Buffer.from(signed), live.privateKey).toString('base64url')}`;
  };
  const header = `{"alg":"EdDSA","kid":"${live.kid}"}`;

  it('a repeated member name, in the claims or the header, is refused and not cached', () => {
    const v = new TokenVerifier();
    const cases: [string, string, string][] = [
      [header, `{"sub":"a","jti":"j","aud":"${AUD}","sub":"b"}`, 'a claim is repeated'],
      [header, `{"sub":"a","jti":"j","aud":"${AUD}","exp":1,"\\u0065xp":9999999999}`, 'a claim is repeated'],
      [header, `{"sub":"a","jti":"j","aud":"${AUD}","topicAcl":{"x":1,"x":2}}`, 'a claim is repeated'],
      [
        `{"alg":"none","kid":"${live.kid}","alg":"EdDSA"}`,
        `{"sub":"a","jti":"j","aud":"${AUD}"}`,
        'a header member is repeated',
      ],
    ];
    for (const [h, p, reason] of cases) {
      const token = raw(h, p);
      assert.deepEqual(v.verify(token, keys, AUD), { ok: false, reason }, p);
      assert.equal(v.isCached(token), false);
    }
    // The same names in different objects, and a name inside a string value, are not repeats.
    const fine = raw(
      header,
      `{"sub":"a","jti":"j","aud":"${AUD}","x":{"sub":"\\"sub\\""},"y":["sub","sub"]}`,
    );
    assert.ok(v.verify(fine, keys, AUD).ok);
  });

  it('a token over 4096 bytes is refused before it is decoded, validly signed or not', () => {
    const v = new TokenVerifier();
    const token = jwt(claims({ pad: 'x'.repeat(4000) }));
    assert.ok(token.length > 4096);
    assert.deepEqual(v.verify(token, keys, AUD), { ok: false, reason: 'token longer than 4096 bytes' });
    assert.deepEqual(v.verify('x'.repeat(5000), keys, AUD), {
      ok: false,
      reason: 'token longer than 4096 bytes',
    });
  });

  it('clockSkewSeconds: exp and nbf are honoured with that much leeway, and no more', () => {
    const v = new TokenVerifier({ clockSkewSeconds: 30 });
    const now = 1_700_000_000_000;
    const token = jwt(claims({ exp: now / 1000, nbf: now / 1000 - 60 }));
    assert.ok(v.verify(token, keys, AUD, now + 29_999).ok, 'inside the skew after exp');
    assert.deepEqual(v.verify(token, keys, AUD, now + 30_000), { ok: false, reason: 'token expired' });
    assert.ok(v.verify(token, keys, AUD, now - 89_000).ok, 'inside the skew before nbf');
    assert.deepEqual(v.verify(token, keys, AUD, now - 90_001), { ok: false, reason: 'token not yet valid' });
    const strict = new TokenVerifier();
    assert.deepEqual(strict.verify(token, keys, AUD, now), { ok: false, reason: 'token expired' });
  });
});

/** A JWT whose payload part is `text` (not base64url JSON), correctly signed by the live key. */
function signedRaw(text: string): string {
  const signed = `${b64({ alg: 'EdDSA', kid: live.kid })}.${Buffer.from(text).toString('base64url')}`;
  return `${signed}.${sign(null, Buffer.from(signed), live.privateKey).toString('base64url')}`;
}
