// Never silently incomplete: a node whose threadpool the sidecar cannot hook
// (a stripped binary here; in a container, a node that called a tool before
// the sidecar saw it start) has its calls flagged
// agentrace.attribution.incomplete, and an agent on a node that was hooked
// in time has none.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { Rig, toolSpanOf } from './support/framework-agent.js';

const rig = Rig.create('unhooked');
after(() => rig.close());
const script = fileURLToPath(new URL('./fixtures/ns-agent.mjs', import.meta.url));
const FLAG = 'agentrace.attribution.incomplete';

test('calls of a node whose threadpool could not be hooked are flagged incomplete; a hooked one\'s are not', async (t) => {
  if (!requireBpf(t)) return;
  const stripped = path.join(rig.dir, 'node-stripped');
  fs.copyFileSync(process.execPath, stripped);
  execFileSync('strip', ['--strip-all', stripped]);
  const [plain, bare] = [await rig.plan('hooked', 4), await rig.plan('stripped', 4)];
  const { agents, spans } = await rig.runAll('unhooked', [
    { script, arg: { calls: plain }, node: process.execPath },
    { script, arg: { calls: bare }, node: stripped },
  ]);
  for (const a of agents) assert.equal(a.code, 0, a.stderr);

  for (const c of plain) {
    const tool = toolSpanOf(spans, c.id);
    assert.equal(tool.attributes[FLAG], undefined, `${c.id} on a hooked node is not flagged`);
  }
  for (const c of bare) {
    const tool = toolSpanOf(spans, c.id);
    assert.deepEqual(tool.attributes[FLAG], ['threadpool'], `${c.id} on the stripped node is flagged`);
    const summary = spans.find((s) => s.parentSpanId === tool.spanId && s.name === 'kernel summary');
    assert.deepEqual(summary?.attributes[FLAG], ['threadpool'], `${c.id}'s kernel summary says so too`);
  }
  // Why it matters: the stripped node's threadpool open is under no call.
  const pooled = bare[3]!;
  const open = spans.find((s) => s.attributes['file.path'] === pooled.file);
  assert.notEqual(open?.parentSpanId, toolSpanOf(spans, pooled.id).spanId, 'the threadpool open was not attributed');
});
