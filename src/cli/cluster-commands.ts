/**
 * `pubsub cluster status`: the nodes of the cluster the server belongs to (`GET /cluster`), as
 * a table: name, link state to NATS, uptime, MQTT connections, filters its sessions subscribe
 * to, and its admin API; the API's `result` with `--json`. On a single node (no `--cluster`) it
 * says so. Needs an operator token (the bootstrap admin token is one).
 */
import type { Command } from 'commander';
import { type ApiFlags, connectWithoutAccount } from './connection.ts';
import { print, printJson, status, table, text } from './output.ts';
import { verb, withApiOptions } from './verb.ts';

interface ClusterNodeResult {
  name: string;
  self: boolean;
  uptimeSeconds: number | null;
  connections: number | null;
  apiUrl: string | null;
  link: string;
  filters: number;
}

interface ClusterResult {
  enabled: boolean;
  node: string;
  nodes: ClusterNodeResult[];
}

/** Seconds as `3d 4h`, `5h 2m`, `7m 3s` or `12s`. */
function uptime(seconds: number | null): string {
  if (seconds === null) return '-';
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m ${s}s` : `${s}s`;
}

export function addClusterCommands(program: Command): void {
  const cluster = program
    .command('cluster')
    .description('the cluster this server belongs to (docs/cluster.md)');
  withApiOptions(
    cluster
      .command('status')
      .description('list the nodes of the cluster: name, link to NATS, uptime, connections, filters'),
    { account: false },
  ).action(
    verb<ApiFlags>(async (_args, flags) => {
      const result = await connectWithoutAccount(flags).request<ClusterResult>('GET', '/cluster');
      if (flags.json) return printJson(result);
      if (!result.enabled)
        return status(`Not in a cluster: ${result.node} is a single node (see --cluster).`);
      print(
        table(
          ['NODE', 'LINK', 'UPTIME', 'CONNECTIONS', 'FILTERS', 'API'],
          result.nodes.map((n) => [
            n.self ? `${n.name} (this node)` : n.name,
            n.link,
            uptime(n.uptimeSeconds),
            n.connections === null ? '-' : String(n.connections),
            String(n.filters),
            text(n.apiUrl),
          ]),
        ),
      );
    }),
  );
}
