// What the LangChain integration captures: the same switches and mask as
// traceTool, applied to tool arguments (the model's args object) and tool
// results (the tool's output content).
import { toBoundedJson } from '../serialize.js';
import type { CaptureKind, TraceToolOptions } from '../trace-tool.js';

export type LangChainTracingOptions = Pick<TraceToolOptions, 'captureArguments' | 'captureResult' | 'mask'>;

export function copyOptions(o: LangChainTracingOptions): LangChainTracingOptions {
  const out: LangChainTracingOptions = {};
  if (o.captureArguments !== undefined) out.captureArguments = o.captureArguments;
  if (o.captureResult !== undefined) out.captureResult = o.captureResult;
  if (o.mask !== undefined) out.mask = o.mask;
  return out;
}

/** The JSON of a captured value after the mask, or undefined (mask threw, nothing to say). */
export function capture(o: LangChainTracingOptions, value: unknown, kind: CaptureKind): string | undefined {
  let masked: unknown;
  try {
    masked = o.mask ? o.mask(value, kind) : value;
  } catch {
    return undefined;
  }
  return toBoundedJson(masked);
}

/** A tool's output as the model sees it: a ToolMessage's content, anything else as it is. */
export function toolOutputContent(output: unknown): unknown {
  if (typeof output !== 'object' || output === null) return output;
  try {
    const m = output as { content?: unknown; tool_call_id?: unknown };
    if (m.tool_call_id !== undefined && 'content' in m) return m.content;
  } catch {
    // a hostile getter: capture the object itself
  }
  return output;
}
