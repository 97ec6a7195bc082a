/**
 * Small files with one job: no file of src/ is over 500 lines, except the option table, which is
 * a declaration list (docs/architecture.md). A file that grows past it gets split by concern.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = resolve(import.meta.dirname, '../../src');
const MAX_LINES = 500;
const EXEMPT = new Set(['config-options.ts']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [relative(SRC, path)] : [];
  });
}

test(`no src file is over ${MAX_LINES} lines (the option table aside)`, () => {
  const over = sourceFiles(SRC)
    .filter((file) => !EXEMPT.has(file))
    .map((file) => ({ file, lines: readFileSync(join(SRC, file), 'utf8').split('\n').length - 1 }))
    .filter(({ lines }) => lines > MAX_LINES)
    .map(({ file, lines }) => `${file}: ${lines} lines`);
  assert.deepEqual(over, []);
});
