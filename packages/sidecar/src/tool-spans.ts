// The tool-call spans agents announce over the socket: who announced them,
// when they started and ended. Kernel events are matched against this.
import { existsSync } from 'node:fs';
import type { Attributes } from '@opentelemetry/api';
import type { SpanEndMessage, SpanStartMessage } from '@agentrace/sdk/protocol';
import { hex } from './ids.js';
import { DEFAULT_ATTRIBUTE_LIMITS, sanitize, type AttributeLimits } from './attributes.js';
import { wireTimeToNs } from './time.js';

export interface ToolSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  /** The announcing process, as the kernel knows it (SO_PEERCRED). */
  pid: number;
  uid: number;
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
  readonly uid: number;
  /** Whether the process that connected still runs (not a newcomer with its pid). */
  alive(): boolean;
}

export interface ToolSpanLimits {
  /** Spans started and not yet ended, over all agents. */
  maxInFlight: number;
  /** ... of one user (uid): no user can take what the others need. */
  maxInFlightPerUser: number;
  /** ... of one process. */
  maxInFlightPerProcess: number;
  /** Attribute limits (OTel span limits) for what agents send. */
  attributes: AttributeLimits;
  /** Longest span name, in characters. */
  nameLength: number;
}

export const DEFAULT_SPAN_LIMITS: ToolSpanLimits = {
  maxInFlight: 65_536,
  maxInFlightPerUser: 16_384,
  maxInFlightPerProcess: 16_384,
  attributes: DEFAULT_ATTRIBUTE_LIMITS,
  nameLength: 1024,
};

/** Why a span was refused (counted per reason). */
export type RefusalReason = 'invalid' | 'not_own' | 'in_flight_total' | 'in_flight_user' | 'in_flight_process';

const MAX_WIRE_SECONDS = 2 ** 34; // year 2514: anything later is not a time

/** A [seconds, nanoseconds] pair a clock could have produced, or undefined. */
function wireTime(t: unknown): [number, number] | undefined {
  if (!Array.isArray(t) || t.length !== 2) return undefined;
  const [s, ns] = t as unknown[];
  if (!Number.isInteger(s) || !Number.isInteger(ns)) return undefined;
  if ((s as number) < 0 || (s as number) >= MAX_WIRE_SECONDS || (ns as number) < 0 || (ns as number) >= 1e9) return undefined;
  return [s as number, ns as number];
}

export class ToolSpanRegistry {
  private readonly spans = new Map<string, ToolSpan>();
  private inFlight = 0;
  private readonly perUser = new Map<number, number>();
  private readonly perProcess = new Map<number, number>();
  private readonly limits: ToolSpanLimits;
  refused = 0;
  readonly refusedBy: Record<RefusalReason, number> = { invalid: 0, not_own: 0, in_flight_total: 0, in_flight_user: 0, in_flight_process: 0 };
  /** Attribute values cut to the length limit, and attributes left out. */
  attributesTruncated = 0;
  attributesDropped = 0;

  constructor(limits: Partial<ToolSpanLimits> = {}) {
    this.limits = { ...DEFAULT_SPAN_LIMITS, ...limits };
  }

  /** Records a span start from `from`; throws Refusal when it may not. */
  start(from: Announcer, resource: Attributes, msg: SpanStartMessage): ToolSpan {
    const pid = from.pid;
    if (!(msg.trace instanceof Uint8Array) || msg.trace.length !== 16 || !(msg.span instanceof Uint8Array) || msg.span.length !== 8) {
      throw this.refuse('invalid', 'EINVAL', 'start: trace must be 16 bytes and span 8 bytes');
    }
    // Checked before anything is kept: what is exported must be what OTLP means.
    const start = wireTime(msg.start);
    if (!start) throw this.refuse('invalid', 'EINVAL', 'start: start must be [seconds, nanoseconds] of a real time');
    if (!Number.isInteger(msg.kind) || msg.kind < 0 || msg.kind > 4) throw this.refuse('invalid', 'EINVAL', 'start: kind must be a SpanKind (0-4)');
    if (!Number.isInteger(msg.flags) || msg.flags < 0 || msg.flags > 255) throw this.refuse('invalid', 'EINVAL', 'start: flags must be W3C trace flags (0-255)');
    if (typeof msg.name !== 'string') throw this.refuse('invalid', 'EINVAL', 'start: name must be a string');
    const spanId = hex(msg.span);
    const existing = this.spans.get(spanId);
    if (existing && existing.pid !== pid) {
      throw this.refuse('not_own', 'EPERM', `start: span ${spanId} was announced by another process`);
    }
    // The thread must be the process's own. Frames can be read after the
    // process (or that thread) exited: the span is kept, but not published
    // for a thread that no longer runs. The thread map is keyed by the
    // connection's pid, so a wrong tid can never tag another process; and
    // a process that exited is told from a newcomer with its pid.
    let threadAlive = true;
    if (!Number.isInteger(msg.tid) || msg.tid <= 0) throw this.refuse('not_own', 'EPERM', `start: thread ${String(msg.tid)} is not a thread of process ${pid}`);
    if (msg.tid !== pid && !existsSync(`/proc/${pid}/task/${msg.tid}`)) {
      if (from.alive() && existsSync(`/proc/${msg.tid}`)) {
        throw this.refuse('not_own', 'EPERM', `start: thread ${msg.tid} is not a thread of process ${pid}`);
      }
      threadAlive = false;
    }
    // A start repeated for a span still open replaces it; it takes no more room.
    const open = existing !== undefined && existing.endNs === undefined;
    if (!open) {
      // Fair share: one user, or one process, cannot take what the others need.
      const L = this.limits;
      if (this.inFlight >= L.maxInFlight) throw this.refuse('in_flight_total', 'ENOSPC', `start: ${this.inFlight} spans are already in flight (all agents)`);
      const mine = this.perUser.get(from.uid) ?? 0;
      if (mine >= L.maxInFlightPerUser) throw this.refuse('in_flight_user', 'ENOSPC', `start: uid ${from.uid} has ${mine} spans in flight, its share`);
      const ours = this.perProcess.get(pid) ?? 0;
      if (ours >= L.maxInFlightPerProcess) throw this.refuse('in_flight_process', 'ENOSPC', `start: process ${pid} has ${ours} spans in flight, its share`);
    }
    const attrs = this.sanitize(msg.attrs, this.limits.attributes.count);
    let name = msg.name;
    if (name.length > this.limits.nameLength) {
      name = name.slice(0, this.limits.nameLength);
      this.attributesTruncated++;
    }
    const span: ToolSpan = {
      traceId: hex(msg.trace),
      spanId,
      pid,
      uid: from.uid,
      conn: from.id,
      tid: msg.tid,
      onThread: msg.thread !== false,
      name,
      kind: msg.kind,
      startNs: wireTimeToNs(start),
      attrs,
      sampled: (msg.flags & 1) === 1,
      exportSelf: msg.export === true,
      threadAlive,
      resource,
    };
    if (msg.parent instanceof Uint8Array && msg.parent.length === 8) span.parentSpanId = hex(msg.parent);
    if (!open) this.count(span, 1);
    this.spans.set(spanId, span);
    return span;
  }

  private count(span: ToolSpan, d: 1 | -1): void {
    this.inFlight += d;
    const u = (this.perUser.get(span.uid) ?? 0) + d;
    if (u > 0) this.perUser.set(span.uid, u);
    else this.perUser.delete(span.uid);
    const p = (this.perProcess.get(span.pid) ?? 0) + d;
    if (p > 0) this.perProcess.set(span.pid, p);
    else this.perProcess.delete(span.pid);
  }

  /** Attributes within the limits; what they cut is counted on the span and in the registry. */
  private sanitize(raw: unknown, room: number): Attributes {
    const s = sanitize(raw, this.limits.attributes, room);
    this.attributesTruncated += s.truncated;
    this.attributesDropped += s.dropped;
    if (s.truncated) s.attributes['agentrace.attributes.truncated'] = s.truncated;
    if (s.dropped) s.attributes['agentrace.attributes.dropped'] = s.dropped;
    return s.attributes;
  }

  /** Records a span end from process `pid`; undefined if it is not that process's span. */
  end(pid: number, msg: SpanEndMessage): ToolSpan | undefined {
    if (!(msg.span instanceof Uint8Array)) return undefined;
    const span = this.spans.get(hex(msg.span));
    if (!span || span.pid !== pid || span.endNs !== undefined) return undefined;
    const end = wireTime(msg.end);
    const status = msg.status as { code?: unknown; message?: unknown } | undefined;
    const code = status?.code;
    if (!end || !(code === 0 || code === 1 || code === 2)) {
      // Kept open: it ends as incomplete when its connection closes, not with made-up values.
      throw this.refuse('invalid', 'EINVAL', 'end: end must be [seconds, nanoseconds] of a real time and status.code 0, 1 or 2');
    }
    span.endNs = wireTimeToNs(end);
    span.status = typeof status?.message === 'string' ? { code, message: status.message.slice(0, this.limits.attributes.valueLength) } : { code };
    if (msg.attrs) {
      const room = Math.max(0, this.limits.attributes.count - Object.keys(span.attrs).length);
      const late = this.sanitize(msg.attrs, room);
      for (const k of ['agentrace.attributes.truncated', 'agentrace.attributes.dropped'] as const) {
        if (late[k] !== undefined) late[k] = Number(late[k]) + Number(span.attrs[k] ?? 0);
      }
      Object.assign(span.attrs, late);
    }
    span.closedAtMs = Date.now();
    this.count(span, -1);
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
      this.count(span, -1);
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

  private refuse(reason: RefusalReason, code: string, message: string): Refusal {
    this.refused++;
    this.refusedBy[reason]++;
    return new Refusal(code, message);
  }
}
