/**
 * On-publish hooks of brokers as the admin API changes them: vetting a webhook URL against the
 * egress policy, deploying and removing a sandboxed function.
 *
 * Invariants:
 * - A webhook URL is vetted here when it is set, and again by the webhook's socket at every
 *   connection (hooks' egress policy): a name that resolves elsewhere later is still refused.
 * - The tenant is never told which address a name resolved to (that would map the internal
 *   network); the log says.
 * - Every refusal is a catalogue ApiError (HOOK_URL_REFUSED, FUNCTION_NOT_FOUND).
 */
import type { Logger } from 'pino';
import { ApiError } from '../errors.ts';
import { type DeployedFunction, type EgressPolicy, EgressRefusedError } from '../hooks/index.ts';
import { timestamp } from './ids.ts';
import { addressOf, type Tenant } from './tenant.ts';

export class HookDeployment {
  readonly #egress: EgressPolicy;
  readonly #log: Logger;

  constructor(egress: EgressPolicy, log: Logger) {
    this.#egress = egress;
    this.#log = log;
  }

  /**
   * Refuses (HOOK_URL_REFUSED) an on_publish.url whose host is, or resolves now to, an address
   * the egress policy refuses, or does not resolve.
   */
  async checkWebhookUrl(url: string, broker: string): Promise<void> {
    const host = new URL(url).hostname;
    try {
      await this.#egress.vet(host);
    } catch (err) {
      const refused = err instanceof EgressRefusedError;
      this.#log.warn({ broker, url, err: (err as Error).message }, 'on_publish.url refused');
      throw new ApiError(
        'HOOK_URL_REFUSED',
        refused
          ? `on_publish.url host ${host} is refused by the server's webhook egress policy: loopback, private, link-local, metadata and other internal addresses are not webhook targets unless the operator allows them`
          : `on_publish.url host ${host} does not resolve`,
      );
    }
  }

  deployFunction(tenant: Tenant, code: string): Promise<DeployedFunction> {
    return tenant.hooks.deploy(code, timestamp());
  }

  removeFunction(tenant: Tenant): void {
    if (!tenant.hooks.removeFunction())
      throw new ApiError('FUNCTION_NOT_FOUND', `broker ${tenant.record.name} has no on-publish function`);
    this.#log.info({ broker: addressOf(tenant.record) }, 'on-publish function removed');
  }
}
