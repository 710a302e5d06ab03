// Tool metrics (the kernel's per-span aggregates, loss and event counters) as
// OTLP metrics, through the real exporters: the JSON lines file shared with
// traces, and OTLP/HTTP (protobuf and JSON) to a real node:http receiver on
// 127.0.0.1. What arrives is read with the official opentelemetry-proto schema
// (protobufjs, the .proto files vendored by @elastic/mockotlpserver), not with
// the code under test, and compared with values worked out by hand.
import { test, after } from 'node:test';
import { runUntilExit } from './support/exit-by-itself.js';
import assert from 'node:assert/strict';
import { diag, DiagLogLevel } from '@opentelemetry/api';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as Protobuf from '../packages/sidecar/node_modules/protobufjs/index.js';
import {
  MetricsReader,
  OtlpFileExporter,
  OtlpFileMetricExporter,
  OtlpNetworkMetricExporter,
  createMetricsReader,
  resolveOtlpConfig,
  resolveOtlpMetricsConfig,
  type MetricExporter,
  type OtlpProtocol,
} from '../packages/sidecar/src/otlp/index.js';
import { LATENCY_BUCKETS, ToolMetrics, type DropReason, type SyscallAggregate } from '../packages/sidecar/src/tool-metrics.js';
import { SCOPE_VERSION, loadOtlpService, manySpans, protobuf, startCollector, summarize as summarizeTraces, spansOf, type Collector } from './otlp-schema.js';

// ---------------------------------------------------------------------------
// The official schema, and one plain shape for a request in either encoding

const requestType = loadOtlpService('metrics').request;
const TO_OBJECT = { longs: String, enums: Number, defaults: false } as const;

/** A binary ExportMetricsServiceRequest, decoded with the official schema. */
function fromProtobuf(body: Uint8Array): unknown {
  return requestType.toObject(requestType.decode(body), TO_OBJECT);
}

/** An OTLP/JSON ExportMetricsServiceRequest, checked against the official schema, then read through it. */
function fromJson(document: unknown): unknown {
  const violations: string[] = [];
  checkJson(document, requestType, '$', violations);
  assert.deepEqual(violations, [], 'the document is valid OTLP/JSON');
  return requestType.toObject(requestType.fromObject(document as Record<string, unknown>), TO_OBJECT);
}

const INT64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** OTLP/JSON rules: lowerCamelCase field names of the schema, enums as integers, timestamps as decimal strings. */
function checkJson(value: unknown, type: Protobuf.Type, where: string, out: string[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    out.push(`${where}: expected an object for ${type.name}`);
    return;
  }
  for (const [key, fieldValue] of Object.entries(value)) {
    const field = type.fields[key];
    if (field === undefined) {
      out.push(`${where}.${key}: no such field in ${type.name}`);
      continue;
    }
    const items: unknown[] = field.repeated ? (Array.isArray(fieldValue) ? fieldValue : []) : [fieldValue];
    if (field.repeated && !Array.isArray(fieldValue)) out.push(`${where}.${key}: repeated field must be an array`);
    items.forEach((item, i) => {
      const at = field.repeated ? `${where}.${key}[${i}]` : `${where}.${key}`;
      const resolved = field.resolvedType;
      if (resolved instanceof protobuf.Type) checkJson(item, resolved, at, out);
      else if (resolved instanceof protobuf.Enum) {
        if (!Number.isInteger(item) || !Object.values(resolved.values).includes(item as number)) out.push(`${at}: enum ${resolved.name} must be one of its integers`);
      } else if (INT64.has(field.type)) {
        const ok = field.name.endsWith('UnixNano')
          ? typeof item === 'string' && /^\d+$/.test(item)
          : (typeof item === 'string' && /^-?\d+$/.test(item)) || Number.isSafeInteger(item);
        if (!ok) out.push(`${at}: 64-bit integer ${field.name} must be a decimal string${field.name.endsWith('UnixNano') ? '' : ' or a safe integer'}`);
      } else if (field.type === 'double' && typeof item !== 'number') out.push(`${at}: expected a number`);
      else if (field.type === 'string' && typeof item !== 'string') out.push(`${at}: expected a string`);
      else if (field.type === 'bool' && typeof item !== 'boolean') out.push(`${at}: expected a boolean`);
    });
  }
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function attributes(v: unknown): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list(v)) {
    const value = obj(obj(kv)['value']);
    const key = String(obj(kv)['key']);
    if ('stringValue' in value) out[key] = String(value['stringValue']);
    else if ('intValue' in value) out[key] = Number(value['intValue']);
    else if ('boolValue' in value) out[key] = value['boolValue'] === true;
    else if ('doubleValue' in value) out[key] = Number(value['doubleValue']);
  }
  return out;
}

interface Point {
  attributes: Record<string, string | number | boolean>;
  start: string;
  time: string;
  /** Sums: the integer value. */
  value?: number;
  /** Histograms. */
  count?: number;
  sum?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
}

interface Metric {
  name: string;
  unit: string;
  type: 'sum' | 'histogram' | 'other';
  /** 2 = AGGREGATION_TEMPORALITY_CUMULATIVE */
  temporality: number;
  monotonic: boolean;
  points: Point[];
}

interface Summary {
  resource: Record<string, string | number | boolean>;
  scope: string;
  metrics: Metric[];
}

/** The one resource and scope of a request, its metrics by name. */
function summarize(request: unknown): Summary {
  const resources = list(obj(request)['resourceMetrics']);
  assert.equal(resources.length, 1, 'one resource');
  const rm = obj(resources[0]);
  const scopes = list(rm['scopeMetrics']);
  assert.equal(scopes.length, 1, 'one scope');
  const sm = obj(scopes[0]);
  const scope = obj(sm['scope']);
  return {
    resource: attributes(obj(rm['resource'])['attributes']),
    scope: `${String(scope['name'])}@${String(scope['version'])}`,
    metrics: list(sm['metrics']).map((m): Metric => {
      const metric = obj(m);
      const sum = obj(metric['sum']);
      const histogram = obj(metric['histogram']);
      const type = 'sum' in metric ? 'sum' : 'histogram' in metric ? 'histogram' : 'other';
      const body = type === 'sum' ? sum : histogram;
      return {
        name: String(metric['name']),
        unit: String(metric['unit'] ?? ''),
        type,
        temporality: Number(body['aggregationTemporality'] ?? 0),
        monotonic: body['isMonotonic'] === true,
        points: list(body['dataPoints']).map((p): Point => {
          const dp = obj(p);
          const point: Point = {
            attributes: attributes(dp['attributes']),
            start: String(dp['startTimeUnixNano']),
            time: String(dp['timeUnixNano']),
          };
          if ('asInt' in dp) point.value = Number(dp['asInt']);
          if (type === 'histogram') {
            point.count = Number(dp['count']);
            point.sum = Number(dp['sum']);
            point.bucketCounts = list(dp['bucketCounts']).map(Number);
            point.explicitBounds = list(dp['explicitBounds']).map(Number);
          }
          return point;
        }),
      };
    }),
  };
}

function metric(summary: Summary, name: string): Metric {
  const found = summary.metrics.find((m) => m.name === name);
  assert.ok(found, `metric ${name} in ${summary.metrics.map((m) => m.name).join(', ')}`);
  return found;
}

/** Points keyed by their attributes (sorted key=value pairs), for order-free comparison. */
function byAttributes(m: Metric): Record<string, Point> {
  const out: Record<string, Point> = {};
  for (const p of m.points) {
    const key = Object.entries(p.attributes).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${String(v)}`).join(',');
    assert.equal(out[key], undefined, `two points of ${m.name} with attributes ${key}`);
    out[key] = p;
  }
  return out;
}

function values(m: Metric): Record<string, number | undefined> {
  return Object.fromEntries(Object.entries(byAttributes(m)).map(([k, p]) => [k, p.value]));
}

// ---------------------------------------------------------------------------
// Aggregates as the kernel hands them over, and what they must come out as

function buckets(entries: Record<number, number>): number[] {
  const out = new Array<number>(LATENCY_BUCKETS).fill(0);
  for (const [i, n] of Object.entries(entries)) out[Number(i)] = n;
  return out;
}

function agg(calls: number, errors: number, bytes: number, latencySumNs: number, hist: Record<number, number>): SyscallAggregate {
  return { calls, errors, bytes, latencySumNs, latencyBuckets: buckets(hist) };
}

// First span of read_file: 3 reads of 1.5 µs, 1.7 µs (bucket 10: [1024, 2048) ns) and 3 µs (bucket 11), 4096 bytes, one failed
// read; one open of 40 µs (bucket 15: [32768, 65536) ns).
const READ_1 = agg(3, 1, 4096, 1500 + 1700 + 3000, { 10: 2, 11: 1 });
const OPEN_1 = agg(1, 0, 0, 40_000, { 15: 1 });
// Second span of read_file: 2 reads, one of 0 ns (bucket 0) and one of 10 minutes (the open-ended last bucket).
const READ_2 = agg(2, 0, 100, 600_000_000_000, { 0: 1, 39: 1 });
// fetch: a connect of 250 µs (bucket 17), a send and two recvs.
const CONNECT = agg(1, 0, 0, 250_000, { 17: 1 });
const SEND = agg(1, 0, 512, 8_000, { 12: 1 });
const RECV = agg(2, 0, 70_000, 30_000, { 13: 1, 14: 1 });

/** The kernel's powers of two, 2^1 .. 2^39 ns, in seconds. */
const BOUNDS = Array.from({ length: 39 }, (_, i) => 2 ** (i + 1) / 1e9);

const NAMES = [
  'agentrace.tool.syscall.duration',
  'agentrace.tool.syscalls',
  'agentrace.tool.syscall.errors',
  'agentrace.tool.io.bytes',
  'agentrace.events.dropped',
  'agentrace.events.emitted',
  'agentrace.events.capped',
];

interface Counters {
  drops: Partial<Record<DropReason, number>>;
  emitted: number;
  capped: number;
}

function newMetrics(counters: Counters): ToolMetrics {
  return new ToolMetrics({
    resource: { 'service.name': 'agentrace-test', 'host.name': 'loopback' },
    loss: {
      drops: () => ({ ...counters.drops }),
      events: () => ({ emitted: counters.emitted, capped: counters.capped }),
    },
  });
}

/**
 * Checks a collection taken after READ_1 + OPEN_1 (and, when `second`, READ_2,
 * CONNECT, SEND, RECV) were recorded; every check is on values worked out above.
 */
function checkCollection(summary: Summary, second: boolean, counters: Counters): void {
  assert.deepEqual(summary.resource, { 'service.name': 'agentrace-test', 'host.name': 'loopback' });
  assert.equal(summary.scope, `agentrace@${SCOPE_VERSION}`);
  assert.deepEqual(summary.metrics.map((m) => m.name).sort(), [...NAMES].sort());
  for (const m of summary.metrics) {
    assert.equal(m.temporality, 2, `${m.name} is cumulative`);
    if (m.type === 'sum') assert.equal(m.monotonic, true, `${m.name} is monotonic`);
  }
  const units = Object.fromEntries(summary.metrics.map((m) => [m.name, `${m.type} ${m.unit}`]));
  assert.deepEqual(units, {
    'agentrace.tool.syscall.duration': 'histogram s',
    'agentrace.tool.syscalls': 'sum {call}',
    'agentrace.tool.syscall.errors': 'sum {call}',
    'agentrace.tool.io.bytes': 'sum By',
    'agentrace.events.dropped': 'sum {event}',
    'agentrace.events.emitted': 'sum {event}',
    'agentrace.events.capped': 'sum {event}',
  });

  const duration = byAttributes(metric(summary, 'agentrace.tool.syscall.duration'));
  const expectedHistograms: Record<string, { count: number; sumNs: number; buckets: Record<number, number> }> = {
    'agentrace.syscall=read,gen_ai.tool.name=read_file': second
      ? { count: 5, sumNs: 6200 + 600_000_000_000, buckets: { 0: 1, 10: 2, 11: 1, 39: 1 } }
      : { count: 3, sumNs: 6200, buckets: { 10: 2, 11: 1 } },
    'agentrace.syscall=open,gen_ai.tool.name=read_file': { count: 1, sumNs: 40_000, buckets: { 15: 1 } },
    ...(second
      ? {
          'agentrace.syscall=connect,gen_ai.tool.name=fetch': { count: 1, sumNs: 250_000, buckets: { 17: 1 } },
          'agentrace.syscall=send,gen_ai.tool.name=fetch': { count: 1, sumNs: 8_000, buckets: { 12: 1 } },
          'agentrace.syscall=recv,gen_ai.tool.name=fetch': { count: 2, sumNs: 30_000, buckets: { 13: 1, 14: 1 } },
        }
      : {}),
  };
  assert.deepEqual(Object.keys(duration).sort(), Object.keys(expectedHistograms).sort());
  for (const [key, want] of Object.entries(expectedHistograms)) {
    const p = duration[key]!;
    assert.equal(p.count, want.count, `${key} count`);
    assert.ok(Math.abs(p.sum! - want.sumNs / 1e9) <= 1e-15 * Math.max(1, want.sumNs / 1e9), `${key} sum ${p.sum} s, want ${want.sumNs} ns`);
    assert.deepEqual(p.bucketCounts, buckets(want.buckets), `${key} buckets`);
    assert.deepEqual(p.explicitBounds, BOUNDS, `${key} bounds`);
    assert.equal(p.bucketCounts!.length, p.explicitBounds!.length + 1);
  }

  const calls = { 'agentrace.syscall=read,gen_ai.tool.name=read_file': second ? 5 : 3, 'agentrace.syscall=open,gen_ai.tool.name=read_file': 1 };
  const fetchCalls = { 'agentrace.syscall=connect,gen_ai.tool.name=fetch': 1, 'agentrace.syscall=send,gen_ai.tool.name=fetch': 1, 'agentrace.syscall=recv,gen_ai.tool.name=fetch': 2 };
  assert.deepEqual(values(metric(summary, 'agentrace.tool.syscalls')), second ? { ...calls, ...fetchCalls } : calls);
  const errors = { 'agentrace.syscall=read,gen_ai.tool.name=read_file': 1, 'agentrace.syscall=open,gen_ai.tool.name=read_file': 0 };
  const fetchErrors = { 'agentrace.syscall=connect,gen_ai.tool.name=fetch': 0, 'agentrace.syscall=send,gen_ai.tool.name=fetch': 0, 'agentrace.syscall=recv,gen_ai.tool.name=fetch': 0 };
  assert.deepEqual(values(metric(summary, 'agentrace.tool.syscall.errors')), second ? { ...errors, ...fetchErrors } : errors);
  const bytes = { 'agentrace.io.direction=read,gen_ai.tool.name=read_file': second ? 4196 : 4096 };
  const fetchBytes = { 'agentrace.io.direction=send,gen_ai.tool.name=fetch': 512, 'agentrace.io.direction=recv,gen_ai.tool.name=fetch': 70_000 };
  assert.deepEqual(values(metric(summary, 'agentrace.tool.io.bytes')), second ? { ...bytes, ...fetchBytes } : bytes);

  assert.deepEqual(
    values(metric(summary, 'agentrace.events.dropped')),
    Object.fromEntries(Object.entries(counters.drops).map(([reason, n]) => [`agentrace.drop.reason=${reason}`, n])),
  );
  assert.deepEqual(values(metric(summary, 'agentrace.events.emitted')), { '': counters.emitted });
  assert.deepEqual(values(metric(summary, 'agentrace.events.capped')), { '': counters.capped });
}

/** Every point of a collection shares the reader's start time and the collection's time. */
function times(summary: Summary): { start: string; time: string } {
  const starts = new Set(summary.metrics.flatMap((m) => m.points.map((p) => p.start)));
  const ends = new Set(summary.metrics.flatMap((m) => m.points.map((p) => p.time)));
  assert.equal(starts.size, 1, 'one start time');
  assert.equal(ends.size, 1, 'one collection time');
  const start = [...starts][0]!;
  const time = [...ends][0]!;
  assert.ok(BigInt(start) <= BigInt(time));
  return { start, time };
}

/** Records the first spans, exports, records the second ones, exports again; returns both requests' summaries. */
async function twoCollections(
  reader: MetricsReader,
  metrics: ToolMetrics,
  counters: Counters,
  received: () => Summary[],
): Promise<void> {
  const before = BigInt(Date.now()) * 1_000_000n;
  metrics.record('read_file', { read: READ_1, open: OPEN_1 });
  await reader.collectAndExport();
  let got = received();
  assert.equal(got.length, 1);
  checkCollection(got[0]!, false, counters);
  const first = times(got[0]!);

  counters.drops.ringbuf_full = (counters.drops.ringbuf_full ?? 0) + 5;
  counters.emitted += 1000;
  counters.capped += 3;
  metrics.record('read_file', { read: READ_2 });
  metrics.record('fetch', { connect: CONNECT, send: SEND, recv: RECV });
  await new Promise((r) => setTimeout(r, 5));
  await reader.collectAndExport();
  got = received();
  assert.equal(got.length, 2);
  checkCollection(got[1]!, true, counters);
  const second = times(got[1]!);
  assert.equal(second.start, first.start, 'cumulative: the start time does not move');
  assert.ok(BigInt(second.time) > BigInt(first.time));
  assert.ok(BigInt(first.start) <= before, 'the start time is the construction time');
  assert.deepEqual(reader.stats(), { exported: 2, dropped: 0, failed: 0 });
}

// ---------------------------------------------------------------------------

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-otlp-metrics-'));
const collectors: Collector[] = [];
const readers: MetricsReader[] = [];
after(async () => {
  await Promise.all(readers.map((r) => r.shutdown(200)));
  await Promise.all(collectors.map((c) => c.close()));
  fs.rmSync(root, { recursive: true, force: true });
});

async function collector(reply?: Parameters<typeof startCollector>[0]): Promise<Collector & { metricsUrl: string }> {
  const c = await startCollector(reply);
  collectors.push(c);
  return { ...c, metricsUrl: c.url.replace(/\/v1\/traces$/, '/v1/metrics') };
}

function reader(metrics: ToolMetrics, exporters: MetricExporter[], errors: Error[] = []): MetricsReader {
  const r = new MetricsReader(metrics, exporters, { onError: (e) => errors.push(e) });
  readers.push(r);
  return r;
}

function readLines(file: string): Obj[] {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'), 'every line ends with a newline');
  return text.slice(0, -1).split('\n').map((line) => JSON.parse(line) as Obj);
}

function initialCounters(): Counters {
  return { drops: { ringbuf_full: 2, map_full: 0, exporter_queue_full: 7, decode_error: 0 }, emitted: 40, capped: 1 };
}

test('JSON lines file: ExportMetricsServiceRequest lines beside the traces, cumulative across two records', async () => {
  const file = path.join(root, 'run/agentrace.jsonl');
  const counters = initialCounters();
  const metrics = newMetrics(counters);
  const spans = new OtlpFileExporter({ path: file, scheduleDelayMs: 60_000 });
  const errors: Error[] = [];
  const r = reader(metrics, [new OtlpFileMetricExporter({ path: file, onError: (e) => errors.push(e) })], errors);
  assert.equal(r.description, `OTLP file ${file}`);

  spans.export(manySpans(2));
  await spans.flush(5000);
  const metricLines = (): Summary[] =>
    readLines(file).filter((l) => 'resourceMetrics' in l).map((l) => summarize(fromJson(l)));
  await twoCollections(r, metrics, counters, metricLines);
  spans.export(manySpans(1, 2));
  await spans.shutdown(5000);

  const lines = readLines(file);
  assert.deepEqual(lines.map((l) => Object.keys(l)), [['resourceSpans'], ['resourceMetrics'], ['resourceMetrics'], ['resourceSpans']]);
  assert.equal(spansOf(summarizeTraces(lines[0])).length + spansOf(summarizeTraces(lines[3])).length, 3);
  // OTLP/JSON on the raw text: camelCase names, 64-bit timestamps as strings, the enum as an integer
  const text = JSON.stringify(lines[1]);
  assert.match(text, /"aggregationTemporality":2/);
  assert.match(text, /"startTimeUnixNano":"\d+"/);
  assert.doesNotMatch(text, /start_time_unix_nano|bucket_counts|explicit_bounds/);
  assert.deepEqual(errors, []);
});

for (const protocol of ['http/protobuf', 'http/json'] as OtlpProtocol[]) {
  test(`${protocol}: POST /v1/metrics, decoded with the official schema, cumulative across two records`, async () => {
    const c = await collector();
    const counters = initialCounters();
    const metrics = newMetrics(counters);
    const errors: Error[] = [];
    const exporter = new OtlpNetworkMetricExporter({ url: c.metricsUrl, protocol, headers: { 'X-Api-Key': 'k1' }, onError: (e) => errors.push(e) });
    const r = reader(metrics, [exporter], errors);
    assert.equal(r.description, `OTLP ${protocol} ${c.metricsUrl}`);
    const decode = (body: Buffer): unknown =>
      protocol === 'http/json' ? fromJson(JSON.parse(body.toString('utf8'))) : fromProtobuf(body);
    await twoCollections(r, metrics, counters, () => c.received.map((req) => summarize(decode(req.body))));
    for (const req of c.received) {
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/v1/metrics');
      assert.equal(req.headers['content-type'], protocol === 'http/json' ? 'application/json' : 'application/x-protobuf');
      assert.equal(req.headers['x-api-key'], 'k1');
      assert.match(String(req.headers['user-agent']), /^agentrace\//);
    }
    assert.deepEqual(errors, []);
  });
}

test('loss counters: every reason given is exported (0 too); a counter that starts over gets a new start time', async () => {
  const c = await collector();
  const drops: Partial<Record<DropReason, number>> = { ringbuf_full: 11, map_full: 0 };
  const metrics = new ToolMetrics({ loss: { drops: () => drops } });
  const r = reader(metrics, [new OtlpNetworkMetricExporter({ url: c.metricsUrl })]);
  await r.collectAndExport();
  drops.exporter_queue_full = 4;
  drops.decode_error = 1;
  await r.collectAndExport();
  drops.ringbuf_full = 2; // e.g. the probes were reloaded
  await new Promise((res) => setTimeout(res, 5));
  await r.collectAndExport();
  const got = c.received.map((req) => summarize(fromProtobuf(req.body)));
  // no tool span recorded and no events source: only the loss metric
  assert.deepEqual(got.map((s) => s.metrics.map((m) => m.name)), [['agentrace.events.dropped'], ['agentrace.events.dropped'], ['agentrace.events.dropped']]);
  assert.deepEqual(got[0]!.resource, { 'service.name': 'agentrace' });
  const dropped = got.map((s) => byAttributes(metric(s, 'agentrace.events.dropped')));
  assert.deepEqual(values(metric(got[0]!, 'agentrace.events.dropped')), {
    'agentrace.drop.reason=ringbuf_full': 11,
    'agentrace.drop.reason=map_full': 0,
  });
  assert.deepEqual(values(metric(got[1]!, 'agentrace.events.dropped')), {
    'agentrace.drop.reason=ringbuf_full': 11,
    'agentrace.drop.reason=map_full': 0,
    'agentrace.drop.reason=exporter_queue_full': 4,
    'agentrace.drop.reason=decode_error': 1,
  });
  assert.equal(values(metric(got[2]!, 'agentrace.events.dropped'))['agentrace.drop.reason=ringbuf_full'], 2);
  const start = (i: number, reason: string): bigint => BigInt(dropped[i]![`agentrace.drop.reason=${reason}`]!.start);
  assert.equal(start(1, 'ringbuf_full'), start(0, 'ringbuf_full'));
  assert.equal(start(1, 'exporter_queue_full'), start(0, 'ringbuf_full'), 'a reason seen later still counts from the start');
  assert.ok(start(2, 'ringbuf_full') > start(1, 'ringbuf_full'), 'the reset series starts again');
  assert.equal(start(2, 'map_full'), start(0, 'map_full'));
});

test('a failing counter source is reported and left out; the rest is exported', async () => {
  const file = path.join(root, 'failing-source.jsonl');
  const errors: Error[] = [];
  const metrics = new ToolMetrics({
    loss: {
      drops: () => {
        throw new Error('kernel stats map gone');
      },
    },
  });
  metrics.record('t', { write: agg(1, 0, 3, 900, { 9: 1 }) });
  const r = reader(metrics, [new OtlpFileMetricExporter({ path: file })], errors);
  await r.collectAndExport();
  const s = summarize(fromJson(readLines(file)[0]));
  assert.deepEqual(s.metrics.map((m) => m.name), [
    'agentrace.tool.syscall.duration',
    'agentrace.tool.syscalls',
    'agentrace.tool.syscall.errors',
    'agentrace.tool.io.bytes',
  ]);
  assert.deepEqual(values(metric(s, 'agentrace.tool.io.bytes')), { 'agentrace.io.direction=write,gen_ai.tool.name=t': 3 });
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /reading the drops counters failed: kernel stats map gone/);
});

test('hostile aggregates: unknown kinds, negative or NaN values and empty aggregates are ignored; a longer histogram folds into the last bucket', async () => {
  const file = path.join(root, 'hostile.jsonl');
  const metrics = new ToolMetrics({ loss: { drops: () => ({}) } });
  const long = new Array<number>(LATENCY_BUCKETS + 3).fill(0);
  long[2] = 1;
  long[LATENCY_BUCKETS - 1] = 1;
  long[LATENCY_BUCKETS + 2] = 2;
  metrics.record('t', {
    read: { calls: 4, errors: -1, bytes: Number.NaN, latencySumNs: 5, latencyBuckets: long },
    open: agg(0, 0, 0, 0, {}),
    ...({ fork: agg(9, 0, 0, 9, { 3: 9 }) } as Record<string, SyscallAggregate>),
  });
  const r = reader(metrics, [new OtlpFileMetricExporter({ path: file })]);
  await r.collectAndExport();
  const s = summarize(fromJson(readLines(file)[0]));
  assert.deepEqual(values(metric(s, 'agentrace.tool.syscalls')), { 'agentrace.syscall=read,gen_ai.tool.name=t': 4 });
  assert.deepEqual(values(metric(s, 'agentrace.tool.syscall.errors')), { 'agentrace.syscall=read,gen_ai.tool.name=t': 0 });
  assert.deepEqual(values(metric(s, 'agentrace.tool.io.bytes')), { 'agentrace.io.direction=read,gen_ai.tool.name=t': 0 });
  const h = metric(s, 'agentrace.tool.syscall.duration').points[0]!;
  assert.equal(h.count, 4);
  assert.deepEqual(h.bucketCounts, buckets({ 2: 1, [LATENCY_BUCKETS - 1]: 3 }));
});

test('a tool name is the agent’s word: the same name from two users makes two series, told apart by the kernel’s uid and container', async () => {
  const file = path.join(root, 'who.jsonl');
  const metrics = new ToolMetrics({ loss: { drops: () => ({}) } });
  metrics.record('victim_tool', { read: agg(1, 0, 10, 100, { 6: 1 }) }, { 'process.user.id': 0 });
  metrics.record('victim_tool', { read: agg(5, 0, 10, 100, { 6: 5 }) }, { 'process.user.id': 65534, 'container.id': 'c0ffee' });
  metrics.record('victim_tool', { read: agg(1, 0, 10, 100, { 6: 1 }) }, { 'process.user.id': 0 });
  const r = reader(metrics, [new OtlpFileMetricExporter({ path: file })]);
  await r.collectAndExport();
  const s = summarize(fromJson(readLines(file)[0]));
  assert.deepEqual(values(metric(s, 'agentrace.tool.syscalls')), {
    'agentrace.syscall=read,gen_ai.tool.name=victim_tool,process.user.id=0': 2,
    'agentrace.syscall=read,container.id=c0ffee,gen_ai.tool.name=victim_tool,process.user.id=65534': 5,
  });
});

test('cardinality limit: tool names beyond it go to one overflow series per kind', async () => {
  const file = path.join(root, 'overflow.jsonl');
  const metrics = new ToolMetrics({ loss: { drops: () => ({}) }, cardinalityLimit: 2 });
  for (const tool of ['a', 'b', 'c', 'd']) metrics.record(tool, { read: agg(1, 0, 10, 100, { 6: 1 }) });
  metrics.record('a', { read: agg(1, 0, 10, 100, { 6: 1 }) });
  metrics.record('e', { connect: agg(1, 1, 0, 100, { 6: 1 }) });
  const r = reader(metrics, [new OtlpFileMetricExporter({ path: file })]);
  await r.collectAndExport();
  const s = summarize(fromJson(readLines(file)[0]));
  assert.deepEqual(values(metric(s, 'agentrace.tool.syscalls')), {
    'agentrace.syscall=read,gen_ai.tool.name=a': 2,
    'agentrace.syscall=read,gen_ai.tool.name=b': 1,
    'agentrace.syscall=read,otel.metric.overflow=true': 2,
    'agentrace.syscall=connect,otel.metric.overflow=true': 1,
  });
  assert.equal(byAttributes(metric(s, 'agentrace.tool.syscall.duration'))['agentrace.syscall=read,otel.metric.overflow=true']?.count, 2);
  assert.throws(() => new ToolMetrics({ loss: { drops: () => ({}) }, cardinalityLimit: 0 }), /cardinalityLimit must be a positive integer/);
});

test('export failures never throw: counted as failed and reported', async () => {
  const c = await collector((_req, i, res) => {
    if (i === 0) res.writeHead(503).end();
    else if (i === 1) res.writeHead(200).end();
    else res.writeHead(400, { 'content-type': 'text/plain' }).end('bad metric');
  });
  const errors: Error[] = [];
  const metrics = newMetrics(initialCounters());
  metrics.record('read_file', { read: READ_1 });
  const r = reader(metrics, [new OtlpNetworkMetricExporter({ url: c.metricsUrl, timeoutMs: 5000, onError: (e) => errors.push(e) })]);
  await r.collectAndExport(); // 503, retried after ~1 s, 200
  await r.collectAndExport(); // 400: not retried
  assert.equal(c.received.length, 3);
  assert.deepEqual(r.stats(), { exported: 1, dropped: 0, failed: 1 });
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /^metrics to http:\/\/127\.0\.0\.1:\d+\/v1\/metrics: export failed: HTTP 400 Bad Request: bad metric$/);

  // connection refused: given up within the timeout, still without a throw
  const closed = await collector();
  await closed.close();
  const r2 = reader(metrics, [new OtlpNetworkMetricExporter({ url: closed.metricsUrl, timeoutMs: 200, onError: (e) => errors.push(e) })]);
  await r2.collectAndExport();
  assert.deepEqual(r2.stats(), { exported: 0, dropped: 0, failed: 1 });
  assert.match(errors[1]!.message, /ECONNREFUSED/);

  // an unwritable file
  const blocker = path.join(root, 'not-a-dir');
  fs.writeFileSync(blocker, 'x');
  const r3 = reader(metrics, [new OtlpFileMetricExporter({ path: path.join(blocker, 'm.jsonl'), onError: (e) => errors.push(e) })]);
  await r3.collectAndExport();
  assert.deepEqual(r3.stats(), { exported: 0, dropped: 0, failed: 1 });
  assert.match(errors[2]!.message, /metrics not written: cannot append to .*not-a-dir/);
});

test('partial success (http/json): exported, and the collector\'s message reaches the OpenTelemetry diag logger', async (t) => {
  const warnings: string[] = [];
  const log = (...args: unknown[]): void => void warnings.push(args.map(String).join(' '));
  diag.setLogger({ error: log, warn: log, info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);
  t.after(() => diag.disable());
  const c = await collector((_req, _i, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ partialSuccess: { rejectedDataPoints: '2', errorMessage: 'too old' } })),
  );
  const errors: Error[] = [];
  const metrics = newMetrics(initialCounters());
  const r = reader(metrics, [new OtlpNetworkMetricExporter({ url: c.metricsUrl, protocol: 'http/json', onError: (e) => errors.push(e) })]);
  await r.collectAndExport();
  assert.deepEqual(r.stats(), { exported: 1, dropped: 0, failed: 0 });
  assert.deepEqual(errors, []);
  assert.ok(warnings.some((w) => /Partial Success.*too old/.test(w)), warnings.join('\n'));
});

test('one export in flight per exporter: a newer collection replaces the waiting one; shutdown sends a final collection', async () => {
  const hung: import('node:http').ServerResponse[] = [];
  const c = await collector((_req, i, res) => {
    if (i === 0) hung.push(res); // the first export hangs until released
    else res.writeHead(200).end();
  });
  const counters = initialCounters();
  const metrics = newMetrics(counters);
  const r = reader(metrics, [new OtlpNetworkMetricExporter({ url: c.metricsUrl })]);
  const first = r.collectAndExport();
  await c.waitFor(1);
  counters.emitted = 41;
  const second = r.collectAndExport();
  counters.emitted = 42;
  const third = r.collectAndExport();
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(c.received.length, 1, 'nothing else is sent while an export is in flight');
  hung[0]!.writeHead(200).end();
  await Promise.all([first, second, third]);
  assert.equal(c.received.length, 2);
  const emitted = (i: number): number | undefined => values(metric(summarize(fromProtobuf(c.received[i]!.body)), 'agentrace.events.emitted'))[''];
  assert.equal(emitted(1), 42, 'the newest collection is the one sent');
  assert.deepEqual(r.stats(), { exported: 2, dropped: 1, failed: 0 });

  counters.emitted = 43;
  await r.shutdown(5000);
  assert.equal(c.received.length, 3);
  assert.equal(emitted(2), 43, 'shutdown exported a final collection');
  await r.collectAndExport(); // after shutdown: nothing, and no throw
  await r.flush(100);
  assert.equal(c.received.length, 3);
});

test('shutdown is bounded when the collector hangs, and counts the export it stopped waiting for as failed', async () => {
  const hung: import('node:http').ServerResponse[] = [];
  const c = await collector((_req, _i, res) => hung.push(res));
  const metrics = newMetrics(initialCounters());
  const r = reader(metrics, [new OtlpNetworkMetricExporter({ url: c.metricsUrl, timeoutMs: 60_000 })]);
  void r.collectAndExport();
  await c.waitFor(1);
  const t0 = Date.now();
  await r.shutdown(300);
  const took = Date.now() - t0;
  assert.ok(took >= 250 && took < 2000, `shutdown(300) took ${took} ms`);
  // the hung export was given up (failed); the final collection waited behind it and was never sent (dropped)
  assert.deepEqual(r.stats(), { exported: 0, dropped: 1, failed: 1 });
  for (const res of hung) res.destroy();
});

test('periodic export every OTEL_METRIC_EXPORT_INTERVAL ms, through the resolved configuration', async () => {
  const c = await collector();
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: c.url.replace(/\/v1\/traces$/, ''), OTEL_METRIC_EXPORT_INTERVAL: '100' };
  const traces = resolveOtlpConfig({}, env, { cwd: root });
  const config = resolveOtlpMetricsConfig({}, env, traces);
  assert.equal(config.intervalMs, 100);
  const metrics = newMetrics(initialCounters());
  metrics.record('read_file', { read: READ_1 });
  const r = createMetricsReader(metrics, config);
  readers.push(r);
  assert.equal(r.description, `OTLP http/protobuf ${c.metricsUrl}`);
  const t0 = Date.now();
  r.start();
  r.start(); // idempotent
  await c.waitFor(3, 5000);
  const took = Date.now() - t0;
  assert.ok(took >= 280, `3 exports at a 100 ms interval took only ${took} ms`);
  await r.shutdown(2000);
  const sent = c.received.length;
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(c.received.length, sent, 'no export after shutdown');
  for (const req of c.received) assert.equal(req.url, '/v1/metrics');
  const last = summarize(fromProtobuf(c.received.at(-1)!.body));
  assert.deepEqual(values(metric(last, 'agentrace.tool.syscalls')), { 'agentrace.syscall=read,gen_ai.tool.name=read_file': 3 });
});

test('traces and metrics share the file: large lines from both never interleave', async () => {
  const file = path.join(root, 'shared.jsonl');
  const spans = new OtlpFileExporter({ path: file, scheduleDelayMs: 60_000, maxBatchSize: 100 });
  // > 512 KiB per traces line: Node writes such a buffer in several write() calls
  const big = manySpans(100).map((s) => ({ ...s, attributes: { blob: 'x'.repeat(8000) } }));
  const metrics = newMetrics(initialCounters());
  for (let i = 0; i < 300; i++) metrics.record(`tool-${i}`, { read: READ_1, write: READ_1, open: OPEN_1 });
  const r = reader(metrics, [new OtlpFileMetricExporter({ path: file })]);
  const work: Promise<void>[] = [];
  for (let i = 0; i < 4; i++) {
    spans.export(big);
    work.push(spans.flush(10_000), r.collectAndExport(), r.collectAndExport());
  }
  await Promise.all(work);
  await spans.shutdown(5000);
  await r.shutdown(5000);
  const lines = readLines(file);
  assert.ok(lines.some((l) => JSON.stringify(l).length > 512 * 1024), 'a traces line is above 512 KiB');
  assert.equal(lines.filter((l) => 'resourceSpans' in l).length, 4);
  // 8 collections plus the final one at shutdown: each written, or replaced by a newer one while a write was in flight
  const stats = r.stats();
  assert.equal(lines.filter((l) => 'resourceMetrics' in l).length, stats.exported);
  assert.ok(stats.exported >= 2, `${stats.exported} metrics lines`);
  assert.deepEqual({ ...stats, exported: 0 }, { exported: 0, dropped: 9 - stats.exported, failed: 0 });
});

test('an idle reader keeps no process alive (its timer is unref\'d)', async () => {
  const c = await collector();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-metrics-idle-'));
  const script = path.join(dir, 'idle.mts');
  const src = (file: string): string => JSON.stringify(pathToFileURL(fileURLToPath(new URL(`../packages/sidecar/src/${file}`, import.meta.url))).href);
  fs.writeFileSync(
    script,
    `import { MetricsReader, OtlpNetworkMetricExporter } from ${src('otlp/index.ts')};
import { ToolMetrics } from ${src('tool-metrics.ts')};
const m = new ToolMetrics({ loss: { drops: () => ({ ringbuf_full: 0 }) } });
const r = new MetricsReader(m, [new OtlpNetworkMetricExporter({ url: ${JSON.stringify(c.metricsUrl)} })], { intervalMs: 60000 });
r.start();
await r.collectAndExport();
console.log(JSON.stringify(r.stats()));
`,
  );
  const { code, out, lingeredMs } = await runUntilExit(script);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, 'the child should exit by itself');
  assert.deepEqual(JSON.parse(out.trim()), { exported: 1, dropped: 0, failed: 0 });
  assert.ok(lingeredMs < 2000, `the child lingered ${lingeredMs} ms after its last work`);
});

test('one resource per agent: each agent\'s tool series under its own resource (OTLP), labelled with its service.name in the merged view (Prometheus); idle agents forgotten, the rest past maxAgents kept under the sidecar\'s resource', async () => {
  const metrics = new ToolMetrics({ resource: { 'service.name': 'agentrace-sidecar' }, loss: { drops: () => ({}) }, maxAgents: 2, agentIdleMs: 60_000 });
  const a = { 'service.name': 'agent-a', 'process.pid': 101 };
  const b = { 'process.pid': 202, 'service.name': 'agent-b', 'service.instance.id': 'b-1' };
  const t0 = Date.now();
  metrics.record('read_file', { read: READ_1 }, {}, a, t0);
  metrics.record('read_file', { read: READ_1 }, {}, b, t0);
  metrics.record('read_file', { read: READ_1 }, {}, { 'process.pid': 101, 'service.name': 'agent-a' }, t0); // same agent, other key order
  metrics.record('fetch', { connect: CONNECT }, {}, { 'service.name': 'agent-c' }, t0); // a third agent: no room
  const c = metrics.collect(t0 + 1000);
  type Rm = ReturnType<ToolMetrics['collect']>['resourceMetrics'];
  const calls = (rm: Rm): Record<string, number> =>
    Object.fromEntries(
      rm.scopeMetrics
        .flatMap((s) => s.metrics)
        .filter((m) => m.descriptor.name === 'agentrace.tool.syscalls')
        .flatMap((m) => m.dataPoints.map((p) => [JSON.stringify(Object.fromEntries(Object.entries(p.attributes).sort())), p.value as number])),
    );
  const key = (attributes: Record<string, unknown>): string => JSON.stringify(Object.fromEntries(Object.entries(attributes).sort()));
  assert.deepEqual(c.agents!.map((rm) => rm.resource.attributes), [a, b]);
  assert.deepEqual(calls(c.agents![0]!), { [key({ 'gen_ai.tool.name': 'read_file', 'agentrace.syscall': 'read' })]: 6 });
  assert.deepEqual(calls(c.agents![1]!), { [key({ 'gen_ai.tool.name': 'read_file', 'agentrace.syscall': 'read' })]: 3 });
  assert.deepEqual(calls(c.resourceMetrics), { [key({ 'service.name': 'agent-c', 'gen_ai.tool.name': 'fetch', 'agentrace.syscall': 'connect' })]: 1 }, 'past maxAgents: the sidecar\'s resource, the agent named on the point');
  assert.equal(c.agents![0]!.scopeMetrics[0]!.metrics[0]!.dataPoints[0]!.startTime[0], Math.floor(t0 / 1000), "an agent's series start with it");

  const merged = metrics.collectMerged(t0 + 1000);
  assert.deepEqual(merged.resourceMetrics.resource.attributes, { 'service.name': 'agentrace-sidecar' });
  assert.deepEqual(Object.keys(calls(merged.resourceMetrics)).map((k) => JSON.parse(k)['service.name']).sort(), ['agent-a', 'agent-b', 'agent-c']);
  assert.ok(Object.keys(calls(merged.resourceMetrics)).some((k) => JSON.parse(k)['service.instance.id'] === 'b-1'));

  // through the reader, to the file: one ExportMetricsServiceRequest line per resource
  const file = path.join(root, 'per-agent.jsonl');
  const r = reader(metrics, [new OtlpFileMetricExporter({ path: file })]);
  await r.collectAndExport();
  const services = readLines(file).map((l) => ((l['resourceMetrics'] as Obj[])[0]!['resource'] as { attributes: Array<{ key: string; value: { stringValue?: string } }> }).attributes.find((x) => x.key === 'service.name')?.value.stringValue);
  assert.deepEqual(services, ['agentrace-sidecar', 'agent-a', 'agent-b']);
  assert.deepEqual(r.stats(), { exported: 1, dropped: 0, failed: 0 }, 'one collection, exported whole');

  // b goes quiet past agentIdleMs: forgotten, its series ended; a records on
  metrics.record('read_file', { read: READ_1 }, {}, a, t0 + 50_000);
  const later = metrics.collect(t0 + 70_000);
  assert.deepEqual(later.agents!.map((rm) => rm.resource.attributes['service.name']), ['agent-a']);
  assert.equal(metrics.agentCount, 1);
});
