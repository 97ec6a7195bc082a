/**
 * Authentication. Today: admin API tokens (random secrets stored as SHA-256 hashes). MQTT
 * authentication providers (JWT, mTLS, anonymous) and authorization (topic ACLs) join here.
 */
export { API_TOKEN_PREFIX, hashApiToken, newApiToken } from './api-tokens.ts';
