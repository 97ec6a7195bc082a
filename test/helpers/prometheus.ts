/** Reading a Prometheus text scrape in tests. */

/**
 * The value of the series `name{labels}` (labels in any order, the server-wide `node` label
 * aside), 0 when the scrape lacks it.
 */
export function seriesValue(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = match[2] === undefined ? [] : match[2].split(',').filter((l) => !l.startsWith('node='));
    if (have.length === wanted.length && wanted.every((w) => have.includes(w))) return Number(match[3]);
  }
  return 0;
}

/** The process-wide series (no namespace, no broker) of `pubsub_connections_refused_total` for `reason`, 0 when absent. */
export async function processRefusals(apiUrl: string, reason: string): Promise<number> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  return seriesValue(text, 'pubsub_connections_refused_total', { namespace: '', broker: '', reason });
}

/** The sum of every series of `name` in a scrape (all its label sets), 0 when it has none. */
export function sumOfSeries(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{.*\})? (\S+)$/.exec(line);
    if (match !== null && match[1] === name) sum += Number(match[2]);
  }
  return sum;
}
