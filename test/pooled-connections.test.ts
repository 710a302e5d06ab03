// Pooled keep-alive connections as agents use them (issue 10): global fetch
// (undici's default agent) and an undici Pool, calls one after another and
// at once to one origin, the first reusing a connection the agent opened
// outside any call. The server answers each call with a body of its own
// size, so the bytes under each span say whose response they were: each
// call's request and response are under its own span, none under the call
// that happened to open the connection. A connection that carries two
// calls' requests at once (HTTP/1.1 pipelining) is flagged, never guessed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { readOtlpFile, type FlatSpan } from './support/otlp.js';
import { runtimes } from './support/framework-agent.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'agentrace');
const agent = path.join(root, 'test', 'fixtures', 'pool-agent.mjs');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-pool-'));
let server: http.Server;
let base = '';

before(async () => {
  server = http.createServer((req, res) => res.end(Buffer.alloc(Number(req.url!.split('/').pop()), 97)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

// Sizes 3000 B apart: a response's headers (~130 B) can never make one call's bytes look like another's.
const sizes = (n: number, from: number): number[] => Array.from({ length: n }, (_, i) => 2000 + 3000 * (from + i));
const plan = { fetchSeq: sizes(4, 0), fetchPar: sizes(3, 4), poolSeq: sizes(4, 7), poolPar: sizes(3, 11), piped: [400_000, 700_000] };

/** Sums an attribute over a call's kernel summaries (the first and any later one). */
function total(summaries: FlatSpan[], attr: string): number {
  return summaries.reduce((n, s) => n + Number(s.attributes[attr] ?? 0), 0);
}

for (const [label, node] of runtimes) {
  test(`${label}: keep-alive fetch and undici pools, one after another and at once: each call's request and response under its own span`, { timeout: 120_000 }, async (t) => {
    if (!requireBpf(t)) return;
    const otlp = path.join(dir, `${label.replace(/\W+/g, '-')}.jsonl`);
    const child = spawn(bin, ['run', '--quiet', '--otlp-file', otlp, '--', node, agent], {
      env: { ...process.env, POOL_BASE: base, POOL_PLAN: JSON.stringify(plan) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, stderr);

    const spans = readOtlpFile(otlp);
    const call = (id: string): { span: FlatSpan; summaries: FlatSpan[] } => {
      const span = spans.find((s) => s.attributes['gen_ai.tool.call.id'] === id);
      assert.ok(span, `no span for ${id}`);
      return { span, summaries: spans.filter((s) => s.parentSpanId === span.spanId && s.name === 'kernel summary') };
    };
    const problems: string[] = [];
    const exact = [...plan.fetchSeq.map((s) => `fetch-${s}`), ...plan.fetchPar.map((s) => `fetch-${s}`), ...plan.poolSeq.map((s) => `pool-${s}`), ...plan.poolPar.map((s) => `pool-${s}`)];
    for (const id of exact) {
      const size = Number(id.split('-')[1]);
      const { summaries } = call(id);
      const read = total(summaries, 'agentrace.syscall.read.bytes') + total(summaries, 'agentrace.syscall.recv.bytes');
      const written = total(summaries, 'agentrace.syscall.write.bytes') + total(summaries, 'agentrace.syscall.send.bytes');
      // The response: the body of this call's size plus its headers, nothing of another call's.
      if (!(read - size >= 50 && read - size < 1024)) problems.push(`${id}: read ${read} B for a ${size} B body`);
      // The request: one GET, not two.
      if (!(written >= 30 && written < 1024)) problems.push(`${id}: wrote ${written} B`);
      if (summaries.some((s) => s.attributes['agentrace.attribution.ambiguous'] === true)) problems.push(`${id}: flagged ambiguous`);
    }
    assert.deepEqual(problems, [], `per-call bytes:\n${problems.join('\n')}`);

    // Pipelined calls: either exact, or flagged. Never another call's bytes unflagged.
    let flagged = 0;
    for (const size of plan.piped) {
      const { summaries } = call(`piped-${size}`);
      const ambiguous = summaries.some((s) => s.attributes['agentrace.attribution.ambiguous'] === true);
      const read = total(summaries, 'agentrace.syscall.read.bytes') + total(summaries, 'agentrace.syscall.recv.bytes');
      if (ambiguous) flagged++;
      else assert.ok(read === 0 || (read - size >= 50 && read - size < 1024), `piped-${size}: ${read} B read, not flagged`);
    }
    assert.ok(flagged >= 1, 'a connection that carried two calls’ requests at once is flagged on a call that used it');
  });
}
