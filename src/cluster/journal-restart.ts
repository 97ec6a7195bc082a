/**
 * A node starting from its disk, in a cluster with a session journal (session-journal.ts): the
 * persistent sessions its store restored may have been resumed on another node while it was
 * down, which then wrote the session's journal after it. Those copies are stale: served here,
 * they would redeliver what the client already had and miss what came since, and their first
 * journal write would supersede the newer state. So before the journal is used, each restored
 * session's journal is read (its last message only) and:
 *
 * - the last writer is another node: the copy here is let go without a trace (no will, nothing
 *   recorded: `discard`); the client resumes the newer session wherever it connects, here
 *   included (asked of the node holding it, or read from the journal);
 * - this node wrote last (an earlier run of it), or it is of a version that did not say who wrote
 *   it: the copy here is kept, claimed as a CONNECT claims one (journal-stream.ts `claimSession`,
 *   expecting the last sequence read): a node adopting it meanwhile (orphan-sessions.ts) and this
 *   one cannot both have it; the claim not taken, the copy here is let go;
 * - nothing is journaled for it (the journal was not in use before): kept, and snapshotted now
 *   (`fresh`), so the journal holds it from the start.
 *
 * Who wrote a message: a snapshot's parts carry the header `Pubsub-Node`; every other message's
 * epoch starts with its node's name and `/` (journal-codec.ts). A removed session leaves its
 * removal as the subject's last message, so a session ended elsewhere is let go too.
 *
 * Until this has run, the node serves no persistent session (the fence's refusal,
 * session-handover.ts): nothing can attach to a copy while it is in doubt.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { decodeJournal } from './journal-codec.ts';
import { claimSession, inParallel, journalSubject, lastMessage, NODE_HEADER } from './journal-stream.ts';

/** What the check needs of the node (the journal's host has it). */
export interface RestartHost {
  readonly nodeName: string;
  readonly logger: Logger;
  /** The persistent sessions this node holds now: broker id, client id. */
  persistent(): Iterable<readonly [string, string]>;
  /** Lets a stale copy go without a trace. */
  discard(brokerId: string, clientId: string): void;
}

/** What says who wrote a journal message: a snapshot part's headers, or its epoch. */
type Headers = { get(key: string): string; has(key: string): boolean } | undefined;

/** The node that wrote a journal message ('' when it does not say: an earlier version's). */
export function writerOf(data: Uint8Array, headers: Headers): string {
  if (headers?.has('Pubsub-Snapshot') === true) return headers.get(NODE_HEADER);
  const epoch = decodeJournal(data).epoch;
  const slash = epoch.lastIndexOf('/');
  return slash < 0 ? '' : epoch.slice(0, slash);
}

/**
 * Checks every restored persistent session (see the header); `fresh` is told of those the
 * journal does not hold (to be snapshotted). Throws what JetStream does.
 */
export async function checkRestored(
  js: JetStreamClient,
  jsm: JetStreamManager,
  direct: boolean,
  host: RestartHost,
  fresh: (brokerId: string, clientId: string) => void,
): Promise<void> {
  let discarded = 0;
  await inParallel([...host.persistent()], async ([brokerId, clientId]) => {
    const subject = journalSubject(brokerId, clientId);
    const last = await lastMessage(jsm, subject, direct);
    if (last === undefined) return fresh(brokerId, clientId);
    let writer = '';
    try {
      writer = writerOf(last.data, last.header);
    } catch {
      // Not decodable: it does not say who wrote it, so the copy here is kept.
    }
    const kept =
      (writer === '' || writer === host.nodeName) &&
      (await claimSession(js, subject, last.seq, host.nodeName));
    if (!kept) {
      host.discard(brokerId, clientId);
      discarded++;
    }
  });
  if (discarded > 0)
    host.logger.info(
      { event: 'cluster_sessions_superseded', sessions: discarded },
      `cluster: ${discarded} session(s) restored from disk were resumed on other nodes since; the copies here are let go`,
    );
}
