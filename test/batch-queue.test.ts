// The exporters' queue (issue 11): an agent that floods it loses its own
// spans, never another agent's; a span the serializer cannot encode costs
// only itself.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BatchQueue } from '../packages/sidecar/src/otlp/batch-queue.js';
import { OtlpFileExporter } from '../packages/sidecar/src/otlp/file-exporter.js';
import type { ExportSpan } from '../packages/sidecar/src/otlp/span.js';
import { readOtlpFile } from './support/otlp.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-queue-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a full queue drops from the longest lane: a flood costs its owner, and batches take from every owner in turn', async () => {
  const sent: Array<Array<{ owner: string; n: number }>> = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const queue = new BatchQueue<{ owner: string; n: number }>(
    { maxQueueSize: 10, maxBatchSize: 4, scheduleDelayMs: 0, ownerOf: (i) => i.owner },
    async (batch) => {
      sent.push(batch);
      await gate; // the sink is slow: the queue fills
      return { exported: batch.length, failed: 0 };
    },
    () => {},
  );
  // The flood: 10 fill the queue, 90 are dropped; 4 leave in the first batch (held by the slow sink); 4 more fill it again.
  queue.push(Array.from({ length: 100 }, (_, n) => ({ owner: 'flood', n })));
  assert.equal(queue.stats().dropped, 90);
  queue.push(Array.from({ length: 10 }, (_, n) => ({ owner: 'flood', n: 100 + n })));
  assert.equal(queue.stats().dropped, 96);
  // A normal agent's 3 spans still get in: the flood's newest make room.
  queue.push([0, 1, 2].map((n) => ({ owner: 'normal', n })));
  assert.equal(queue.stats().dropped, 99);
  release();
  await queue.flush(1000);
  const all = sent.flat();
  assert.deepEqual(all.filter((i) => i.owner === 'normal').map((i) => i.n), [0, 1, 2], 'every normal span exported');
  assert.equal(all.filter((i) => i.owner === 'flood').length, 11);
  // The first batch after the flood had to share: both owners in it.
  assert.deepEqual(new Set(sent[1]!.map((i) => i.owner)), new Set(['flood', 'normal']));
  assert.deepEqual(queue.stats(), { exported: 14, failed: 0, dropped: 99 });
  await queue.shutdown(100);
});

function span(i: number, attributes: ExportSpan['attributes'] = { i }): ExportSpan {
  return {
    traceId: 'a'.repeat(32),
    spanId: (i + 1).toString(16).padStart(16, '0'),
    name: `span ${i}`,
    kind: SpanKind.INTERNAL,
    startTimeNs: 1_700_000_000_000_000_000n,
    endTimeNs: 1_700_000_000_000_001_000n,
    attributes,
    status: { code: SpanStatusCode.UNSET },
    resource: { 'service.name': 'agent', 'process.pid': i % 7 },
  };
}

test('a batch with one span the serializer cannot encode exports every other span, and says which failed', async () => {
  const file = path.join(dir, 'poisoned.jsonl');
  const errors: string[] = [];
  const exporter = new OtlpFileExporter({ path: file, maxBatchSize: 512, onError: (e) => errors.push(e.message) });
  // What no agent can send any more (the sidecar checks input), but what a
  // bug could make: a value whose reading throws.
  const poison = Object.defineProperty({}, 'value', { enumerable: true, get: () => { throw new Error('poisoned value'); } });
  const batch = Array.from({ length: 512 }, (_, i) => (i === 200 ? span(i, { bad: poison as unknown as string }) : span(i)));
  exporter.export(batch);
  await exporter.shutdown(5000);
  const written = readOtlpFile(file);
  assert.equal(written.length, 511);
  assert.ok(!written.some((s) => s.name === 'span 200'));
  assert.deepEqual(exporter.stats(), { exported: 511, failed: 1, dropped: 0 });
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /one of the spans not exported: .*00000000000000c9 \(span 200\): poisoned value/);
});
