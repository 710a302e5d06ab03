// AgentraceCallbackHandler: LangChain runs as OpenTelemetry spans. The top
// run and LangGraph graphs are `invoke_agent {name}`, other chains
// `chain {name}`, model calls `chat {model}` (with token usage when the
// model reports it). Each span starts under its parent run's span, found by
// parentRunId; ends are matched by runId.
//
// LangChain runs handlers in a background queue by default, after the run
// has started and outside its async context. This handler asks to be
// awaited instead: its start events then run before the run's body, inside
// its context, so a child's parent span always exists already and a tool
// body patched by instrumentTools() can be recognised.
import { context, SpanKind, trace, type Context, type Span } from '@opentelemetry/api';
import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import type { Serialized } from '@langchain/core/load/serializable';
import type { BaseMessage } from '@langchain/core/messages';
import type { LLMResult } from '@langchain/core/outputs';
import type { ChainValues } from '@langchain/core/utils/types';
import { endFrameworkSpan, startFrameworkSpan } from '../framework-span.js';
import type { Attrs } from '@agentrace/protocol';
import { capture, copyOptions, toolOutputContent, type LangChainTracingOptions } from './options.js';
import { addRun, contextOfRun, getRun, removeRun, TOOL_MARKER_KEY, type ToolMarker } from './runs.js';
import { usageAttributes } from './usage.js';
import { toolsInstrumented } from './tools.js';
import { warn } from '../warn.js';

/** On an execute_tool span the handler made because the tool's call was not patched. */
export const UNREACHED_ATTR = 'agentrace.tool.unpatched';

let warnedUnreached = false;

/**
 * Said once: a tool ran whose call instrumentTools() did not wrap, either
 * because it was never called or because the agent's @langchain/core is a
 * copy it cannot reach (an ES-module copy other than the one this SDK
 * resolves: another version, another tree).
 */
function warnUnreached(tool: string): void {
  if (warnedUnreached) return;
  warnedUnreached = true;
  const why = toolsInstrumented()
    ? 'it runs a copy of @langchain/core that instrumentTools() cannot reach (an ES-module copy other than the one @agentrace/sdk resolves: another version, or another node_modules)'
    : 'instrumentTools() (or instrumentLangChain()) was not called';
  warn(
    'AGENTRACE_FRAMEWORK_UNREACHED',
    `agentrace: the LangChain tool "${tool}" ran outside its execute_tool span: ${why}. ` +
      'Its span is exported with agentrace.tool.unpatched=true and no kernel activity under it; ' +
      'make the agent and @agentrace/sdk resolve the same @langchain/core.',
  );
}

/** The instrumentation scope of these spans under an app TracerProvider. */
const SCOPE = '@agentrace/sdk/langchain';

/** LangChain's tag for runs its own tracer leaves out (LangGraph's channel writes and the like). */
const HIDDEN_TAG = 'langsmith:hidden';

export class AgentraceCallbackHandler extends BaseCallbackHandler {
  name = 'agentrace';
  private readonly options: LangChainTracingOptions;

  /**
   * `options` apply to tools that run without instrumentTools() (their
   * spans are made here, and are not active while the tool runs); patched
   * tools capture with the options given to instrumentTools().
   */
  constructor(options: LangChainTracingOptions = {}) {
    super({ _awaitHandler: true });
    this.awaitHandlers = true;
    this.options = copyOptions(options);
  }

  override copy(): AgentraceCallbackHandler {
    return new AgentraceCallbackHandler(this.options);
  }

  // LangChain calls handleChainStart with (chain, inputs, runId, parentRunId,
  // tags, metadata, runType, runName), whatever its type declarations name
  // the parameters.
  override handleChainStart(
    chain: Serialized,
    _inputs: ChainValues,
    runId: string,
    parentRunId?: string,
    tags?: string[],
    metadata?: Record<string, unknown>,
    _runType?: string,
    runName?: string,
  ): void {
    guard(() => {
      if (tags?.includes(HIDDEN_TAG)) {
        addRun(runId, parentRunId, undefined, undefined);
        return;
      }
      const name = runName ?? serializedName(chain);
      // The top run is the agent's own run; a LangGraph graph (Pregel) is an
      // agent wherever it runs, a subgraph included.
      if (parentRunId === undefined || chain?.id?.includes('pregel')) {
        this.start(runId, parentRunId, `invoke_agent ${name}`, SpanKind.INTERNAL, {
          'gen_ai.operation.name': 'invoke_agent',
          'gen_ai.agent.name': name,
        });
        return;
      }
      const attrs: Attrs = { 'langchain.run.type': 'chain' };
      const node = metadata?.['langgraph_node'];
      if (typeof node === 'string') attrs['langgraph.node'] = node;
      const step = metadata?.['langgraph_step'];
      if (typeof step === 'number') attrs['langgraph.step'] = step;
      this.start(runId, parentRunId, `chain ${name}`, SpanKind.INTERNAL, attrs);
    });
  }

  override handleChainEnd(_outputs: ChainValues, runId: string): void {
    guard(() => finish(runId, {}));
  }

  override handleChainError(err: Error, runId: string): void {
    guard(() => finish(runId, {}, { error: err }));
  }

  override handleChatModelStart(
    llm: Serialized,
    _messages: BaseMessage[][],
    runId: string,
    parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
    runName?: string,
  ): void {
    guard(() => this.startModel('chat', llm, runId, parentRunId, extraParams, metadata, runName));
  }

  override handleLLMStart(
    llm: Serialized,
    _prompts: string[],
    runId: string,
    parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
    runName?: string,
  ): void {
    guard(() => this.startModel('text_completion', llm, runId, parentRunId, extraParams, metadata, runName));
  }

  override handleLLMEnd(output: LLMResult, runId: string): void {
    guard(() => finish(runId, usageAttributes(output)));
  }

  override handleLLMError(err: Error, runId: string): void {
    guard(() => finish(runId, {}, { error: err }));
  }

  override handleToolStart(
    tool: Serialized,
    input: string,
    runId: string,
    parentRunId?: string,
    _tags?: string[],
    _metadata?: Record<string, unknown>,
    runName?: string,
    toolCallId?: string,
  ): void {
    guard(() => {
      // A patched tool: LangChain calls this from inside the tool's own
      // context, where its execute_tool span is active already. Its
      // children start under it; traceTool ends it.
      const marker = context.active().getValue(TOOL_MARKER_KEY) as ToolMarker | undefined;
      if (marker !== undefined && marker.runId === undefined) {
        marker.runId = runId;
        addRun(runId, parentRunId, marker.ctx, undefined);
        return;
      }
      const name = runName ?? serializedName(tool);
      const attrs: Attrs = {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': name,
        'gen_ai.tool.type': 'function',
        // Made here, beside the tool's body: not active while it runs, so
        // the kernel has nothing to attribute to it. The export says so.
        [UNREACHED_ATTR]: true,
      };
      warnUnreached(name);
      if (toolCallId) attrs['gen_ai.tool.call.id'] = toolCallId;
      if (this.options.captureArguments) {
        const json = capture(this.options, parseJson(input), 'arguments');
        if (json !== undefined) attrs['gen_ai.tool.call.arguments'] = json;
      }
      this.start(runId, parentRunId, `execute_tool ${name}`, SpanKind.INTERNAL, attrs);
    });
  }

  override handleToolEnd(output: unknown, runId: string): void {
    guard(() => {
      const attrs: Attrs = {};
      if (this.options.captureResult && getRun(runId)?.span) {
        const json = capture(this.options, toolOutputContent(output), 'result');
        if (json !== undefined) attrs['gen_ai.tool.call.result'] = json;
      }
      finish(runId, attrs);
    });
  }

  override handleToolError(err: Error, runId: string): void {
    guard(() => finish(runId, {}, { error: err }));
  }

  // Retrievers get no span; they are remembered so their children find
  // the nearest ancestor that has one.
  override handleRetrieverStart(_retriever: Serialized, _query: string, runId: string, parentRunId?: string): void {
    guard(() => void addRun(runId, parentRunId, undefined, undefined));
  }

  override handleRetrieverEnd(_documents: unknown, runId: string): void {
    guard(() => finish(runId, {}));
  }

  override handleRetrieverError(err: Error, runId: string): void {
    guard(() => finish(runId, {}, { error: err }));
  }

  private startModel(
    operation: 'chat' | 'text_completion',
    llm: Serialized,
    runId: string,
    parentRunId: string | undefined,
    extraParams: Record<string, unknown> | undefined,
    metadata: Record<string, unknown> | undefined,
    runName: string | undefined,
  ): void {
    const model = modelName(llm, extraParams, metadata, runName);
    const attrs: Attrs = { 'gen_ai.operation.name': operation, 'gen_ai.request.model': model };
    const provider = metadata?.['ls_provider'];
    if (typeof provider === 'string') attrs['gen_ai.provider.name'] = provider;
    const temperature = metadata?.['ls_temperature'];
    if (typeof temperature === 'number') attrs['gen_ai.request.temperature'] = temperature;
    const maxTokens = metadata?.['ls_max_tokens'];
    if (typeof maxTokens === 'number') attrs['gen_ai.request.max_tokens'] = maxTokens;
    this.start(runId, parentRunId, `${operation} ${model}`, SpanKind.CLIENT, attrs);
  }

  private start(runId: string, parentRunId: string | undefined, name: string, kind: SpanKind, attrs: Attrs): void {
    if (getRun(runId)) return;
    // A parent this handler never saw (it was attached below the top run,
    // or the run is nested in a tool body) is found in the async context.
    const parentCtx: Context = contextOfRun(parentRunId) ?? context.active();
    const span = startFrameworkSpan(SCOPE, name, { kind, attributes: attrs }, parentCtx);
    if (!addRun(runId, parentRunId, trace.setSpan(parentCtx, span), span)) span.end();
  }
}

function finish(runId: string, attrs: Attrs, failure?: { error: unknown }): void {
  const [run, ...unfinished] = removeRun(runId);
  if (run?.span) endFrameworkSpan(run.span, attrs, failure);
  // The top run ended while some of its runs never did (an end LangChain
  // did not report): end them now rather than leave them open.
  for (const r of unfinished) if (r.span) endFrameworkSpan(r.span, { 'agentrace.langchain.unfinished': true });
}

function guard(fn: () => void): void {
  try {
    fn();
  } catch {
    // tracing problems never reach the agent
  }
}

function serializedName(s: Serialized | undefined): string {
  const named = (s as { name?: unknown } | undefined)?.name;
  if (typeof named === 'string' && named !== '') return named;
  const last = s?.id?.[s.id.length - 1];
  return typeof last === 'string' && last !== '' ? last : 'unknown';
}

function modelName(
  llm: Serialized,
  extraParams: Record<string, unknown> | undefined,
  metadata: Record<string, unknown> | undefined,
  runName: string | undefined,
): string {
  const fromMeta = metadata?.['ls_model_name'];
  if (typeof fromMeta === 'string' && fromMeta !== '') return fromMeta;
  const params = extraParams?.['invocation_params'] as Record<string, unknown> | undefined;
  const kwargs = (llm as { kwargs?: Record<string, unknown> } | undefined)?.kwargs;
  for (const source of [params, kwargs]) {
    for (const key of ['model', 'model_name', 'modelName']) {
      const v = source?.[key];
      if (typeof v === 'string' && v !== '') return v;
    }
  }
  return runName ?? serializedName(llm);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
