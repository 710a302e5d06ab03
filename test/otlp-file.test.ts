// The OTLP JSON lines file exporter: every line is one OTLP/JSON
// ExportTraceServiceRequest, checked against the official schema (otlp-schema.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OtlpFileExporter } from '../packages/sidecar/src/otlp/index.js';
import { expectedSampleSummary, manySpans, otlpJsonViolations, sampleSpans, spansOf, summarize } from './otlp-schema.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-otlp-file-'));
const exporters: OtlpFileExporter[] = [];
after(async () => {
  await Promise.all(exporters.map((e) => e.shutdown(1000)));
  fs.rmSync(root, { recursive: true, force: true });
});

function fileExporter(name: string, options: Partial<ConstructorParameters<typeof OtlpFileExporter>[0]> = {}): OtlpFileExporter {
  const e = new OtlpFileExporter({ path: path.join(root, name), scheduleDelayMs: 60_000, onError: () => {}, ...options });
  exporters.push(e);
  return e;
}

function readLines(file: string): unknown[] {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'), 'every line ends with a newline');
  return text.slice(0, -1).split('\n').map((line) => JSON.parse(line) as unknown);
}

test('one valid OTLP/JSON ExportTraceServiceRequest per line; parent dirs created', async () => {
  const e = fileExporter('deep/er/traces.jsonl');
  assert.equal(e.description, `OTLP file ${path.join(root, 'deep/er/traces.jsonl')}`);
  e.export(sampleSpans());
  await e.flush(5000);
  const lines = readLines(e.path);
  assert.equal(lines.length, 1);
  assert.deepEqual(otlpJsonViolations(lines[0]), []);
  assert.deepEqual(summarize(lines[0]), expectedSampleSummary());
  assert.deepEqual(e.stats(), { exported: 3, dropped: 0, failed: 0 });
});

test('flush writes everything queued; several batches append, in order', async () => {
  const e = fileExporter('batches.jsonl', { maxBatchSize: 4 });
  e.export(manySpans(6, 1));
  e.export(manySpans(3, 2));
  await e.flush(5000);
  let lines = readLines(e.path);
  assert.deepEqual(lines.map((l) => spansOf(summarize(l)).length), [4, 4, 1]);
  for (const line of lines) assert.deepEqual(otlpJsonViolations(line), []);
  e.export(manySpans(2, 3));
  await e.flush(5000);
  lines = readLines(e.path);
  assert.equal(lines.length, 4);
  const names = lines.flatMap((l) => spansOf(summarize(l)).map((s) => s.name));
  assert.deepEqual(names, [
    ...manySpans(6, 1).map((s) => s.name),
    ...manySpans(3, 2).map((s) => s.name),
    ...manySpans(2, 3).map((s) => s.name),
  ]);
  assert.deepEqual(e.stats(), { exported: 11, dropped: 0, failed: 0 });
});

test('appends to an existing file; a second exporter on the same file appends too', async () => {
  const file = path.join(root, 'existing.jsonl');
  const first = fileExporter('existing.jsonl');
  first.export(manySpans(1, 1));
  await first.shutdown(5000);
  const second = fileExporter('existing.jsonl');
  second.export(manySpans(2, 2));
  await second.shutdown(5000);
  const lines = readLines(file);
  assert.equal(lines.length, 2);
  assert.deepEqual(lines.map((l) => spansOf(summarize(l)).length), [1, 2]);
});

test('a partial batch is written after scheduleDelayMs without a flush', async () => {
  const e = fileExporter('timer.jsonl', { scheduleDelayMs: 30 });
  e.export(manySpans(2));
  const deadline = Date.now() + 5000;
  while (!fs.existsSync(e.path) || fs.readFileSync(e.path, 'utf8') === '') {
    assert.ok(Date.now() < deadline, 'nothing written within 5 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(spansOf(summarize(readLines(e.path)[0])).length, 2);
});

test('shutdown writes everything, then later exports are dropped (counted)', async () => {
  const e = fileExporter('shutdown.jsonl', { maxBatchSize: 100 });
  e.export(manySpans(50));
  await e.shutdown(5000);
  assert.equal(spansOf(summarize(readLines(e.path)[0])).length, 50);
  e.export(manySpans(3));
  assert.deepEqual(e.stats(), { exported: 50, dropped: 3, failed: 0 });
});

test('queue overflow drops exactly what does not fit', async () => {
  const e = fileExporter('overflow.jsonl', { maxQueueSize: 7, maxBatchSize: 100 });
  e.export(manySpans(5, 1));
  e.export(manySpans(5, 2));
  await e.flush(5000);
  assert.deepEqual(e.stats(), { exported: 7, dropped: 3, failed: 0 });
  assert.equal(spansOf(summarize(readLines(e.path)[0])).length, 7);
});

test('an unwritable path counts failures and never throws', async () => {
  const blocker = path.join(root, 'not-a-dir');
  fs.writeFileSync(blocker, 'x');
  const errors: Error[] = [];
  const e = fileExporter('not-a-dir/traces.jsonl', { onError: (err) => errors.push(err) });
  e.export(manySpans(2));
  await e.flush(5000);
  assert.deepEqual(e.stats(), { exported: 0, dropped: 0, failed: 2 });
  assert.match(errors[0]?.message ?? '', /cannot append to .*not-a-dir/);
});

test('the OTLP/JSON check is not vacuous: it rejects what OTLP/JSON forbids', async () => {
  const e = fileExporter('checker.jsonl');
  e.export(sampleSpans());
  await e.flush(5000);
  const good = readLines(e.path)[0];
  const mutate = (f: (span: Record<string, unknown>) => void): unknown => {
    const doc = structuredClone(good) as { resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[] };
    f(doc.resourceSpans[0]!.scopeSpans[0]!.spans[0]!);
    return doc;
  };
  const cases: [string, (span: Record<string, unknown>) => void, RegExp][] = [
    ['base64 trace id', (s) => (s['traceId'] = Buffer.from(String(s['traceId']), 'hex').toString('base64')), /traceId must be 32 lowercase hex/],
    ['snake_case field', (s) => { s['start_time_unix_nano'] = s['startTimeUnixNano']; delete s['startTimeUnixNano']; }, /start_time_unix_nano: no such field/],
    ['numeric timestamp', (s) => (s['endTimeUnixNano'] = Number(s['endTimeUnixNano'])), /endTimeUnixNano must be a decimal string/],
    ['string enum', (s) => (s['kind'] = 'SPAN_KIND_INTERNAL'), /enum SpanKind must be an integer/],
    ['unknown enum value', (s) => (s['kind'] = 9), /9 is not a value of enum SpanKind/],
  ];
  for (const [what, f, expected] of cases) {
    const violations = otlpJsonViolations(mutate(f));
    assert.ok(violations.some((v) => expected.test(v)), `${what}: ${JSON.stringify(violations)}`);
  }
});
