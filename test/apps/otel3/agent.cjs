// A CommonJS agent on OpenTelemetry JS 3 (API 1.10): require() of the
// packages' CommonJS builds, and of the SDK. See ../otel-app-body.mjs.
const api = require('@opentelemetry/api');
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace');
const { traceTool, shutdown } = require('@agentrace/sdk');
const { run } = require('../otel-app-body.mjs');

run(JSON.parse(process.argv[2]), {
  api,
  NodeSDK,
  InMemorySpanExporter,
  simpleProcessor: (exporter) => new SimpleSpanProcessor({ exporter }),
  traceTool,
  shutdown,
}).catch((err) => {
  console.error(err);
  process.exit(1);
});
