// An ES-module agent on OpenTelemetry JS 3 (API 1.10): see ../otel-app-body.mjs.
import * as api from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { traceTool, shutdown } from '@agentrace/sdk';
import { run } from '../otel-app-body.mjs';

await run(JSON.parse(process.argv[2]), {
  api,
  NodeSDK,
  InMemorySpanExporter,
  simpleProcessor: (exporter) => new SimpleSpanProcessor({ exporter }),
  traceTool,
  shutdown,
});
