// The tool-call spans agents announce over the socket: who announced them,
// when they started and ended. Kernel events are matched against this.
import type { Attributes } from '@opentelemetry/api';
import type { ThreadIds } from './thread-ids.js';
import { AgentraceError, type SpanEndMessage, type SpanStartMessage, type WireCode } from '@agentrace/protocol';
import { hex } from './ids.js';
import { DEFAULT_ATTRIBUTE_LIMITS, sanitize, type AttributeLimits, type Sanitized } from './attributes.js';
import { wireTimeToNs } from './time.js';
import { Tally } from './tally.js';

/** A tool span's gen_ai.tool.name (its span name without the `execute_tool ` prefix when the attribute is missing). */
export function toolNameOf(tool: Pick<ToolSpan, 'attrs' | 'name'>): string {
  return String(tool.attrs['gen_ai.tool.name'] ?? tool.name.replace(/^execute_tool /, ''));
}

export interface ToolSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  /**
   * The parent is a claim the sidecar cannot back: a span of another
   * process, or a trace another process announced first, with no span of
   * this one in between (a graft, or propagation over a socket it cannot see).
   */
  parentUnverified?: boolean;
  /** The announcing process, as the kernel knows it (SO_PEERCRED). */
  pid: number;
  uid: number;
  /** The connection that announced it: its close abandons the span, and nothing else's. */
  conn: number;
  /** Its thread, in the sidecar's ids; 0 when that thread had gone by the time the start was read. */
  tid: number;
  /** What its thread runs (a tool call), so it can own kernel activity; false for a framework's own runs. */
  onThread: boolean;
  name: string;
  kind: number;
  startNs: bigint;
  endNs?: bigint;
  attrs: Attributes;
  /** Characters of attrs while in flight (attributeChars), charged to the budgets. */
  attrChars: number;
  status?: { code: number; message?: string } | undefined;
  sampled: boolean;
  /** The agent has no TracerProvider: the sidecar exports this span itself. */
  exportSelf: boolean;
  /** The announcing thread still ran when the start frame was read. */
  threadAlive: boolean;
  resource: Attributes;
  /**
   * What of the call the kernel may have missed, set by the sidecar when it
   * ends: hooks in the process's binaries went in after the call started
   * ('threadpool': libuv's in its node, 'getaddrinfo': its libc's), or never.
   */
  incomplete?: string[];
  /** When the span ended or was abandoned (ms), for retention. */
  closedAtMs?: number;
}

/** A span the registry will not take; the client is told `wireCode`. */
export class Refusal extends AgentraceError {
  readonly code = 'AR_ERR_SPAN_REFUSED';
  constructor(
    readonly wireCode: WireCode,
    message: string,
  ) {
    super(message);
  }
}

/** Set by the sidecar on what hangs under a parent it cannot vouch for. */
export const PARENT_UNVERIFIED = 'agentrace.parent.unverified';
/** Set by the sidecar on a call (and its kernel summary) whose activity the kernel may not all have seen: ToolSpan.incomplete. */
export const ATTRIBUTION_INCOMPLETE = 'agentrace.attribution.incomplete';

/** Ended spans stay known this long, for kernel events still in flight. */
const RETENTION_MS = 30_000;

/** The announcing side of a span: a connection of a process. */
export interface Announcer {
  readonly id: number;
  readonly pid: number;
  readonly uid: number;
  /** Whether the process that connected still runs (not a newcomer with its pid). */
  alive(): boolean;
  /** Its threads, as it names them (its PID namespace's ids), in the sidecar's ids. */
  readonly threads: ThreadIds;
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
  /** Attribute characters (keys and values) one span may carry; the rest is dropped, counted. */
  spanAttributeChars: number;
  /** Attribute characters of the spans in flight, over all agents and of one user: memory bounded whatever agents send. */
  attributeCharsInFlight: number;
  attributeCharsInFlightPerUser: number;
  /** Ended spans kept for late kernel events (up to 30 s each); the oldest go first. */
  maxEnded: number;
}

export const DEFAULT_SPAN_LIMITS: ToolSpanLimits = {
  maxInFlight: 65_536,
  maxInFlightPerUser: 16_384,
  maxInFlightPerProcess: 16_384,
  attributes: DEFAULT_ATTRIBUTE_LIMITS,
  nameLength: 1024,
  spanAttributeChars: 16_384,
  attributeCharsInFlight: 64 * 1024 * 1024,
  attributeCharsInFlightPerUser: 16 * 1024 * 1024,
  maxEnded: 16_384,
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
  private readonly perUser = new Tally<number>();
  private readonly perProcess = new Tally<number>();
  private readonly openByConn = new Map<number, Set<ToolSpan>>();
  private attrCharsInFlight = 0;
  private readonly attrCharsPerUser = new Tally<number>();
  /** Per trace id: the process that announced its first known span, and how many known spans it has. */
  private readonly traces = new Map<string, { pid: number; spans: number }>();
  /** Ended spans in the order they ended, from endedHead on, for retention. */
  private ended: ToolSpan[] = [];
  private endedHead = 0;
  private readonly limits: ToolSpanLimits;
  /** Ended spans forgotten before their 30 s because more than maxEnded were kept. */
  endedEvicted = 0;
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
    // The thread must be the process's own (named in its own PID namespace,
    // translated to ours). Frames can be read after the process (or that
    // thread) exited: the span is kept, but not published for a thread that
    // no longer runs. Only the connection's own tasks are searched, so a
    // wrong tid can never tag another process; and a process that exited
    // is told from a newcomer with its pid.
    if (!Number.isInteger(msg.tid) || msg.tid <= 0) throw this.refuse('not_own', 'EPERM', `start: thread ${String(msg.tid)} is not a thread of process ${pid}`);
    const tid = from.threads.resolve(msg.tid);
    if (tid === undefined && from.alive() && from.threads.isAnothers(msg.tid)) {
      throw this.refuse('not_own', 'EPERM', `start: thread ${msg.tid} is not a thread of process ${pid}`);
    }
    const threadAlive = tid !== undefined;
    // A start repeated for a span still open replaces it; it takes no more room.
    const open = existing !== undefined && existing.endNs === undefined;
    if (!open) {
      // Fair share: one user, or one process, cannot take what the others need.
      const L = this.limits;
      if (this.inFlight >= L.maxInFlight) throw this.refuse('in_flight_total', 'ENOSPC', `start: ${this.inFlight} spans are already in flight (all agents)`);
      const mine = this.perUser.get(from.uid);
      if (mine >= L.maxInFlightPerUser) throw this.refuse('in_flight_user', 'ENOSPC', `start: uid ${from.uid} has ${mine} spans in flight, its share`);
      const ours = this.perProcess.get(pid);
      if (ours >= L.maxInFlightPerProcess) throw this.refuse('in_flight_process', 'ENOSPC', `start: process ${pid} has ${ours} spans in flight, its share`);
    }
    if (open) this.charge(existing, -existing.attrChars);
    const s = this.sanitize(msg.attrs, this.limits.attributes.count, this.attributeRoom(from.uid, 0));
    const attrs = s.attributes;
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
      tid: tid ?? 0,
      onThread: msg.thread !== false,
      name,
      kind: msg.kind,
      startNs: wireTimeToNs(start),
      attrs,
      attrChars: 0,
      sampled: (msg.flags & 1) === 1,
      exportSelf: msg.export === true,
      threadAlive,
      resource,
    };
    if (msg.parent instanceof Uint8Array && msg.parent.length === 8) {
      span.parentSpanId = hex(msg.parent);
      if (this.unverifiedParent(span)) span.parentUnverified = true;
    }
    if (!open) this.count(span, 1);
    this.charge(span, s.chars);
    if (!existing) this.traceRef(span.traceId, pid, 1);
    else if (existing.traceId !== span.traceId) {
      this.traceRef(existing.traceId, pid, -1);
      this.traceRef(span.traceId, pid, 1);
    }
    this.spans.set(spanId, span);
    if (open) this.openOn(existing, -1);
    this.openOn(span, 1);
    return span;
  }

  private count(span: ToolSpan, d: 1 | -1): void {
    this.inFlight += d;
    this.perUser.add(span.uid, d);
    this.perProcess.add(span.pid, d);
  }

  /**
   * Whether a span's parent is only its own say: the sidecar vouches for a
   * parent this process announced itself, and for a trace no other process
   * announced here (its context came from outside, or from the process's
   * own spans). A parent announced by another process, or a trace another
   * process announced first, is marked: an auditor tells a graft from
   * propagation by following the mark.
   */
  private unverifiedParent(span: ToolSpan): boolean {
    const parent = this.spans.get(span.parentSpanId!);
    if (parent) return parent.pid !== span.pid || parent.traceId !== span.traceId;
    const trace = this.traces.get(span.traceId);
    return trace !== undefined && trace.pid !== span.pid;
  }

  private traceRef(traceId: string, pid: number, d: 1 | -1): void {
    const t = this.traces.get(traceId);
    if (!t) {
      if (d > 0) this.traces.set(traceId, { pid, spans: 1 });
      return;
    }
    t.spans += d;
    if (t.spans <= 0) this.traces.delete(traceId);
  }

  /** Attribute characters a span of `uid` that has `has` already may still take. */
  private attributeRoom(uid: number, has: number): number {
    const L = this.limits;
    return Math.max(
      0,
      Math.min(L.spanAttributeChars - has, L.attributeCharsInFlight - this.attrCharsInFlight, L.attributeCharsInFlightPerUser - this.attrCharsPerUser.get(uid)),
    );
  }

  private charge(span: ToolSpan, chars: number): void {
    if (chars === 0) return;
    span.attrChars += chars;
    this.attrCharsInFlight += chars;
    this.attrCharsPerUser.add(span.uid, chars);
  }

  /** Attributes within the limits; what they cut is counted on the span and in the registry. */
  private sanitize(raw: unknown, room: number, chars: number): Sanitized {
    const s = sanitize(raw, this.limits.attributes, room, chars);
    // The sidecar's word, never a client's.
    if (PARENT_UNVERIFIED in s.attributes) {
      delete s.attributes[PARENT_UNVERIFIED];
      s.dropped++;
    }
    this.attributesTruncated += s.truncated;
    this.attributesDropped += s.dropped;
    if (s.truncated) s.attributes['agentrace.attributes.truncated'] = s.truncated;
    if (s.dropped) s.attributes['agentrace.attributes.dropped'] = s.dropped;
    return s;
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
      const cut = this.sanitize(msg.attrs, room, this.attributeRoom(span.uid, span.attrChars));
      const late = cut.attributes;
      this.charge(span, cut.chars);
      for (const k of ['agentrace.attributes.truncated', 'agentrace.attributes.dropped'] as const) {
        if (late[k] !== undefined) late[k] = Number(late[k]) + Number(span.attrs[k] ?? 0);
      }
      Object.assign(span.attrs, late);
    }
    this.closed(span);
    return span;
  }

  /** Open spans by connection: a connection's close looks at its own, not at every span kept. */
  private openOn(span: ToolSpan, d: 1 | -1): void {
    let set = this.openByConn.get(span.conn);
    if (d > 0) {
      if (!set) this.openByConn.set(span.conn, (set = new Set()));
      set.add(span);
    } else if (set) {
      set.delete(span);
      if (set.size === 0) this.openByConn.delete(span.conn);
    }
  }

  private closed(span: ToolSpan): void {
    this.openOn(span, -1);
    span.closedAtMs = Date.now();
    this.count(span, -1);
    this.charge(span, -span.attrChars);
    this.ended.push(span);
  }

  /**
   * Once a span is ended and exported, only what attribution needs stays
   * (ids, process, times, the tool's name for its metrics): memory per
   * ended span does not grow with what the agent put on it.
   */
  retire(span: ToolSpan): void {
    const tool = span.attrs['gen_ai.tool.name'];
    span.attrs = tool === undefined ? {} : { 'gen_ai.tool.name': tool };
    span.status = undefined;
  }

  /** Ends, as abandoned, every open span announced on connection `conn` (it closed); all open spans without one. */
  abandon(conn: number | undefined, endNs: bigint): ToolSpan[] {
    const out: ToolSpan[] = [];
    const open = conn === undefined ? [...this.openByConn.values()].flatMap((set) => [...set]) : [...(this.openByConn.get(conn) ?? [])];
    for (const span of open) {
      if (span.endNs !== undefined) continue;
      span.endNs = endNs;
      span.status = { code: 2, message: 'the agent disconnected before the span ended' };
      span.attrs['agentrace.span.incomplete'] = true;
      this.closed(span);
      out.push(span);
    }
    return out;
  }

  get(spanId: string): ToolSpan | undefined {
    return this.spans.get(spanId);
  }

  /** Spans still open, e.g. at shutdown. */
  open(): ToolSpan[] {
    return [...this.openByConn.values()].flatMap((set) => [...set]);
  }

  /** Forgets ended spans kept long enough, and the oldest beyond maxEnded: work in proportion to what goes. */
  prune(nowMs = Date.now()): void {
    const q = this.ended;
    let head = this.endedHead;
    while (head < q.length) {
      const span = q[head]!;
      const over = q.length - head > this.limits.maxEnded;
      if (!over && nowMs - span.closedAtMs! <= RETENTION_MS) break;
      if (over) this.endedEvicted++;
      // A span id started again since (same process) is the newer span's now.
      if (this.spans.get(span.spanId) === span) {
        this.spans.delete(span.spanId);
        this.traceRef(span.traceId, span.pid, -1);
      }
      head++;
    }
    if (head > 4096 && head > q.length / 2) {
      this.ended = q.slice(head);
      head = 0;
    }
    this.endedHead = head;
  }

  /** Ended spans still kept. */
  get endedCount(): number {
    return this.ended.length - this.endedHead;
  }

  get inFlightCount(): number {
    return this.inFlight;
  }

  /** An agent's resource (its hello), within the same limits as one span's attributes. */
  sanitizeResource(raw: unknown): Attributes {
    return sanitize(raw, this.limits.attributes, this.limits.attributes.count, this.limits.spanAttributeChars).attributes;
  }

  /** Attribute characters held by spans in flight. */
  get attributeCharsInFlight(): number {
    return this.attrCharsInFlight;
  }

  private refuse(reason: RefusalReason, code: WireCode, message: string): Refusal {
    this.refused++;
    this.refusedBy[reason]++;
    return new Refusal(code, message);
  }
}
