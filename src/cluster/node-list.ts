/**
 * The nodes of the cluster as GET /cluster, `pubsub cluster status` and the console's Nodes
 * page show them: this node first, then every peer heard from lately, by name. Built from what
 * the node knows (its own announcement and filters, the peers' announcements and interest, the
 * shared groups' member counts); nothing here is sent or kept.
 */
import type { NodeAnnouncement } from './peers.ts';

/** One node as GET /cluster and `pubsub cluster status` show it. */
export interface ClusterNode {
  readonly name: string;
  readonly self: boolean;
  readonly startedAt: string | undefined;
  readonly uptimeSeconds: number | undefined;
  readonly connections: number | undefined;
  readonly apiUrl: string | undefined;
  /** `up`/`down` for this node's own link; `up` for a peer heard from lately. */
  readonly link: 'up' | 'down';
  /** MQTT filters its sessions subscribe to (a peer's: as announced to this node). */
  readonly filters: number;
  /** Members of its shared groups (`$share/…`), and how many have a connection (as announced). */
  readonly sharedMembers: number;
  readonly sharedConnected: number;
  readonly lastSeenMs: number;
}

/** What the list is made from. */
export interface NodeListInput {
  readonly self: {
    readonly announcement: NodeAnnouncement;
    readonly linkUp: boolean;
    readonly filters: number;
  };
  readonly peers: Iterable<{
    readonly name: string;
    readonly announcement: NodeAnnouncement | undefined;
    readonly filters: number;
    readonly seenAt: number;
  }>;
  /** Shared-group members of this node (no name) or of a peer, and how many are connected. */
  shared(node?: string): { members: number; connected: number };
}

export function nodeList(input: NodeListInput, now: number): ClusterNode[] {
  const shared = (node?: string) => {
    const { members, connected } = input.shared(node);
    return { sharedMembers: members, sharedConnected: connected };
  };
  const self: ClusterNode = {
    ...shape(input.self.announcement, input.self.announcement.name, now),
    self: true,
    link: input.self.linkUp ? 'up' : 'down',
    filters: input.self.filters,
    ...shared(),
    lastSeenMs: 0,
  };
  const peers: ClusterNode[] = [];
  for (const p of input.peers) {
    peers.push({
      ...shape(p.announcement, p.name, now),
      self: false,
      link: 'up',
      filters: p.filters,
      ...shared(p.name),
      lastSeenMs: now - p.seenAt,
    });
  }
  peers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return [self, ...peers];
}

function shape(a: NodeAnnouncement | undefined, name: string, now: number) {
  return {
    name,
    startedAt: a === undefined ? undefined : new Date(a.startedAt).toISOString(),
    uptimeSeconds: a === undefined ? undefined : Math.floor((now - a.startedAt) / 1000),
    connections: a?.connections,
    apiUrl: a?.apiUrl,
  };
}
