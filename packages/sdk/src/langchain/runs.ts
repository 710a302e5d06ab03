// LangChain runs in flight, by runId: the one place where the callback
// handler (which sees every run start and end) and the tools patch (which
// runs each tool body) meet. Runs are matched by id only, never by "the
// current run", so parallel runs sharing one handler cannot mis-parent.
import { createContextKey, type Context, type Span } from '@opentelemetry/api';

export interface Run {
  /** The parent run, when LangChain named one. */
  readonly parent: string | undefined;
  /** The top run of this run's tree: it ending ends whatever of its tree is still open. */
  readonly root: string;
  /** What children start under; undefined for runs without a span of their own (hidden ones). */
  readonly ctx: Context | undefined;
  /** The span this registry ends with the run; undefined when someone else ends it (a patched tool's). */
  readonly span: Span | undefined;
}

/**
 * What the tools patch puts in the context of a tool body: the context that
 * holds the tool's span, and the tool's runId once the handler saw its
 * handleToolStart (which LangChain calls from inside that body's context).
 */
export interface ToolMarker {
  readonly ctx: Context;
  runId: string | undefined;
}

export const TOOL_MARKER_KEY: symbol = createContextKey('@agentrace/sdk langchain tool');

// A broken run tree (a handler that never hears an end) must not grow
// without bound: past this many open runs, new ones are not tracked.
const MAX_RUNS = 100_000;

const runs = new Map<string, Run>();

export function addRun(runId: string, parent: string | undefined, ctx: Context | undefined, span: Span | undefined): boolean {
  if (runs.has(runId) || runs.size >= MAX_RUNS) return false;
  const root = parent === undefined ? runId : (runs.get(parent)?.root ?? parent);
  runs.set(runId, { parent, root, ctx, span });
  return true;
}

export function getRun(runId: string): Run | undefined {
  return runs.get(runId);
}

/**
 * Forgets a run that ended and returns it. When it was the top of its
 * tree, runs of that tree still open (their end never came) are returned
 * too, after it, for the caller to end.
 */
export function removeRun(runId: string): Run[] {
  const run = runs.get(runId);
  if (!run) return [];
  runs.delete(runId);
  if (run.root !== runId) return [run];
  const out = [run];
  for (const [id, r] of runs) {
    if (r.root !== runId) continue;
    runs.delete(id);
    out.push(r);
  }
  return out;
}

/** The context a child of `runId` starts under: that run's, or its nearest ancestor's that has one. */
export function contextOfRun(runId: string | undefined): Context | undefined {
  for (let id = runId, hops = 0; id !== undefined && hops < 1000; hops++) {
    const run = runs.get(id);
    if (!run) return undefined;
    if (run.ctx) return run.ctx;
    id = run.parent;
  }
  return undefined;
}

/** Runs tracked now (0 once every run seen has ended). */
export function openRuns(): number {
  return runs.size;
}
