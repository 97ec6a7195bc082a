/**
 * The web console (docs/console.md): static files served by the admin HTTP server, with no
 * build step. The console is plain ES modules in the repository's `console/` folder, plus two
 * libraries served from node_modules (MQTT.js's browser build, uPlot), never from a CDN.
 *
 * Invariants:
 * - Only the paths of CONSOLE_PATHS answer, one explicit route each (no wildcard, no directory
 *   walk): the page addresses (`/` and `/console/<page>`, all the same HTML shell, whose script
 *   routes by URL) and one route per file. Each is a `public` row of route-permissions.ts: the
 *   files hold no secret; the console signs in to the API with a bearer token like any client.
 * - Nothing is read at start and nothing is kept in memory: each request stats and streams its
 *   file, so a server nobody opens the console on pays nothing (issue 22). Libraries are located
 *   with `require.resolve` on first use.
 * - Every response carries a Content-Security-Policy without inline script or eval, and
 *   revalidates (`no-cache` with a weak ETag from size and modification time: a 304 costs a stat).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname, join, resolve } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const CONSOLE_DIR = resolve(import.meta.dirname, '../../../console');
const require = createRequire(import.meta.url);

/** The console's pages (each an address that serves the shell; its script shows the page). */
const PAGES = ['overview', 'brokers', 'clients', 'retained', 'credentials', 'hooks', 'ws-client'] as const;

/** Files of console/, by the name they are served under. */
const OWN_FILES = [
  'app.js',
  'api.js',
  'dom.js',
  'console.css',
  'payload.js',
  'page-brokers.js',
  'page-clients.js',
  'page-credentials.js',
  'page-hooks.js',
  'page-retained.js',
  'page-overview.js',
  'page-ws-client.js',
  'ws-connection.js',
  'ws-live.js',
  'favicon.svg',
] as const;

/** Libraries from node_modules, by served name → module specifier. */
const LIBRARIES: Readonly<Record<string, string>> = {
  'mqtt.esm.js': 'mqtt/dist/mqtt.esm',
  'uPlot.esm.js': 'uplot/dist/uPlot.esm.js',
  'uPlot.min.css': 'uplot/dist/uPlot.min.css',
};

/** Where each served path's bytes come from: a file path, or a module specifier to resolve. */
type Source = { file: string } | { module: string };

const SOURCES: ReadonlyMap<string, Source> = new Map<string, Source>([
  ['/', { file: join(CONSOLE_DIR, 'index.html') }],
  ['/console', { file: join(CONSOLE_DIR, 'index.html') }],
  ...PAGES.map((page): [string, Source] => [`/console/${page}`, { file: join(CONSOLE_DIR, 'index.html') }]),
  ...OWN_FILES.map((name): [string, Source] => [`/console/${name}`, { file: join(CONSOLE_DIR, name) }]),
  ...Object.entries(LIBRARIES).map(([name, module]): [string, Source] => [`/console/${name}`, { module }]),
]);

/** Every path the console answers on (GET and HEAD): the public rows of route-permissions.ts. */
export const CONSOLE_PATHS: readonly string[] = [...SOURCES.keys()];

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * No inline script, no eval, no plugins, no framing. `connect-src` allows ws:/wss: because the
 * WebSocket client page connects to MQTT listeners on other ports (and host names);
 * `worker-src blob:` because MQTT.js runs its keep-alive timer in a worker made from a blob (a
 * page's timers are throttled in a background tab); making one takes running script already.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self' blob:",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function pathOf(source: Source): string | undefined {
  if ('file' in source) return source.file;
  try {
    return require.resolve(source.module);
  } catch {
    return undefined; // the library is not installed (npm install --omit=dev drops mqtt)
  }
}

async function serveFile(source: Source, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache');
  const path = pathOf(source);
  const info = path === undefined ? undefined : await stat(path).catch(() => undefined);
  if (path === undefined || info === undefined || !info.isFile())
    return reply.code(404).type('text/plain; charset=utf-8').send('not installed: run npm install\n');
  const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  reply.header('etag', etag);
  if (req.headers['if-none-match'] === etag) return reply.code(304).send();
  reply.type(CONTENT_TYPES[extname(path)] ?? 'application/octet-stream').header('content-length', info.size);
  return reply.send(req.method === 'HEAD' ? undefined : createReadStream(path));
}

export function consoleRoutes(app: FastifyInstance): void {
  for (const [path, source] of SOURCES) {
    app.get(path, { schema: { hide: true } }, (req, reply) => serveFile(source, req, reply));
  }
}
