/**
 * cluster/: several `pubsub serve` nodes acting as one service through NATS (`--cluster`,
 * docs/cluster.md). Owns the NATS link (link.ts), the data plane (broker-link.ts, codec.ts,
 * subjects.ts: messages cross, batched, only to nodes whose sessions want them), the
 * membership (peers.ts: who is there, what each wants) and retained messages (retained-sync.ts:
 * a JetStream stream every node reads, in one order, into its retained store).
 * Promises: loaded only in cluster mode (server.ts imports it dynamically, so a single node
 * never loads the NATS client); a message crosses with the single-node semantics (QoS,
 * properties, expiry counting transit, order per publisher and topic) and only to a node that
 * wants it; what it cannot send is counted, never silently lost. Sits above tenancy/ (it gives
 * every broker its bus) and below admin/ (GET /cluster, metrics read it).
 */
export type { ClusterStats } from './batch-outbox.ts';
export { Cluster, type ClusterOptions } from './cluster.ts';
export type { ClusterNode } from './node-list.ts';
export { escapeLevel, filterSubjects, topicSubject, unescapeLevel } from './subjects.ts';
