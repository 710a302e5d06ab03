// The tool word a thread slot carries: the hash of the first of the
// sidecar's policy patterns a call's tool name matches, or of the name;
// keyed again at the next switch when the patterns change (a reload).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SLOT_LAYOUT, toolHash } from '@agentrace/protocol';
import { ThreadSlot, type SlotSpan } from '../src/thread-slot.js';
import { setToolPatterns, toolKey, toolKeyVersion } from '../src/tool-key.js';

test('a name is its own key until the patterns say otherwise; first match wins', () => {
  setToolPatterns([]);
  assert.equal(toolKey('mcp__fs__read'), toolHash('mcp__fs__read'));
  const v = toolKeyVersion();
  setToolPatterns(['mcp__fs__*', 'mcp__*', 'fetch_url']);
  assert.equal(toolKeyVersion(), v + 1);
  assert.equal(toolKey('mcp__fs__read'), toolHash('mcp__fs__*'));
  assert.equal(toolKey('mcp__net__get'), toolHash('mcp__*'));
  assert.equal(toolKey('fetch_url'), toolHash('fetch_url'));
  assert.equal(toolKey('run_shell'), toolHash('run_shell'));
  setToolPatterns(['mcp__fs__*', 'mcp__*', 'fetch_url']);
  assert.equal(toolKeyVersion(), v + 1, 'the same patterns again change nothing');
  setToolPatterns([]);
});

test("the slot writes a call's tool word, keyed again at its next switch after the patterns change", () => {
  setToolPatterns([]);
  const slot = new ThreadSlot();
  const call: SlotSpan = { raw: Buffer.alloc(24, 1), flags: 1, toolName: 'mcp__fs__read', tool: toolKey('mcp__fs__read'), toolVersion: toolKeyVersion() };
  const word = (): number => slot.buffer.readUInt32LE(SLOT_LAYOUT.tool);
  slot.set(call);
  assert.equal(word(), toolHash('mcp__fs__read'));
  setToolPatterns(['mcp__*']);
  slot.set(call);
  assert.equal(word(), toolHash('mcp__*'), 'the call is keyed by its pattern now');
  slot.set({ raw: Buffer.alloc(24, 2), flags: 1, tool: 7 });
  assert.equal(word(), 7, 'a span with no tool name keeps its word');
  setToolPatterns([]);
});
