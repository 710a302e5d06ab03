// Loss accounting end to end, on the real kernel: a tool call that overflows
// a one-page ring buffer. What was lost must come out of the OTLP file, on
// the tool's kernel summary span and as the agentrace.events.dropped metric,
// and equal what really went missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Sidecar, createExporters, resolveOtlpConfig, resolveOtlpMetricsConfig } from '@agentrace/sidecar';
import { requireBpf } from './support/bpf.js';
import { readOtlpFile, readOtlpSums } from './support/otlp.js';

const agentScript = fileURLToPath(new URL('./fixtures/flood-agent.mjs', import.meta.url));
let dir: string;
const children: Array<() => void> = [];

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-loss-'));
});

after(() => {
  for (const kill of children) kill();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('events lost to a full ring buffer are exported, on the span and as a metric, and equal what is missing', async (t) => {
  if (!requireBpf(t)) return;
  const files = path.join(dir, 'files');
  fs.mkdirSync(files);
  const count = 3000;
  for (let i = 0; i < count; i++) fs.writeFileSync(path.join(files, `f${i}`), '');
  const file = path.join(dir, 'out.jsonl');
  const traces = resolveOtlpConfig({ file }, {});
  const sidecar = await Sidecar.start({
    socketPath: path.join(dir, 'agentrace.sock'),
    // A queue that cannot overflow: here every missing span is one the kernel lost.
    exporters: createExporters(traces, { maxQueueSize: 100_000 }),
    metrics: resolveOtlpMetricsConfig({ file }, {}, traces),
    ringBufferBytes: 4096, // about a dozen open events
    maxEventsPerSpan: 0, // no cap: every open is meant to be an event
    log: () => {},
  });
  let code: number | null;
  let kernelDrops: bigint;
  try {
    const child = spawn(process.execPath, [agentScript, files, String(count)], {
      env: { ...process.env, AGENTRACE_SOCKET: sidecar.socketPath },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(() => child.exitCode === null && child.kill('SIGKILL'));
    [code] = (await once(child, 'exit')) as [number | null];
    await sidecar.settle(2000);
  } finally {
    await sidecar.stop();
    kernelDrops = sidecar.stats().probes.ringbufDrops;
  }
  assert.equal(code, 0, 'the agent ran');

  const spans = readOtlpFile(file);
  const tool = spans.find((s) => s.name === 'execute_tool flood');
  assert.ok(tool, 'the tool span was exported');
  const opened = new Set(
    spans
      .filter((s) => s.parentSpanId === tool.spanId && typeof s.attributes['file.path'] === 'string')
      .map((s) => s.attributes['file.path'] as string)
      .filter((p) => path.dirname(p) === files),
  );
  const missing = count - opened.size;
  assert.ok(missing > 0, 'the ring buffer overflowed (nothing was lost: make the flood bigger)');

  const summaries = spans.filter((s) => s.name === 'kernel summary' && s.parentSpanId === tool.spanId);
  assert.equal(summaries.length, 1, 'one kernel summary under the tool');
  const a = summaries[0]!.attributes;
  // Node may open a file of its own during the call (V8 reads
  // /proc/sys/vm/overcommit_memory as the heap grows): it is the call's too,
  // and may be written or lost like the flood's.
  const opens = a['agentrace.syscall.open.calls'] as number;
  const extra = opens - count;
  assert.ok(extra >= 0 && extra <= 5, `the in-kernel aggregate saw every open (${opens} for ${count} in the flood)`);
  const extraWritten = spans.filter(
    (s) => s.parentSpanId === tool.spanId && typeof s.attributes['file.path'] === 'string' && path.dirname(s.attributes['file.path'] as string) !== files,
  ).length;
  assert.equal(a['agentrace.events.capped'], 0);
  assert.equal(Number(a['agentrace.events.emitted']) + Number(a['agentrace.events.dropped']), opens, 'every open was written or counted lost');
  assert.equal(a['agentrace.events.emitted'], opened.size + extraWritten, 'written = the opens exported');
  assert.equal(a['agentrace.events.dropped'], missing + extra - extraWritten, `dropped on the span = opens with no span (${missing} of the flood)`);
  assert.equal(a['agentrace.events.dropped.ringbuf_full'], a['agentrace.events.dropped']);

  const sums = readOtlpSums(file);
  const exported = sums.get('agentrace.events.dropped{agentrace.drop.reason=ringbuf_full}');
  assert.equal(exported, Number(kernelDrops), 'the metric is the kernel counter');
  assert.ok(exported !== undefined && exported >= missing, `the metric (${exported}) covers the span's loss (${missing})`);
  assert.equal(sums.get(`agentrace.tool.syscalls{agentrace.syscall=open,gen_ai.tool.name=flood,process.user.id=${process.getuid!()}}`), opens, 'the metric counts every open, as the span does');
  for (const signal of ['traces', 'logs', 'metrics']) {
    assert.equal(sums.get(`agentrace.events.dropped{agentrace.drop.reason=exporter_queue_full,agentrace.signal=${signal}}`), 0, `and the ${signal} exporters lost nothing`);
    assert.equal(sums.get(`agentrace.events.dropped{agentrace.drop.reason=export_failed,agentrace.signal=${signal}}`), 0, `nor failed to write anything`);
  }
});
