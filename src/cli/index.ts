/**
 * The management verbs of the `pubsub` command (everything but `serve`, which lives in
 * src/cli.ts): wrangler's `pubsub namespace|broker` verbs plus `token`, `account`, `audit` and `cluster`, each a
 * thin layer over the admin REST API (global fetch; no server code is loaded, so a verb starts
 * fast). Promises: human tables on stdout by default, the API's `result` as JSON with `--json`,
 * status lines and prompts on stderr, exit 0 / 1 (API or connection failure) / 2 (usage).
 * docs/cli.md is the user's page for all of it.
 */
import type { Command } from 'commander';
import { addAccountCommands } from './account-commands.ts';
import { addAuditCommands } from './audit-commands.ts';
import { addBrokerCommands } from './broker-commands.ts';
import { addClientCommands } from './client-commands.ts';
import { addClusterCommands } from './cluster-commands.ts';
import { addCredentialCommands } from './credential-commands.ts';
import { addHookCommands } from './hook-commands.ts';
import { addNamespaceCommands } from './namespace-commands.ts';
import { addRetainedCommands } from './retained-commands.ts';
import { addTokenCommands } from './token-commands.ts';
import { addTraceCommands } from './trace-commands.ts';

export function addManagementCommands(program: Command): void {
  addNamespaceCommands(program);
  const broker = addBrokerCommands(program);
  addCredentialCommands(broker);
  addHookCommands(broker);
  addClientCommands(broker);
  addRetainedCommands(broker);
  addTraceCommands(broker);
  addTokenCommands(program);
  addAccountCommands(program);
  addAuditCommands(program);
  addClusterCommands(program);
}
