/**
 * `GET .../brokers/{broker}/trace` (ours; `pubsub broker trace` reads it): a packet trace as
 * Server-Sent Events. `client_id=X` follows every packet of that client, in and out; `topic=F`
 * the PUBLISH packets, in and out, whose topic the MQTT filter F matches. Exactly one of them;
 * `payload=true` adds payloads cut to `payload_bytes` (default 256, at most 65536); `duration`
 * seconds (default 60, at most --trace-max-duration). The spellings `clientId` and
 * `payloadBytes` are read too. Bad parameters are refused before the stream starts: 400 in the
 * envelope (code 14009); more than MAX_TRACES_PER_BROKER open on one broker: 400 (code 14007).
 *
 * The stream: `start` (what is traced, until when), one `packet` per packet
 * (observability/packet-trace.ts describes it), `skipped` when events were dropped because the
 * reader was behind, and `end` (why: `duration`, `broker deleted`, `server shutting down`; the
 * totals), after which the response ends. A comment line every half idle timeout keeps the
 * connection from being closed as idle (--api-idle-timeout-ms).
 *
 * Invariants: the reader's pace never reaches the packet path (a response holding
 * --trace-buffer-bytes unsent is `full`: events are counted as skipped, never queued); a closed
 * connection closes its trace at once; every trace is closed exactly once, by whichever of
 * duration, disconnect, broker deletion or server shutdown comes first.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import type { PacketTrace, TraceEvent, TraceSelector, TraceSink } from '../../observability/index.ts';
import { exceedsFilterLevels, isSharedFilter, isValidTopicFilter } from '../../protocol/index.ts';
import { type ApiContext, brokerOfRequest } from '../context.ts';
import { brokerParams, errorEnvelope, traceQuery } from '../schemas.ts';

const BASE = '/client/v4/accounts/:account_id/pubsub/namespaces/:namespace/brokers/:broker/trace';

const DEFAULT_DURATION_S = 60;
const DEFAULT_PAYLOAD_BYTES = 256;
const MAX_PAYLOAD_BYTES = 65_536;
/** Each open trace is matched against every packet of its broker: a few at once, not hundreds. */
export const MAX_TRACES_PER_BROKER = 16;

interface TraceQuery {
  client_id?: string;
  clientId?: string;
  topic?: string;
  payload?: string;
  payload_bytes?: string;
  payloadBytes?: string;
  duration?: string;
}

/** One of two spellings of a parameter; both given is ambiguous. */
function either(q: TraceQuery, a: keyof TraceQuery, b: keyof TraceQuery): string | undefined {
  if (q[a] !== undefined && q[b] !== undefined)
    throw new ApiError('INVALID_PARAMETER', `give ${a} or ${b}, not both`);
  return q[a] ?? q[b];
}

/** The trace a query asks for, and its duration in seconds; ApiError when it asks wrongly. */
function traceOf(query: unknown, maxTopicLevels: number, maxDuration: number) {
  const q = (query ?? {}) as TraceQuery;
  const clientId = either(q, 'client_id', 'clientId');
  const topic = q.topic;
  if ((clientId === undefined) === (topic === undefined))
    throw new ApiError(
      'INVALID_PARAMETER',
      'give exactly one of client_id (a client) and topic (a topic filter)',
    );
  if (topic !== undefined) {
    if (isSharedFilter(topic))
      throw new ApiError('INVALID_PARAMETER', 'topic: give the filter without $share/<group>/');
    if (!isValidTopicFilter(topic) || exceedsFilterLevels(topic, maxTopicLevels))
      throw new ApiError('INVALID_PARAMETER', `topic is not a valid MQTT topic filter: ${topic}`);
  }
  const bytesText = either(q, 'payload_bytes', 'payloadBytes');
  let payloadBytes: number | undefined;
  if (q.payload === 'true') {
    payloadBytes = bytesText === undefined ? DEFAULT_PAYLOAD_BYTES : Number(bytesText);
    if (payloadBytes < 1 || payloadBytes > MAX_PAYLOAD_BYTES)
      throw new ApiError('INVALID_PARAMETER', `payload_bytes must be between 1 and ${MAX_PAYLOAD_BYTES}`);
  } else if (bytesText !== undefined)
    throw new ApiError('INVALID_PARAMETER', 'payload_bytes needs payload=true');
  const duration = q.duration === undefined ? Math.min(DEFAULT_DURATION_S, maxDuration) : Number(q.duration);
  if (duration < 1 || duration > maxDuration)
    throw new ApiError('INVALID_PARAMETER', `duration must be between 1 and ${maxDuration} seconds`);
  const selector: TraceSelector = { clientId, topic, payloadBytes };
  return { selector, duration };
}

/** A trace's events written to an HTTP response as Server-Sent Events (see the header). */
class EventStream implements TraceSink {
  readonly #res: ServerResponse;
  readonly #bufferBytes: number;
  readonly #closed: (reason: string, events: number, skipped: number) => void;
  trace: PacketTrace | undefined;
  #events = 0;
  #skipped = 0;
  #skippedUnreported = 0;
  #ended = false;
  #timers: NodeJS.Timeout[] = [];

  constructor(
    res: ServerResponse,
    bufferBytes: number,
    closed: (reason: string, events: number, skipped: number) => void,
  ) {
    this.#res = res;
    this.#bufferBytes = bufferBytes;
    this.#closed = closed;
    res.on('drain', () => {
      if (!this.#ended && !this.full) this.#reportSkipped();
    });
    res.on('close', () => this.#finish('reader gone'));
  }

  /** Ends the stream after `seconds`; a comment every `heartbeatMs` keeps the connection busy. */
  run(seconds: number, heartbeatMs: number): void {
    this.#timers.push(
      setTimeout(() => this.end('duration'), seconds * 1000),
      setInterval(() => {
        if (!this.full) this.#res.write(': keep-alive\n\n');
      }, heartbeatMs),
    );
  }

  get full(): boolean {
    return this.#res.writableLength >= this.#bufferBytes;
  }

  skip(): void {
    this.#skipped++;
    this.#skippedUnreported++;
  }

  write(event: TraceEvent): void {
    this.#reportSkipped();
    this.#events++;
    this.send('packet', event);
  }

  end(reason: string): void {
    if (this.#ended) return;
    this.send('end', { reason, events: this.#events, skipped: this.#skipped });
    this.#res.end();
    this.#finish(reason);
  }

  send(name: string, data: unknown): void {
    this.#res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #reportSkipped(): void {
    if (this.#skippedUnreported === 0) return;
    this.send('skipped', { skipped: this.#skippedUnreported });
    this.#skippedUnreported = 0;
  }

  #finish(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#closed(reason, this.#events, this.#skipped);
  }
}

export function traceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const open = new Set<EventStream>();
  // An open stream would hold the HTTP server's close forever: end them first.
  app.addHook('preClose', (done) => {
    for (const stream of [...open]) stream.end('server shutting down');
    done();
  });

  app.get(
    BASE,
    {
      schema: {
        summary: 'Trace the packets of one client or one topic filter, live, as Server-Sent Events',
        tags: ['trace'],
        params: brokerParams,
        querystring: traceQuery,
        response: {
          200: { type: 'string', description: 'text/event-stream: start, packet, skipped, end' },
          '4xx': errorEnvelope,
        },
      },
    },
    async (req: FastifyRequest, reply) => {
      const broker = brokerOfRequest(ctx, req);
      const { selector, duration } = traceOf(
        req.query,
        broker.config.maxTopicLevels,
        ctx.config.traceMaxDuration,
      );
      if (broker.traces.size >= MAX_TRACES_PER_BROKER)
        throw new ApiError(
          'QUOTA_EXCEEDED',
          `broker already has ${MAX_TRACES_PER_BROKER} traces open; close one first`,
        );
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
      });
      const what =
        selector.clientId === undefined ? { topic: selector.topic } : { client_id: selector.clientId };
      const log = ctx.logger.child({ broker: broker.address, ...what });
      const stream = new EventStream(res, ctx.config.traceBufferBytes, (reason, events, skipped) => {
        open.delete(stream);
        if (stream.trace !== undefined) broker.traces.close(stream.trace);
        log.info({ reason, events, skipped }, 'admin API: trace closed');
      });
      open.add(stream);
      stream.send('start', {
        broker: broker.address,
        ...what,
        payload_bytes: selector.payloadBytes ?? null,
        duration,
        ends_at: new Date(Date.now() + duration * 1000).toISOString(),
      });
      stream.trace = broker.traces.open(selector, stream);
      stream.run(duration, Math.max(50, Math.floor(ctx.config.apiIdleTimeoutMs / 2)));
      if (req.raw.socket.destroyed) stream.end('reader gone'); // gone before 'close' was listened for
      log.info({ duration, payloadBytes: selector.payloadBytes }, 'admin API: trace opened');
      return reply;
    },
  );
}
