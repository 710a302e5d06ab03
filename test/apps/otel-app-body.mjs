// The agent both OpenTelemetry apps run (otel2/, otel3/, each installed with
// npm as a user would): the app's own NodeSDK with an in-memory exporter,
// then an invoke_agent span of its own with parallel tool calls through
// traceTool. The entries pass in their copies of the packages, so each app
// resolves OpenTelemetry from its own node_modules.
//   node agent.mjs '{"late":bool,"calls":[{"id","file","port","word"}]}'
//   late: one tool call runs before the app starts its OpenTelemetry SDK
// Prints {results, maxInFlight, recording, contextWorks, diagErrors, spans}.
import { survey, concurrency } from '../fixtures/survey-tool.mjs';

export async function run(plan, { api, NodeSDK, InMemorySpanExporter, simpleProcessor, traceTool, shutdown }) {
  const diagErrors = [];
  api.diag.setLogger({ error: (m) => diagErrors.push(String(m)), warn() {}, info() {}, debug() {}, verbose() {} }, api.DiagLogLevel.ERROR);

  const results = {};
  const tool = (id) => traceTool('survey', (c) => survey(c), { callId: id });
  const [early, ...calls] = plan.late ? plan.calls : [undefined, ...plan.calls];
  if (early) results[early.id] = await tool(early.id)(early);

  const exporter = new InMemorySpanExporter();
  const processor = simpleProcessor(exporter);
  const otel = new NodeSDK({ spanProcessors: [processor], instrumentations: [] });
  otel.start();

  // What the app's own registration gave it.
  const probe = api.trace.getTracer('app').startSpan('probe');
  const recording = probe.isRecording();
  probe.end();
  const key = api.createContextKey('app');
  const contextWorks = api.context.with(api.context.active().setValue(key, 1), () => api.context.active().getValue(key) === 1);

  concurrency.max = 0;
  await api.trace.getTracer('app').startActiveSpan('invoke_agent surveyor', async (span) => {
    await Promise.all(calls.map(async (c) => (results[c.id] = await tool(c.id)(c))));
    span.end();
  });
  // Exports wait for the resource detectors: flush before reading, and read
  // before shutdown (the in-memory exporter forgets its spans then).
  await processor.forceFlush();
  const spans = exporter.getFinishedSpans().map((s) => ({
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    parentSpanId: s.parentSpanContext?.spanId ?? '',
    name: s.name,
    kind: s.kind + 1, // as OTLP numbers it (the API's INTERNAL = 0 is OTLP's 1)
    attributes: s.attributes,
    status: s.status,
    resource: {},
  }));
  await otel.shutdown();
  await shutdown();
  process.stdout.write(JSON.stringify({ results, maxInFlight: concurrency.max, recording, contextWorks, diagErrors, spans }));
}
