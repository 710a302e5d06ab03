// The ai SDK 7 integration: ai 7 replaced experimental_telemetry's tracer
// with telemetry integrations (`registerTelemetry(...)`, or
// `telemetry: { integrations }` per call). Its `executeTool` hook runs each
// tool's execute inside whatever the integration likes: here traceTool, so
// the `execute_tool {name}` span is active for the whole body (OpenTelemetry
// context and the thread slot the kernel reads). The operation itself
// (generateText, streamText, an Agent's run) is an `invoke_agent` span and
// each model call a `chat {model}` span under it, so the tool spans have
// their parents in the same export. Structural types only: this module
// imports nothing from `ai`.
import { context, SpanKind, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { endFrameworkSpan, startFrameworkSpan } from '../framework-span.js';
import { traceTool } from '../trace-tool.js';
import type { AiTraceOptions } from './tracer.js';

/** The instrumentation scope of the invoke_agent and chat spans under an app TracerProvider. */
const SCOPE = '@agentrace/sdk/ai';

/** Runs remembered at most (one per generateText/streamText in flight); the oldest go first. */
const MAX_RUNS = 4096;

/** What ai 7 passes to executeTool (the tool-execution start event, plus these). */
export interface AiToolExecution<T> {
  callId: string;
  toolCallId: string;
  toolCall?: { toolName?: string; input?: unknown };
  execute: () => PromiseLike<T>;
}

/** The parts of ai 7's events this integration reads. */
interface AiEvent {
  callId?: string;
  operationId?: string;
  provider?: string;
  modelId?: string;
  functionId?: string;
  usage?: { inputTokens?: unknown; outputTokens?: unknown };
  finishReason?: unknown;
  error?: unknown;
}

/** A telemetry integration for ai 7 (assignable to its `Telemetry`). */
export interface AgentraceAiTelemetry {
  onStart(event: unknown): void;
  onLanguageModelCallStart(event: unknown): void;
  onLanguageModelCallEnd(event: unknown): void;
  executeTool<T>(options: AiToolExecution<T>): PromiseLike<T>;
  onEnd(event: unknown): void;
  onAbort(event: unknown): void;
  onError(event: unknown): void;
}

interface Run {
  span: Span;
  ctx: Context;
  chat?: Span;
}

interface ToolRequest {
  execution: AiToolExecution<unknown>;
}

/**
 * The integration for ai 7: `registerTelemetry(agentraceTelemetry())` once
 * at start-up, or `telemetry: { integrations: [agentraceTelemetry()] }` on
 * a call. Options are traceTool's capture options.
 */
export function agentraceTelemetry(options: AiTraceOptions = {}): AgentraceAiTelemetry {
  const runs = new Map<string, Run>();
  const tools = new Map<string, (req: ToolRequest) => PromiseLike<unknown>>();

  const toolFor = (name: string): ((req: ToolRequest) => PromiseLike<unknown>) => {
    let fn = tools.get(name);
    if (!fn) {
      fn = traceTool(name, (req: ToolRequest) => req.execution.execute(), {
        callId: (req) => req.execution.toolCallId,
        ...(options.captureArguments ? { captureArguments: true } : {}),
        ...(options.captureResult ? { captureResult: true } : {}),
        mask: (value, kind) => {
          const v = kind === 'arguments' ? (value as ToolRequest).execution.toolCall?.input : value;
          return options.mask ? options.mask(v, kind) : v;
        },
      });
      tools.set(name, fn);
    }
    return fn;
  };

  /** The run an event belongs to (by its callId), if it is known. */
  const runOf = (e: AiEvent): Run | undefined => (e.callId === undefined ? undefined : runs.get(e.callId));

  const end = (event: unknown, failure?: { error: unknown }): void => {
    const e = asEvent(event);
    const run = runOf(e);
    if (!run) return;
    runs.delete(e.callId!);
    if (run.chat) endFrameworkSpan(run.chat, {}, failure);
    endFrameworkSpan(run.span, {}, failure);
  };

  return {
    onStart(event) {
      guard(() => {
        const e = asEvent(event);
        if (e.callId === undefined) return;
        const name = e.functionId ?? 'ai';
        const attributes: Attributes = { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': name };
        if (e.operationId) attributes['ai.operationId'] = e.operationId;
        if (e.provider) attributes['gen_ai.provider.name'] = e.provider;
        if (e.modelId) attributes['gen_ai.request.model'] = e.modelId;
        const parent = context.active();
        const span = startFrameworkSpan(SCOPE, `invoke_agent ${name}`, { kind: SpanKind.INTERNAL, attributes }, parent);
        if (runs.size >= MAX_RUNS) {
          const oldest = runs.keys().next().value as string;
          runs.get(oldest)?.span.end();
          runs.delete(oldest);
        }
        runs.set(e.callId, { span, ctx: trace.setSpan(parent, span) });
      });
    },
    onLanguageModelCallStart(event) {
      guard(() => {
        const e = asEvent(event);
        const run = runOf(e);
        if (!run) return;
        const attributes: Attributes = { 'gen_ai.operation.name': 'chat' };
        if (e.provider) attributes['gen_ai.provider.name'] = e.provider;
        if (e.modelId) attributes['gen_ai.request.model'] = e.modelId;
        run.chat?.end();
        run.chat = startFrameworkSpan(SCOPE, `chat ${e.modelId ?? 'model'}`, { kind: SpanKind.CLIENT, attributes }, run.ctx);
      });
    },
    onLanguageModelCallEnd(event) {
      guard(() => {
        const e = asEvent(event);
        const run = runOf(e);
        if (!run?.chat) return;
        const input = tokens(e.usage?.inputTokens);
        const output = tokens(e.usage?.outputTokens);
        if (input !== undefined) run.chat.setAttribute('gen_ai.usage.input_tokens', input);
        if (output !== undefined) run.chat.setAttribute('gen_ai.usage.output_tokens', output);
        if (typeof e.finishReason === 'string') run.chat.setAttribute('gen_ai.response.finish_reasons', [e.finishReason]);
        run.chat.end();
        run.chat = undefined;
      });
    },
    executeTool<T>(execution: AiToolExecution<T>): PromiseLike<T> {
      let fn: (req: ToolRequest) => PromiseLike<unknown>;
      let parent: Context;
      try {
        fn = toolFor(execution.toolCall?.toolName ?? 'tool');
        parent = runs.get(execution.callId)?.ctx ?? context.active();
      } catch {
        return execution.execute();
      }
      return context.with(parent, fn, undefined, { execution: execution as AiToolExecution<unknown> }) as PromiseLike<T>;
    },
    onEnd(event) {
      guard(() => end(event));
    },
    onAbort(event) {
      guard(() => end(event, { error: new Error('aborted') }));
    },
    onError(event) {
      guard(() => end(event, { error: asEvent(event).error ?? event }));
    },
  };
}

function asEvent(event: unknown): AiEvent {
  return typeof event === 'object' && event !== null ? (event as AiEvent) : {};
}

/** A token count: ai 7 reports a number, or { total } per kind. */
function tokens(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  const total = (v as { total?: unknown } | undefined)?.total;
  return typeof total === 'number' && Number.isFinite(total) ? total : undefined;
}

/** Telemetry must never break the agent. */
function guard(fn: () => void): void {
  try {
    fn();
  } catch {
    // nothing to do: the agent goes on without this span
  }
}
