// Every signal over every OTLP protocol, through the exporters the sidecar
// builds: traces, metrics and log records over http/protobuf, http/json and
// grpc (a real @grpc/grpc-js server on 127.0.0.1), each request decoded with
// the official opentelemetry-proto schema, not with the code under test. Then
// gzip over grpc, and a grpc collector's refusal put in words.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  LOGS,
  OtlpNetworkExporter,
  OtlpNetworkMetricExporter,
  SeverityNumber,
  type ExportLogRecord,
  type OtlpProtocol,
} from '../packages/sidecar/src/otlp/index.js';
import { LATENCY_BUCKETS, ToolMetrics } from '../packages/sidecar/src/tool-metrics.js';
import { loadOtlpService, manySpans, sampleSpans, startCollector, type Collector } from './otlp-schema.js';

type Signal = 'traces' | 'metrics' | 'logs';
const SERVICE: Record<Signal, { proto: 'trace' | 'metrics' | 'logs'; grpcPath: string; httpPath: string }> = {
  traces: { proto: 'trace', grpcPath: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', httpPath: '/v1/traces' },
  metrics: { proto: 'metrics', grpcPath: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export', httpPath: '/v1/metrics' },
  logs: { proto: 'logs', grpcPath: '/opentelemetry.proto.collector.logs.v1.LogsService/Export', httpPath: '/v1/logs' },
};

interface GrpcCall {
  path: string;
  body: Buffer;
  metadata: Record<string, unknown>;
}

interface GrpcCollector {
  url: string;
  calls: GrpcCall[];
  /** Answer every call with this status instead of OK. */
  fail?: { code: grpc.status; details: string };
  close(): Promise<void>;
}

/** A gRPC OTLP receiver for all three services; requests are kept as raw bytes and decoded by the test. */
async function startGrpcCollector(): Promise<GrpcCollector> {
  const server = new grpc.Server();
  const calls: GrpcCall[] = [];
  const collector: GrpcCollector = {
    url: '',
    calls,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
  for (const signal of Object.keys(SERVICE) as Signal[]) {
    const { proto, grpcPath } = SERVICE[signal];
    const response = loadOtlpService(proto).response;
    const empty = Buffer.from(response.encode(response.create({})).finish());
    const definition: grpc.ServiceDefinition = {
      Export: {
        path: grpcPath,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    };
    server.addService(definition, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        calls.push({ path: grpcPath, body: call.request, metadata: call.metadata.getMap() });
        if (collector.fail) callback({ code: collector.fail.code, details: collector.fail.details });
        else callback(null, empty);
      },
    });
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  collector.url = `http://127.0.0.1:${port}`;
  return collector;
}

const httpCollectors: Collector[] = [];
const grpcCollectors: GrpcCollector[] = [];
after(async () => {
  await Promise.all([...httpCollectors.map((c) => c.close()), ...grpcCollectors.map((c) => c.close())]);
});

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';

function logRecords(): ExportLogRecord[] {
  // one resource object per agent process, as the sidecar hands them over
  const resource = { 'service.name': 'agent-under-test', 'process.pid': 4242 };
  return ['agentrace.network.connect', 'agentrace.process.exec'].map((eventName, i) => ({
    timeNs: 1_700_000_000_000_000_000n + BigInt(i),
    observedTimeNs: 1_700_000_000_100_000_000n,
    eventName,
    severityNumber: SeverityNumber.INFO,
    body: `${eventName} #${i}`,
    attributes: { 'process.pid': 4242 },
    traceId: TRACE,
    spanId: SPAN,
    resource,
  }));
}

function metricsCollection(): ReturnType<ToolMetrics['collect']>['resourceMetrics'] {
  const metrics = new ToolMetrics({ resource: { 'service.name': 'agent-under-test' }, loss: { drops: () => ({}) } });
  const latencyBuckets = new Array<number>(LATENCY_BUCKETS).fill(0);
  latencyBuckets[10] = 3;
  metrics.record('read_file', { read: { calls: 3, errors: 0, bytes: 4096, latencySumNs: 4500, latencyBuckets } });
  return metrics.collect().resourceMetrics;
}

/** Sends one batch of `signal` over `protocol` to `url`; resolves with the counts or the collection's outcome. */
async function send(signal: Signal, protocol: OtlpProtocol, url: string, options: { compression?: 'gzip' } = {}): Promise<{ errors: Error[]; ok: boolean }> {
  const errors: Error[] = [];
  const common = { url, protocol, onError: (e: Error) => errors.push(e), headers: { 'x-tenant': 'team-a' }, ...options };
  if (signal === 'metrics') {
    const exporter = new OtlpNetworkMetricExporter(common);
    const result = await exporter.export(metricsCollection());
    await exporter.shutdown();
    return { errors, ok: result === 'exported' };
  }
  if (signal === 'logs') {
    const exporter = new OtlpNetworkExporter<ExportLogRecord>({ ...common, codec: LOGS, scheduleDelayMs: 60_000 });
    exporter.export(logRecords());
    await exporter.flush(5000);
    await exporter.shutdown(1000);
    return { errors, ok: exporter.stats().exported === 2 };
  }
  const exporter = new OtlpNetworkExporter({ ...common, scheduleDelayMs: 60_000 });
  exporter.export(sampleSpans());
  await exporter.flush(5000);
  await exporter.shutdown(1000);
  return { errors, ok: exporter.stats().exported === 3 };
}

type Obj = Record<string, unknown>;

function decode(signal: Signal, body: Uint8Array): Obj {
  const type = loadOtlpService(SERVICE[signal].proto).request;
  return type.toObject(type.decode(body), { longs: String, enums: Number, bytes: String, defaults: false }) as Obj;
}

const b64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');

/** What arrived, checked field by field; ids as base64 (protobuf) or hex (OTLP/JSON). */
function check(signal: Signal, request: Obj, ids: 'base64' | 'hex'): void {
  const id = (hex: string): string => (ids === 'hex' ? hex : b64(hex));
  const list = (o: unknown, key: string): Obj[] => ((o as Obj)[key] as Obj[] | undefined) ?? [];
  const resourceName = (r: Obj): unknown => list(r['resource'], 'attributes').find((a) => a['key'] === 'service.name')?.['value'];
  if (signal === 'traces') {
    const spans = list(request, 'resourceSpans').flatMap((r) => list(r, 'scopeSpans').flatMap((s) => list(s, 'spans')));
    assert.deepEqual(spans.map((s) => s['name']).sort(), sampleSpans().map((s) => s.name).sort());
    const byName = new Map(sampleSpans().map((s) => [s.name, s]));
    for (const s of spans) assert.equal(s['traceId'], id(byName.get(s['name'] as string)!.traceId), `${String(s['name'])}: trace id intact`);
    return;
  }
  if (signal === 'logs') {
    const resources = list(request, 'resourceLogs');
    assert.deepEqual(resources.map(resourceName), [{ stringValue: 'agent-under-test' }]);
    const records = resources.flatMap((r) => list(r, 'scopeLogs').flatMap((s) => list(s, 'logRecords')));
    assert.deepEqual(records.map((r) => r['body']), [{ stringValue: 'agentrace.network.connect #0' }, { stringValue: 'agentrace.process.exec #1' }]);
    // (the vendored proto, v1.4.0, predates event_name: checked where no proto is in the way)
    if (ids === 'hex') assert.deepEqual(records.map((r) => r['eventName']), ['agentrace.network.connect', 'agentrace.process.exec']);
    assert.ok(records.every((r) => r['traceId'] === id(TRACE) && r['spanId'] === id(SPAN)), 'correlated with the tool call');
    return;
  }
  const resources = list(request, 'resourceMetrics');
  assert.deepEqual(resources.map(resourceName), [{ stringValue: 'agent-under-test' }]);
  const metrics = resources.flatMap((r) => list(r, 'scopeMetrics').flatMap((s) => list(s, 'metrics')));
  const syscalls = metrics.find((m) => m['name'] === 'agentrace.tool.syscalls');
  assert.ok(syscalls, `agentrace.tool.syscalls among ${metrics.map((m) => m['name']).join(', ')}`);
  const points = list((syscalls as Obj)['sum'], 'dataPoints');
  // OTLP/JSON may write a small int64 as a number
  assert.deepEqual(points.map((p) => String(p['asInt'])), ['3']);
}

for (const signal of ['traces', 'metrics', 'logs'] as const) {
  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    test(`${signal} over ${protocol}: POST ${SERVICE[signal].httpPath}, decoded with the official schema`, async () => {
      const c = await startCollector();
      httpCollectors.push(c);
      const url = c.url.replace('/v1/traces', SERVICE[signal].httpPath);
      const { errors, ok } = await send(signal, protocol, url);
      assert.deepEqual(errors, []);
      assert.ok(ok, 'counted as exported');
      assert.equal(c.received.length, 1);
      const r = c.received[0]!;
      assert.equal(r.url, SERVICE[signal].httpPath);
      assert.equal(r.headers['x-tenant'], 'team-a');
      assert.equal(r.headers['content-type'], protocol === 'http/json' ? 'application/json' : 'application/x-protobuf');
      if (protocol === 'http/json') {
        const document = JSON.parse(r.body.toString('utf8')) as Obj;
        check(signal, document, 'hex');
        // through the schema too: a field it does not name would not survive fromObject
        check(signal, fromJson(signal, document), 'base64');
      } else {
        check(signal, decode(signal, r.body), 'base64');
      }
    });
  }
  test(`${signal} over grpc: ${SERVICE[signal].grpcPath} on a real gRPC server, decoded with the official schema`, async () => {
    const c = await startGrpcCollector();
    grpcCollectors.push(c);
    const { errors, ok } = await send(signal, 'grpc', c.url);
    assert.deepEqual(errors, []);
    assert.ok(ok, 'counted as exported');
    assert.equal(c.calls.length, 1);
    assert.equal(c.calls[0]!.path, SERVICE[signal].grpcPath);
    assert.equal(c.calls[0]!.metadata['x-tenant'], 'team-a', 'headers travel as metadata');
    check(signal, decode(signal, c.calls[0]!.body), 'base64');
  });
}

/** An OTLP/JSON request read through the official schema (hex ids become the proto's bytes). */
function fromJson(signal: Signal, document: Obj): Obj {
  const hexToBase64 = (value: unknown, key = ''): unknown => {
    if (Array.isArray(value)) return value.map((v) => hexToBase64(v));
    if (typeof value === 'string' && ['traceId', 'spanId', 'parentSpanId'].includes(key)) return b64(value);
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, hexToBase64(v, k)]));
  };
  const type = loadOtlpService(SERVICE[signal].proto).request;
  return decode(signal, type.encode(type.fromObject(hexToBase64(document) as Obj)).finish());
}

test('grpc with gzip: the request decodes, and far fewer bytes cross the wire than without', async (t) => {
  const c = await startGrpcCollector();
  grpcCollectors.push(c);
  // grpc-js inflates a message before the handler sees it, so the proof is on
  // the wire: a TCP relay counts what the exporter sends.
  let sent = 0;
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(new URL(c.url).port), '127.0.0.1');
    client.on('data', (d: Buffer) => (sent += d.length));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  t.after(() => relay.close());
  const url = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
  const spans = manySpans(300);
  const bytesFor = async (compression: 'gzip' | 'none'): Promise<number> => {
    sent = 0;
    const exporter = new OtlpNetworkExporter({ url, protocol: 'grpc', compression, scheduleDelayMs: 60_000, maxBatchSize: 1000 });
    exporter.export(spans);
    await exporter.flush(5000);
    assert.deepEqual(exporter.stats(), { exported: 300, dropped: 0, failed: 0 }, compression);
    await exporter.shutdown(1000);
    return sent;
  };
  const plain = await bytesFor('none');
  const gzip = await bytesFor('gzip');
  assert.ok(gzip < plain / 2, `gzip sent ${gzip} bytes, uncompressed ${plain}`);
  assert.equal(c.calls.length, 2);
  assert.deepEqual(decode('traces', c.calls[1]!.body), decode('traces', c.calls[0]!.body), 'the same request arrives either way');
});

test('a grpc collector that refuses: the status code and details are said, the spans counted as failed', async () => {
  const c = await startGrpcCollector();
  grpcCollectors.push(c);
  c.fail = { code: grpc.status.UNAUTHENTICATED, details: 'bad token for tenant team-a' };
  const errors: Error[] = [];
  const exporter = new OtlpNetworkExporter({ url: c.url, protocol: 'grpc', onError: (e) => errors.push(e), scheduleDelayMs: 60_000 });
  exporter.export(sampleSpans());
  await exporter.flush(5000);
  await exporter.shutdown(1000);
  assert.deepEqual(exporter.stats(), { exported: 0, dropped: 0, failed: 3 });
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0]!.message, /^spans to http:\/\/127\.0\.0\.1:\d+\/: export failed: gRPC 16 UNAUTHENTICATED: bad token for tenant team-a$/);
});

test('span kinds and statuses survive every protocol alike (protobuf and grpc carry the same bytes)', async () => {
  const h = await startCollector();
  httpCollectors.push(h);
  const g = await startGrpcCollector();
  grpcCollectors.push(g);
  await send('traces', 'http/protobuf', h.url);
  await send('traces', 'grpc', g.url);
  const viaHttp = decode('traces', h.received[0]!.body);
  const viaGrpc = decode('traces', g.calls[0]!.body);
  assert.deepEqual(viaGrpc, viaHttp);
  const spans = ((viaHttp['resourceSpans'] as Obj[]).flatMap((r) => (r['scopeSpans'] as Obj[]).flatMap((s) => s['spans'] as Obj[])));
  assert.ok(spans.some((s) => s['kind'] === SpanKind.CLIENT + 1 || s['kind'] === SpanKind.INTERNAL + 1), 'kinds encoded');
  assert.ok(spans.some((s) => (s['status'] as Obj | undefined)?.['code'] === SpanStatusCode.ERROR), 'an error status encoded');
});
