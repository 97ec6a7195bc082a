/** The memory adapter runs the MessageStore contract; a restart sees the same object. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryMessageStore } from '../../src/store/memory-message-store.ts';
import { messageStoreContract } from './message-store.contract.ts';

messageStoreContract('memory', {
  open: () => new MemoryMessageStore(),
  reopen: (store) => store,
});

it('the memory adapter never has anything pending: afterCommit runs at once', () => {
  const store = new MemoryMessageStore();
  store.putRetained('b', {
    topic: 't',
    payload: Buffer.from('x'),
    qos: 1,
    retain: true,
    properties: undefined,
    senderId: undefined,
    receivedAt: 0,
    expiresAt: undefined,
  });
  let called = false;
  store.afterCommit(() => {
    called = true;
  });
  assert.equal(called, true);
  assert.equal(store.pending, false);
});
