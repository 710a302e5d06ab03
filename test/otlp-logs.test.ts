// Kernel events as OTLP log records: the encoding (decoded with the official
// logs proto), the HTTP export to /v1/logs, the file lines, and where the
// configuration sends them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import {
  LOGS,
  OtlpFileExporter,
  OtlpNetworkExporter,
  SeverityNumber,
  createLogExporters,
  encodeLogs,
  resolveOtlpConfig,
  resolveOtlpLogsConfig,
  type ExportLogRecord,
  type ExportSpan,
} from '../packages/sidecar/src/otlp/index.js';
import { logRecordsOf } from '../packages/sidecar/src/kernel-logs.js';
import { loadOtlpService, startCollector, type Collector } from './otlp-schema.js';

const LogsRequest = loadOtlpService('logs').request;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-logs-'));
const collectors: Collector[] = [];
after(async () => {
  await Promise.all(collectors.map((c) => c.close()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const TOOL = 'b7ad6b7169203331';
const agentA = { 'service.name': 'agent-a', 'process.pid': 101 };
const agentB = { 'service.name': 'agent-b', 'process.pid': 202 };

/** Two kernel spans (a connect that failed, an open) and a tool span, as the sidecar emits them. */
function emitted(): ExportSpan[] {
  const span = (spanId: string, name: string, event: string | undefined, resource: Attributes, error = false): ExportSpan => ({
    traceId: TRACE,
    spanId,
    parentSpanId: TOOL,
    name,
    kind: SpanKind.INTERNAL,
    startTimeNs: 1_700_000_000_123_456_789n,
    endTimeNs: 1_700_000_000_223_456_789n,
    attributes: { 'process.pid': resource['process.pid'] as number, 'network.peer.port': 443 },
    status: { code: error ? SpanStatusCode.ERROR : SpanStatusCode.UNSET },
    resource,
    ...(event ? { event: { name: event, toolSpanId: TOOL } } : {}),
  });
  return [
    span('00000000000000a1', 'connect 10.0.0.1:443', 'agentrace.network.connect', agentA, true),
    span('00000000000000a2', 'open', 'agentrace.file.open', agentB),
    { ...span(TOOL, 'execute_tool fetch', undefined, agentA), parentSpanId: undefined },
  ];
}

test('one log record per kernel event span: its event.name, attributes, time, and its tool call\'s trace and span ids', () => {
  const records = logRecordsOf(emitted(), 1_700_000_001_000_000_000n);
  assert.equal(records.length, 2, 'the tool span itself is no event');
  const [connect, open] = records;
  assert.deepEqual(
    { ...connect, attributes: { ...connect!.attributes } },
    {
      timeNs: 1_700_000_000_123_456_789n,
      observedTimeNs: 1_700_000_001_000_000_000n,
      eventName: 'agentrace.network.connect',
      severityNumber: SeverityNumber.WARN,
      body: 'connect 10.0.0.1:443',
      attributes: { 'process.pid': 101, 'network.peer.port': 443 },
      traceId: TRACE,
      spanId: TOOL,
      resource: agentA,
    },
  );
  assert.equal(open!.severityNumber, SeverityNumber.INFO);
});

test('protobuf: an ExportLogsServiceRequest the official proto decodes, one ResourceLogs per agent', () => {
  const records = logRecordsOf(emitted(), 1_700_000_001_000_000_000n);
  const { body, count, invalid } = encodeLogs(records, 'protobuf');
  assert.equal(count, 2);
  assert.deepEqual(invalid, []);
  const req = LogsRequest.toObject(LogsRequest.decode(body!), { longs: String, bytes: String, defaults: false }) as {
    resourceLogs: Array<{ resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }; scopeLogs: Array<{ scope: { name: string }; logRecords: Array<Record<string, unknown>> }> }>;
  };
  assert.equal(req.resourceLogs.length, 2);
  const services = req.resourceLogs.map((r) => r.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue);
  assert.deepEqual(services, ['agent-a', 'agent-b']);
  const rec = req.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!;
  assert.equal(req.resourceLogs[0]!.scopeLogs[0]!.scope.name, 'agentrace', 'the sidecar\'s instrumentation scope');
  assert.equal(Buffer.from(rec.traceId as string, 'base64').toString('hex'), TRACE);
  assert.equal(Buffer.from(rec.spanId as string, 'base64').toString('hex'), TOOL);
  assert.equal(rec.timeUnixNano, '1700000000123456789');
  assert.equal(rec.severityNumber, SeverityNumber.WARN);
  assert.equal(rec.severityText, 'WARN');
  assert.deepEqual(rec.body, { stringValue: 'connect 10.0.0.1:443' });
});

test('OTLP/JSON carries eventName; a record with a bad id costs only itself', () => {
  const records: ExportLogRecord[] = logRecordsOf(emitted(), 1n);
  const bad = { ...records[0]!, spanId: 'nope' };
  const { body, count, invalid } = encodeLogs([bad, ...records], 'json');
  assert.equal(count, 2);
  assert.match(invalid[0]!.reason, /invalid spanId "nope"/);
  const json = JSON.parse(Buffer.from(body!).toString('utf8'));
  const names = json.resourceLogs.flatMap((r: { scopeLogs: Array<{ logRecords: Array<{ eventName: string }> }> }) => r.scopeLogs[0]!.logRecords.map((l) => l.eventName));
  assert.deepEqual(names, ['agentrace.network.connect', 'agentrace.file.open']);
});

test('HTTP: POST /v1/logs, application/x-protobuf, decoded by the official proto; the file gets one ExportLogsServiceRequest per line', async () => {
  const c = await startCollector();
  collectors.push(c);
  const http = new OtlpNetworkExporter<ExportLogRecord>({ url: `${c.url.replace(/\/v1\/traces$/, '')}/v1/logs`, codec: LOGS, scheduleDelayMs: 60_000 });
  const file = path.join(dir, 'out.jsonl');
  const lines = new OtlpFileExporter<ExportLogRecord>({ path: file, codec: LOGS, scheduleDelayMs: 60_000 });
  const records = logRecordsOf(emitted(), 1n);
  for (const e of [http, lines]) {
    e.export(records);
    await e.shutdown(5000);
    assert.deepEqual(e.stats(), { exported: 2, dropped: 0, failed: 0 });
  }
  assert.equal(c.received.length, 1);
  assert.match(c.received[0]!.url, /\/v1\/logs$/);
  assert.equal(c.received[0]!.headers['content-type'], 'application/x-protobuf');
  assert.equal((LogsRequest.decode(c.received[0]!.body) as unknown as { resourceLogs: unknown[] }).resourceLogs.length, 2);
  const line = JSON.parse(fs.readFileSync(file, 'utf8').trim());
  assert.equal(line.resourceLogs.length, 2);
});

test('configuration: logs go where traces go (the file, or /v1/logs of the endpoint); OTEL_LOGS_EXPORTER=none and --logs none turn them off', () => {
  const file = path.join(dir, 'cfg.jsonl');
  const fileOnly = resolveOtlpConfig({ file }, {});
  assert.deepEqual(resolveOtlpLogsConfig({ file }, {}, fileOnly), { file: { path: file } });
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/json' };
  const remote = resolveOtlpConfig({}, env, { defaultFile: undefined });
  const logs = resolveOtlpLogsConfig({}, env, remote);
  assert.equal(logs.network?.url, 'http://collector:4318/v1/logs');
  assert.equal(logs.network?.protocol, 'http/json');
  assert.equal(logs.file, undefined);
  assert.deepEqual(resolveOtlpLogsConfig({ file }, { OTEL_LOGS_EXPORTER: 'none' }, fileOnly), {});
  assert.deepEqual(resolveOtlpLogsConfig({ file, logs: 'none' }, {}, fileOnly), {});
  assert.throws(() => resolveOtlpLogsConfig({ file, logs: 'loki' }, {}, fileOnly), /--logs "loki": expected otlp or none/);
  assert.deepEqual(createLogExporters({}), []);
});
