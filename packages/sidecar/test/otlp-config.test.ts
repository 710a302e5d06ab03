// Exporter configuration from flags and the standard OTEL_EXPORTER_OTLP_* variables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  DEFAULT_OTLP_FILE,
  OtlpFileExporter,
  OtlpNetworkExporter,
  createExporters,
  resolveOtlpConfig,
  resolveNetworkConfig,
  type OtlpFlags,
} from '../src/otlp/index.js';

const cwd = '/srv/agent';

test('nothing configured: the default file in the working directory', () => {
  assert.deepEqual(resolveOtlpConfig({}, {}, { cwd }), { file: { path: path.join(cwd, DEFAULT_OTLP_FILE) } });
  assert.deepEqual(resolveOtlpConfig({}, {}, { cwd, defaultFile: '/var/log/a.jsonl' }), { file: { path: '/var/log/a.jsonl' } });
  assert.deepEqual(resolveOtlpConfig({}, {}, { cwd, defaultFile: undefined }), {});
});

test('--otlp-file: resolved against cwd; no default file once an endpoint is set', () => {
  assert.deepEqual(resolveOtlpConfig({ file: 'out/t.jsonl' }, {}, { cwd }), { file: { path: '/srv/agent/out/t.jsonl' } });
  const config = resolveOtlpConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, { cwd });
  assert.equal(config.file, undefined);
  assert.equal(config.network?.url, 'http://c:4318/v1/traces');
});

test('endpoint: TRACES_ENDPOINT as-is, else ENDPOINT + /v1/traces; flags first', () => {
  const url = (flags: { endpoint?: string }, env: NodeJS.ProcessEnv): string | undefined => resolveOtlpConfig(flags, env, { cwd }).network?.url;
  assert.equal(url({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), 'http://collector:4318/v1/traces');
  assert.equal(url({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }), 'http://collector:4318/v1/traces');
  assert.equal(url({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://gw.example/otlp/' }), 'https://gw.example/otlp/v1/traces');
  assert.equal(url({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom/path' }), 'http://c:4318/custom/path');
  assert.equal(
    url({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/x', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:2' }),
    'http://t:1/x',
  );
  assert.equal(url({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:2' }), 'http://base:2/v1/traces');
  assert.equal(url({ endpoint: 'http://flag:3' }, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/x' }), 'http://flag:3/v1/traces');
  assert.equal(url({ endpoint: 'http://flag:3/v1/traces' }, {}), 'http://flag:3/v1/traces');
  assert.equal(url({}, {}), undefined);
});

test('file and endpoint together: both exporters', () => {
  const config = resolveOtlpConfig({ file: '/tmp/a.jsonl', endpoint: 'http://127.0.0.1:4318' }, {}, { cwd });
  assert.deepEqual(config, {
    file: { path: '/tmp/a.jsonl' },
    network: { url: 'http://127.0.0.1:4318/v1/traces', protocol: 'http/protobuf', compression: 'none', headers: {}, timeoutMs: 10_000 },
  });
});

test('protocol: default http/protobuf; TRACES_PROTOCOL over PROTOCOL; flag over both', () => {
  const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  const protocol = (flags: { protocol?: string }, env: NodeJS.ProcessEnv): string | undefined =>
    resolveOtlpConfig(flags, { ...base, ...env }, { cwd }).network?.protocol;
  assert.equal(protocol({}, {}), 'http/protobuf');
  assert.equal(protocol({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }), 'http/json');
  assert.equal(protocol({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }), 'http/protobuf');
  assert.equal(protocol({ protocol: 'http/json' }, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }), 'http/json');
  assert.equal(protocol({}, { OTEL_EXPORTER_OTLP_PROTOCOL: ' HTTP/JSON ' }), 'http/json');
});

test('protocol errors name the variable and the accepted values', () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  assert.throws(
    () => resolveOtlpConfig({}, { ...env, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml' }, { cwd }),
    /^Error: OTEL_EXPORTER_OTLP_PROTOCOL="http\/xml" is not a supported OTLP protocol; accepted: http\/protobuf, http\/json, grpc$/,
  );
  assert.throws(() => resolveOtlpConfig({}, { ...env, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc/json' }, { cwd }), /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc\/json"/);
  assert.throws(() => resolveOtlpConfig({ protocol: 'thrift' }, env, { cwd }), /--otlp-protocol="thrift"/);
  // checked even without an endpoint, so a typo is not silently ignored
  assert.throws(() => resolveOtlpConfig({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grcp' }, { cwd }), /not a supported OTLP protocol/);
});

test('grpc: every signal goes to the endpoint as given (no /v1/<signal> path), a flag\'s signal path aside', () => {
  const url = (flags: OtlpFlags, env: NodeJS.ProcessEnv, signal: 'traces' | 'metrics' | 'logs' = 'traces'): string | undefined =>
    resolveNetworkConfig(flags, env, signal)?.url;
  const grpc = { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' };
  assert.equal(url({}, { ...grpc, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317' }), 'http://c:4317/');
  assert.equal(url({}, { ...grpc, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317' }, 'logs'), 'http://c:4317/');
  assert.equal(url({}, { ...grpc, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:4317' }, 'metrics'), 'http://m:4317/');
  assert.equal(url({ endpoint: 'http://c:4317/v1/traces', protocol: 'grpc' }, {}, 'metrics'), 'http://c:4317/');
  assert.equal(resolveNetworkConfig({ endpoint: 'http://c:4317', protocol: 'grpc' }, {}, 'traces')?.protocol, 'grpc');
});

test('compression: OTEL_EXPORTER_OTLP_[SIGNAL_]COMPRESSION, gzip or none, anything else named', () => {
  const compression = (env: NodeJS.ProcessEnv, signal: 'traces' | 'logs' = 'traces'): string | undefined =>
    resolveNetworkConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', ...env }, signal)?.compression;
  assert.equal(compression({}), 'none');
  assert.equal(compression({ OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' }), 'gzip');
  assert.equal(compression({ OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' }), 'none');
  assert.equal(compression({ OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' }, 'logs'), 'gzip');
  assert.throws(() => compression({ OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' }), /^Error: OTEL_EXPORTER_OTLP_COMPRESSION="zstd" is not a supported compression; accepted: gzip, none$/);
});

test('endpoint errors name the variable', () => {
  assert.throws(() => resolveOtlpConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, { cwd }), /OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318" must be an http:\/\/ or https:\/\/ URL/);
  assert.throws(() => resolveOtlpConfig({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }, { cwd }), /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="not a url" is not a valid URL/);
  assert.throws(() => resolveOtlpConfig({ endpoint: 'ftp://x' }, {}, { cwd }), /--otlp-endpoint="ftp:\/\/x" must be an http/);
});

test('headers: k=v lists, URL-decoded, trimmed, TRACES_HEADERS override per key', () => {
  const config = resolveOtlpConfig(
    {},
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_HEADERS: 'api-key=secret, X-Team = a%20b%2Cc ,,dup=general',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'Dup=traces,authorization=Basic%20dTpw%3D%3D',
    },
    { cwd },
  );
  assert.deepEqual(config.network?.headers, {
    'api-key': 'secret',
    'x-team': 'a b,c',
    dup: 'traces',
    authorization: 'Basic dTpw==',
  });
});

test('header errors name the variable', () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  assert.throws(() => resolveOtlpConfig({}, { ...env, OTEL_EXPORTER_OTLP_HEADERS: 'novalue' }, { cwd }), /OTEL_EXPORTER_OTLP_HEADERS: entry "novalue" is not key=value/);
  assert.throws(() => resolveOtlpConfig({}, { ...env, OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'a=%E0%A4%A' }, { cwd }), /OTEL_EXPORTER_OTLP_TRACES_HEADERS: "%E0%A4%A" is not valid URL encoding/);
  assert.throws(() => resolveOtlpConfig({}, { ...env, OTEL_EXPORTER_OTLP_HEADERS: 'bad key=1' }, { cwd }), /OTEL_EXPORTER_OTLP_HEADERS: "bad key" is not a valid HTTP header name/);
  assert.throws(() => resolveOtlpConfig({}, { ...env, OTEL_EXPORTER_OTLP_HEADERS: 'a=x%0D%0Ay' }, { cwd }), /line break/);
});

test('timeout: ms, TRACES_TIMEOUT over TIMEOUT, default 10 s, errors name the variable', () => {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  const timeout = (extra: NodeJS.ProcessEnv): number | undefined => resolveOtlpConfig({}, { ...env, ...extra }, { cwd }).network?.timeoutMs;
  assert.equal(timeout({}), 10_000);
  assert.equal(timeout({ OTEL_EXPORTER_OTLP_TIMEOUT: '2500' }), 2500);
  assert.equal(timeout({ OTEL_EXPORTER_OTLP_TIMEOUT: '2500', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '700' }), 700);
  for (const bad of ['abc', '-1', '0', '1.5', '10s']) {
    assert.throws(() => timeout({ OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: bad }), new RegExp(`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="${bad.replace('.', '\\.')}" is not a timeout; expected a positive integer number of milliseconds`));
  }
  assert.throws(() => timeout({ OTEL_EXPORTER_OTLP_TIMEOUT: 'soon' }), /OTEL_EXPORTER_OTLP_TIMEOUT="soon"/);
});

test('createExporters builds what the config says', async () => {
  const config = resolveOtlpConfig(
    { file: '/tmp/agentrace-config-test.jsonl', endpoint: 'http://127.0.0.1:9/', protocol: 'http/json' },
    { OTEL_EXPORTER_OTLP_HEADERS: 'a=b', OTEL_EXPORTER_OTLP_TIMEOUT: '1234' },
    { cwd },
  );
  const exporters = createExporters(config);
  assert.equal(exporters.length, 2);
  assert.ok(exporters[0] instanceof OtlpFileExporter);
  assert.ok(exporters[1] instanceof OtlpNetworkExporter);
  assert.equal(exporters[0].description, 'OTLP file /tmp/agentrace-config-test.jsonl');
  assert.equal(exporters[1].description, 'OTLP http/json http://127.0.0.1:9/v1/traces');
  await Promise.all(exporters.map((e) => e.shutdown(100)));

});
