/**
 * Authentication and authorization. Admin API tokens (random secrets stored as SHA-256
 * hashes); per-broker Ed25519 key sets, client JWT minting and synchronous verification with a
 * cache; topic ACLs; the identity a connection carries from CONNECT on.
 */
export { API_TOKEN_PREFIX, hashApiToken, newApiToken } from './api-tokens.ts';
export { BrokerCredentials } from './broker-credentials.ts';
export { lifetimeOf, MAX_TOKENS_PER_REQUEST, type MintRequest, mintTokens } from './credentials.ts';
export type { ClientIdentity } from './identity.ts';
export { KEYS_PER_BROKER, type SigningKey, thumbprint } from './key-set.ts';
export { audienceOf, TokenVerifier, type Verification, type VerifiedToken } from './token-verifier.ts';
export {
  allowsEverything,
  mayPublish,
  maySubscribe,
  parseTopicAcl,
  type TopicAcl,
  topicAclClaim,
} from './topic-acl.ts';
export { ulid } from './ulid.ts';
