/**
 * A broker's retained messages (ours; `pubsub broker retained|retained-delete` use them):
 * - `GET .../brokers/{broker}/retained?filter=<MQTT filter>` (default `#`): the live messages
 *   the filter matches, as a SUBSCRIBE would receive them (so `#` never reaches `$` topics
 *   [MQTT-4.7.2-1]), paged with `page`/`per_page`. The walk stops one match past the page, so
 *   `result_info` says `has_more` instead of counting every match. The payload is left out
 *   unless `payload=true`, and then cut to `payload_bytes` (default 1024, at most 65536).
 *   An invalid filter, or a `$share/` one, is 400 (code 14009).
 * - `DELETE .../retained?topic=<topic>` deletes one (any topic); `DELETE .../retained/{topic}`
 *   is the same for a topic that fits one path segment. A topic with a `/` cannot be sent as
 *   `%2F` in the path (the access layer refuses encoded slashes: 400, code 7010): use the query
 *   form. Nothing is published: subscribers see no message. 404 (code 14015) when the topic has
 *   no retained message.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import {
  exceedsTopicLevels,
  isSharedFilter,
  isValidTopicFilter,
  isValidTopicName,
} from '../../protocol/index.ts';
import { type ApiContext, brokerOfRequest } from '../context.ts';
import { ok, okPage } from '../envelope.ts';
import { presentRetained } from '../present.ts';
import { pageOf } from '../query.ts';
import {
  brokerParams,
  envelope,
  errorEnvelope,
  retainedDeleteQuery,
  retainedMessage,
  retainedQuery,
  retainedTopicParams,
} from '../schemas.ts';

const BASE = '/client/v4/accounts/:account_id/pubsub/namespaces/:namespace/brokers/:broker/retained';

const DEFAULT_PAYLOAD_BYTES = 1024;
const MAX_PAYLOAD_BYTES = 65_536;

interface RetainedQuery {
  filter?: string;
  payload?: string;
  payload_bytes?: string;
}

export function retainedRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const remove = (req: FastifyRequest, topic: string | undefined) => {
    if (topic === undefined || topic === '')
      throw new ApiError('INVALID_PARAMETER', 'topic is required: DELETE .../retained?topic=<topic>');
    if (!isValidTopicName(topic))
      throw new ApiError('INVALID_PARAMETER', `not a topic name (no wildcards): ${topic}`);
    if (!brokerOfRequest(ctx, req).deleteRetained(topic))
      throw new ApiError('RETAINED_NOT_FOUND', `no retained message on topic ${topic}`);
    ctx.logger.info({ topic }, 'admin API: retained message deleted');
    return ok(null);
  };

  app.get(
    BASE,
    {
      schema: {
        summary: 'List the retained messages matching an MQTT topic filter',
        tags: ['retained'],
        params: brokerParams,
        querystring: retainedQuery,
        response: {
          200: envelope({ type: 'array', items: retainedMessage }, 'uncounted'),
          '4xx': errorEnvelope,
        },
      },
    },
    async (req) => {
      const { page, perPage } = pageOf(req.query);
      const q = req.query as RetainedQuery;
      const filter = q.filter ?? '#';
      const broker = brokerOfRequest(ctx, req);
      if (isSharedFilter(filter))
        throw new ApiError('INVALID_PARAMETER', 'filter: a $share filter matches no retained message');
      if (!isValidTopicFilter(filter) || exceedsTopicLevels(filter, broker.config.maxTopicLevels))
        throw new ApiError('INVALID_PARAMETER', `filter is not a valid MQTT topic filter: ${filter}`);
      let payloadBytes: number | undefined;
      if (q.payload === 'true') {
        payloadBytes = q.payload_bytes === undefined ? DEFAULT_PAYLOAD_BYTES : Number(q.payload_bytes);
        if (payloadBytes < 1 || payloadBytes > MAX_PAYLOAD_BYTES)
          throw new ApiError('INVALID_PARAMETER', `payload_bytes must be between 1 and ${MAX_PAYLOAD_BYTES}`);
      }
      const now = Date.now();
      const { messages, more } = broker.retained.page(filter, (page - 1) * perPage, perPage, now);
      return okPage(
        messages.map((m) => presentRetained(m, payloadBytes, now)),
        page,
        perPage,
        more,
      );
    },
  );

  app.delete(
    BASE,
    {
      schema: {
        summary: 'Delete the retained message of a topic (any topic, `/` included)',
        tags: ['retained'],
        params: brokerParams,
        querystring: retainedDeleteQuery,
        response: { 200: envelope({ type: 'null' }), '4xx': errorEnvelope },
      },
    },
    async (req) => remove(req, (req.query as { topic?: string }).topic),
  );

  app.delete(
    `${BASE}/:topic`,
    {
      schema: {
        summary: 'Delete the retained message of a one-segment topic (a topic with `/`: use ?topic=)',
        tags: ['retained'],
        params: retainedTopicParams,
        response: { 200: envelope({ type: 'null' }), '4xx': errorEnvelope },
      },
    },
    async (req) => remove(req, (req.params as { topic: string }).topic),
  );
}
