/**
 * A broker's credentials (reference sections 1 and 2):
 * - `GET .../credentials` mints 1..100 client tokens (a GET that creates, as Cloudflare's):
 *   `number`, `type` (TOKEN), `topicAcl` (repeatable rules; absent or empty: `#`, which is what
 *   the guide's unencoded `topicAcl=#` reaches the server as), `clientid` (repeatable),
 *   `expiration` (seconds; -1: none). Result: `{ "<clientId>": "<JWT>", ... }`.
 * - `POST|GET|DELETE .../revocations` with `jti` comma-separated or repeated (both forms are sent
 *   by real clients); revoking disconnects live sessions that used the token (0x98).
 * - `GET .../publickeys`: the JWKS that verifies tokens and webhook signatures;
 *   `POST .../publickeys/rotate` (ours) retires the oldest key and adds a new one.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.ts';
import type { ApiContext, BrokerPath } from '../context.ts';
import { ok } from '../envelope.ts';
import { brokerParams, envelope, errorEnvelope } from '../schemas.ts';

const BASE = '/client/v4/accounts/:account_id/pubsub/namespaces/:namespace/brokers/:broker';

const stringOrList = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } as const;

const credentialsQuery = {
  type: 'object',
  properties: {
    number: { type: 'string', pattern: '^[0-9]{1,3}$', description: 'how many tokens, 1..100 (default 1)' },
    type: { type: 'string', enum: ['TOKEN'] },
    topicAcl: {
      ...stringOrList,
      description: 'ACL rules: pub:<filter>, sub:<filter> or <filter>; default #',
    },
    clientid: { ...stringOrList, description: 'mint for these client ids instead of generated ones' },
    expiration: { type: 'string', pattern: '^-?[0-9]{1,10}$', description: 'seconds; -1: no expiry' },
  },
} as const;

const jtiQuery = {
  type: 'object',
  properties: { jti: { ...stringOrList, description: 'token ids, comma-separated or repeated' } },
} as const;

const jwk = {
  type: 'object',
  properties: {
    use: { type: 'string' },
    kty: { type: 'string' },
    kid: { type: 'string' },
    crv: { type: 'string' },
    alg: { type: 'string' },
    x: { type: 'string' },
  },
} as const;
const jwks = { type: 'object', properties: { keys: { type: 'array', items: jwk } } } as const;

const listOf = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];

function jtisOf(query: unknown): string[] {
  const jtis = listOf((query as { jti?: string | string[] }).jti)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  if (jtis.length === 0)
    throw new ApiError('INVALID_PARAMETER', 'jti is required (comma-separated or repeated)');
  return jtis;
}

export function credentialRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const t = ctx.tenancy;

  app.get(
    `${BASE}/credentials`,
    {
      schema: {
        summary: 'Issue client tokens (EdDSA JWTs), as a map of client id to token',
        tags: ['credentials'],
        params: brokerParams,
        querystring: credentialsQuery,
        response: {
          200: envelope({ type: 'object', additionalProperties: { type: 'string' } }),
          '4xx': errorEnvelope,
        },
      },
    },
    async (req) => {
      const p = req.params as BrokerPath;
      const q = req.query as {
        number?: string;
        topicAcl?: string | string[];
        clientid?: string | string[];
        expiration?: string;
      };
      const expiration = q.expiration === undefined ? undefined : Number(q.expiration);
      if (expiration !== undefined && expiration < -1)
        throw new ApiError('INVALID_PARAMETER', 'expiration must be seconds, or -1 for none');
      const topicAcl = listOf(q.topicAcl).filter((r) => r !== '');
      const tokens = await t.issueCredentials(p.account_id, p.namespace, p.broker, {
        number: q.number === undefined ? 1 : Number(q.number),
        clientIds: listOf(q.clientid),
        expiration: expiration === 0 ? undefined : expiration,
        topicAcl: topicAcl.length === 0 ? ['#'] : topicAcl,
      });
      return ok(tokens);
    },
  );

  app.post(
    `${BASE}/revocations`,
    {
      schema: {
        summary: 'Revoke tokens by jti; live sessions using them are disconnected (0x98)',
        tags: ['credentials'],
        params: brokerParams,
        querystring: jtiQuery,
        response: { 200: envelope({ type: 'null' }), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const p = req.params as BrokerPath;
      t.revoke(p.account_id, p.namespace, p.broker, jtisOf(req.query));
      return ok(null);
    },
  );

  app.get(
    `${BASE}/revocations`,
    {
      schema: {
        summary: 'List revoked token ids',
        tags: ['credentials'],
        params: brokerParams,
        response: { 200: envelope({ type: 'array', items: { type: 'string' } }), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const p = req.params as BrokerPath;
      return ok(t.revocations(p.account_id, p.namespace, p.broker));
    },
  );

  app.delete(
    `${BASE}/revocations`,
    {
      schema: {
        summary: 'Unrevoke tokens by jti (an expired token stays invalid)',
        tags: ['credentials'],
        params: brokerParams,
        querystring: jtiQuery,
        response: { 200: envelope({ type: 'null' }), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const p = req.params as BrokerPath;
      t.unrevoke(p.account_id, p.namespace, p.broker, jtisOf(req.query));
      return ok(null);
    },
  );

  app.get(
    `${BASE}/publickeys`,
    {
      schema: {
        summary: 'The broker public keys (JWKS) verifying its tokens and webhook signatures',
        tags: ['credentials'],
        params: brokerParams,
        response: { 200: envelope(jwks), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const p = req.params as BrokerPath;
      return ok(t.publicKeys(p.account_id, p.namespace, p.broker));
    },
  );

  app.post(
    `${BASE}/publickeys/rotate`,
    {
      schema: {
        summary: 'Retire the oldest key (tokens it signed stop working) and add a new one',
        tags: ['credentials'],
        params: brokerParams,
        response: { 200: envelope(jwks), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const p = req.params as BrokerPath;
      return ok(t.rotateKeys(p.account_id, p.namespace, p.broker));
    },
  );
}
