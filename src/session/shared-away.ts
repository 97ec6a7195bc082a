/**
 * A session's memberships of shared groups are marked away while it has no connection, so a
 * group's dispatcher prefers its connected members (router/topic-index.ts `setSharedAway`,
 * src/cluster/shared-dispatch.ts across nodes).
 *
 * Invariant: costs nothing while the broker has no `$share` group (most brokers): the
 * subscriptions are walked only when one exists.
 */
import type { RoutedSession, SessionHost } from './host.ts';

/** Marks `session`'s shared-group memberships away (no connection) or back. */
export function markAway(session: RoutedSession & { readonly broker: SessionHost }, away: boolean): void {
  const index = session.broker.index;
  if (index.groupCount === 0) return; // no $share group: nothing to walk
  for (const sub of session.subscriptions.values())
    if (sub.share !== undefined) index.setSharedAway(sub.share.name, sub.share.filter, session, away);
}
