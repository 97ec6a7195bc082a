/**
 * Authentication and authorization of clients and admins:
 * - admin API tokens (random secrets stored as SHA-256 hashes);
 * - per-broker Ed25519 key sets, client JWT minting and synchronous cached verification;
 * - topic ACLs and the identity a connection carries from CONNECT on;
 * - MQTT 5.0 enhanced authentication (section 4.12): a pluggable `EnhancedAuthenticator` per
 *   Authentication Method, SCRAM-SHA-256 first.
 * - the brute-force limiter: failed authentications per source address, delays then bans.
 * Promises: an authenticator never throws to the connection (a failure is a result with a
 * catalogue code), and credentials never leave this folder in a log line.
 */
export { API_TOKEN_PREFIX, hashApiToken, newApiToken } from './api-tokens.ts';
export { authenticatorsFromConfig } from './authenticators.ts';
export { BrokerCredentials } from './broker-credentials.ts';
export { CertificateClientIds } from './certificate-identity.ts';
export {
  lifetimeOf,
  MAX_TOKENS_PER_REQUEST,
  type Minted,
  type MintRequest,
  mintTokens,
} from './credentials.ts';
export type { AuthExchange, AuthStep, EnhancedAuthenticator } from './enhanced.ts';
export {
  type AuthProtocol,
  FailureLimiter,
  type FailureLimits,
  type FailureVerdict,
  isAuthFailure,
  sourceKey,
} from './failure-limiter.ts';
export type { ClientIdentity } from './identity.ts';
export { KEYS_PER_BROKER, type SigningKey, thumbprint } from './key-set.ts';
export {
  parseScramUsers,
  type ScramCredential,
  ScramSha256,
  scramCredential,
  scramCredentialLine,
} from './scram.ts';
export {
  audienceOf,
  MAX_JWT_BYTES,
  TokenVerifier,
  type Verification,
  type VerifiedToken,
} from './token-verifier.ts';
export {
  allowsEverything,
  mayPublish,
  maySubscribe,
  parseTopicAcl,
  type TopicAcl,
  topicAclClaim,
} from './topic-acl.ts';
export { ulid } from './ulid.ts';
