// Rung 2 of the ladder: which span each agent thread runs, written into the
// kernel's otel_traces_ctx_v1 map from the socket's start/end frames. A
// thread can run nested tool calls, so each thread keeps a stack and the map
// holds its top.
import type { Probes } from '@agentrace/bpf';
import type { ToolSpan } from './tool-spans.js';

export class ThreadSpans {
  private readonly stacks = new Map<string, ToolSpan[]>();

  constructor(private readonly probes: Probes) {}

  push(span: ToolSpan): void {
    const key = `${span.pid}:${span.tid}`;
    const stack = this.stacks.get(key) ?? [];
    stack.push(span);
    this.stacks.set(key, stack);
    this.write(span.pid, span.tid, stack);
  }

  remove(span: ToolSpan): void {
    const key = `${span.pid}:${span.tid}`;
    const stack = this.stacks.get(key);
    if (!stack) return;
    const i = stack.lastIndexOf(span);
    if (i < 0) return; // never pushed (its thread has a slot): nothing to rewrite
    stack.splice(i, 1);
    if (stack.length === 0) this.stacks.delete(key);
    this.write(span.pid, span.tid, stack);
  }

  /** Forgets the spans announced on connection `conn` (it closed); other connections' stay. */
  dropConnection(conn: number): void {
    for (const [key, stack] of this.stacks) {
      const top = stack[0];
      if (!top || !stack.some((s) => s.conn === conn)) continue;
      const left = stack.filter((s) => s.conn !== conn);
      if (left.length) this.stacks.set(key, left);
      else this.stacks.delete(key);
      this.write(top.pid, top.tid, left);
    }
  }

  private write(pid: number, tid: number, stack: ToolSpan[]): void {
    const top = stack[stack.length - 1];
    if (top) this.probes.setThreadSpan(pid, tid, { traceId: top.traceId, spanId: top.spanId });
    else this.probes.clearThreadSpan(pid, tid);
  }
}
