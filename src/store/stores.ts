/**
 * The typed stores the tenancy layer keeps on one database: control plane (accounts,
 * namespaces, brokers, admin tokens), credentials (keys, revocations) and hooks (functions,
 * their state). Built together so that every caller opens them the same way.
 */
import type { DatabaseSync } from 'node:sqlite';
import { ControlPlaneStore } from './control-plane-store.ts';
import { ControlRows } from './control-rows.ts';
import { CredentialStore } from './credential-store.ts';
import { HookStore } from './hook-store.ts';

export interface TenancyStores {
  controlPlane: ControlPlaneStore;
  credentials: CredentialStore;
  hooks: HookStore;
  /** The same rows as plain columns, for cluster mode's replica (control-rows.ts). */
  rows: ControlRows;
}

export function tenancyStores(db: DatabaseSync): TenancyStores {
  return {
    controlPlane: new ControlPlaneStore(db),
    credentials: new CredentialStore(db),
    hooks: new HookStore(db),
    rows: new ControlRows(db),
  };
}
