/**
 * Reading a session back from the journal (session-journal.ts): its subject from the start,
 * through one ordered consumer made for the read and stopped after it, into `JournalReplay`.
 *
 * Replay rules: the last complete snapshot (its parts joined) is the state and starts its epoch;
 * only the records of that epoch after it apply (records of another epoch are a node that handed
 * the session over and was still flushing, or an incomplete later snapshot's); anything before
 * the first snapshot is ignored; `del` ends the session.
 */
import { DeliverPolicy, type JetStreamManager, type JsMsg, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JournalOp, StoredOutbound, StoredSession, StoredSubscription } from '../store/index.ts';
import { decodeJournal } from './journal-codec.ts';
import { writerOf } from './journal-restart.ts';
import { JOURNAL_STREAM, lastMessage } from './journal-stream.ts';

/** A session read from the journal, and its subject's last message (who wrote it, its sequence). */
export interface JournalRead {
  readonly session: StoredSession | undefined;
  readonly subject: string;
  readonly seq: number;
  readonly writer: string;
}

/**
 * The session on `subject` (undefined: nothing there), read once: its last message, then the
 * subject up to it (`readSession`). Throws what JetStream does, or at `timeoutMs`.
 */
export async function readJournaled(
  nc: NatsConnection,
  jsm: JetStreamManager,
  direct: boolean,
  subject: string,
  clientId: string,
  timeoutMs: number,
): Promise<JournalRead | undefined> {
  const last = await lastMessage(jsm, subject, direct);
  if (last === undefined) return undefined;
  const session = await readSession(nc, JOURNAL_STREAM, subject, last.seq, clientId, timeoutMs);
  return { session, seq: last.seq, writer: writerOf(last.data, last.header), subject };
}

/**
 * The session on `subject` of `stream`, read up to sequence `last` (its last message when
 * asked); throws when that is not reached within `timeoutMs`.
 */
export async function readSession(
  nc: NatsConnection,
  stream: string,
  subject: string,
  last: number,
  clientId: string,
  timeoutMs: number,
): Promise<StoredSession | undefined> {
  const replay = new JournalReplay(clientId);
  const reached = await readStream(nc, stream, subject, DeliverPolicy.All, timeoutMs, (m) => {
    replay.apply(m.data, m.headers?.get('Pubsub-Snapshot'));
    return m.seq >= last;
  });
  if (!reached) throw new Error(`the journal of ${clientId} was not read to its end within ${timeoutMs} ms`);
  return replay.session();
}

/**
 * Reads `stream`'s messages on `filter` from `policy` through one ordered consumer, made for the
 * read and stopped after it, until `done` says so: true then, false when `timeoutMs` passed first.
 */
export async function readStream(
  nc: NatsConnection,
  stream: string,
  filter: string,
  policy: DeliverPolicy,
  timeoutMs: number,
  done: (m: JsMsg) => boolean,
): Promise<boolean> {
  const consumer = await jetstream(nc).consumers.get(stream, {
    filter_subjects: filter,
    deliver_policy: policy,
  });
  const messages = await consumer.consume();
  const timer = setTimeout(() => messages.stop(), timeoutMs);
  try {
    for await (const m of messages) if (done(m)) return true;
    return false;
  } finally {
    clearTimeout(timer);
    messages.stop();
  }
}

/** Rebuilds a session from its subject's messages, in order (the rules in the header). */
export class JournalReplay {
  readonly #clientId: string;
  #epoch: string | undefined;
  #subs = new Map<string, StoredSubscription>();
  #outbound = new Map<number, StoredOutbound>();
  #inbound = new Set<number>();
  #state: Omit<StoredSession, 'subscriptions' | 'outbound' | 'inboundQos2'> | undefined;
  #parts: Buffer[] = [];

  /** `clientId` '' takes the one the session's state names. */
  constructor(clientId: string) {
    this.#clientId = clientId;
  }

  apply(data: Uint8Array, part: string | undefined): void {
    if (part !== undefined && part !== '') {
      const [i, n] = part.split('/').map(Number) as [number, number];
      if (i === 0) this.#parts = [];
      this.#parts[i] = Buffer.from(data);
      if (i + 1 < n || this.#parts.filter(Boolean).length < n) return;
      const snap = decodeJournal(Buffer.concat(this.#parts));
      this.#parts = [];
      if (!snap.snapshot) return;
      this.#epoch = snap.epoch;
      this.#state = undefined;
      this.#subs = new Map();
      this.#outbound = new Map();
      this.#inbound = new Set();
      for (const op of snap.ops) this.#op(op);
      return;
    }
    const body = decodeJournal(data);
    if (this.#epoch === undefined || body.snapshot || body.epoch !== this.#epoch) return;
    for (const op of body.ops) this.#op(op);
  }

  #op(op: JournalOp): void {
    switch (op.t) {
      case 'state':
        this.#state = op.state;
        break;
      case 'del':
        this.#epoch = undefined;
        this.#state = undefined;
        break;
      case 'sub':
        this.#subs.set(op.sub.topicFilter, op.sub);
        break;
      case 'unsub':
        this.#subs.delete(op.filter);
        break;
      case 'out':
        this.#outbound.set(op.entry.seq, op.entry);
        break;
      case 'ost': {
        const entry = this.#outbound.get(op.seq);
        if (entry !== undefined)
          this.#outbound.set(op.seq, { ...entry, state: op.state, packetId: op.packetId });
        break;
      }
      case 'dout':
        this.#outbound.delete(op.seq);
        break;
      case 'in':
        this.#inbound.add(op.packetId);
        break;
      case 'din':
        this.#inbound.delete(op.packetId);
        break;
    }
  }

  session(): StoredSession | undefined {
    const state = this.#state;
    if (state === undefined || this.#epoch === undefined) return undefined;
    return {
      ...state,
      clientId: this.#clientId === '' ? state.clientId : this.#clientId,
      subscriptions: [...this.#subs.values()],
      outbound: [...this.#outbound.values()].sort((a, b) => a.seq - b.seq),
      inboundQos2: [...this.#inbound],
    };
  }
}
