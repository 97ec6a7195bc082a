/**
 * Verifies that an HTTP request really comes from a pubsub broker's on-publish hook, in any
 * runtime with WebCrypto Ed25519 (Node 20+, Deno, Bun, Cloudflare Workers, browsers). No
 * dependencies; import it from `pubsub/verify` or copy this file.
 *
 * Same shape as `@cloudflare/pubsub`'s `isValidBrokerRequest(request, publicKeys)`, plus replay
 * protection Cloudflare lacked: the `X-Signature-Timestamp` must be within `maxAgeSeconds`
 * (default 300) of the receiver's clock, in either direction.
 *
 * The signature (header `X-Signature-Ed25519`, base64) is Ed25519 over the UTF-8 bytes of the
 * timestamp header followed by the raw body, by the key named in `X-Signature-Key-Id`, looked
 * up in the broker's JWKS (`GET .../publickeys`, or `pubsub broker public-keys`).
 */

const DEFAULT_MAX_AGE_SECONDS = 300;

/**
 * @param {Request} request a fetch-API request (its body is read from a clone)
 * @param {string | {keys: object[]}} publicKeys the broker's JWKS, as JSON text or object
 * @param {{maxAgeSeconds?: number, now?: number}} [options]
 * @returns {Promise<boolean>}
 */
export async function isValidBrokerRequest(request, publicKeys, options = {}) {
  if (request.method !== 'POST') return false;
  const body = await request.clone().text();
  const result = await verifyBrokerSignature(
    {
      body,
      signature: request.headers.get('X-Signature-Ed25519'),
      timestamp: request.headers.get('X-Signature-Timestamp'),
      keyId: request.headers.get('X-Signature-Key-Id'),
    },
    publicKeys,
    options,
  );
  return result.ok;
}

/**
 * The same check on parts, for servers without fetch-API requests (node:http, express):
 * pass the raw body text and the three header values. Says why when it fails.
 *
 * @param {{body: string, signature: string | null | undefined, timestamp: string | null | undefined, keyId: string | null | undefined}} parts
 * @param {string | {keys: object[]}} publicKeys
 * @param {{maxAgeSeconds?: number, now?: number}} [options]
 * @returns {Promise<{ok: true} | {ok: false, reason: string}>}
 */
export async function verifyBrokerSignature(parts, publicKeys, options = {}) {
  const { body, signature, timestamp, keyId } = parts;
  if (!signature || !timestamp || !keyId) return { ok: false, reason: 'missing signature headers' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'malformed timestamp' };
  const maxAge = options.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS;
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(nowSeconds - Number(timestamp)) > maxAge)
    return { ok: false, reason: `timestamp outside the ${maxAge} s window (replay or clock skew)` };
  let jwks;
  try {
    jwks = typeof publicKeys === 'string' ? JSON.parse(publicKeys) : publicKeys;
  } catch {
    return { ok: false, reason: 'public keys are not JSON' };
  }
  const jwk = (jwks?.keys ?? []).find((k) => k?.kid === keyId);
  if (!jwk) return { ok: false, reason: `no public key with kid ${keyId}` };
  let key;
  let signatureBytes;
  try {
    key = await crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, { name: 'Ed25519' }, false, [
      'verify',
    ]);
    signatureBytes = base64ToBytes(signature);
  } catch {
    return { ok: false, reason: 'unusable key or signature' };
  }
  const data = new TextEncoder().encode(timestamp + body);
  const good = await crypto.subtle.verify({ name: 'Ed25519' }, key, signatureBytes, data);
  return good ? { ok: true } : { ok: false, reason: 'bad signature' };
}

/** @param {string} text */
function base64ToBytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
