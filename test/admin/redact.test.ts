/** The audit log's redaction (src/admin/redact.ts): each kind of secret it names, and what it keeps. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSecretName, REDACTED, redact } from '../../src/admin/redact.ts';

const JWT = 'eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJjMSJ9.c2lnbmF0dXJl';

describe('audit redaction', () => {
  it('replaces every field named in the secret list, at any depth and in lists', () => {
    const input = {
      value: 'api-token-secret',
      nested: { client_secret: 's1', Password: 'p', 'api-key': 'k', private_jwk: { d: 'x' } },
      list: [{ token: 't' }, { authorization: 'Bearer x' }],
      hash: 'abc',
      key: 'material',
    };
    assert.deepEqual(redact(input), {
      value: REDACTED,
      nested: { client_secret: REDACTED, Password: REDACTED, 'api-key': REDACTED, private_jwk: REDACTED },
      list: [{ token: REDACTED }, { authorization: REDACTED }],
      hash: REDACTED,
      key: REDACTED,
    });
  });

  it('keeps identifiers of secrets (token_id, kid, jti) and ordinary fields', () => {
    const input = {
      token_id: 'a1',
      kid: 'k1',
      jti: 'j1',
      tokenIds: ['x'],
      name: 'ci',
      authType: 'TOKEN',
      keys: [],
    };
    assert.deepEqual(redact(input), input);
    assert.equal(isSecretName('token_id'), false);
    assert.equal(isSecretName('tokens'), true);
  });

  it('keeps null and undefined under a secret name: they say the secret was cleared', () => {
    assert.deepEqual(redact({ password: null }), { password: null });
  });

  it('replaces a JWT (signed or alg none) and a PEM private key wherever they are', () => {
    assert.deepEqual(redact({ c1: JWT, c2: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJjMSJ9.' }), {
      c1: REDACTED,
      c2: REDACTED,
    });
    assert.equal(redact('-----BEGIN PRIVATE KEY-----\nMC4CAQ...\n-----END PRIVATE KEY-----'), REDACTED);
    assert.equal(redact('-----BEGIN EC PRIVATE KEY-----\nx'), REDACTED);
  });

  it('removes the password and secret query parameters of a URL, keeping the rest', () => {
    assert.equal(
      redact('https://hook:hunter2@example.com/in?token=abc&topic=t'),
      'https://hook:REDACTED@example.com/in?token=REDACTED&topic=t',
    );
    assert.equal(redact('https://example.com/in?topic=t'), 'https://example.com/in?topic=t');
  });

  it('removes the private members of a JWK and keeps its public ones', () => {
    assert.deepEqual(redact({ kty: 'OKP', crv: 'Ed25519', kid: 'k', x: 'pub', d: 'priv' }), {
      kty: 'OKP',
      crv: 'Ed25519',
      kid: 'k',
      x: 'pub',
      d: REDACTED,
    });
  });

  it('returns a copy: the input is not touched', () => {
    const input = { value: 'secret', inner: { password: 'p' } };
    redact(input);
    assert.deepEqual(input, { value: 'secret', inner: { password: 'p' } });
  });
});
