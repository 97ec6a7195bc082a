/**
 * A broker's clients (ours; the console and `pubsub broker clients|client|kick` use them):
 * - `GET .../brokers/{broker}/clients`: connected clients and offline persistent sessions, in
 *   the order their sessions were created, paged (`page`, `per_page`, counted `result_info`),
 *   `client_id_prefix` to narrow them. Only the page's sessions are described.
 * - `GET .../clients/{client_id}`: the same object plus its subscriptions; `GET .../client?client_id=`
 *   the same for any client id, those a path segment cannot carry included.
 * - `DELETE .../clients/{client_id}` (or `DELETE .../clients?client_id=`, for client ids a path
 *   segment cannot carry: a `/`, over 100 characters): disconnects the client with v5
 *   DISCONNECT 0x98 Administrative action (v3: the connection is closed); its will is published
 *   as for any server close. `discard_session=true` ends its session as well, connected or
 *   offline (a will still delayed is published then [MQTT-3.1.2-8]). 404 (code 14014) when
 *   there is nothing to act on: not connected, and no session to discard.
 * Each broker's routes see that broker's sessions only: the broker is found by its path, and
 * each holds its own.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import { type ApiContext, brokerOfRequest } from '../context.ts';
import { ok, okList } from '../envelope.ts';
import { presentClient } from '../present.ts';
import { pageOf } from '../query.ts';
import {
  brokerParams,
  client,
  clientDetail,
  clientParams,
  clientsQuery,
  envelope,
  errorEnvelope,
  kickQuery,
  kickResult,
} from '../schemas.ts';

const BASE = '/client/v4/accounts/:account_id/pubsub/namespaces/:namespace/brokers/:broker/clients';

/** A client id in the query string: any client id MQTT allows (a UTF-8 string, `/` included). */
const clientIdQuery = {
  type: 'object',
  required: ['client_id'],
  properties: { client_id: { type: 'string', maxLength: 65535 } },
} as const;

export function clientRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const kick = (req: FastifyRequest, clientId: string) => {
    const discard = (req.query as { discard_session?: string }).discard_session === 'true';
    const done = brokerOfRequest(ctx, req).kick(clientId, discard);
    if (!done.disconnected && !done.discarded)
      throw new ApiError(
        'CLIENT_NOT_FOUND',
        discard
          ? `client ${clientId} has no session on this broker`
          : `client ${clientId} is not connected to this broker`,
      );
    ctx.logger.info({ clientId, ...done }, 'admin API: client disconnected');
    return ok({ client_id: clientId, disconnected: done.disconnected, session_discarded: done.discarded });
  };

  app.get(
    BASE,
    {
      schema: {
        summary: 'List connected clients and offline persistent sessions',
        tags: ['clients'],
        params: brokerParams,
        querystring: clientsQuery,
        response: { 200: envelope({ type: 'array', items: client }, true), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { page, perPage } = pageOf(req.query);
      const prefix = (req.query as { client_id_prefix?: string }).client_id_prefix ?? '';
      const { sessions, total } = brokerOfRequest(ctx, req).findSessions(
        prefix,
        (page - 1) * perPage,
        perPage,
      );
      return okList(
        sessions.map((s) => presentClient(s.describe(), false)),
        total,
        page,
        perPage,
      );
    },
  );

  const describeClient = (req: FastifyRequest, clientId: string) => {
    const session = brokerOfRequest(ctx, req).sessions.get(clientId);
    if (session === undefined)
      throw new ApiError('CLIENT_NOT_FOUND', `client ${clientId} has no session on this broker`);
    return ok(presentClient(session.describe(), true));
  };

  app.get(
    `${BASE}/:client_id`,
    {
      schema: {
        summary: 'Describe a client: connection, session and subscriptions',
        tags: ['clients'],
        params: clientParams,
        response: { 200: envelope(clientDetail), '4xx': errorEnvelope },
      },
    },
    async (req) => describeClient(req, (req.params as { client_id: string }).client_id),
  );

  app.get(
    BASE.replace(/clients$/, 'client'),
    {
      schema: {
        summary:
          'Describe the client named by client_id (any client id, `/` included), with its subscriptions',
        tags: ['clients'],
        params: brokerParams,
        querystring: clientIdQuery,
        response: { 200: envelope(clientDetail), '4xx': errorEnvelope },
      },
    },
    async (req) => describeClient(req, (req.query as { client_id: string }).client_id),
  );

  app.delete(
    `${BASE}/:client_id`,
    {
      schema: {
        summary: 'Disconnect a client (v5 DISCONNECT 0x98); discard_session=true ends its session too',
        tags: ['clients'],
        params: clientParams,
        querystring: kickQuery,
        response: { 200: envelope(kickResult), '4xx': errorEnvelope },
      },
    },
    async (req) => kick(req, (req.params as { client_id: string }).client_id),
  );

  app.delete(
    BASE,
    {
      schema: {
        summary: 'Disconnect the client named by client_id (any client id, `/` included)',
        tags: ['clients'],
        params: brokerParams,
        querystring: {
          type: 'object',
          required: ['client_id'],
          properties: { ...kickQuery.properties, ...clientIdQuery.properties },
        },
        response: { 200: envelope(kickResult), '4xx': errorEnvelope },
      },
    },
    async (req) => kick(req, (req.query as { client_id: string }).client_id),
  );
}
