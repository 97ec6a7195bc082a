/**
 * The cluster's JetStream KV buckets (control-sync.ts: `pubsub-control`; will-records.ts:
 * `pubsub-wills`), history 1, made by the first node that needs one with `--cluster-replicas`.
 * An existing bucket is used as it is: one made with other replicas makes `create` refuse.
 */
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

export function openBucket(nc: NatsConnection, name: string, replicas: number): Promise<KV> {
  const kvm = new Kvm(nc);
  return kvm.create(name, { history: 1, replicas }).catch(() => kvm.open(name));
}
