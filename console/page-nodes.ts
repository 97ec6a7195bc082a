/**
 * Nodes: the nodes of the cluster this server belongs to (`GET /cluster`, operator only), each
 * with its uptime, MQTT connections, link to NATS, subscribed filters and admin API address,
 * polled every POLL_MS. Each node serves the console too (a node's address opens it there; a
 * token is kept per address, so sign in again). A server started without `--cluster` says so.
 */
import { call } from './api.ts';
import { el, replace, statusLine } from './dom.ts';

const POLL_MS = 2000;

export async function render(section: HTMLElement): Promise<() => void> {
  const status = statusLine();
  const body = el('div');
  section.append(status.node, body);

  async function poll(): Promise<void> {
    let cluster: Awaited<ReturnType<typeof call>>;
    try {
      cluster = await call('GET', '/cluster');
      status.clear();
    } catch (err) {
      status.failed(err);
      return;
    }
    if (!cluster.enabled) {
      replace(
        body,
        el(
          'p',
          {},
          `This server (${cluster.node}) is not clustered: it was started without --cluster, so it is the only node.`,
        ),
      );
      return;
    }
    replace(body, nodesTable(cluster.nodes, cluster.node));
  }

  await poll();
  const timer = setInterval(poll, POLL_MS);
  return () => clearInterval(timer);
}

/** The table of `GET /cluster`'s nodes; `self` is the node answering. */
function nodesTable(
  nodes: {
    name: string;
    self: boolean;
    link: string;
    uptimeSeconds: number | null;
    connections: number | null;
    filters: number;
    apiUrl: string | null;
  }[],
  self: string,
): HTMLElement {
  return el(
    'section',
    { class: 'card', 'aria-labelledby': 'nodes-title' },
    el('h2', { id: 'nodes-title' }, `Nodes (seen from ${self})`),
    el(
      'table',
      { 'aria-label': 'Nodes' },
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          ['Node', 'Uptime', 'Connections', 'Link', 'Subscribed filters', 'Admin API'].map((h) =>
            el('th', {}, h),
          ),
        ),
      ),
      el(
        'tbody',
        {},
        nodes.map((node) =>
          el(
            'tr',
            {},
            el('td', {}, node.self ? `${node.name} (this node)` : node.name),
            el('td', {}, node.uptimeSeconds === null ? '—' : duration(node.uptimeSeconds)),
            el('td', {}, node.connections === null ? '—' : String(node.connections)),
            el('td', { class: `link-${node.link}` }, node.link),
            el('td', {}, String(node.filters)),
            el(
              'td',
              {},
              node.apiUrl === null
                ? '—'
                : el(
                    'a',
                    { href: `${node.apiUrl}/console/nodes`, 'aria-label': `Console on ${node.name}` },
                    node.apiUrl,
                  ),
            ),
          ),
        ),
      ),
    ),
  );
}

/** Seconds as `3d 4h`, `2h 5m`, `4m 10s` or `12s`: the two largest units. */
function duration(seconds: number): string {
  const units: [string, number][] = [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ];
  const parts: string[] = [];
  let left = Math.max(0, Math.floor(seconds));
  for (const [unit, size] of units) {
    if (parts.length === 0 && left < size && size > 1) continue;
    parts.push(`${Math.floor(left / size)}${unit}`);
    left %= size;
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}
