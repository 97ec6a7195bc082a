/**
 * Starting and stopping the brokers under test, each as its own process (so /proc/PID is the
 * broker itself): ours (`node src/cli.ts serve`), mosquitto (Debian package, config written
 * to a temp dir) and aedes (bench/aedes-server.ts). Loopback only, OS-picked or probed free
 * ports. Every child process started by the harness is tracked here and killed on exit,
 * Ctrl-C or error (`killAllChildren`).
 */
import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = dirname(BENCH_DIR);
const HOST = '127.0.0.1';

export type BrokerName = 'pubsub' | 'mosquitto' | 'aedes';
export const BROKERS: readonly BrokerName[] = ['pubsub', 'mosquitto', 'aedes'];

export interface BrokerHandle {
  name: BrokerName;
  pid: number;
  tcpUrl: string;
  /** undefined when this broker has no WebSocket listener (see wsNote). */
  wsUrl: string | undefined;
  /** Ours: the admin API's base URL, when started with `--http-port 0` in serveArgs. */
  apiUrl?: string;
  /** Data directory used (ours, persistent scenario), for the "was anything stored" check. */
  dataDir?: string;
  stop(): Promise<void>;
  output(): string;
}

export interface StartOptions {
  noDelay: boolean;
  /** Ours: a data directory instead of :memory:. */
  dataDir?: string;
  /** Extra node flags for ours (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Extra `serve` flags for ours (e.g. --max-connect-packet-size 1048576). */
  serveArgs?: string[];
  /** Ours: run the broker of this checkout instead of this tree's (a before/after comparison). */
  repoDir?: string;
  /** Ours: every chunk of its stdout and stderr, whole (e.g. a `--trace-gc-nvp` reader). */
  onOutput?: (chunk: string) => void;
  /** Ours: a file that gets everything the broker writes to stdout and stderr (e.g. --trace-gc lines). */
  outputFile?: string;
}

/** Where `--profile` / `--trace-gc` of a bench put a broker run's files. */
export interface BrokerProfiling {
  /** `--cpu-prof` into `dir`. */
  cpu: boolean;
  /** `--trace-gc`, the broker's output kept in `dir`. */
  gc: boolean;
  dir: string;
}

/**
 * The StartOptions that profile one run of our broker named `name` (a file-name stem):
 * `<dir>/<name>.cpuprofile` (for bench/profile-summary.ts) and/or `<dir>/<name>.gc.log` (the GC trace).
 */
export function profiledRun(
  profiling: BrokerProfiling,
  name: string,
): Pick<StartOptions, 'nodeFlags' | 'outputFile'> {
  if (!profiling.cpu && !profiling.gc) return {};
  mkdirSync(profiling.dir, { recursive: true });
  return {
    nodeFlags: [
      ...(profiling.cpu
        ? ['--cpu-prof', `--cpu-prof-dir=${profiling.dir}`, `--cpu-prof-name=${name}.cpuprofile`]
        : []),
      ...(profiling.gc ? ['--trace-gc'] : []),
    ],
    ...(profiling.gc ? { outputFile: join(profiling.dir, `${name}.gc.log`) } : {}),
  };
}

export interface BrokerInfo {
  name: BrokerName;
  available: boolean;
  /** Why it is skipped, or a remark shown under the table. */
  note?: string;
  version?: string;
  /** Whether it has a WebSocket listener. */
  ws: boolean;
  wsNote?: string;
  /** How TCP_NODELAY is set by default (for the notes). */
  nagle: string;
}

// ---- child process bookkeeping ----

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export function spawnTracked(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Kills (SIGKILL) every child still running and removes temp dirs; synchronous, safe in 'exit'. */
export function killAllChildren(): void {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

// ---- ports ----

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('broker exited during start');
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: HOST, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`port ${port} not listening after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function collectOutput(child: ChildProcess, onOutput?: (chunk: string) => void): () => string {
  let text = '';
  const add = (chunk: Buffer): void => {
    const str = chunk.toString();
    onOutput?.(str);
    text = (text + str).slice(-8000);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => text;
}

/** Resolves with the first stdout match of `re` (or rejects on exit/timeout). */
function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray[]> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const found: RegExpExecArray[] = [];
    let settle: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => done(new Error(`broker not ready after ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = re.exec(line);
        if (m) {
          found.push(m);
          // Listener lines are printed together; give the rest a moment to arrive.
          settle ??= setTimeout(() => done(), 100);
        }
        nl = buf.indexOf('\n');
      }
    };
    const onExit = (): void => done(new Error(`broker exited during start (code ${child.exitCode})`));
    const done = (err?: Error): void => {
      clearTimeout(timer);
      clearTimeout(settle);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(found);
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

// ---- the brokers ----

const MOSQUITTO_PATHS = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'];

function mosquittoPath(): string | undefined {
  return MOSQUITTO_PATHS.find((p) => existsSync(p));
}

let oursWsCache: boolean | undefined;

/** Whether our `serve` command has a --ws-port flag (the WebSocket listener exists). */
function oursHasWs(): boolean {
  if (oursWsCache !== undefined) return oursWsCache;
  try {
    const help = execFileSync(process.execPath, [join(REPO_DIR, 'src/cli.ts'), 'serve', '--help'], {
      cwd: REPO_DIR,
      encoding: 'utf8',
      timeout: 15_000,
    });
    oursWsCache = help.includes('--ws-port');
  } catch {
    oursWsCache = false;
  }
  return oursWsCache;
}

export function brokerInfo(name: BrokerName): BrokerInfo {
  if (name === 'pubsub') {
    const ws = oursHasWs();
    return {
      name,
      available: true,
      version: `node ${process.version}`,
      ws,
      ...(ws ? {} : { wsNote: 'n/a (no ws listener)' }),
      nagle:
        'TCP_NODELAY on in every row (its default, --tcp-nodelay); writes corked and flushed once per event-loop turn (after the poll phase)',
    };
  }
  if (name === 'mosquitto') {
    const path = mosquittoPath();
    if (path === undefined)
      return {
        name,
        available: false,
        note: 'skipped: mosquitto not installed (apt-get install mosquitto)',
        ws: false,
        nagle: '',
      };
    let version: string | undefined;
    try {
      const out = execFileSync(path, ['-h'], { encoding: 'utf8', timeout: 5000, stdio: 'pipe' });
      version = /mosquitto version (\S+)/.exec(out)?.[1];
    } catch (err) {
      const out = String((err as { stdout?: string }).stdout ?? '');
      version = /mosquitto version (\S+)/.exec(out)?.[1];
    }
    return {
      name,
      available: true,
      ...(version ? { version } : {}),
      ws: true,
      nagle: 'Nagle on (set_tcp_nodelay false, its default); -nodelay rows: set_tcp_nodelay true',
    };
  }
  const aedesDir = join(REPO_DIR, 'node_modules/aedes');
  if (!existsSync(aedesDir) || !existsSync(join(REPO_DIR, 'node_modules/ws')))
    return {
      name,
      available: false,
      note: 'skipped: aedes/ws not installed (npm install)',
      ws: false,
      nagle: '',
    };
  let version: string | undefined;
  try {
    version = (JSON.parse(readFileSync(join(aedesDir, 'package.json'), 'utf8')) as { version: string })
      .version;
  } catch {
    // unknown
  }
  return {
    name,
    available: true,
    ...(version ? { version } : {}),
    ws: true,
    nagle: 'Nagle on (Node net default; ws http server noDelay false); -nodelay rows: noDelay true',
  };
}

export async function startBroker(name: BrokerName, opts: StartOptions): Promise<BrokerHandle> {
  if (name === 'pubsub') return startOurs(opts);
  if (name === 'mosquitto') return startMosquitto(opts);
  return startAedes(opts);
}

/**
 * `PUBSUB_BENCH_NODE_FLAGS`: node flags for every run of our broker in any bench (space
 * separated, e.g. `--max-semi-space-size=8`), to try a V8 setting without changing the code.
 */
const EXTRA_NODE_FLAGS = (process.env.PUBSUB_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');

/**
 * The node flags the `pubsub` command starts with (its first line: `#!/usr/bin/env -S node
 * <flags>`), so that a bench runs our broker as `npm start` and the installed command do; a
 * checkout whose launcher has none (an older baseline) gets none.
 */
export function launcherNodeFlags(repoDir = REPO_DIR): string[] {
  let first = '';
  try {
    first = readFileSync(join(repoDir, 'bin/pubsub.js'), 'utf8').split('\n', 1)[0]!;
  } catch {
    return [];
  }
  const m = /^#!\/usr\/bin\/env -S node\s+(.*)$/.exec(first);
  return m === null ? [] : m[1]!.split(/\s+/).filter((f) => f.startsWith('--'));
}

async function startOurs(opts: StartOptions): Promise<BrokerHandle> {
  const ws = oursHasWs();
  const args = [
    ...launcherNodeFlags(opts.repoDir),
    ...(opts.nodeFlags ?? []),
    ...EXTRA_NODE_FLAGS,
    join(opts.repoDir ?? REPO_DIR, 'src/cli.ts'),
    'serve',
    '--host',
    HOST,
    '--port',
    '0',
    '--data-dir',
    opts.dataDir ?? ':memory:',
    '--log-level',
    'warn',
    '--http-port',
    '-1',
    ...(ws ? ['--ws-port', '0'] : []),
    ...(opts.serveArgs ?? []),
  ];
  const child = spawnTracked(process.execPath, args, { cwd: REPO_DIR });
  const output = collectOutput(child, opts.onOutput);
  if (opts.outputFile !== undefined) {
    const file = createWriteStream(opts.outputFile);
    child.stdout?.pipe(file, { end: false });
    child.stderr?.pipe(file, { end: false });
    child.once('close', () => file.end());
  }
  let lines: RegExpExecArray[];
  try {
    lines = await waitForLine(child, /listening on ((?:mqtt|ws|http):\/\/\S+)/);
  } catch (err) {
    await stopChild(child, 500);
    throw new Error(`${(err as Error).message}\n${output()}`);
  }
  const urls = lines.map((m) => m[1]!);
  const tcpUrl = urls.find((u) => u.startsWith('mqtt://'));
  if (tcpUrl === undefined) throw new Error(`no mqtt listener in output:\n${output()}`);
  const apiUrl = urls.find((u) => u.startsWith('http://'));
  return {
    name: 'pubsub',
    pid: child.pid!,
    tcpUrl,
    wsUrl: urls.find((u) => u.startsWith('ws://')),
    ...(apiUrl ? { apiUrl } : {}),
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
    stop: () => stopChild(child, 6000),
    output,
  };
}

async function startMosquitto(opts: StartOptions): Promise<BrokerHandle> {
  const path = mosquittoPath();
  if (path === undefined) throw new Error('mosquitto not installed');
  const dir = makeTempDir('bench-mosquitto-');
  const tcpPort = await freePort();
  let wsPort = await freePort();
  while (wsPort === tcpPort) wsPort = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      '# written by bench/brokers.ts',
      'allow_anonymous true',
      'max_queued_messages 0',
      'persistence false',
      'log_dest stderr',
      'log_type error',
      `set_tcp_nodelay ${opts.noDelay ? 'true' : 'false'}`,
      `listener ${tcpPort} ${HOST}`,
      'protocol mqtt',
      `listener ${wsPort} ${HOST}`,
      'protocol websockets',
      '',
    ].join('\n'),
  );
  const child = spawnTracked(path, ['-c', conf]);
  const output = collectOutput(child);
  try {
    await waitForPort(tcpPort, child);
    await waitForPort(wsPort, child);
  } catch (err) {
    await stopChild(child, 500);
    removeTempDir(dir);
    throw new Error(`mosquitto: ${(err as Error).message}\n${output()}`);
  }
  return {
    name: 'mosquitto',
    pid: child.pid!,
    tcpUrl: `mqtt://${HOST}:${tcpPort}`,
    wsUrl: `ws://${HOST}:${wsPort}/mqtt`,
    stop: async () => {
      await stopChild(child);
      removeTempDir(dir);
    },
    output,
  };
}

async function startAedes(opts: StartOptions): Promise<BrokerHandle> {
  const child = spawnTracked(
    process.execPath,
    [
      join(BENCH_DIR, 'aedes-server.ts'),
      '--host',
      HOST,
      '--tcp',
      '0',
      '--ws',
      '0',
      ...(opts.noDelay ? ['--nodelay'] : []),
    ],
    { cwd: REPO_DIR },
  );
  const output = collectOutput(child);
  let lines: RegExpExecArray[];
  try {
    lines = await waitForLine(child, /^\{"tcp":(\d+),"ws":(\d+)\}/);
  } catch (err) {
    await stopChild(child, 500);
    throw new Error(`aedes: ${(err as Error).message}\n${output()}`);
  }
  const m = lines[0]!;
  return {
    name: 'aedes',
    pid: child.pid!,
    tcpUrl: `mqtt://${HOST}:${m[1]}`,
    wsUrl: `ws://${HOST}:${m[2]}/mqtt`,
    stop: () => stopChild(child),
    output,
  };
}

/**
 * One call to our admin API with a Bearer token; the envelope's result, or throws with its
 * errors. `body` is sent as JSON unless it is a string (then as `type`).
 */
export async function adminApi(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  type = 'application/json',
): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': type }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const env = (await res.json()) as { success: boolean; result: unknown; errors: unknown };
  if (!env.success) throw new Error(`${method} ${path}: ${JSON.stringify(env.errors)}`);
  return env.result;
}

/** Whether a data directory holds any file (did the broker persist anything?). */
export function dirHasFiles(dir: string): boolean {
  try {
    return readdirSync(dir, { recursive: true }).length > 0;
  } catch {
    return false;
  }
}
