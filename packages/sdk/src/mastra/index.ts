// @agentrace/sdk/mastra: Mastra agents' tool calls as execute_tool spans.
// Mastra's tool hooks (beforeToolCall / afterToolCall) run beside a tool's
// body, not around it, so a span they start is never active while the tool
// runs. The tools themselves are the extension point that is: traceTools()
// runs each tool's execute through traceTool (span active for the whole
// body, thread slot for the kernel, gen_ai.tool.call.id from Mastra's
// context.agent.toolCallId), and traceAgent() makes each generate / stream
// an invoke_agent span the tool spans sit under. It warns once when an
// agent has tools traceTools() did not wrap. Imports nothing from Mastra.
//
//   const agent = traceAgent(new Agent({ name, instructions, model, tools: traceTools({ weather }) }));
import { context, SpanKind, trace, type Span } from '@opentelemetry/api';
import { endFrameworkSpan, startFrameworkSpan } from '../framework-span.js';
import { traceTool, type TraceToolOptions } from '../trace-tool.js';
import { warn } from '../warn.js';

/** What the tool spans record besides names and ids: traceTool's capture options. */
export type MastraTraceOptions = Pick<TraceToolOptions, 'captureArguments' | 'captureResult' | 'mask'>;

/** A Mastra tool as far as tracing needs it (createTool's result, or a plain object). */
export interface MastraToolLike {
  id?: string;
  description?: string;
  execute?: (input: unknown, context?: unknown) => unknown;
}

/** A Mastra Agent as far as tracing needs it. */
export interface MastraAgentLike {
  name?: string;
  id?: string;
  generate: (...args: never[]) => unknown;
  stream?: (...args: never[]) => unknown;
  listTools?: () => Promise<Record<string, unknown>> | Record<string, unknown>;
}

const SCOPE = '@agentrace/sdk/mastra';
const TRACED = Symbol.for('@agentrace/sdk mastra: traced tool');
const TRACED_AGENT = Symbol.for('@agentrace/sdk mastra: traced agent');

/** The model's tool-call id, where Mastra puts it for an agent's tool call. */
function toolCallIdOf(_input: unknown, ctx?: unknown): string | undefined {
  const id = (ctx as { agent?: { toolCallId?: unknown } } | undefined)?.agent?.toolCallId;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/**
 * The same tools, each one's execute run inside its `execute_tool {id}`
 * span. The tool objects are copied (prototype kept), never changed.
 */
export function traceTools<T extends Record<string, MastraToolLike>>(tools: T, options: MastraTraceOptions = {}): T {
  const out: Record<string, MastraToolLike> = {};
  for (const [key, tool] of Object.entries(tools)) {
    const execute = tool.execute;
    if (typeof execute !== 'function' || (tool as { [TRACED]?: true })[TRACED]) {
      out[key] = tool;
      continue;
    }
    const name = typeof tool.id === 'string' && tool.id !== '' ? tool.id : key;
    const traced = traceTool(name, (input: unknown, ctx?: unknown) => execute.call(tool, input, ctx), {
      ...(typeof tool.description === 'string' ? { description: tool.description } : {}),
      callId: toolCallIdOf,
      ...(options.captureArguments ? { captureArguments: true } : {}),
      ...(options.captureResult ? { captureResult: true } : {}),
      ...(options.mask ? { mask: options.mask } : {}),
    });
    const copy = Object.assign(Object.create(Object.getPrototypeOf(tool) as object) as object, tool, { execute: traced }) as MastraToolLike;
    Object.defineProperty(copy, TRACED, { value: true });
    out[key] = copy;
  }
  return out as T;
}

/**
 * The agent, with each generate() and stream() an `invoke_agent {name}`
 * span, active for the run: the tool spans traceTools() makes sit under
 * it. Changes the instance's own methods; returns it.
 */
export function traceAgent<A extends MastraAgentLike>(agent: A): A {
  const a = agent as A & { [TRACED_AGENT]?: true };
  if (a[TRACED_AGENT]) return agent;
  Object.defineProperty(a, TRACED_AGENT, { value: true });
  const name = String(agent.name ?? agent.id ?? 'agent');
  let checked = false;
  for (const method of ['generate', 'stream'] as const) {
    const original = a[method] as ((...args: unknown[]) => unknown) | undefined;
    if (typeof original !== 'function') continue;
    (a as Record<string, unknown>)[method] = function (this: unknown, ...args: unknown[]): unknown {
      if (!checked) {
        checked = true;
        void warnUntraced(agent, name);
      }
      let span: Span;
      try {
        span = startFrameworkSpan(SCOPE, `invoke_agent ${name}`, { kind: SpanKind.INTERNAL, attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': name } }, context.active());
      } catch {
        return original.apply(this, args);
      }
      let result: unknown;
      try {
        result = context.with(trace.setSpan(context.active(), span), () => original.apply(this, args));
      } catch (error) {
        endFrameworkSpan(span, {}, { error });
        throw error;
      }
      // generate resolves when the run is done; stream resolves to an output
      // whose `text` settles when its run is.
      void Promise.resolve(result)
        .then((out) => (method === 'stream' ? (out as { text?: unknown }).text : out))
        .then(
          () => endFrameworkSpan(span),
          (error: unknown) => endFrameworkSpan(span, {}, { error }),
        );
      return result;
    };
  }
  return agent;
}

let warned = false;

/** Said once: an agent has tools traceTools() did not wrap (their calls have no span, and no kernel attribution). */
async function warnUntraced(agent: MastraAgentLike, name: string): Promise<void> {
  if (warned || typeof agent.listTools !== 'function') return;
  let tools: Record<string, unknown>;
  try {
    tools = await agent.listTools();
  } catch {
    return;
  }
  const untraced = Object.entries(tools ?? {})
    .filter(([, t]) => typeof (t as MastraToolLike | undefined)?.execute === 'function' && !(t as { [TRACED]?: true })[TRACED])
    .map(([k]) => k);
  if (untraced.length === 0 || warned) return;
  warned = true;
  warn(
    'AGENTRACE_FRAMEWORK_UNREACHED',
    `agentrace: the Mastra agent "${name}" has tools traceTools() did not wrap (${untraced.join(', ')}): ` +
      'their calls have no execute_tool span and no kernel attribution. Pass tools: traceTools({ ... }) to the Agent.',
  );
}
