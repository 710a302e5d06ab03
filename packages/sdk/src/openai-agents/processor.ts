// A trace processor for the OpenAI Agents SDK: mirrors its traces and
// spans (task, agent, turn, generation, handoff, guardrail, ...) as
// OpenTelemetry spans, so the execute_tool spans of traced tools (tool.ts)
// sit under the agent's run in the same trace. The agents SDK calls
// processors without awaiting them, and when several are registered each
// one only after the previous one's promise settled: every method does its
// work synchronously, and a span seen first at its end (its start came too
// late) is still mirrored, from its recorded start time.
import { context, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import type { Span as AgentsSpan, SpanData, Trace, TracingProcessor } from '@openai/agents';
import { startFrameworkSpan } from '../framework-span.js';
import { flush } from '../runtime.js';
import { toBoundedJson } from '../serialize.js';
import { mirrors } from './mirrors.js';
import type { AgentsTraceOptions } from './tool.js';

/** Instrumentation scope of the mirrored spans when the app has a TracerProvider. */
const SCOPE = '@openai/agents';

type AnySpan = AgentsSpan<SpanData>;

export class AgentraceProcessor implements TracingProcessor {
  /** Spans whose end was handled: a late onSpanStart must not mirror them again. */
  private readonly ended = new WeakSet<object>();

  /** `options` apply to the tools the processor sees without a traced tool() (their function spans). */
  constructor(private readonly options: AgentsTraceOptions = {}) {}

  async onTraceStart(t: Trace): Promise<void> {
    try {
      if (mirrors.trace(t.traceId)) return;
      const attributes: Attributes = { 'openai.agents.trace_id': t.traceId };
      if (t.groupId) attributes['openai.agents.group_id'] = t.groupId;
      mirrors.setTrace(t.traceId, startFrameworkSpan(SCOPE, t.name || 'Agent workflow', { attributes }, context.active()));
    } catch {
      // never into the agent
    }
  }

  async onTraceEnd(t: Trace): Promise<void> {
    try {
      mirrors.trace(t.traceId)?.end();
      mirrors.dropTrace(t.traceId);
    } catch {
      // never into the agent
    }
  }

  async onSpanStart(s: AnySpan): Promise<void> {
    try {
      // A traced tool's span is made by its execute wrapper, if the body runs at all (see onSpanEnd).
      if (this.ended.has(s) || mirrors.span(s.spanId) || tracedTool(s)) return;
      this.mirror(s, undefined);
    } catch {
      // never into the agent
    }
  }

  async onSpanEnd(s: AnySpan): Promise<void> {
    try {
      this.ended.add(s);
      // A traced tool whose body never ran (its input failed validation, a
      // guardrail or the user rejected it) still gets its span, from here.
      if (tracedTool(s) && mirrors.ran(s)) return;
      const span = mirrors.span(s.spanId) ?? this.mirror(s, s.startedAt ? new Date(s.startedAt) : undefined);
      mirrors.dropSpan(s.spanId);
      span.setAttributes(this.endAttributes(s.spanData));
      const error = s.error;
      if (error) {
        span.setAttribute('error.type', '_OTHER');
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      }
      const named = endName(s.spanData);
      if (named !== undefined) span.updateName(named);
      span.end();
    } catch {
      // never into the agent
    }
  }

  async shutdown(): Promise<void> {
    await flush();
  }

  async forceFlush(): Promise<void> {
    await flush();
  }

  private mirror(s: AnySpan, startTime: Date | undefined): Span {
    const parent = mirrors.span(s.parentId) ?? mirrors.trace(s.traceId);
    const parentCtx = parent ? trace.setSpan(context.active(), parent) : context.active();
    const { name, attributes } = describe(s.spanData);
    attributes['openai.agents.span_id'] = s.spanId;
    const span = startFrameworkSpan(SCOPE, name, startTime ? { attributes, startTime } : { attributes }, parentCtx);
    mirrors.setSpan(s.spanId, span);
    return span;
  }

  private endAttributes(data: SpanData): Attributes {
    const out: Attributes = {};
    switch (data.type) {
      case 'agent':
        // Filled in by the runner after the span started.
        if (data.tools?.length) out['openai.agents.agent.tools'] = data.tools;
        if (data.handoffs?.length) out['openai.agents.agent.handoffs'] = data.handoffs;
        if (data.output_type) out['openai.agents.agent.output_type'] = data.output_type;
        break;
      case 'generation': {
        const usage = data.usage;
        if (typeof usage?.input_tokens === 'number') out['gen_ai.usage.input_tokens'] = usage.input_tokens;
        if (typeof usage?.output_tokens === 'number') out['gen_ai.usage.output_tokens'] = usage.output_tokens;
        if (data.model) out['gen_ai.request.model'] = data.model;
        break;
      }
      case 'response':
        if (data.response_id) out['gen_ai.response.id'] = data.response_id;
        break;
      case 'turn':
      case 'task': {
        const usage = data.usage;
        if (usage) {
          out['gen_ai.usage.input_tokens'] = usage.input_tokens;
          out['gen_ai.usage.output_tokens'] = usage.output_tokens;
        }
        break;
      }
      case 'guardrail':
        out['openai.agents.guardrail.triggered'] = data.triggered;
        break;
      case 'handoff':
        if (data.to_agent) out['openai.agents.handoff.to'] = data.to_agent;
        break;
      case 'function':
        // Only for tools made without our tool(): their span is built from the agents SDK's record.
        if (this.options.captureArguments && data.input) putJson(out, 'gen_ai.tool.call.arguments', this.options, parseJson(data.input), 'arguments');
        if (this.options.captureResult && data.output) putJson(out, 'gen_ai.tool.call.result', this.options, parseJson(data.output), 'result');
        break;
      default:
        break;
    }
    return out;
  }
}

function tracedTool(s: AnySpan): boolean {
  return s.spanData.type === 'function' && mirrors.isTraced(s.spanData.name);
}

/** The OpenTelemetry name and start attributes of an agents span (GenAI conventions where they apply). */
function describe(data: SpanData): { name: string; attributes: Attributes } {
  const attributes: Attributes = { 'openai.agents.span.type': data.type };
  switch (data.type) {
    case 'agent':
      attributes['gen_ai.operation.name'] = 'invoke_agent';
      attributes['gen_ai.agent.name'] = data.name;
      return { name: `invoke_agent ${data.name}`, attributes };
    case 'task':
      return { name: `task ${data.name}`, attributes };
    case 'turn':
      attributes['openai.agents.turn'] = data.turn;
      attributes['gen_ai.agent.name'] = data.agent_name;
      return { name: `turn ${data.turn}`, attributes };
    case 'function':
      attributes['gen_ai.operation.name'] = 'execute_tool';
      attributes['gen_ai.tool.name'] = data.name;
      attributes['gen_ai.tool.type'] = 'function';
      return { name: `execute_tool ${data.name}`, attributes };
    case 'generation':
      attributes['gen_ai.operation.name'] = 'chat';
      if (data.model) attributes['gen_ai.request.model'] = data.model;
      return { name: data.model ? `chat ${data.model}` : 'chat', attributes };
    case 'response':
      attributes['gen_ai.operation.name'] = 'chat';
      return { name: 'response', attributes };
    case 'handoff':
      if (data.from_agent) attributes['openai.agents.handoff.from'] = data.from_agent;
      return { name: 'handoff', attributes };
    case 'guardrail':
      return { name: `guardrail ${data.name}`, attributes };
    case 'custom':
      return { name: data.name, attributes };
    case 'mcp_tools':
      if (data.server) attributes['openai.agents.mcp.server'] = data.server;
      return { name: data.server ? `mcp_tools ${data.server}` : 'mcp_tools', attributes };
    default:
      return { name: data.type, attributes };
  }
}

/** A better name known only at the end (a handoff's target). */
function endName(data: SpanData): string | undefined {
  if (data.type === 'handoff' && data.to_agent) return `handoff ${data.from_agent ?? '?'} -> ${data.to_agent}`;
  return undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function putJson(out: Attributes, key: string, options: AgentsTraceOptions, value: unknown, kind: 'arguments' | 'result'): void {
  try {
    const json = toBoundedJson(options.mask ? options.mask(value, kind) : value);
    if (json !== undefined) out[key] = json;
  } catch {
    // a throwing mask leaves the attribute out, as with traceTool
  }
}
