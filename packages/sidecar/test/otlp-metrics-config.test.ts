// Metrics exporter configuration: the same flags as traces, the METRICS_
// variables over the general OTEL_EXPORTER_OTLP_* ones, the export interval and
// timeout, and which outputs metrics go to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  OtlpFileMetricExporter,
  OtlpNetworkMetricExporter,
  createMetricExporters,
  createMetricsReader,
  resolveOtlpConfig,
  resolveOtlpMetricsConfig,
  type OtlpFlags,
} from '../src/otlp/index.js';
import { ToolMetrics } from '../src/tool-metrics.js';

const cwd = '/srv/agent';

function resolve(flags: OtlpFlags, env: NodeJS.ProcessEnv): ReturnType<typeof resolveOtlpMetricsConfig> {
  return resolveOtlpMetricsConfig(flags, env, resolveOtlpConfig(flags, env, { cwd }));
}

test('interval and timeout: spec defaults 60 s and 30 s; positive integer ms; clear errors', () => {
  assert.deepEqual(resolve({}, {}), { intervalMs: 60_000, timeoutMs: 30_000, file: { path: '/srv/agent/agentrace-traces.jsonl' } });
  const c = resolve({}, { OTEL_METRIC_EXPORT_INTERVAL: ' 5000 ', OTEL_METRIC_EXPORT_TIMEOUT: '1500' });
  assert.equal(c.intervalMs, 5000);
  assert.equal(c.timeoutMs, 1500);
  assert.equal(resolve({}, { OTEL_METRIC_EXPORT_INTERVAL: '' }).intervalMs, 60_000, 'empty counts as unset');
  for (const bad of ['0', '-5', '1.5', '10s', 'soon', '1e3', '99999999999999999999']) {
    assert.throws(
      () => resolve({}, { OTEL_METRIC_EXPORT_INTERVAL: bad }),
      (error: Error) =>
        error.message === `OTEL_METRIC_EXPORT_INTERVAL=${JSON.stringify(bad)} is not valid; expected a positive integer number of milliseconds, e.g. OTEL_METRIC_EXPORT_INTERVAL=60000`,
    );
  }
  assert.throws(() => resolve({}, { OTEL_METRIC_EXPORT_TIMEOUT: 'never' }), /^Error: OTEL_METRIC_EXPORT_TIMEOUT="never" is not valid; expected a positive integer/);
});

test('endpoint: METRICS_ENDPOINT as-is, else ENDPOINT + /v1/metrics; the flag names a base or the traces URL', () => {
  const url = (flags: OtlpFlags, env: NodeJS.ProcessEnv): string | undefined => resolve(flags, env).network?.url;
  assert.equal(url({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), 'http://collector:4318/v1/metrics');
  assert.equal(url({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://gw.example/otlp/' }), 'https://gw.example/otlp/v1/metrics');
  assert.equal(url({}, { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:1/custom' }), 'http://m:1/custom');
  assert.equal(url({}, { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:1/x', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:2' }), 'http://m:1/x');
  assert.equal(url({}, { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: '', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:2' }), 'http://base:2/v1/metrics');
  // the traces variable is for traces only
  assert.equal(url({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/v1/traces' }), undefined);
  assert.equal(url({ endpoint: 'http://flag:3' }, { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:1/x' }), 'http://flag:3/v1/metrics');
  assert.equal(url({ endpoint: 'http://flag:3/otlp/v1/traces' }, {}), 'http://flag:3/otlp/v1/metrics');
  assert.equal(url({ endpoint: 'http://flag:3/v1/traces/' }, {}), 'http://flag:3/v1/metrics');
  assert.equal(url({ endpoint: 'http://flag:3/v1/metrics' }, {}), 'http://flag:3/v1/metrics');
  // and traces keep their own rules
  assert.equal(resolveOtlpConfig({ endpoint: 'http://flag:3/v1/traces' }, {}, { cwd }).network?.url, 'http://flag:3/v1/traces');
  assert.throws(() => resolve({}, { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'collector:4318' }), /OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="collector:4318" must be an http:\/\/ or https:\/\/ URL/);
});

test('protocol, headers, timeout: METRICS_ variables over the general ones, flags over both', () => {
  const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  const http = (flags: OtlpFlags, env: NodeJS.ProcessEnv) => resolve(flags, { ...base, ...env }).network;
  assert.equal(http({}, {})?.protocol, 'http/protobuf');
  assert.equal(http({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })?.protocol, 'http/json');
  assert.equal(http({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf' })?.protocol, 'http/protobuf');
  assert.equal(http({}, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' })?.protocol, 'http/protobuf', 'the traces variable is for traces');
  assert.equal(http({ protocol: 'http/json' }, { OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf' })?.protocol, 'http/json');
  assert.equal(http({}, { OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'grpc' })?.protocol, 'grpc');
  assert.throws(() => http({}, { OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'json' }), /^Error: OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="json" is not a supported OTLP protocol/);

  assert.deepEqual(
    http({}, { OTEL_EXPORTER_OTLP_HEADERS: 'a=1,dup=general', OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'Dup=metrics', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 't=x' })?.headers,
    { a: '1', dup: 'metrics' },
  );
  assert.throws(() => http({}, { OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'novalue' }), /OTEL_EXPORTER_OTLP_METRICS_HEADERS: entry "novalue" is not key=value/);

  assert.equal(http({}, {})?.timeoutMs, 10_000);
  assert.equal(http({}, { OTEL_EXPORTER_OTLP_TIMEOUT: '2500' })?.timeoutMs, 2500);
  assert.equal(http({}, { OTEL_EXPORTER_OTLP_TIMEOUT: '2500', OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '700', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '9' })?.timeoutMs, 700);
  assert.throws(() => http({}, { OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '0' }), /OTEL_EXPORTER_OTLP_METRICS_TIMEOUT="0" is not a timeout/);
});

test('outputs: the traces file when asked for or when metrics have no endpoint; OTEL_METRICS_EXPORTER=none turns metrics off', () => {
  // default file, no endpoint: metrics join the traces in it
  assert.deepEqual(resolve({}, {}).file, { path: '/srv/agent/agentrace-traces.jsonl' });
  // an explicit file and an endpoint: both
  const both = resolve({ file: 'out.jsonl', endpoint: 'http://127.0.0.1:4318' }, {});
  assert.deepEqual(both.file, { path: '/srv/agent/out.jsonl' });
  assert.equal(both.network?.url, 'http://127.0.0.1:4318/v1/metrics');
  // an endpoint for metrics only: the traces fall back to the default file, metrics do not follow them there
  const metricsOnly = resolve({}, { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:1/v1/metrics' });
  assert.equal(metricsOnly.file, undefined);
  assert.equal(metricsOnly.network?.url, 'http://m:1/v1/metrics');
  // traces to their own endpoint, nothing for metrics
  assert.deepEqual(resolve({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/v1/traces' }), { intervalMs: 60_000, timeoutMs: 30_000 });

  const off = resolve({ file: 'out.jsonl' }, { OTEL_METRICS_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' });
  assert.deepEqual(off, { intervalMs: 60_000, timeoutMs: 30_000 });
  // any other value (meant for the agent sharing the environment) leaves OTLP on
  assert.equal(resolve({}, { OTEL_METRICS_EXPORTER: 'console', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).network?.url, 'http://c:4318/v1/metrics');
  // a broken setting is reported even with metrics off
  assert.throws(() => resolve({}, { OTEL_METRICS_EXPORTER: 'none', OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'thrift' }), /OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="thrift"/);
});

test('createMetricExporters / createMetricsReader build what the config says', async () => {
  const config = resolve({ file: '/tmp/agentrace-metrics-config-test.jsonl', endpoint: 'http://127.0.0.1:9/', protocol: 'http/json' }, { OTEL_METRIC_EXPORT_INTERVAL: '1234' });
  const exporters = createMetricExporters(config);
  assert.equal(exporters.length, 2);
  assert.ok(exporters[0] instanceof OtlpFileMetricExporter);
  assert.ok(exporters[1] instanceof OtlpNetworkMetricExporter);
  await Promise.all(exporters.map((e) => e.shutdown()));
  const reader = createMetricsReader(new ToolMetrics({ loss: { drops: () => ({}) } }), config);
  assert.equal(reader.intervalMs, 1234);
  assert.equal(reader.timeoutMs, 30_000);
  assert.equal(reader.description, 'OTLP file /tmp/agentrace-metrics-config-test.jsonl + OTLP http/json http://127.0.0.1:9/v1/metrics');
  await reader.shutdown(100);
  const none = createMetricsReader(new ToolMetrics({ loss: { drops: () => ({}) } }), resolve({}, { OTEL_METRICS_EXPORTER: 'none' }));
  assert.equal(none.description, 'no OTLP metrics exporter');
  none.start();
  await none.shutdown(100);
  assert.deepEqual(none.stats(), { exported: 0, dropped: 0, failed: 0 });
});

test('OTEL_METRICS_EXPORTER is a list: otlp (default), prometheus (host and port from OTEL_EXPORTER_PROMETHEUS_*), none; --metrics-port serves Prometheus beside OTLP', () => {
  const file = { file: '/tmp/m.jsonl' };
  const withPort = (flags: OtlpFlags & { metricsPort?: string }, env: NodeJS.ProcessEnv) => resolveOtlpMetricsConfig(flags, env, resolveOtlpConfig(flags, env, { cwd }));
  assert.equal(resolve(file, {}).prometheus, undefined);
  assert.ok(resolve(file, {}).file, 'OTLP by default');
  const prom = resolve(file, { OTEL_METRICS_EXPORTER: 'prometheus' });
  assert.deepEqual(prom.prometheus, { host: 'localhost', port: 9464 }, "the spec's defaults");
  assert.equal(prom.file, undefined, 'prometheus alone: no OTLP metrics');
  const both = resolve(file, { OTEL_METRICS_EXPORTER: 'otlp, prometheus', OTEL_EXPORTER_PROMETHEUS_HOST: '0.0.0.0', OTEL_EXPORTER_PROMETHEUS_PORT: '9100' });
  assert.deepEqual(both.prometheus, { host: '0.0.0.0', port: 9100 });
  assert.ok(both.file);
  assert.equal(resolve(file, { OTEL_METRICS_EXPORTER: 'prometheus,none' }).prometheus, undefined, 'none wins');
  assert.ok(resolve(file, { OTEL_METRICS_EXPORTER: 'console,otlp' }).file, 'values for an agent sharing the environment are left alone');
  assert.deepEqual(withPort({ ...file, metricsPort: '9200' }, {}).prometheus, { host: 'localhost', port: 9200 });
  assert.deepEqual(withPort({ ...file, metricsPort: '[::1]:9200' }, { OTEL_EXPORTER_PROMETHEUS_HOST: '0.0.0.0' }).prometheus, { host: '::1', port: 9200 });
  assert.ok(withPort({ ...file, metricsPort: '9200' }, {}).file, 'the flag adds Prometheus, OTLP stays');
  assert.throws(() => withPort({ metricsPort: 'host:' }, {}), /^Error: --metrics-port "host:": expected \[HOST:\]PORT/);
  assert.throws(() => withPort({ metricsPort: '70000' }, {}), /--metrics-port "70000"/);
  assert.throws(() => resolve(file, { OTEL_METRICS_EXPORTER: 'prometheus', OTEL_EXPORTER_PROMETHEUS_PORT: 'http' }), /^Error: OTEL_EXPORTER_PROMETHEUS_PORT="http" is not a port number$/);
});
