/**
 * The cluster's Prometheus series (cluster mode only; docs/observability.md lists them): the
 * NATS link's state and losses, the nodes known, the messages and batches that crossed, and
 * the control plane's sync and conflicts, the retained messages' stream, read from the Cluster's counters at scrape time.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Cluster } from '../cluster/index.ts';

/** Registers the series once on `registry` (a second call is a no-op). */
export function registerClusterMetrics(registry: Registry, cluster: Cluster): void {
  if (registry.getSingleMetric('pubsub_cluster_link_up') !== undefined) return;
  const series = (kind: 'counter' | 'gauge', name: string, help: string, read: () => number): void => {
    const collect = function (this: Counter | Gauge): void {
      this.reset();
      if (this instanceof Counter) this.inc(read());
      else (this as Gauge).set(read());
    };
    if (kind === 'counter') new Counter({ name, help, registers: [registry], collect });
    else new Gauge({ name, help, registers: [registry], collect });
  };
  const s = cluster.stats;
  series('gauge', 'pubsub_cluster_link_up', 'Whether the link to NATS is up (1) or down (0).', () =>
    cluster.linkUp ? 1 : 0,
  );
  series(
    'counter',
    'pubsub_cluster_link_losses_total',
    'Times the link to NATS was lost.',
    () => cluster.linkLosses,
  );
  series(
    'gauge',
    'pubsub_cluster_nodes',
    'Nodes of the cluster this node knows, itself included.',
    () => cluster.nodes().length,
  );
  series(
    'counter',
    'pubsub_cluster_messages_sent_total',
    'Messages sent to other nodes (each once, whatever the number of nodes that want it).',
    () => s.sent,
  );
  series(
    'counter',
    'pubsub_cluster_messages_received_total',
    'Messages received from other nodes.',
    () => s.received,
  );
  series(
    'counter',
    'pubsub_cluster_messages_dropped_total',
    'Messages another node wanted that were not sent: the link was down, or NATS refused the batch.',
    () => s.dropped,
  );
  series(
    'counter',
    'pubsub_cluster_batches_sent_total',
    'NATS messages (batches of messages) sent.',
    () => s.batchesSent,
  );
  series(
    'counter',
    'pubsub_cluster_batches_received_total',
    'NATS messages (batches of messages) received.',
    () => s.batchesReceived,
  );
  series(
    'counter',
    'pubsub_cluster_batches_malformed_total',
    'Batches received that could not be decoded (logged, dropped).',
    () => s.malformed,
  );
  const handover = cluster.sessions.stats;
  series(
    'counter',
    'pubsub_cluster_sessions_adopted_total',
    'Persistent sessions another node handed over to this one, for a client resuming here (Clean Start 0).',
    () => handover.adopted,
  );
  series(
    'counter',
    'pubsub_cluster_sessions_handed_over_total',
    'Persistent sessions this node handed over to another one, where their client reconnected.',
    () => handover.handedOver,
  );
  series(
    'counter',
    'pubsub_cluster_session_asks_timed_out_total',
    'CONNECTs that waited the whole 2 s for some node to answer whether it holds the session (a node gone but not yet forgotten).',
    () => handover.askTimeouts,
  );
  series(
    'counter',
    'pubsub_cluster_sessions_dropped_total',
    'Answers to a session ask that could not be read (a malformed frame, or a session that did not decode).',
    () => handover.dropped,
  );
  const journal = cluster.sessions.journal.stats;
  series(
    'counter',
    'pubsub_cluster_journal_records_total',
    'Session writes recorded in the JetStream session journal.',
    () => journal.records,
  );
  series(
    'counter',
    'pubsub_cluster_journal_messages_total',
    'Journal messages the stream took (one per session written to, per event-loop turn; snapshot parts included).',
    () => journal.messages,
  );
  series(
    'counter',
    'pubsub_cluster_journal_snapshots_total',
    'Whole-session snapshots written to the journal.',
    () => journal.snapshots,
  );
  series(
    'counter',
    'pubsub_cluster_journal_dropped_total',
    "Sessions' turns of records that did not reach the journal (link down, or not taken for 10 s): durable on this node only until their next snapshot.",
    () => journal.dropped,
  );
  series(
    'counter',
    'pubsub_cluster_sessions_recovered_total',
    'Sessions read from the journal for a client resuming here while no node held them (their node gone).',
    () => journal.recovered,
  );
  series(
    'counter',
    'pubsub_cluster_orphan_sessions_adopted_total',
    'Sessions of nodes gone (dead, or stopped) adopted here from the journal, so their subscriptions stay live.',
    () => cluster.sessions.orphans.adopted,
  );
  const confirms = cluster.confirms.stats;
  series(
    'counter',
    'pubsub_cluster_confirm_rounds_total',
    'Turns whose QoS 1/2 messages crossed to other nodes and whose acknowledgements waited for those nodes to hold them.',
    () => confirms.rounds,
  );
  series(
    'counter',
    'pubsub_cluster_confirm_asks_total',
    'Nodes asked to confirm they hold the QoS 1/2 messages sent to them (one per node per round).',
    () => confirms.asks,
  );
  series(
    'counter',
    'pubsub_cluster_confirm_failed_total',
    'Rounds not confirmed (a node left, answered not held, or was silent 12 s; or the link was down): their acknowledgements said 0x80, or closed v3 publishers.',
    () => confirms.failed,
  );
  series(
    'counter',
    'pubsub_cluster_confirm_answered_total',
    "Other nodes' asks answered here, once what they sent was routed and held.",
    () => confirms.answered,
  );
  const fence = cluster.sessions.fence;
  series(
    'gauge',
    'pubsub_cluster_fenced',
    '1 while this node, cut off from NATS for 3 s, serves no persistent session (CONNACK 0x88 for one).',
    () => (fence.fenced ? 1 : 0),
  );
  series(
    'counter',
    'pubsub_cluster_fenced_total',
    'Times this node was cut off from NATS for 3 s and stopped serving persistent sessions.',
    () => fence.count,
  );
  const tails = cluster.sessions.tails.stats;
  series(
    'counter',
    'pubsub_cluster_session_tails_sent_total',
    'Tails this node sent: what was routed to a session it had handed over, until the new node was known to want it.',
    () => tails.sent,
  );
  series(
    'counter',
    'pubsub_cluster_session_tail_messages_total',
    'Messages the tails this node sent carried.',
    () => tails.relayed,
  );
  series(
    'counter',
    'pubsub_cluster_session_tails_received_total',
    'Tails received for a session that arrived here (its deliveries were held until then).',
    () => tails.received,
  );
  series(
    'counter',
    'pubsub_cluster_session_tails_missed_total',
    'Sessions that arrived here and stopped waiting for their tail after 1.5 s (the node they left died, or the tail was lost).',
    () => tails.missed,
  );
  series(
    'counter',
    'pubsub_cluster_session_tail_copies_total',
    'Deliveries held for an arriving session that its tail also carried (delivered once).',
    () => tails.copies,
  );
  series(
    'counter',
    'pubsub_cluster_session_tail_dropped_total',
    'Messages not relayed or held for a moving session because the relay or the hold was full.',
    () => tails.dropped,
  );
  const wills = cluster.wills.stats;
  series(
    'counter',
    'pubsub_cluster_wills_written_total',
    'Will records this node wrote to the pubsub-wills bucket (a client with a will connected, or its will started its delay).',
    () => wills.written,
  );
  series(
    'counter',
    'pubsub_cluster_wills_published_total',
    'Wills of clients of a node gone (silent past 6 s) that this node published after their delay.',
    () => wills.published,
  );
  series(
    'counter',
    'pubsub_cluster_wills_cancelled_total',
    'Wills of clients of a node gone that were not published: the client connected again within the delay.',
    () => wills.cancelled,
  );
  series(
    'counter',
    'pubsub_cluster_wills_failed_total',
    'Will-record writes or reads the bucket did not take (logged).',
    () => wills.failed,
  );
  series(
    'gauge',
    'pubsub_cluster_control_plane_synced',
    "Whether this node holds the cluster's control plane and follows it (1), or not (0: link down or syncing; API changes refused).",
    () => (cluster.controlPlane.synced ? 1 : 0),
  );
  series(
    'counter',
    'pubsub_cluster_control_plane_conflicts_total',
    "Control-plane changes made through this node's API that lost to another node's change of the same record (the first writer wins; logged).",
    () => cluster.controlPlane.conflicts,
  );
  series(
    'counter',
    'pubsub_cluster_control_plane_watch_restarts_total',
    "Times this node found its watch of the control-plane bucket stalled (its consumer's NATS server gone) and synced again (logged).",
    () => cluster.controlPlane.watchRestarts,
  );
  series(
    'counter',
    'pubsub_cluster_control_plane_unavailable_total',
    "Control-plane changes made through this node's API that the bucket did not take within the retries (answered 503, undone; logged).",
    () => cluster.controlPlane.unavailable,
  );
  const r = cluster.retained;
  series(
    'counter',
    'pubsub_cluster_retained_written_total',
    'Retained messages set or cleared on this node that the cluster stream took.',
    () => r.stats.written,
  );
  series(
    'counter',
    'pubsub_cluster_retained_applied_total',
    "Messages of the cluster's retained stream applied to this node's retained store.",
    () => r.stats.applied,
  );
  series(
    'counter',
    'pubsub_cluster_retained_failed_total',
    'Retained messages the cluster stream refused (kept on this node only; logged).',
    () => r.stats.failed,
  );
  series(
    'gauge',
    'pubsub_cluster_retained_pending',
    'Retained messages set or cleared on this node waiting for the cluster stream (the link is down).',
    () => r.pending,
  );
}
