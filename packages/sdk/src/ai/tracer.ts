// The OpenTelemetry Tracer handed to the Vercel AI SDK (`ai` 5 and 6)
// through `experimental_telemetry.tracer`. The ai SDK runs every tool's
// `execute` inside `tracer.startActiveSpan('ai.toolCall', ...)`, so that
// callback is where a span can be active for the whole tool body: this
// tracer runs it through traceTool, which makes the `execute_tool {name}`
// span, publishes it to the thread slot (kernel attribution) and keeps it
// active across the body's awaits. Every other ai.* span (ai.generateText,
// ai.streamText, their doGenerate/doStream steps) is a framework span, the
// tool spans' parents.
import {
  context,
  INVALID_SPAN_CONTEXT,
  trace,
  type AttributeValue,
  type Attributes,
  type Context,
  type Exception,
  type Link,
  type Span,
  type SpanAttributeValue,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TimeInput,
  type Tracer,
} from '@opentelemetry/api';
import { startFrameworkSpan, withSpan } from '../framework-span.js';
import { toBoundedJson } from '../serialize.js';
import { traceTool, type TraceToolOptions } from '../trace-tool.js';

/** What the tool spans record besides their names and ids; the same options as traceTool's. */
export type AiTraceOptions = Pick<TraceToolOptions, 'captureArguments' | 'captureResult' | 'mask'>;

/** The instrumentation scope of the ai.* spans when the app has a TracerProvider: the one the ai SDK uses itself. */
const SCOPE = 'ai';
const TOOL_CALL_SPAN = 'ai.toolCall';
/** Attributes the ai SDK puts on its tool span that would bypass the mask. */
const UNMASKED = new Set(['ai.toolCall.args', 'ai.toolCall.result']);

type SpanCallback = (span: Span) => unknown;

export class AgentraceAiTracer implements Tracer {
  constructor(private readonly options: AiTraceOptions = {}) {}

  startSpan(name: string, options: SpanOptions = {}, ctx: Context = context.active()): Span {
    return startFrameworkSpan(SCOPE, name, options, ctx);
  }

  startActiveSpan<F extends SpanCallback>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends SpanCallback>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends SpanCallback>(name: string, options: SpanOptions, ctx: Context, fn: F): ReturnType<F>;
  startActiveSpan(name: string, a: SpanOptions | SpanCallback, b?: Context | SpanCallback, c?: SpanCallback): unknown {
    const fn = (typeof a === 'function' ? a : typeof b === 'function' ? b : c) as SpanCallback;
    const options = typeof a === 'function' ? {} : a;
    const parentCtx = typeof b === 'object' && b !== null ? b : context.active();
    if (name === TOOL_CALL_SPAN) return context.with(parentCtx, () => runToolCall(this.options, options.attributes ?? {}, fn));
    const span = this.startSpan(name, options, parentCtx);
    return withSpan(parentCtx, span, () => fn(span));
  }
}

/** What ai's tool-call callback resolves to (ai 5 and 6): the tool's output, or the error it threw. */
interface ToolOutcome {
  type?: unknown;
  input?: unknown;
  output?: unknown;
  error?: unknown;
}

function outcomeOf(value: unknown): ToolOutcome | undefined {
  return typeof value === 'object' && value !== null ? (value as ToolOutcome) : undefined;
}

/**
 * One tool call: traceTool around ai's callback. The callback catches the
 * tool's error and resolves to a `tool-error` part; here that error is
 * rethrown inside traceTool (so the span records it as for any traced
 * tool: error.type from its code or class) and the part is handed back to
 * ai unchanged afterwards.
 */
function runToolCall(options: AiTraceOptions, attrs: Attributes, fn: SpanCallback): unknown {
  const toolName = String(attrs['ai.toolCall.name'] ?? 'tool');
  const id = attrs['ai.toolCall.id'];
  let settled: { value: unknown } | undefined;
  const parent = trace.getActiveSpan();
  const traced = traceTool(
    toolName,
    async (): Promise<unknown> => {
      // traceTool runs the body bare when it could not start a span: then the active span is still the parent's.
      const active = trace.getActiveSpan();
      const span = active !== parent ? active : undefined;
      const view = span ? new ToolCallView(span) : undefined;
      view?.setAttributes(attrs);
      const value = await fn(view ?? trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
      settled = { value };
      const outcome = outcomeOf(value);
      if (span && options.captureArguments && outcome && 'input' in outcome) {
        const json = capture(options, outcome.input);
        if (json !== undefined) span.setAttribute('gen_ai.tool.call.arguments', json);
      }
      if (outcome?.type === 'tool-error') throw outcome.error;
      return outcome?.type === 'tool-result' ? outcome.output : value;
    },
    {
      callId: typeof id === 'string' ? id : undefined,
      captureResult: options.captureResult,
      mask: options.mask,
    },
  );
  return traced().then(
    () => settled?.value,
    (err: unknown) => {
      if (settled) return settled.value;
      throw err;
    },
  );
}

function capture(options: AiTraceOptions, value: unknown): string | undefined {
  try {
    return toBoundedJson(options.mask ? options.mask(value, 'arguments') : value);
  } catch {
    return undefined;
  }
}

/**
 * The tool span as ai's callback sees it. traceTool owns the span's life:
 * ai's end, status and exception calls are dropped (the error reaches
 * traceTool by other means), and so are the arguments and result ai would
 * record unmasked.
 */
class ToolCallView implements Span {
  constructor(private readonly span: Span) {}

  spanContext(): SpanContext {
    return this.span.spanContext();
  }

  setAttribute(key: string, value: SpanAttributeValue): this {
    if (!UNMASKED.has(key)) this.span.setAttribute(key, value);
    return this;
  }

  setAttributes(attributes: Attributes): this {
    const kept: Record<string, AttributeValue | undefined> = {};
    for (const [k, v] of Object.entries(attributes)) if (!UNMASKED.has(k)) kept[k] = v;
    this.span.setAttributes(kept);
    return this;
  }

  addEvent(name: string, attributesOrStartTime?: Attributes | TimeInput, startTime?: TimeInput): this {
    this.span.addEvent(name, attributesOrStartTime, startTime);
    return this;
  }

  addLink(link: Link): this {
    this.span.addLink(link);
    return this;
  }

  addLinks(links: Link[]): this {
    this.span.addLinks(links);
    return this;
  }

  setStatus(_status: SpanStatus): this {
    return this;
  }

  updateName(_name: string): this {
    return this;
  }

  end(_endTime?: TimeInput): void {}

  isRecording(): boolean {
    return this.span.isRecording();
  }

  recordException(_exception: Exception, _time?: TimeInput): void {}
}
