/**
 * Tenancy: account → namespace → broker, and the live Broker of every broker row.
 *
 * Owns: name rules (DNS labels, names.ts), quotas, the first-start bootstrap (account, namespace
 * `local`, broker `default`, admin token), which broker a connection names and whether it is
 * admitted (routing.ts, admission.ts), accounts, namespaces, brokers and admin API tokens with
 * their permissions and scope (token-scope.ts), client
 * credentials (issue, rotate, revoke, prune) and on-publish hook deployment. `Tenancy`
 * (tenancy.ts) is the one object the server and the admin API use.
 *
 * Promises:
 * - Nothing crosses brokers; credentials of broker A never open broker B, however a client
 *   names its broker (host name, token audience, user name `<broker>.<namespace>`).
 * - A broker row and its live tenant are created and deleted together; deleting a broker
 *   disconnects its clients (0x98) and drops its state.
 * - CONNECT is decided from memory; every refusal is a catalogue code of src/errors.ts.
 */
export { ControlReplica, KEY_KINDS, kindRank } from './control-replica.ts';
export { brokerAddressOf, brokerHostname } from './hostname.ts';
export { canonicalName, nameProblem } from './names.ts';
export { brokerAddressOfUsername, brokerUsername } from './routing.ts';
export {
  type Admission,
  BOOTSTRAP_BROKER,
  BOOTSTRAP_NAMESPACE,
  type BootstrapResult,
  Tenancy,
  type Tenant,
  type TokenRequest,
} from './tenancy.ts';
export {
  addressAllowed,
  hasPermission,
  isOperator,
  mayUseAccount,
  mayUseBroker,
  mayUseNamespace,
  PERMISSIONS,
  type Permission,
  type TokenStatus,
  tokenStatus,
} from './token-scope.ts';
