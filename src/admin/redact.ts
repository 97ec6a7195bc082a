/**
 * Redaction of secrets from what the audit log records (old and new values, query strings):
 * one function, `redact`, driven by the lists below. It returns a copy; the input is not touched.
 *
 * What counts as a secret, by the name of its field (compared lower-case, without `_` and `-`):
 * - SECRET_NAMES: a name containing one of these words is a secret whatever its value
 *   (`value` is exact: it is the field an API token's secret is returned in, Cloudflare's name);
 * - but a name that is an identifier of a secret (`token_id`, `kid`, `jti`, ending `id`/`ids`)
 *   is not: ids are what an audit trail is for.
 * And by the form of a value, whatever its field is called:
 * - a JWT (`eyJ...` `.` `...` `.` `...`, the signature possibly empty): replaced whole;
 * - a PEM private key block;
 * - a URL: its password (`https://user:pass@host`) and every query parameter with a secret
 *   name are replaced, the rest of the URL kept;
 * - a JWK (an object with `kty`): its private members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`).
 * A redacted value becomes the string `[REDACTED]` (`REDACTED` inside a URL); null and
 * undefined stay (they say "cleared").
 */

export const REDACTED = '[REDACTED]';
/** The same inside a URL, where brackets would be percent-encoded. */
const IN_URL = 'REDACTED';

/** Words that make a field a secret (normalised: lower-case, no `_` or `-`). */
export const SECRET_NAMES: readonly string[] = [
  'secret',
  'password',
  'passwd',
  'passphrase',
  'token',
  'jwt',
  'apikey',
  'authkey',
  'authorization',
  'cookie',
  'credential',
  'privatekey',
  'privatejwk',
  'signature',
  'hash',
];

/** Fields that are secrets by exact (normalised) name. */
export const SECRET_EXACT: readonly string[] = ['value', 'key'];

/** Names of identifiers, never secrets even when they contain a secret word. */
const IDENTIFIER = /(?:id|ids|kid|jti)$/;

/** The private members of a JWK (RFC 7517/7518: EC/OKP `d`, RSA's, a symmetric `k`). */
const JWK_PRIVATE = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']);

const JWT = /^eyJ[\w-]*\.[\w-]*\.[\w-]*$/;
const PEM_PRIVATE = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
const URL_LIKE = /^[a-z][a-z0-9+.-]*:\/\//i;

/** True when a field of this name holds a secret. */
export function isSecretName(name: string): boolean {
  const n = name.toLowerCase().replace(/[-_]/g, '');
  if (SECRET_EXACT.includes(n)) return true;
  if (IDENTIFIER.test(n)) return false;
  return SECRET_NAMES.some((word) => n.includes(word));
}

/** A copy of `value` with every secret replaced by REDACTED (see the module comment). */
export function redact(value: unknown): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(redact);
  const jwk = 'kty' in value;
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(value)) {
    if (v === null || v === undefined) out[name] = v;
    else if (isSecretName(name) || (jwk && JWK_PRIVATE.has(name))) out[name] = REDACTED;
    else out[name] = redact(v);
  }
  return out;
}

function redactString(s: string): string {
  if (JWT.test(s) || PEM_PRIVATE.test(s)) return REDACTED;
  if (!URL_LIKE.test(s)) return s;
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return s;
  }
  let changed = false;
  if (url.password !== '') {
    url.password = IN_URL;
    changed = true;
  }
  for (const name of [...url.searchParams.keys()])
    if (isSecretName(name)) {
      url.searchParams.set(name, IN_URL);
      changed = true;
    }
  return changed ? url.toString() : s;
}
