/**
 * The web console's build (docs/console.md): the TypeScript of `console/` turned into hashed,
 * immutable assets in memory, on first use and again whenever a source changes.
 *
 * Algorithm:
 * - Each `console/*.ts` has its types stripped by Node's own `module.stripTypeScriptTypes`
 *   (erasable syntax only, as in src/: nothing to download, no bundler). Its import specifiers
 *   (static `from '…'` and dynamic `import('…')`) are rewritten: `./x.ts` to the hashed name of
 *   x, a library (`mqtt`, `uplot`) to the hashed name of its browser build from node_modules.
 * - A file's name is `<base>.<hash>.<ext>`, the hash taken over its bytes after rewriting, so a
 *   change in any file renames it and every file that imports it, up to the entry: a browser
 *   keeps an asset forever (`immutable`) and still never runs a stale one.
 * - `index.html` is a template whose `src`/`href` values name sources (`app.ts`, `console.css`)
 *   or libraries; they become `/console/assets/<hashed name>`. It is served `no-cache`.
 *
 * Invariants: the build is made on the first request, never at start (issue 22); a request
 * for the shell stats the sources (their names, sizes and mtimes make the build's key) and
 * rebuilds when the key moved, so a stale build is never served. An asset request takes the
 * build as it is (no stat): its name was read from a shell served just before, and a hashed
 * name's content never changes. An import the build does not know (another
 * package, a path outside console/) fails the build: nothing is served from outside the lists.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { createRequire, stripTypeScriptTypes } from 'node:module';
import { extname, join } from 'node:path';

/** Where the built files are served; index.html refers to them by this prefix. */
export const ASSET_PREFIX = '/console/assets/';

/** Libraries the console imports (or index.html links) by specifier → file in node_modules. */
const LIBRARIES: Readonly<Record<string, string>> = {
  mqtt: 'mqtt/dist/mqtt.esm',
  uplot: 'uplot/dist/uPlot.esm.js',
  'uplot/dist/uPlot.min.css': 'uplot/dist/uPlot.min.css',
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The source kinds of console/ that become assets (index.html is the template, not an asset). */
const SOURCE_EXTENSIONS = new Set(['.ts', '.css', '.svg']);

/** `from '…'`, `import '…'` and `import('…')`, the only ways our sources name a module. */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"\n]+)\2/g;
const TEMPLATE_REFERENCE = /\b(src|href)="([^"]+)"/g;

export interface ConsoleAsset {
  readonly body: Buffer;
  readonly contentType: string;
}

export interface ConsoleBuild {
  /** Hashed name (no prefix) → asset. */
  readonly assets: ReadonlyMap<string, ConsoleAsset>;
  /** The served shell, pointing at the hashed entry and stylesheet. */
  readonly index: Buffer;
  readonly indexEtag: string;
}

interface Source {
  readonly name: string;
  readonly path: string;
}

function hashed(name: string, body: Buffer | string): string {
  const hash = createHash('sha256').update(body).digest('base64url').slice(0, 12).replaceAll('-', '_');
  const ext = extname(name);
  const servedExt = ext === '.ts' ? '.js' : ext;
  const base = name.slice(name.lastIndexOf('/') + 1, name.length - ext.length);
  return `${base}.${hash}${servedExt}`;
}

/** Builds console/ (`dir`) into hashed assets; libraries resolve from `resolveFrom`. */
export async function buildConsole(dir: string, resolveFrom: string): Promise<ConsoleBuild> {
  const require = createRequire(resolveFrom);
  const assets = new Map<string, ConsoleAsset>();
  const names = new Map<string, string>(); // source name or library specifier → hashed name
  const sources = new Map<string, Source>(
    (await sourceNames(dir)).map((name) => [name, { name, path: join(dir, name) }]),
  );

  const add = (key: string, served: string, body: Buffer): string => {
    assets.set(served, { body, contentType: CONTENT_TYPES[extname(served)] ?? 'application/octet-stream' });
    names.set(key, served);
    return served;
  };

  const library = async (specifier: string): Promise<string> => {
    const known = names.get(specifier);
    if (known !== undefined) return known;
    let path: string;
    try {
      path = require.resolve(LIBRARIES[specifier]!);
    } catch {
      // npm install --omit=dev leaves mqtt out: the name 404s with "not installed".
      const missing = `${specifier.replaceAll('/', '-')}.not-installed${extname(LIBRARIES[specifier]!)}`;
      names.set(specifier, missing);
      return missing;
    }
    const body = await readFile(path);
    return add(specifier, hashed(path, body), body);
  };

  const visiting = new Set<string>();
  const own = async (name: string): Promise<string> => {
    const known = names.get(name);
    if (known !== undefined) return known;
    const source = sources.get(name);
    if (source === undefined) throw new Error(`console build: no source console/${name}`);
    if (visiting.has(name)) throw new Error(`console build: import cycle through console/${name}`);
    visiting.add(name);
    let body = await readFile(source.path);
    if (extname(name) === '.ts') body = Buffer.from(await rewriteImports(stripTypes(name, body), resolve));
    visiting.delete(name);
    return add(name, hashed(name, body), body);
  };

  const resolve = (specifier: string): Promise<string> => {
    if (Object.hasOwn(LIBRARIES, specifier)) return library(specifier);
    if (specifier.startsWith('./') && !specifier.slice(2).includes('/')) return own(specifier.slice(2));
    throw new Error(
      `console build: import of ${JSON.stringify(specifier)} is not a console source or library`,
    );
  };

  for (const name of sources.keys()) await own(name);
  const template = await readFile(join(dir, 'index.html'), 'utf8');
  const index = Buffer.from(
    await replaceAsync(template, TEMPLATE_REFERENCE, async (_match, attribute: string, target: string) => {
      if (target.startsWith('/') || target.includes(':')) return `${attribute}="${target}"`;
      return `${attribute}="${ASSET_PREFIX}${await resolve(Object.hasOwn(LIBRARIES, target) ? target : `./${target}`)}"`;
    }),
  );
  return {
    assets,
    index,
    indexEtag: `"${createHash('sha256').update(index).digest('base64url').slice(0, 16)}"`,
  };
}

function stripTypes(name: string, body: Buffer): string {
  try {
    return stripTypeScriptTypes(body.toString('utf8'), { mode: 'strip' });
  } catch (error) {
    throw new Error(`console build: console/${name}: ${(error as Error).message}`);
  }
}

function rewriteImports(code: string, resolve: (specifier: string) => Promise<string>): Promise<string> {
  return replaceAsync(
    code,
    SPECIFIER,
    async (_match, lead: string, quote: string, specifier: string) =>
      `${lead}${quote}./${await resolve(specifier)}${quote}`,
  );
}

async function replaceAsync(
  text: string,
  pattern: RegExp,
  replacer: (match: string, ...groups: string[]) => Promise<string>,
): Promise<string> {
  const matches = [...text.matchAll(pattern)];
  const replacements: string[] = [];
  for (const match of matches) replacements.push(await replacer(match[0], ...match.slice(1)));
  let out = '';
  let at = 0;
  matches.forEach((match, i) => {
    out += text.slice(at, match.index) + replacements[i];
    at = match.index + match[0].length;
  });
  return out + text.slice(at);
}

async function sourceNames(dir: string): Promise<string[]> {
  return (await readdir(dir))
    .filter((name) => SOURCE_EXTENSIONS.has(extname(name)) && !name.endsWith('.d.ts'))
    .sort();
}

/** What the build depends on, cheaply: names, sizes and mtimes of console/ and the libraries. */
async function buildKey(dir: string, resolveFrom: string): Promise<string> {
  const require = createRequire(resolveFrom);
  const paths = [...(await sourceNames(dir)).map((name) => join(dir, name)), join(dir, 'index.html')];
  for (const file of Object.values(LIBRARIES)) {
    try {
      paths.push(require.resolve(file));
    } catch {
      paths.push(file);
    }
  }
  const parts = await Promise.all(
    paths.map(async (path) => {
      const info = await stat(path).catch(() => undefined);
      return `${path}:${info?.size ?? '-'}:${info?.mtimeMs ?? '-'}`;
    }),
  );
  return parts.join('\n');
}

/**
 * The console's build, made on first use and remade when a source changes (`current`, for the
 * shell). Concurrent requests during a build share it.
 */
export class ConsoleBuilder {
  readonly #dir: string;
  readonly #resolveFrom: string;
  #key: string | undefined;
  #build: Promise<ConsoleBuild> | undefined;

  constructor(dir: string, resolveFrom: string) {
    this.#dir = dir;
    this.#resolveFrom = resolveFrom;
  }

  async current(): Promise<ConsoleBuild> {
    const key = await buildKey(this.#dir, this.#resolveFrom);
    if (this.#build === undefined || key !== this.#key) {
      this.#key = key;
      this.#build = buildConsole(this.#dir, this.#resolveFrom);
      this.#build.catch(() => {
        if (this.#key === key) this.#key = undefined; // a failed build is retried on the next request
      });
    }
    return this.#build;
  }

  /** The build as it is, without checking the sources; the current one when there is none. */
  latest(): Promise<ConsoleBuild> {
    return this.#key === undefined ? this.current() : this.#build!;
  }
}
