/**
 * Tenancy: account → namespace → broker. Owns name rules (DNS labels), quotas, the first-start
 * bootstrap (account, namespace `local`, broker `default`, admin token), host-name routing of
 * connections to brokers, and the live Broker of each broker row. Promise: nothing crosses
 * brokers, and deleting one disconnects its clients (0x98) and drops its state.
 */
export { brokerAddressOf, brokerHostname } from './hostname.ts';
export { canonicalName, nameProblem } from './names.ts';
export {
  type Admission,
  BOOTSTRAP_BROKER,
  BOOTSTRAP_NAMESPACE,
  type BootstrapResult,
  Tenancy,
  type Tenant,
} from './tenancy.ts';
