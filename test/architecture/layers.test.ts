/**
 * The layering of src/ as docs/architecture.md draws it, kept true by reading the imports.
 *
 * Every file of src/ belongs to a room: its first folder under src/ (`session/handlers/x.ts` is
 * in `session`), or the file itself for the files at the top (`config.ts`). Each room sits on a
 * floor (LAYERS below). Two rules:
 *   1. an import never runs up: a file imports only from its own room or rooms on lower floors;
 *   2. no circle: the file graph (type imports included, they are dependencies all the same)
 *      has no strongly connected component of more than one file.
 * A new room must be given a floor here and in docs/architecture.md; the test names it if not.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = resolve(import.meta.dirname, '../../src');

/** Floors from the bottom up; rooms on one floor may import each other (rule 2 still holds). */
const LAYERS: readonly (readonly string[])[] = [
  ['protocol', 'observability', 'cidr-list.ts', 'duration.ts'],
  ['errors.ts', 'config.ts', 'config-options.ts', 'router', 'store'],
  ['auth', 'retained', 'transport'],
  ['hooks'],
  ['session'],
  ['broker'],
  ['tenancy'],
  ['cluster'],
  ['admin'],
  ['server.ts'],
  ['cli', 'cli.ts', 'config-doc.ts'],
];

function floorOf(room: string): number | undefined {
  const floor = LAYERS.findIndex((rooms) => rooms.includes(room));
  return floor === -1 ? undefined : floor;
}

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts')) files.push(relative(SRC, path));
  }
  return files.sort();
}

/** Static, re-export, side-effect and dynamic imports of relative paths. */
const IMPORT = /(?:^|[\n;])\s*(?:import|export)\b[^'"]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/g;
const BARE_IMPORT = /(?:^|[\n;])\s*import\s*['"](\.{1,2}\/[^'"]+)['"]/g;
const DYNAMIC_IMPORT = /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, '');
  const targets = new Set<string>();
  for (const pattern of [IMPORT, BARE_IMPORT, DYNAMIC_IMPORT]) {
    for (const match of text.matchAll(pattern)) {
      targets.add(relative(SRC, resolve(SRC, dirname(file), match[1]!)));
    }
  }
  return [...targets];
}

function roomOf(file: string): string {
  return file.split('/')[0]!;
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((file) => [file, importsOf(file)]));

test('every import resolves to a file of src/', () => {
  const missing: string[] = [];
  for (const [file, targets] of graph) {
    for (const target of targets) if (!graph.has(target)) missing.push(`${file} -> ${target}`);
  }
  assert.deepEqual(missing, []);
});

test('every room of src/ has a floor', () => {
  const unplaced = [...new Set(files.map(roomOf))].filter((room) => floorOf(room) === undefined);
  assert.deepEqual(unplaced, [], 'give these rooms a floor in LAYERS and in docs/architecture.md');
});

test('no import runs from a lower floor to a higher one', () => {
  assert.deepEqual(upwardImports(graph), []);
});

test('the import graph of src/ has no circle', () => {
  assert.deepEqual(circles(graph), []);
});

test('the check finds a circle and an upward import when there is one', () => {
  const made = new Map([
    ['session/a.ts', ['broker/b.ts']],
    ['broker/b.ts', ['session/a.ts']],
    ['protocol/c.ts', []],
  ]);
  assert.deepEqual(circles(made), [['broker/b.ts', 'session/a.ts']]);
  assert.deepEqual(upwardImports(made), ['session/a.ts -> broker/b.ts']);
});

function upwardImports(edges: Map<string, string[]>): string[] {
  const upward: string[] = [];
  for (const [file, targets] of edges) {
    const from = floorOf(roomOf(file));
    for (const target of targets) {
      const to = floorOf(roomOf(target));
      if (from !== undefined && to !== undefined && to > from) upward.push(`${file} -> ${target}`);
    }
  }
  return upward;
}

/** Strongly connected components of more than one file (Tarjan), each sorted. */
function circles(edges: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next++);
    stack.push(node);
    onStack.add(node);
    for (const target of edges.get(node) ?? []) {
      if (!edges.has(target)) continue;
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node)!, low.get(target)!));
      } else if (onStack.has(target)) low.set(node, Math.min(low.get(node)!, index.get(target)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1) found.push(component.sort());
  };
  for (const node of edges.keys()) if (!index.has(node)) visit(node);
  return found;
}
