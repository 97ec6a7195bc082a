/**
 * The session journal's stream (session-journal.ts): `PUBSUB_SESSIONS`, subjects
 * `pubsub.s.<broker id>.<hash of the client id>` (one per session), file storage, made by the
 * first node that needs it with `--cluster-replicas` replicas and direct gets allowed (a read
 * of a session's last message is answered by any replica, without the stream's API leader).
 * An existing stream is used as it is.
 */
import { createHash } from 'node:crypto';
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { encodeJournal } from './journal-codec.ts';
import { escapeLevel, ROOT } from './subjects.ts';

export const JOURNAL_STREAM = 'PUBSUB_SESSIONS';
const SUBJECTS = `${ROOT}.s.>`;

/** The subject of one session's journal. */
export const journalSubject = (brokerId: string, clientId: string): string =>
  `${ROOT}.s.${escapeLevel(brokerId)}.${createHash('sha256').update(clientId).digest('hex').slice(0, 32)}`;

/** Makes the stream when it is missing (throws what JetStream says otherwise); whether it takes direct gets. */
export async function ensureJournalStream(jsm: JetStreamManager, replicas: number): Promise<boolean> {
  const info = await jsm.streams.info(JOURNAL_STREAM).catch((err: Error) => {
    if (!/not found/i.test(err.message)) throw err;
    return jsm.streams.add({
      name: JOURNAL_STREAM,
      subjects: [SUBJECTS],
      num_replicas: replicas,
      allow_direct: true,
    });
  });
  return info.config.allow_direct === true;
}

/** The last message on `subject` (undefined: none). */
export async function lastMessage(
  jsm: JetStreamManager,
  subject: string,
  direct: boolean,
): Promise<StoredMsg | undefined> {
  const query = { last_by_subj: subject };
  const last = await (direct
    ? jsm.direct.getMessage(JOURNAL_STREAM, query)
    : jsm.streams.getMessage(JOURNAL_STREAM, query));
  return last ?? undefined;
}

/** The header naming the node that wrote a snapshot part (journal-restart.ts). */
export const NODE_HEADER = 'Pubsub-Node';

/**
 * One message to a session's subject: its stream sequence; undefined when not taken;
 * 'conflict' when `after` was given and the subject's last message is not it. A snapshot's
 * `part` (`i/n`) goes in the header `Pubsub-Snapshot`, with its node in `Pubsub-Node`.
 */
export async function publishToJournal(
  js: JetStreamClient,
  subject: string,
  data: Buffer,
  options: { readonly part: string | undefined; readonly node: string; readonly after: number | undefined },
): Promise<number | undefined | 'conflict'> {
  const { part, node, after } = options;
  try {
    const h = part === undefined ? undefined : headers();
    h?.set('Pubsub-Snapshot', part!);
    h?.set(NODE_HEADER, node);
    const ack = await js.publish(subject, data, {
      ...(h === undefined ? {} : { headers: h }),
      ...(after === undefined ? {} : { expect: { lastSubjectSequence: after } }),
    });
    return ack.seq;
  } catch (err) {
    return after !== undefined && /wrong last sequence/i.test((err as Error).message)
      ? 'conflict'
      : undefined;
  }
}

/**
 * Publishes this node's claim on a session's subject, expecting `after` as its last sequence:
 * true when taken, false when another write came first; throws when the stream did not answer.
 */
export async function claimSession(
  js: JetStreamClient,
  subject: string,
  after: number,
  node: string,
): Promise<boolean> {
  const seq = await publishToJournal(js, subject, encodeJournal(`${node}/claim`, false, []), {
    part: undefined,
    node,
    after,
  });
  if (seq === undefined) throw new Error('the session journal did not take the claim');
  return seq !== 'conflict';
}

/** Journal requests in flight at once when many sessions are read or claimed. */
const PARALLEL = 64;

/** Runs `fn` for every item, `PARALLEL` at a time; rejects with the first failure. */
export async function inParallel<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
}
