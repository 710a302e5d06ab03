// The OpenTelemetry span standing for each open OpenAI Agents span (by its
// agents span id) and trace (by its trace id). The processor fills it; the
// traced tools read it to find their parent, and put their own execute_tool
// span under their function span's id so that runs nested in a tool (an
// agent used as a tool) hang under it.
import type { Span } from '@opentelemetry/api';

const spans = new Map<string, Span>();
const traces = new Map<string, Span>();
/** Function tool names wrapped by our tool(): their function spans are the traced tool spans. */
const traced = new Set<string>();
/** Function spans (agents Span objects) whose tool body ran through traceTool. */
const ran = new WeakSet<object>();

export const mirrors = {
  span: (id: string | null | undefined): Span | undefined => (id ? spans.get(id) : undefined),
  setSpan: (id: string, span: Span): void => void spans.set(id, span),
  dropSpan: (id: string): void => void spans.delete(id),
  trace: (id: string): Span | undefined => traces.get(id),
  setTrace: (id: string, span: Span): void => void traces.set(id, span),
  dropTrace: (id: string): void => void traces.delete(id),
  markTraced: (toolName: string): void => void traced.add(toolName),
  isTraced: (toolName: string): boolean => traced.has(toolName),
  markRan: (fnSpan: object): void => void ran.add(fnSpan),
  ran: (fnSpan: object): boolean => ran.has(fnSpan),
};
