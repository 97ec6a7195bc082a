/**
 * A pass-through on-publish webhook for the hooks bench, in its own process (its CPU is reported
 * apart from the broker's): answers every POST with its body unchanged, as the cheapest real
 * hook would (`return new Response(JSON.stringify(messages))` gives the same bytes).
 * `--pretty` answers the same messages re-indented instead, a body the broker has to parse.
 * Prints `listening on http://127.0.0.1:<port>/` when ready.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const pretty = process.argv.includes('--pretty');

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(pretty ? JSON.stringify(JSON.parse(body.toString('utf8')), null, 1) : body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
});
process.on('SIGTERM', () => process.exit(0));
