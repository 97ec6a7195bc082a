/**
 * A broker's on-publish hook (issue 9; ours, Cloudflare had only `on_publish.url`):
 * - `GET .../brokers/{broker}/hook`: which hook runs (webhook, function or none), its settings,
 *   the deployed function's version, its derived-publish budget, and the hook's metrics and
 *   last errors (a webhook's as failure classes only: the target's status or errno stays in
 *   the server log).
 * - `PUT .../brokers/{broker}/hook/function`: deploys a JavaScript module exporting
 *   `onPublish(messages, ctx)`, sent as the raw body (`Content-Type: application/javascript`
 *   or `text/javascript`) or as JSON `{"code": "..."}`. It is compiled and its top level run
 *   before it replaces the old version; a module that fails is refused (400, code 14010) with
 *   the reason, and the old version stays.
 * - `DELETE .../brokers/{broker}/hook/function`: removes the function and its state.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.ts';
import type { ApiContext } from '../context.ts';
import { ok } from '../envelope.ts';
import { brokerParams, envelope, errorEnvelope } from '../schemas.ts';

const BASE = '/client/v4/accounts/:account_id/pubsub/namespaces/:namespace/brokers/:broker/hook';

const deployed = {
  type: 'object',
  properties: {
    version: { type: 'integer' },
    sha256: { type: 'string' },
    deployedOn: { type: 'string' },
    bytes: { type: 'integer' },
  },
} as const;

const hookView = {
  type: 'object',
  properties: {
    kind: { type: 'string', enum: ['webhook', 'function', 'none'] },
    on_publish: {
      type: 'object',
      properties: {
        url: { type: ['string', 'null'] },
        policy: { type: 'string' },
        timeout_ms: { type: 'integer' },
      },
    },
    function: { anyOf: [deployed, { type: 'null' }] },
    ack: { type: 'string' },
    publish_budget: {
      type: 'object',
      description: "the derived-publish budget of the broker's function (ctx.publish), per second",
      properties: {
        messages_per_second: { type: 'integer' },
        bytes_per_second: { type: 'integer' },
        burst_ms: { type: 'integer' },
      },
    },
    metrics: { type: 'object', additionalProperties: true },
  },
} as const;

type Params = { account_id: string; namespace: string; broker: string };

export function hookRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const t = ctx.tenancy;
  // A function module may come as the raw body, to the deploy route only: every other route
  // takes JSON alone (a parser is registered for the whole app, so it checks the route).
  for (const type of ['application/javascript', 'text/javascript'])
    app.addContentTypeParser(type, { parseAs: 'string' }, (req, body, done) => {
      if (req.routeOptions.url !== `${BASE}/function`)
        return done(new ApiError('INVALID_CONTENT_TYPE'), undefined);
      done(null, { code: body });
    });

  app.get(
    BASE,
    {
      schema: {
        summary: "Describe a broker's on-publish hook, with its metrics",
        tags: ['hooks'],
        params: brokerParams,
        response: { 200: envelope(hookView), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const p = req.params as Params;
      return ok(t.hookView(p.account_id, p.namespace, p.broker));
    },
  );

  app.put(
    `${BASE}/function`,
    {
      bodyLimit: ctx.config.functionMaxCodeBytes * 2 + 1024,
      schema: {
        summary: 'Deploy an on-publish function (JavaScript module exporting onPublish)',
        tags: ['hooks'],
        params: brokerParams,
        response: { 200: envelope(deployed), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const p = req.params as Params;
      const code = (req.body as { code?: unknown } | undefined)?.code;
      if (typeof code !== 'string' || code.trim() === '')
        throw new ApiError(
          'INVALID_PARAMETER',
          'send the module as the body (Content-Type: application/javascript) or as JSON {"code": "..."}',
        );
      return ok(await t.deployFunction(p.account_id, p.namespace, p.broker, code));
    },
  );

  app.delete(
    `${BASE}/function`,
    {
      schema: {
        summary: 'Remove the on-publish function and its state',
        tags: ['hooks'],
        params: brokerParams,
        response: { 200: envelope({ type: 'null' }), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const p = req.params as Params;
      t.removeFunction(p.account_id, p.namespace, p.broker);
      return ok(null);
    },
  );
}
