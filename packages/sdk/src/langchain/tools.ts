// instrumentTools(): every LangChain tool call runs through traceTool, so
// its execute_tool span is active (in the OpenTelemetry context and in the
// thread slot the kernel reads) while the tool body runs. A callback handler
// cannot do this: LangChain calls it beside the body, not around it.
//
// One patch, of StructuredTool.prototype.call: every tool (tool(),
// DynamicTool, DynamicStructuredTool, subclasses) ends up there, from
// invoke() and from the deprecated call() alike; in every copy of
// @langchain/core the process loads through require (its CommonJS build,
// other versions) as well as the ES-module copy this module imports. Its span covers the
// input validation too, so a call the model got wrong is an execute_tool
// span that ends with error.type ToolInputParsingException: such calls
// never reach handleToolStart, and nothing is left open for them.
import { context, type Context } from '@opentelemetry/api';
import { StructuredTool } from '@langchain/core/tools';
import { ensureContextManager } from '../otel.js';
import { sidecar } from '../runtime.js';
import { traceTool } from '../trace-tool.js';
import { copyOptions, toolOutputContent, type LangChainTracingOptions } from './options.js';
import { contextOfRun, TOOL_MARKER_KEY, type ToolMarker } from './runs.js';
import { patchRequiredCopies } from './copies.js';

/** One call of StructuredTool.prototype.call, as its arguments came. */
interface CallRequest {
  readonly arg: unknown;
  readonly configArg: unknown;
  readonly tags: unknown;
}

type ToolThis = StructuredTool;
type CallFn = (this: ToolThis, arg: unknown, configArg?: unknown, tags?: unknown) => Promise<unknown>;
type TracedCall = (this: ToolThis, req: CallRequest) => Promise<unknown>;

// On the patched function, so a second copy of this module (or a second
// call) sees the patch and does not wrap it again.
const ORIGINAL = Symbol.for('@agentrace/sdk langchain: StructuredTool.prototype.call');

let options: LangChainTracingOptions = {};
/** Bumped by each instrumentTools(): tools rebuild their traced call with the new options. */
let optionsVersion = 0;

interface Traced {
  readonly name: string;
  readonly description: string | undefined;
  readonly version: number;
  readonly call: TracedCall;
}

// One traced wrapper per tool object (not per call): parallel calls of one
// tool share it, and each call's span is its own.
const traced = new WeakMap<object, Traced>();

/**
 * Patches LangChain's tools, once per process: each tool call becomes an
 * `execute_tool {name}` span, active while the tool runs, with
 * gen_ai.tool.call.id set to the model's tool-call id. With an
 * AgentraceCallbackHandler attached to the run, the span starts under the
 * span of the run that called the tool (LangGraph's ToolNode, an agent);
 * without one, under the active OpenTelemetry context. Calling it again
 * only replaces the capture options.
 */
export function instrumentTools(opts: LangChainTracingOptions = {}): void {
  options = copyOptions(opts);
  optionsVersion++;
  // Connect now, as traceTool does: this runs at start-up, so the slot is
  // usually registered before the first tool call.
  try {
    sidecar();
  } catch {
    // the client reports its own problems
  }
  patchClass(StructuredTool);
  // The agent may run another copy: @langchain/core's CommonJS build (a
  // CommonJS agent, or a TypeScript build that emits require), or another
  // version. Every one loaded through require, now or later, is patched too.
  patchRequiredCopies(patchClass);
}

/** Patches one copy's StructuredTool.prototype.call (once: a patched one is left alone). */
function patchClass(cls: { prototype: object }): void {
  const proto = cls.prototype as { call: CallFn & { [ORIGINAL]?: CallFn } };
  if (typeof proto.call !== 'function' || proto.call[ORIGINAL] !== undefined) return;
  const original = proto.call;
  const patched = function call(this: ToolThis, arg: unknown, configArg?: unknown, tags?: unknown): Promise<unknown> {
    let fn: TracedCall;
    let parent: Context;
    try {
      ensureContextManager();
      fn = tracedCall(this, original);
      parent = parentContext(configArg);
    } catch {
      return original.call(this, arg, configArg, tags);
    }
    return context.with(parent, fn, this, { arg, configArg, tags });
  } as CallFn & { [ORIGINAL]?: CallFn };
  Object.defineProperty(patched, ORIGINAL, { value: original });
  proto.call = patched;
}

/** Whether LangChain's tools are patched (by this or another copy of the SDK). */
export function toolsInstrumented(): boolean {
  const proto = StructuredTool.prototype as unknown as { call: { [ORIGINAL]?: CallFn } };
  return proto.call[ORIGINAL] !== undefined;
}

function tracedCall(tool: ToolThis, original: CallFn): TracedCall {
  const name = String(tool.name);
  const description = typeof tool.description === 'string' ? tool.description : undefined;
  const known = traced.get(tool);
  if (known && known.name === name && known.description === description && known.version === optionsVersion) return known.call;
  const opts = options;
  const body = function (this: ToolThis, req: CallRequest): Promise<unknown> {
    // The handler's handleToolStart runs in this context (LangChain awaits
    // it from inside call()), finds the marker and files the tool's runId
    // under this span, for whatever the tool itself starts.
    const marker: { ctx: Context; runId: string | undefined } = { ctx: context.active(), runId: undefined };
    const ctx = marker.ctx.setValue(TOOL_MARKER_KEY, marker satisfies ToolMarker);
    return context.with(ctx, original, this, req.arg, req.configArg, req.tags);
  };
  const call = traceTool(name, body, {
    ...(description !== undefined ? { description } : {}),
    callId: callIdOf,
    ...(opts.captureArguments ? { captureArguments: true } : {}),
    ...(opts.captureResult ? { captureResult: true } : {}),
    mask: (value, kind) => {
      const v = kind === 'arguments' ? argumentsOf(value as CallRequest) : toolOutputContent(value);
      return opts.mask ? opts.mask(v, kind) : v;
    },
  });
  traced.set(tool, { name, description, version: optionsVersion, call });
  return call;
}

/** A ToolCall as LangChain recognises one (its _isToolCall). */
function isToolCall(v: unknown): v is { id?: unknown; args?: unknown } {
  return typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'tool_call';
}

/**
 * The model's tool-call id, where call() itself finds it: the ToolCall
 * passed as the argument (tool.call(toolCall)), else the ToolCall that
 * invoke() put in the config (tool.invoke(toolCall), as ToolNode does).
 */
function callIdOf(req: CallRequest): string | undefined {
  const fromArg = isToolCall(req.arg) ? req.arg.id : undefined;
  const config = req.configArg as { toolCall?: { id?: unknown } } | undefined;
  const id = fromArg ?? (typeof config === 'object' && config !== null ? config.toolCall?.id : undefined);
  return typeof id === 'string' && id !== '' ? id : undefined;
}

function argumentsOf(req: CallRequest): unknown {
  return isToolCall(req.arg) ? req.arg.args : req.arg;
}

/**
 * The span of the run that called the tool: its callback manager names the
 * parent run, whose span the handler filed (LangChain's parseCallbackConfigArg
 * accepts a config, a handler array or a manager).
 */
function parentContext(configArg: unknown): Context {
  let callbacks: unknown;
  if (typeof configArg === 'object' && configArg !== null) {
    callbacks = Array.isArray(configArg) || 'name' in configArg ? configArg : (configArg as { callbacks?: unknown }).callbacks;
  }
  const getParent = (callbacks as { getParentRunId?: unknown } | undefined)?.getParentRunId;
  if (typeof getParent === 'function') {
    const parentRunId = (getParent as () => unknown).call(callbacks);
    if (typeof parentRunId === 'string') {
      const ctx = contextOfRun(parentRunId);
      if (ctx) return ctx;
    }
  }
  return context.active();
}
