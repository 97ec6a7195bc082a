#!/usr/bin/env -S node --max-semi-space-size=8
/**
 * The `pubsub` command (and `npm start`). In a checkout (src/ present) it runs the TypeScript
 * sources directly; in an installed package, where Node will not strip types from files under
 * node_modules, it runs the JavaScript that `npm pack` emitted into dist/ (prepack: tsc).
 * Plain JavaScript on purpose: it is the one file that must run in both places.
 *
 * The first line gives Node its heap settings, which only take effect at start:
 * `--max-semi-space-size=8` caps V8's young generation at 2 x 8 MiB. Node 24 sizes it from
 * the heap limit, 2 x 64 MiB on a 24 GiB machine, and a server's connections and in-flight
 * messages survive their first scavenge, so the young generation grows with them: 5.4-6.2 KiB
 * of RSS per idle connection instead of 7.3-8.0, throughput unchanged (4 MiB cost persistent
 * QoS 1 a fifth of its rate; docs/performance.md, "Young generation"). bench/brokers.ts
 * reads the flags from this line, so the benches run what users run.
 */
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
await import(existsSync(source) ? source.href : new URL('../dist/cli.js', import.meta.url).href);
