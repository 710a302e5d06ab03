// @agentrace/sdk: one OpenTelemetry span per AI tool call, and the
// metadata the agentrace sidecar needs to attribute the kernel activity of
// each call to its span.
export { traceTool, type CaptureKind, type ToolFunction, type TraceToolOptions } from './trace-tool.js';
export { configure, flush, ready, shutdown } from './runtime.js';
export { DEFAULT_SOCKET_PATH, type AgentraceConfig } from './config.js';
export { WARNING_TYPE, type WarningCode } from './warn.js';
