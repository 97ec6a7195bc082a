#!/usr/bin/env node
/**
 * The `pubsub` command. In a checkout (src/ present) it runs the TypeScript sources directly, as
 * `npm start` does; in an installed package, where Node will not strip types from files under
 * node_modules, it runs the JavaScript that `npm pack` emitted into dist/ (prepack: tsc).
 * Plain JavaScript on purpose: it is the one file that must run in both places.
 */
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
await import(existsSync(source) ? source.href : new URL('../dist/cli.js', import.meta.url).href);
