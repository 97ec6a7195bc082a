/**
 * auth/: authentication of clients. Today: MQTT 5.0 enhanced authentication (section 4.12), a
 * pluggable `EnhancedAuthenticator` per Authentication Method, with SCRAM-SHA-256 as the first
 * method. Promises: an authenticator never throws to the connection (a failure is a result
 * with a catalogue code), and credentials never leave this folder in a log line.
 */
export {
  type AuthExchange,
  type AuthStep,
  authenticatorsFromConfig,
  type EnhancedAuthenticator,
} from './enhanced.ts';
export {
  parseScramUsers,
  type ScramCredential,
  ScramSha256,
  scramCredential,
  scramCredentialLine,
} from './scram.ts';
