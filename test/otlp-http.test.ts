// The OTLP/HTTP exporter against a real node:http receiver on 127.0.0.1: what
// arrives is decoded with the official OTLP schema (see otlp-schema.ts), not with
// the code under test. Then retries, failures, overflow, hangs and idling.
// The exporter is OpenTelemetry's own (otel-transport.ts) behind the sidecar's queue.
import { test, after } from 'node:test';
import { runUntilExit } from './support/exit-by-itself.js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { gunzipSync } from 'node:zlib';
import { diag, DiagLogLevel } from '@opentelemetry/api';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { OtlpNetworkExporter, type NetworkExporterOptions } from '../packages/sidecar/src/otlp/index.js';
import {
  decodeProtobufRequest,
  encodeProtobufResponse,
  expectedSampleSummary,
  manySpans,
  otlpJsonViolations,
  sampleSpans,
  startCollector,
  summarize,
  type Collector,
} from './otlp-schema.js';

const collectors: Collector[] = [];
const exporters: OtlpNetworkExporter[] = [];

after(async () => {
  await Promise.all(exporters.map((e) => e.shutdown(100)));
  await Promise.all(collectors.map((c) => c.close()));
});

async function collector(reply?: Parameters<typeof startCollector>[0]): Promise<Collector> {
  const c = await startCollector(reply);
  collectors.push(c);
  return c;
}

function exporter(options: NetworkExporterOptions): { exporter: OtlpNetworkExporter; errors: Error[] } {
  const errors: Error[] = [];
  const e = new OtlpNetworkExporter({ scheduleDelayMs: 60_000, onError: (err) => errors.push(err), ...options });
  exporters.push(e);
  return { exporter: e, errors };
}

test('http/protobuf: POST /v1/traces, application/x-protobuf, decodes with the official schema', async () => {
  const c = await collector();
  const { exporter: e, errors } = exporter({ url: c.url, protocol: 'http/protobuf', headers: { Authorization: 'Bearer s3cret', 'x-team': 'a b' } });
  assert.equal(e.description, `OTLP http/protobuf ${c.url}`);
  e.export(sampleSpans());
  await e.flush(5000);
  assert.equal(c.received.length, 1);
  const req = c.received[0]!;
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/v1/traces');
  assert.equal(req.headers['content-type'], 'application/x-protobuf');
  assert.equal(req.headers['authorization'], 'Bearer s3cret');
  assert.equal(req.headers['x-team'], 'a b');
  assert.match(String(req.headers['user-agent']), /^agentrace\//);
  assert.deepEqual(summarize(decodeProtobufRequest(req.body)), expectedSampleSummary());
  assert.deepEqual(e.stats(), { exported: 3, dropped: 0, failed: 0, });
  assert.deepEqual(errors, []);
});

test('http/json: POST /v1/traces, application/json, valid OTLP/JSON', async () => {
  const c = await collector();
  const { exporter: e, errors } = exporter({ url: c.url, protocol: 'http/json' });
  e.export(sampleSpans());
  await e.flush(5000);
  assert.equal(c.received.length, 1);
  const req = c.received[0]!;
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/v1/traces');
  assert.equal(req.headers['content-type'], 'application/json');
  const document: unknown = JSON.parse(req.body.toString('utf8'));
  assert.deepEqual(otlpJsonViolations(document), []);
  assert.deepEqual(summarize(document), expectedSampleSummary());
  // spot checks of the OTLP/JSON rules on the raw text
  const text = req.body.toString('utf8');
  assert.match(text, /"traceId":"0af7651916cd43dd8448eb211c80319c"/);
  assert.match(text, /"startTimeUnixNano":"1700000000123456789"/);
  assert.match(text, /"kind":1[,}]/);
  assert.doesNotMatch(text, /trace_id|start_time_unix_nano/);
  assert.deepEqual(e.stats(), { exported: 3, dropped: 0, failed: 0, });
  assert.deepEqual(errors, []);
});

test('batches: maxBatchSize spans per request, sent without waiting for the timer', async () => {
  const c = await collector();
  const { exporter: e } = exporter({ url: c.url, maxBatchSize: 4 });
  e.export(manySpans(10));
  await c.waitFor(2); // two full batches go at once, the partial one waits for the (60 s) timer
  await e.flush(5000);
  const sizes = c.received.map((r) => summarize(decodeProtobufRequest(r.body)).resources[0]!.scopes[0]!.spans.length);
  assert.deepEqual(sizes, [4, 4, 2]);
  assert.equal(e.stats().exported, 10);
});

test('a partial batch is sent after scheduleDelayMs', async () => {
  const c = await collector();
  const { exporter: e } = exporter({ url: c.url, scheduleDelayMs: 50 });
  e.export(manySpans(3));
  await c.waitFor(1, 5000);
  assert.equal(summarize(decodeProtobufRequest(c.received[0]!.body)).resources[0]!.scopes[0]!.spans.length, 3);
});

// Retries, backoff and Retry-After are OpenTelemetry's OTLP exporter's (1 s
// first backoff, x1.5, within the export timeout); these check what the
// sidecar makes of them: the counts and what is said.
test('503 with Retry-After, then 200: exported once, the wait honored', async () => {
  const c = await collector((_req, i, res) => {
    if (i === 0) res.writeHead(503, { 'retry-after': '1' }).end('busy');
    else res.writeHead(200).end();
  });
  const { exporter: e, errors } = exporter({ url: c.url, timeoutMs: 5000 });
  e.export(sampleSpans());
  await e.flush(10_000);
  assert.equal(c.received.length, 2);
  const waited = c.received[1]!.at - c.received[0]!.at;
  assert.ok(waited >= 950, `retried after ${waited} ms, Retry-After said 1 s`);
  assert.deepEqual(c.received[1]!.body, c.received[0]!.body);
  assert.deepEqual(e.stats(), { exported: 3, dropped: 0, failed: 0 });
  assert.deepEqual(errors, []);
});

test('a retryable status until the export timeout: failed counted, said so', async () => {
  const c = await collector((_req, _i, res) => res.writeHead(429).end());
  const { exporter: e, errors } = exporter({ url: c.url, timeoutMs: 1500 });
  e.export(manySpans(2));
  await e.flush(5000);
  assert.equal(c.received.length, 2, 'sent, then retried once after ~1 s; the next backoff would pass the 1.5 s timeout');
  assert.deepEqual(e.stats(), { exported: 0, dropped: 0, failed: 2 });
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /export failed: the collector kept answering with a retryable status/);
});

test('400: counted as failed, not retried, the body excerpt said', async () => {
  const c = await collector((_req, _i, res) => res.writeHead(400, { 'content-type': 'text/plain' }).end('bad span'));
  const { exporter: e, errors } = exporter({ url: c.url });
  e.export(sampleSpans());
  await e.flush(5000);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(c.received.length, 1);
  assert.deepEqual(e.stats(), { exported: 0, dropped: 0, failed: 3 });
  assert.match(errors[0]?.message ?? '', /HTTP 400 Bad Request: bad span/);
});

test('network error (connection refused) is retried within the timeout, then given up', async () => {
  const c = await collector();
  const url = c.url;
  await c.close();
  const { exporter: e, errors } = exporter({ url, timeoutMs: 1500 });
  e.export(manySpans(1));
  const t0 = Date.now();
  await e.flush(5000);
  const took = Date.now() - t0;
  assert.ok(took >= 700 && took < 3000, `gave up after ${took} ms (one retry ~1 s in, the next past the timeout)`);
  assert.deepEqual(e.stats(), { exported: 0, dropped: 0, failed: 1 });
  assert.match(errors[0]?.message ?? '', /ECONNREFUSED/);
});

test('network error then success: exported', async () => {
  // the first connection is destroyed without an answer
  const c = await collector((_req, i, res) => {
    if (i === 0) res.socket?.destroy();
    else res.writeHead(200).end();
  });
  const { exporter: e, errors } = exporter({ url: c.url, timeoutMs: 5000 });
  e.export(manySpans(2));
  await e.flush(10_000);
  assert.equal(c.received.length, 2);
  assert.deepEqual(e.stats(), { exported: 2, dropped: 0, failed: 0 });
  assert.deepEqual(errors, []);
});

test('partial success: the collector\'s message reaches the OpenTelemetry diag logger (the CLI prints it)', async (t) => {
  const warnings: string[] = [];
  const logger = { error: () => {}, warn: (...args: unknown[]) => warnings.push(args.map(String).join(' ')), info: () => {}, debug: () => {}, verbose: () => {} };
  diag.setLogger(logger, DiagLogLevel.WARN);
  t.after(() => diag.disable());
  const c = await collector((_req, _i, res) => {
    res.writeHead(200, { 'content-type': 'application/x-protobuf' })
      .end(Buffer.from(encodeProtobufResponse({ partialSuccess: { rejectedSpans: 1, errorMessage: 'span too old' } })));
  });
  const { exporter: e } = exporter({ url: c.url });
  e.export(sampleSpans());
  await e.flush(5000);
  assert.deepEqual(e.stats(), { exported: 3, dropped: 0, failed: 0 });
  assert.ok(warnings.some((w) => /Partial Success.*span too old/.test(w)), warnings.join('\n'));
});

test('gzip: the body arrives compressed (Content-Encoding: gzip) and decodes with the official schema', async () => {
  const c = await collector();
  const { exporter: e } = exporter({ url: c.url, compression: 'gzip' });
  e.export(sampleSpans());
  await e.flush(5000);
  assert.equal(c.received.length, 1);
  const r = c.received[0]!;
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.deepEqual(summarize(decodeProtobufRequest(gunzipSync(r.body))), expectedSampleSummary());
});

test('queue overflow: drops counted exactly, the rest exported', async () => {
  const c = await collector();
  const { exporter: e } = exporter({ url: c.url, maxQueueSize: 5, maxBatchSize: 100 });
  e.export(manySpans(3, 1));
  e.export(manySpans(4, 2)); // 2 fit
  e.export(manySpans(6, 3)); // none fit
  assert.equal(e.stats().dropped, 8);
  await e.flush(5000);
  assert.deepEqual(e.stats(), { exported: 5, dropped: 8, failed: 0, });
  const names = summarize(decodeProtobufRequest(c.received[0]!.body)).resources[0]!.scopes[0]!.spans.map((s) => s.name);
  assert.deepEqual(names, ['op-1-0', 'op-1-1', 'op-1-2', 'op-2-0', 'op-2-1']);
});

test('the exporter never throws: bad spans, hostile input, after shutdown', async () => {
  const c = await collector();
  const { exporter: e, errors } = exporter({ url: c.url, maxQueueSize: 10 });
  const good = manySpans(1)[0]!;
  e.export([
    good,
    { ...good, spanId: 'not-hex' },
    { ...good, traceId: '00000000000000000000000000000000' },
    { ...good, spanId: 'c0ffee0000000009', parentSpanId: 'xyz' },
  ]);
  e.export([]);
  await e.flush(5000);
  assert.deepEqual(e.stats(), { exported: 1, dropped: 0, failed: 3, });
  assert.equal(errors.length, 3);
  await e.shutdown(1000);
  e.export(manySpans(2));
  await e.flush(100);
  assert.deepEqual(e.stats(), { exported: 1, dropped: 2, failed: 3, });
  assert.throws(() => new OtlpNetworkExporter({ url: 'ftp://x' }), /http:\/\/ or https:\/\//);
});

test('flush resolves within its bound when the server hangs; shutdown stops waiting and counts the batch in flight as failed', async () => {
  const pending: import('node:http').ServerResponse[] = [];
  const c = await collector((_req, _i, res) => pending.push(res)); // never answers
  const { exporter: e } = exporter({ url: c.url, timeoutMs: 60_000 });
  e.export(manySpans(2));
  let t0 = Date.now();
  await e.flush(300);
  let took = Date.now() - t0;
  assert.ok(took >= 290 && took < 1500, `flush(300) took ${took} ms`);
  assert.equal(c.received.length, 1);
  e.export(manySpans(1, 2));
  t0 = Date.now();
  await e.shutdown(300);
  took = Date.now() - t0;
  assert.ok(took < 1500, `shutdown(300) took ${took} ms`);
  await new Promise((r) => setTimeout(r, 50));
  // the hung batch is given up (failed), the queued span never sent (dropped)
  assert.deepEqual(e.stats(), { exported: 0, dropped: 1, failed: 2, });
  for (const res of pending) res.destroy();
});

test('a hung request: given up at the export timeout, counted and said', async () => {
  const c = await collector((_req, i, res) => {
    if (i === 0) return; // hang: the exporter times out
    res.writeHead(200).end();
  });
  const { exporter: e, errors } = exporter({ url: c.url, timeoutMs: 3000 });
  // the official exporter gives the first attempt the whole timeout; a hang costs it
  e.export(manySpans(1));
  await e.flush(10_000);
  assert.equal(c.received.length, 1, 'no time was left to retry');
  assert.deepEqual(e.stats(), { exported: 0, dropped: 0, failed: 1 });
  assert.match(errors[0]?.message ?? '', /timed out/);
});

test('an idle exporter keeps no process alive (timers unref, idle sockets released)', async () => {
  const c = await collector();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-otlp-'));
  const script = path.join(dir, 'idle.mts');
  const src = pathToFileURL(fileURLToPath(new URL('../packages/sidecar/src/otlp/index.ts', import.meta.url))).href;
  const schemaUrl = pathToFileURL(fileURLToPath(new URL('./otlp-schema.ts', import.meta.url))).href;
  fs.writeFileSync(
    script,
    `import { OtlpNetworkExporter } from ${JSON.stringify(src)};
import { manySpans } from ${JSON.stringify(schemaUrl)};
const e = new OtlpNetworkExporter({ url: ${JSON.stringify(c.url)}, scheduleDelayMs: 60000 });
e.export(manySpans(2));
await e.flush(5000);
// queued but never flushed: the 60 s timer must not hold the process
e.export(manySpans(1, 9));
console.log(JSON.stringify(e.stats()));
`,
  );
  const { code, out, lingeredMs } = await runUntilExit(script);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, 'the child should exit by itself');
  assert.deepEqual(JSON.parse(out.trim()), { exported: 2, dropped: 0, failed: 0, });
  assert.equal(c.received.length, 1);
  // the server keeps an idle connection 5 s: exiting well before proves neither
  // the idle socket nor the pending batch timer holds the event loop
  assert.ok(lingeredMs < 2000, `the child lingered ${lingeredMs} ms after its last work`);
});

test('a collector down, then answering 500, then 401, then hanging, then back: said once per change, with what it said; counted', async (t) => {
  // One address throughout; first nobody listens there.
  const probe = http.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  let mode: 'ok' | '500' | '401' | 'hang' = 'ok';
  const server = http.createServer((req, res) => {
    req.resume();
    if (mode === 'hang') return; // never answers
    if (mode === '500') res.writeHead(500, { 'content-type': 'text/plain' }).end('database is on fire');
    else if (mode === '401') res.writeHead(401, { 'content-type': 'text/plain' }).end('bad api key');
    else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const { exporter: e, errors } = exporter({ url: `http://127.0.0.1:${port}/v1/traces`, timeoutMs: 200 });
  const round = async (seed: number): Promise<void> => {
    e.export(manySpans(2, seed));
    await e.flush(5000);
  };
  await round(1);
  await round(2); // still refused: nothing new said
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  mode = '500';
  await round(3);
  await round(4);
  mode = '401';
  await round(5);
  mode = 'hang';
  await round(6);
  mode = 'ok';
  await round(7);
  await round(8);
  const said = errors.map((err) => err.message.replace(/127\.0\.0\.1:\d+/, 'HOST'));
  assert.equal(said.length, 5, said.join('\n'));
  assert.match(said[0]!, /^spans to http:\/\/HOST\/v1\/traces: export failed: connect ECONNREFUSED/);
  assert.match(said[1]!, /: export still failing, now: HTTP 500 Internal Server Error: database is on fire/);
  assert.match(said[2]!, /: export still failing, now: HTTP 401 Unauthorized: bad api key/);
  assert.match(said[3]!, /: export still failing, now: Request timed out/);
  assert.equal(said[4], 'spans to http://HOST/v1/traces: export works again, after 6 failed export(s)');
  // (no retries: within a 200 ms timeout there is no room for the first 1 s backoff)
  assert.deepEqual(e.stats(), { exported: 4, dropped: 0, failed: 12 });
});
