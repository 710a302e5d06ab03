// @agentrace/sdk/ai: the Vercel AI SDK integration. Every tool call becomes
// an `execute_tool {name}` span, active while the tool's execute runs, with
// gen_ai.tool.call.id = the model's tool-call id.
//   ai 7:     registerTelemetry(agentraceTelemetry())  (its telemetry
//             integrations; under an invoke_agent span per operation)
//   ai 5, 6:  experimental_telemetry: telemetry()      (an OpenTelemetry
//             Tracer; under the ai SDK's own ai.generateText span)
// This module imports nothing from `ai`.
import type { AttributeValue, Tracer } from '@opentelemetry/api';
import { AgentraceAiTracer, type AiTraceOptions } from './tracer.js';

export { AgentraceAiTracer, type AiTraceOptions };
export { agentraceTelemetry, type AgentraceAiTelemetry, type AiToolExecution } from './integration.js';

/** The subset of the ai SDK's TelemetrySettings this integration sets (assignable to it). */
export interface AgentraceTelemetrySettings {
  isEnabled: boolean;
  tracer: Tracer;
  recordInputs: boolean;
  recordOutputs: boolean;
  functionId?: string;
  metadata?: Record<string, AttributeValue>;
}

export interface TelemetryOptions extends AiTraceOptions {
  /** The ai SDK's telemetry functionId (ai.telemetry.functionId on its spans). */
  functionId?: string;
  /** The ai SDK's telemetry metadata (ai.telemetry.metadata.* on its spans). */
  metadata?: Record<string, AttributeValue>;
  /**
   * The ai SDK's own recording of prompts and tool arguments on its ai.*
   * spans. Default false: they would be recorded unmasked. Tool arguments
   * on the execute_tool span follow captureArguments and mask either way.
   */
  recordInputs?: boolean;
  /** As recordInputs, for responses and tool results. Default false. */
  recordOutputs?: boolean;
}

/**
 * Telemetry settings for the ai SDK's `experimental_telemetry` option:
 * telemetry enabled, with a tracer that makes every tool call a traced
 * tool call. Keep one and pass it to every call, or build one per call.
 */
export function telemetry(options: TelemetryOptions = {}): AgentraceTelemetrySettings {
  const { functionId, metadata, recordInputs, recordOutputs, ...trace } = options;
  const settings: AgentraceTelemetrySettings = {
    isEnabled: true,
    tracer: new AgentraceAiTracer(trace),
    recordInputs: recordInputs ?? false,
    recordOutputs: recordOutputs ?? false,
  };
  if (functionId !== undefined) settings.functionId = functionId;
  if (metadata !== undefined) settings.metadata = metadata;
  return settings;
}
