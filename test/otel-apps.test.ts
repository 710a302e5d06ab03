// The SDK inside apps on each OpenTelemetry JS major, installed with npm as
// users install theirs (test/apps/otel2: API 1.9, SDK 2; test/apps/otel3:
// API 1.10, SDK 3, Node >=22.15), ES module and CommonJS, under the real
// sidecar. The app's NodeSDK exports its invoke_agent span and the tool
// spans; the sidecar exports each call's open, connect and child process
// under the app's tool span. With the late flag, the first tool call runs
// before the app starts its OpenTelemetry: the app's own registration must
// still take (an SDK holding its own API copy made the app's refused).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { Rig, assertCallsAttributed, assertTreeComplete, node20, node24, requireBothNodes } from './support/framework-agent.js';
import type { FlatSpan } from './support/otlp.js';

const rig = Rig.create('otel-apps');
after(() => rig.close());
const apps = fileURLToPath(new URL('./apps/', import.meta.url));
const packagesDir = fileURLToPath(new URL('../packages/', import.meta.url));

/** The app's install, with this checkout's builds of the SDK and the protocol it depends on in place of what npm copied at setup. */
function app(name: string): string {
  const dir = path.join(apps, name);
  for (const pkg of ['sdk', 'protocol']) {
    const installed = path.join(dir, 'node_modules', '@agentrace', pkg);
    assert.ok(fs.existsSync(installed), `${installed} is missing: scripts/setup.sh installs the app with npm`);
    fs.rmSync(path.join(installed, 'dist'), { recursive: true, force: true });
    fs.cpSync(path.join(packagesDir, pkg, 'dist'), path.join(installed, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(packagesDir, pkg, 'package.json'), path.join(installed, 'package.json'));
  }
  // One copy of the API, the app's: the SDK must not bring its own.
  const sdk = path.join(dir, 'node_modules', '@agentrace', 'sdk');
  assert.ok(!fs.existsSync(path.join(sdk, 'node_modules', '@opentelemetry', 'api')), 'the SDK shares the app\'s @opentelemetry/api');
  assert.ok(!fs.existsSync(path.join(sdk, 'node_modules', '@agentrace', 'protocol')), 'the SDK uses the protocol package npm installed beside it');
  return dir;
}

interface AppOutput {
  results: Record<string, string>;
  maxInFlight: number;
  recording: boolean;
  contextWorks: boolean;
  diagErrors: string[];
  spans: FlatSpan[];
}

const cases: Array<{ otel: 2 | 3; entry: 'agent.mjs' | 'agent.cjs'; late: boolean; node: '20' | '24' }> = [
  { otel: 2, entry: 'agent.mjs', late: false, node: '20' },
  { otel: 2, entry: 'agent.cjs', late: true, node: '20' },
  { otel: 2, entry: 'agent.mjs', late: false, node: '24' },
  { otel: 3, entry: 'agent.mjs', late: false, node: '24' },
  { otel: 3, entry: 'agent.cjs', late: false, node: '24' },
  { otel: 3, entry: 'agent.mjs', late: true, node: '24' },
];

for (const c of cases) {
  const format = c.entry.endsWith('.mjs') ? 'ESM' : 'CommonJS';
  const label = `OpenTelemetry JS ${c.otel} app (${format}, node ${c.node}${c.late ? ', a tool call before the app starts OpenTelemetry' : ''})`;
  test(`${label}: the app's registration takes, its tool spans are under its agent span, each call's kernel activity under its own tool span`, async (t) => {
    requireBothNodes(t);
    const node = c.node === '24' ? node24 : node20;
    if (!node || !requireBpf(t)) return;
    const dir = app(`otel${c.otel}`);
    const name = `otel${c.otel}-${format}-${c.node}${c.late ? '-late' : ''}`;
    const calls = await rig.plan(name, 3);
    const { code, stdout, spans } = await rig.run(name, path.join(dir, c.entry), { late: c.late, calls }, node);
    assert.equal(code, 0, 'the app ran');
    const out = JSON.parse(stdout) as AppOutput;
    for (const call of calls) assert.equal(out.results[call.id], `${call.word} ${call.word}`, `${call.id} ran`);
    assert.equal(out.recording, true, "the app's TracerProvider is the global one");
    assert.equal(out.contextWorks, true, 'a context manager is active');
    // An SDK that registered first owns the context manager (an equivalent
    // AsyncLocalStorage one); the app's duplicate is refused, nothing else.
    const expected = c.late ? [/Attempted duplicate registration of API: context/] : [];
    assert.equal(out.diagErrors.length, expected.length, out.diagErrors.join('\n'));
    out.diagErrors.forEach((e, i) => assert.match(e, expected[i]!));

    const all = [...out.spans, ...spans];
    const tools = assertCallsAttributed(all, calls, 'survey');
    const agent = out.spans.find((s) => s.name === 'invoke_agent surveyor');
    assert.ok(agent, 'the app exported its agent span');
    const parallel = c.late ? tools.slice(1) : tools;
    for (const tool of parallel) {
      assert.ok(out.spans.includes(tool), `${tool.attributes['gen_ai.tool.call.id']}: the app exported its tool span`);
      assert.equal(tool.parentSpanId, agent.spanId, `${tool.attributes['gen_ai.tool.call.id']} sits under invoke_agent`);
    }
    assert.equal(out.maxInFlight, parallel.length, 'the calls ran in parallel');
    if (c.late) {
      // No provider yet: the SDK made the span and the sidecar exported it.
      assert.ok(spans.includes(tools[0]!), 'the sidecar exported the early tool span');
    }
    assert.ok(!spans.some((s) => out.spans.some((a) => a.spanId === s.spanId)), 'no span exported twice');
    assertTreeComplete(all);
  });
}
