// tool(): the OpenAI Agents SDK's `tool()` with the execute function run
// through traceTool. A trace processor cannot do this part: the agents SDK
// calls processors without awaiting them (one processor after another, so
// ours may even run after the tool started), and nothing a processor does
// can make a span active for code that runs after it returns. Wrapping the
// execute function can, and it sees what the processor cannot: the tool's
// own errors (before the agents SDK turns them into a message for the
// model) and the model's tool-call id (details.toolCall.callId).
// Replacing `invoke` on existing tools would also reach them, but the
// agents SDK keys its input parsing by the invoke function, so it is not
// done.
import { context, trace } from '@opentelemetry/api';
import { getCurrentSpan, tool as agentsTool } from '@openai/agents';
import { traceTool, type TraceToolOptions } from '../trace-tool.js';
import { mirrors } from './mirrors.js';

/** What the tool spans record besides their names and ids; the same options as traceTool's. */
export type AgentsTraceOptions = Pick<TraceToolOptions, 'captureArguments' | 'captureResult' | 'mask'>;

type Execute = (input: unknown, runContext?: unknown, details?: unknown) => unknown;

interface ToolOptionsLike {
  execute: Execute;
  [key: string]: unknown;
}

interface CreatedTool {
  name: string;
  description?: string;
}

/** The agents SDK's tool(), whose tools are traced; `options` apply to all of them. */
export function createTool(options: AgentsTraceOptions = {}): typeof agentsTool {
  const make = agentsTool as unknown as (o: ToolOptionsLike) => CreatedTool;
  const factory = (toolOptions: ToolOptionsLike): CreatedTool => {
    const execute = toolOptions.execute;
    const def = { name: '', description: undefined as string | undefined };
    const traced = function (this: unknown, input: unknown, runContext?: unknown, details?: unknown): Promise<unknown> {
      return runTraced(def.name, def.description, options, execute, input, runContext, details);
    };
    // The agents SDK names a tool after its execute function when no name is given.
    Object.defineProperty(traced, 'name', { value: execute.name, configurable: true });
    const created = make({ ...toolOptions, execute: traced });
    def.name = created.name;
    def.description = created.description;
    mirrors.markTraced(created.name);
    return created;
  };
  return factory as unknown as typeof agentsTool;
}

/** The agents SDK's tool() with traced tools, capturing no arguments or results. */
export const tool: typeof agentsTool = createTool();

async function runTraced(
  name: string,
  description: string | undefined,
  options: AgentsTraceOptions,
  execute: Execute,
  input: unknown,
  runContext: unknown,
  details: unknown,
): Promise<unknown> {
  // The agents SDK runs the tool with its function span current; the span's
  // parent (the turn or agent span) has an OpenTelemetry mirror by now.
  let fnSpanId: string | undefined;
  let parent = undefined as ReturnType<typeof mirrors.span>;
  try {
    const fnSpan = getCurrentSpan();
    if (fnSpan && fnSpan.spanData.type === 'function') {
      mirrors.markRan(fnSpan);
      fnSpanId = fnSpan.spanId;
      parent = mirrors.span(fnSpan.parentId) ?? mirrors.trace(fnSpan.traceId);
    }
  } catch {
    // tracing state unreadable: the tool span goes under the active context
  }
  const parentCtx = parent ? trace.setSpan(context.active(), parent) : context.active();
  const fn = traceTool(
    name,
    (arg: unknown): unknown => {
      if (fnSpanId !== undefined) {
        const span = trace.getActiveSpan();
        if (span && span !== parent) mirrors.setSpan(fnSpanId, span);
      }
      return execute(arg, runContext, details);
    },
    { ...options, description, callId: callIdOf(details) },
  );
  try {
    return await context.with(parentCtx, fn, undefined, input);
  } finally {
    if (fnSpanId !== undefined) mirrors.dropSpan(fnSpanId);
  }
}

function callIdOf(details: unknown): string | undefined {
  try {
    const call = (details as { toolCall?: { callId?: unknown } } | undefined)?.toolCall;
    return typeof call?.callId === 'string' ? call.callId : undefined;
  } catch {
    return undefined;
  }
}
