// A CommonJS agent (what many TypeScript builds still emit) requires the SDK:
// require() of its ES modules, which the Node versions package.json states
// (20.19+, 22.12+, 24+) all do. Runs on Node 20 and on Node 24 (scripts/test.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

test('the Node running this is one the SDK states it supports', () => {
  const engines = (JSON.parse(fs.readFileSync(new URL('../packages/sdk/package.json', import.meta.url), 'utf8')) as { engines: { node: string } }).engines.node;
  assert.equal(engines, '^20.19.0 || ^22.12.0 || >=24.0.0', 'this test checks the range it knows');
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const ok = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 24;
  assert.ok(ok, `node ${process.version} is outside ${engines}`);
});

test('a CommonJS agent requires every entry of the SDK (and the protocol package it depends on) and traces a tool', () => {
  const script = `
    const { traceTool, shutdown, WARNING_TYPE } = require('@agentrace/sdk');
    for (const entry of ['langchain', 'ai', 'openai-agents', 'mastra', 'mcp']) require('@agentrace/sdk/' + entry);
    require('@agentrace/protocol');
    const add = traceTool('add', (a, b) => a + b);
    if (add(2, 3) !== 5) throw new Error('the tool did not run');
    shutdown().then(() => process.stdout.write(WARNING_TYPE));`;
  const out = execFileSync(process.execPath, ['-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, AGENTRACE_SOCKET: '/nonexistent/agentrace-cjs.sock', NODE_NO_WARNINGS: '1' },
  });
  assert.equal(out, 'AgentraceWarning');
});
