/**
 * Admin API tokens: 32 random bytes, base64url, with a recognisable prefix so secret scanners
 * and people can tell what a leaked string is. Only the SHA-256 of a token is stored; a request
 * is authenticated by hashing what it presents and looking the hash up (an index lookup on a
 * hash, so no timing side channel on the secret).
 */
import { createHash, randomBytes } from 'node:crypto';

export const API_TOKEN_PREFIX = 'pubsub_';

export function newApiToken(): string {
  return API_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function hashApiToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
