/**
 * The real clients the interop tests drive (mosquitto_pub/sub, paho, openssl, curl, Chromium
 * through `launchChromium`, promtool, and nats-server for the cluster):
 * whether each one from Debian is installed. A suite needing a missing one is skipped with the
 * package to install, except under CI (`CI` set), where it fails: CI promises to have installed
 * every interop client, so a missing one is a broken machine, not a skip.
 *
 * Also the two ways every test runs the mosquitto clients: `mosquittoSub` (debug output, line
 * buffered, ready once its SUBACK is in) and `mosquittoPub` (run to completion).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { type Child, spawnChild } from './child-process.ts';

/** Debian's Python, which is where python3-paho-mqtt installs (a pyenv python on PATH lacks it). */
export const PYTHON = '/usr/bin/python3';

export interface Tool {
  /** What the tests run, for messages. */
  readonly what: string;
  /** The Debian package that provides it. */
  readonly debianPackage: string;
  readonly available: boolean;
}

function runs(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 });
  return result.error === undefined && result.status === 0;
}

function tool(what: string, debianPackage: string, probe: () => boolean): Tool {
  let available: boolean | undefined;
  return {
    what,
    debianPackage,
    get available() {
      available ??= probe();
      return available;
    },
  };
}

/** `mosquitto_pub` and `mosquitto_sub` (run through coreutils' `stdbuf` for line-buffered output). */
export const mosquittoClients = tool('mosquitto_pub/mosquitto_sub', 'mosquitto-clients', () =>
  runs('sh', ['-c', 'command -v mosquitto_pub && command -v mosquitto_sub && command -v stdbuf']),
);

/** OpenSSL's command-line tool, whose `s_client` offers the cipher suites a test names. */
export const openssl = tool('openssl', 'openssl', () => runs('openssl', ['version']));

/** curl, for replaying documented API commands. */
export const curl = tool('curl', 'curl', () => runs('curl', ['--version']));

/** Prometheus's `promtool`, whose `check metrics` lints a scrape of GET /metrics. */
/** `ss` shows a listening socket's backlog (Send-Q). */
export const ss = tool('ss', 'iproute2', () => runs('ss', ['--version']));

export const promtool = tool('promtool', 'prometheus', () => runs('promtool', ['--version']));

/** The Eclipse Paho Python client in Debian's Python. */
export const pahoPython = tool(`${PYTHON} with paho-mqtt`, 'python3-paho-mqtt', () =>
  runs(PYTHON, ['-c', 'import paho.mqtt.client']),
);

/** The NATS server, for the cluster tests (issue 18). */
export const natsServer = tool('nats-server', 'nats-server', () => runs('nats-server', ['--version']));

/** Debian's Chromium, driven by playwright-core in the browser test. */
export const CHROMIUM = '/usr/bin/chromium';
export const chromium = tool(CHROMIUM, 'chromium', () => runs(CHROMIUM, ['--version']));

/** Headless Debian Chromium under playwright-core, quiet (no updates, sync or QUIC), plus `args`. */
export async function launchChromium(args: string[] = []): Promise<Browser> {
  // Loaded here, not at the top: most suites that import this module drive no browser.
  const { chromium: playwright } = await import('playwright-core');
  return playwright.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...args,
    ],
  });
}

/** The errors a page reports (uncaught, and `console.error` such as a CSP refusal), as they come. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  return errors;
}

/**
 * `describe` for a suite that needs `needed`: runs it when installed; otherwise skips it naming
 * the Debian package, or under CI replaces it with one failing test saying what is missing.
 */
export function describeWithTool(name: string, needed: Tool, fn: () => void): void {
  if (needed.available) {
    describe(name, fn);
    return;
  }
  const message = `${needed.what} not found: install the Debian package ${needed.debianPackage} (apt-get install ${needed.debianPackage})`;
  if (process.env.CI) {
    describe(name, () => {
      it(`needs ${needed.what}`, () => assert.fail(`${message}; CI must provide it`));
    });
  } else {
    describe(name, { skip: message }, fn);
  }
}

let counter = 0;
/** A name unique within this process and across concurrently running test files. */
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * `mosquitto_sub -d` with `args`, its stdout line-buffered (stdbuf) so that each message line
 * arrives as printed; killed after the test. Resolves once it logged its SUBACK, or at once
 * with `ready: false`.
 */
export async function mosquittoSub(
  t: TestContext,
  args: string[],
  { ready = true }: { ready?: boolean } = {},
): Promise<Child> {
  const sub = spawnChild(t, 'stdbuf', ['-oL', 'mosquitto_sub', '-d', ...args]);
  if (ready) await sub.waitForLine((line) => /received SUBACK/.test(line), 'SUBACK');
  return sub;
}

/** Runs `mosquitto_pub` with `args` to its exit (once its QoS flow is complete); the caller checks the code. */
export async function mosquittoPub(t: TestContext, args: string[]): Promise<Child> {
  const pub = spawnChild(t, 'mosquitto_pub', args);
  await pub.waitForExit();
  return pub;
}
