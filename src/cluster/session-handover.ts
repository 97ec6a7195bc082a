/**
 * Persistent sessions follow their client from node to node (issue 19, first part): a client
 * that reconnects with Clean Start 0 to another node than the one holding its session resumes
 * it there, with its subscriptions, queued messages, unacknowledged QoS 1/2 messages (re-sent
 * with DUP), inbound QoS 2 packet ids and waiting will.
 *
 * - Ask: a node opening a session for a CONNECT with Clean Start 0 that it does not hold asks
 *   every other node at once (`pubsub.c.session.ask`, `{address, clientId, node}`, with a reply
 *   subject of its own) and waits, `ASK_TIMEOUT_MS` at most, for the session or for "none" from
 *   every node it knew when asking (a node that died answers nothing until the others forget it;
 *   NATS's "no responders" ends the wait at once when no other node listens). The CONNECT's
 *   packets wait meanwhile (Connection.readAfter); with no other node known, nothing is asked.
 * - Answer: every node answers. One holding the session closes its connection (0x8E, the will
 *   settled as for a takeover on one node), takes the session out whole (Broker.handOverSession:
 *   no will published, nothing left in its store) and sends it; the others send "none". An
 *   answer is framed `u16 node-name length · node name · u32 part · u32 parts · bytes` so a
 *   session larger than max_payload crosses in parts (JSON, Buffers as base64: `encodeSession`).
 *   Nothing it does may throw out of the NATS callback (the connection's reader would stop).
 * - Adopt: the first whole session that arrives is adopted at once (it has no subscription
 *   anywhere until then): restored, written to the node's store and opened as resumed (CONNACK
 *   Session Present 1). A second node holding the same client's session (a partition healed)
 *   hands it over too; that one is lost.

 * What this part does not do yet (docs/cluster.md): a session whose node died is not
 * recovered (its state is on that node's disk); a message published while its session is in
 * transit (between the holder taking it out and the new node's subscriptions reaching the
 * others, milliseconds) is not delivered to it; the state crosses on core NATS, so a part lost
 * on the way loses the session (the client gets Session Present 0).
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { createInbox } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Broker } from '../broker/index.ts';
import type { StoredSession } from '../store/index.ts';
import { fromBufferJson, toBufferJson } from './buffer-json.ts';
import { ROOT } from './subjects.ts';

const ASK = `${ROOT}.c.session.ask`;
/** The longest a CONNECT waits for the other nodes' answers. */
export const ASK_TIMEOUT_MS = 2000;

/** Hand-over counters (metrics: pubsub_cluster_sessions_*_total). */
export interface HandoverStats {
  /** Sessions this node took from another one for a client connecting here. */
  adopted: number;
  /** Sessions this node gave to another one. */
  handedOver: number;
  /** Asks that ended at the timeout with some node silent. */
  askTimeouts: number;
  /** Answers that could not be read (a malformed frame, or a session that did not decode). */
  dropped: number;
}

export interface HandoverHost {
  readonly nodeName: string;
  readonly logger: Logger;
  /** The NATS connection while the link is up. */
  connection(): NatsConnection | undefined;
  /** Other nodes heard from lately (an ask waits for an answer from each). */
  peerNames(): string[];
  /** This node's broker at `address`, if it serves it. */
  broker(address: string): Broker | undefined;
  /** The NATS server's max_payload. */
  maxPayload(): number;
}

interface Ask {
  readonly address: string;
  readonly clientId: string;
  readonly node: string;
}

export class SessionHandover {
  readonly #host: HandoverHost;
  readonly stats: HandoverStats = { adopted: 0, handedOver: 0, askTimeouts: 0, dropped: 0 };
  #sub: Subscription | undefined;

  constructor(host: HandoverHost) {
    this.#host = host;
  }

  /** At every (re)connection: answer the other nodes' asks. */
  linkUp(nc: NatsConnection): void {
    if (this.#sub !== undefined && !this.#sub.isClosed()) return;
    this.#sub = nc.subscribe(ASK, {
      callback: (err, msg) => {
        if (err === null) this.#answer(nc, msg);
      },
    });
  }

  /**
   * The session of `clientId` on `address` from whichever other node holds it (undefined: none
   * does, or no answer in time); undefined at once (no promise) when there is nobody to ask.
   */
  fetch(address: string, clientId: string): Promise<StoredSession | undefined> | undefined {
    const nc = this.#host.connection();
    const waiting = new Set(this.#host.peerNames());
    if (nc === undefined || waiting.size === 0) return undefined;
    return new Promise((resolve) => {
      const parts = new Map<string, { got: Buffer[]; count: number }>();
      let found: StoredSession | undefined;
      let timer: NodeJS.Timeout | undefined;
      let sub: Subscription | undefined;
      const done = (timedOut: boolean): void => {
        clearTimeout(timer);
        sub?.unsubscribe();
        if (found !== undefined) this.stats.adopted++;
        if (timedOut) {
          this.stats.askTimeouts++;
          this.#host.logger.warn(
            { event: 'cluster_session_ask_timeout', clientId, silent: [...waiting] },
            `cluster: ${[...waiting].join(', ')} did not answer for the session of ${clientId} within ${ASK_TIMEOUT_MS} ms`,
          );
        }
        resolve(found);
      };
      const onAnswer = (msg: Msg): void => {
        // NATS says no other node listens (those known are gone): nobody holds the session.
        if (msg.data.length === 0 && msg.headers?.code === 503) return done(false);
        const frame = readFrame(msg.data);
        if (frame === undefined) {
          this.stats.dropped++;
          return;
        }
        if (frame.parts > 0) {
          let entry = parts.get(frame.node);
          if (entry === undefined) parts.set(frame.node, (entry = { got: [], count: 0 }));
          entry.got[frame.part] = frame.bytes;
          if (++entry.count < frame.parts) return;
          try {
            found = decodeSession(Buffer.concat(entry.got));
            return done(false); // adopted at once: the session is nowhere until then
          } catch (e) {
            this.stats.dropped++;
            this.#host.logger.warn(
              { err: (e as Error).message, from: frame.node, clientId },
              'cluster: a handed-over session could not be read',
            );
          }
        }
        waiting.delete(frame.node); // only the nodes known when asking count
        if (waiting.size === 0) done(false);
      };
      try {
        const inbox = createInbox();
        sub = nc.subscribe(inbox, {
          callback: (err, msg) => {
            if (err === null) onAnswer(msg);
          },
        });
        const ask: Ask = { address, clientId, node: this.#host.nodeName };
        nc.publish(ASK, JSON.stringify(ask), { reply: inbox });
        timer = setTimeout(() => done(true), ASK_TIMEOUT_MS);
      } catch (e) {
        this.#host.logger.warn(
          { err: (e as Error).message, clientId },
          'cluster: a session ask was not sent',
        );
        done(false);
      }
    });
  }

  /** Another node asks for a client's session: the session (handed over), or "none". */
  #answer(nc: NatsConnection, msg: Msg): void {
    let ask: Ask;
    try {
      ask = msg.json() as Ask;
    } catch {
      return;
    }
    if (msg.reply === undefined || ask.node === this.#host.nodeName || typeof ask.clientId !== 'string')
      return;
    const node = this.#host.nodeName;
    let session: StoredSession | undefined;
    try {
      session = this.#host.broker(ask.address)?.handOverSession(ask.clientId, ask.node);
    } catch (e) {
      this.#host.logger.error({ err: e, clientId: ask.clientId }, 'cluster: handing a session over failed');
    }
    if (session === undefined) {
      try {
        nc.publish(msg.reply, frame(node, 0, 0, Buffer.alloc(0)));
      } catch {} // the link went: the asking node waits its bound
      return;
    }
    this.stats.handedOver++;
    this.#host.logger.info(
      { event: 'cluster_session_handed_over', clientId: ask.clientId, to: ask.node },
      `cluster: session of ${ask.clientId} handed over to node ${ask.node}`,
    );
    try {
      const bytes = encodeSession(session);
      const size = Math.max(1024, this.#host.maxPayload() - 1024);
      const count = Math.max(1, Math.ceil(bytes.length / size));
      for (let i = 0; i < count; i++)
        nc.publish(msg.reply, frame(node, i, count, bytes.subarray(i * size, (i + 1) * size)));
    } catch (e) {
      // A callback of nats.js must not throw (its reader would stop): the session is lost.
      this.#host.logger.error(
        { err: e, clientId: ask.clientId },
        'cluster: a handed-over session was not sent',
      );
    }
  }

  close(): void {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }
}

function frame(node: string, part: number, parts: number, bytes: Buffer): Buffer {
  const name = Buffer.from(node);
  const out = Buffer.allocUnsafe(2 + name.length + 8 + bytes.length);
  out.writeUInt16BE(name.length, 0);
  name.copy(out, 2);
  out.writeUInt32BE(part, 2 + name.length);
  out.writeUInt32BE(parts, 6 + name.length);
  bytes.copy(out, 10 + name.length);
  return out;
}

function readFrame(
  data: Uint8Array,
): { node: string; part: number; parts: number; bytes: Buffer } | undefined {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < 10) return undefined;
  const n = buf.readUInt16BE(0);
  if (buf.length < 10 + n) return undefined;
  const part = buf.readUInt32BE(2 + n);
  const parts = buf.readUInt32BE(6 + n);
  if (parts > 0 && part >= parts) return undefined;
  return { node: buf.toString('utf8', 2, 2 + n), part, parts, bytes: Buffer.from(buf.subarray(10 + n)) };
}

/** A session as JSON, every Buffer (payloads, correlation data) as `{"$b": base64}`. */
export function encodeSession(session: StoredSession): Buffer {
  return toBufferJson(session);
}

export function decodeSession(bytes: Buffer): StoredSession {
  const session = fromBufferJson(bytes) as StoredSession;
  if (typeof session?.clientId !== 'string' || !Array.isArray(session.outbound))
    throw new Error('not a session');
  return session;
}
