// The tool-call spans agents announce over the socket: who announced them,
// when they started and ended. Kernel events are matched against this.
import { existsSync } from 'node:fs';
import type { Attributes } from '@opentelemetry/api';
import type { SpanEndMessage, SpanStartMessage } from '@agentrace/sdk/protocol';
import { hex } from './ids.js';
import { sanitizeAttributes } from './attributes.js';
import { wireTimeToNs } from './time.js';

export interface ToolSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  /** The announcing process, as the kernel knows it (SO_PEERCRED). */
  pid: number;
  /** The connection that announced it: its close abandons the span, and nothing else's. */
  conn: number;
  tid: number;
  /** What its thread runs (a tool call), so it can own kernel activity; false for a framework's own runs. */
  onThread: boolean;
  name: string;
  kind: number;
  startNs: bigint;
  endNs?: bigint;
  attrs: Attributes;
  status?: { code: number; message?: string };
  sampled: boolean;
  /** The agent has no TracerProvider: the sidecar exports this span itself. */
  exportSelf: boolean;
  /** The announcing thread still ran when the start frame was read. */
  threadAlive: boolean;
  resource: Attributes;
  /** When the span ended or was abandoned (ms), for retention. */
  closedAtMs?: number;
}

export class Refusal extends Error {
  override readonly name = 'Refusal';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Ended spans stay known this long, for kernel events still in flight. */
const RETENTION_MS = 30_000;

/** The announcing side of a span: a connection of a process. */
export interface Announcer {
  readonly id: number;
  readonly pid: number;
  /** Whether the process that connected still runs (not a newcomer with its pid). */
  alive(): boolean;
}

export interface ToolSpanLimits {
  /** Spans started and not yet ended, over all agents. */
  maxInFlight: number;
}

export class ToolSpanRegistry {
  private readonly spans = new Map<string, ToolSpan>();
  private inFlight = 0;
  refused = 0;

  constructor(private readonly limits: ToolSpanLimits = { maxInFlight: 65_536 }) {}

  /** Records a span start from `from`; throws Refusal when it may not. */
  start(from: Announcer, resource: Attributes, msg: SpanStartMessage): ToolSpan {
    const pid = from.pid;
    if (!(msg.trace instanceof Uint8Array) || msg.trace.length !== 16 || !(msg.span instanceof Uint8Array) || msg.span.length !== 8) {
      throw this.refuse('EINVAL', 'start: trace must be 16 bytes and span 8 bytes');
    }
    const spanId = hex(msg.span);
    const existing = this.spans.get(spanId);
    if (existing && existing.pid !== pid) {
      throw this.refuse('EPERM', `start: span ${spanId} was announced by another process`);
    }
    // The thread must be the process's own. Frames can be read after the
    // process (or that thread) exited: the span is kept, but not published
    // for a thread that no longer runs. The thread map is keyed by the
    // connection's pid, so a wrong tid can never tag another process; and
    // a process that exited is told from a newcomer with its pid.
    let threadAlive = true;
    if (!Number.isInteger(msg.tid) || msg.tid <= 0) throw this.refuse('EPERM', `start: thread ${String(msg.tid)} is not a thread of process ${pid}`);
    if (msg.tid !== pid && !existsSync(`/proc/${pid}/task/${msg.tid}`)) {
      if (from.alive() && existsSync(`/proc/${msg.tid}`)) {
        throw this.refuse('EPERM', `start: thread ${msg.tid} is not a thread of process ${pid}`);
      }
      threadAlive = false;
    }
    if (this.inFlight >= this.limits.maxInFlight) {
      throw this.refuse('ENOSPC', `start: ${this.inFlight} spans are already in flight`);
    }
    const span: ToolSpan = {
      traceId: hex(msg.trace),
      spanId,
      pid,
      conn: from.id,
      tid: msg.tid,
      onThread: msg.thread !== false,
      name: String(msg.name),
      kind: Number(msg.kind) || 0,
      startNs: wireTimeToNs(msg.start),
      attrs: sanitizeAttributes(msg.attrs),
      sampled: (msg.flags & 1) === 1,
      exportSelf: msg.export === true,
      threadAlive,
      resource,
    };
    if (msg.parent instanceof Uint8Array && msg.parent.length === 8) span.parentSpanId = hex(msg.parent);
    if (!existing) this.inFlight++;
    this.spans.set(spanId, span);
    return span;
  }

  /** Records a span end from process `pid`; undefined if it is not that process's span. */
  end(pid: number, msg: SpanEndMessage): ToolSpan | undefined {
    if (!(msg.span instanceof Uint8Array)) return undefined;
    const span = this.spans.get(hex(msg.span));
    if (!span || span.pid !== pid || span.endNs !== undefined) return undefined;
    span.endNs = wireTimeToNs(msg.end);
    span.status = msg.status;
    if (msg.attrs) Object.assign(span.attrs, sanitizeAttributes(msg.attrs));
    span.closedAtMs = Date.now();
    this.inFlight--;
    return span;
  }

  /** Ends, as abandoned, every open span announced on connection `conn` (it closed); all open spans without one. */
  abandon(conn: number | undefined, endNs: bigint): ToolSpan[] {
    const out: ToolSpan[] = [];
    for (const span of this.spans.values()) {
      if ((conn !== undefined && span.conn !== conn) || span.endNs !== undefined) continue;
      span.endNs = endNs;
      span.status = { code: 2, message: 'the agent disconnected before the span ended' };
      span.attrs['agentrace.span.incomplete'] = true;
      span.closedAtMs = Date.now();
      this.inFlight--;
      out.push(span);
    }
    return out;
  }

  get(spanId: string): ToolSpan | undefined {
    return this.spans.get(spanId);
  }

  /** Spans still open, e.g. at shutdown. */
  open(): ToolSpan[] {
    return [...this.spans.values()].filter((s) => s.endNs === undefined);
  }

  prune(nowMs = Date.now()): void {
    for (const [id, span] of this.spans) {
      if (span.closedAtMs !== undefined && nowMs - span.closedAtMs > RETENTION_MS) this.spans.delete(id);
    }
  }

  get inFlightCount(): number {
    return this.inFlight;
  }

  private refuse(code: string, message: string): Refusal {
    this.refused++;
    return new Refusal(code, message);
  }
}
