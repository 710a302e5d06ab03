// Cumulative OTLP metrics of tool activity: each ended tool span's kernel
// aggregates (calls, errors, bytes, log2 latency histogram per syscall kind) are
// added to the state of (agent, tool name, kind); loss and event counters are
// read from their sources at each collection. collect() returns the
// sdk-metrics ResourceMetrics shape that @opentelemetry/otlp-transformer
// serializes: the sidecar's own (loss and event counters), and one per agent
// with that agent's resource (its service.name, process.pid, ...), so that a
// daemon serving many agents keeps their series apart.
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type DataPoint,
  type Histogram,
  type MetricData,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { HIST_BUCKETS, type AggregateKind, type SpanAggregates, type SpanKernelSummary, type SyscallAggregate } from '@agentrace/bpf';
import { INSTRUMENTATION_SCOPE } from './otlp/readable-span.js';
import type { SummaryListener } from './kernel-summary.js';
import { toolNameOf, type ToolSpan } from './tool-spans.js';

/** Kernel log2 histogram: bucket i counts latencies in [2^i, 2^(i+1)) ns (bucket 0 also holds 0 ns); the last bucket is open-ended. */
export const LATENCY_BUCKETS: number = HIST_BUCKETS;
/** What the kernel aggregates per span; the types are @agentrace/bpf's. */
export type SyscallKind = AggregateKind;
export type { SyscallAggregate };
export type { SpanAggregates };
/** Why an event or span was lost; `unmatched`: a kernel event whose span was never announced (its start frame never came); `export_failed`: spans and log records an exporter tried and gave up on. */
export type DropReason = 'ringbuf_full' | 'map_full' | 'exporter_queue_full' | 'export_failed' | 'decode_error' | 'unmatched';
/**
 * Cumulative loss counters, read at each collection (the sidecar's, from
 * kernel and exporter stats).
 */
export interface LossCounters {
  /** Per reason: a count, or a count per OTLP signal (traces, logs, metrics) for the exporters' losses. */
  drops(): Partial<Record<DropReason, number | Partial<Record<LossSignal, number>>>>;
  /** Events written to the ring buffer, and counted-not-emitted (per-span cap). */
  events?(): { emitted: number; capped: number };
}

export interface ToolMetricsOptions {
  resource?: Attributes;            // resource of the sidecar's metrics (service.name etc.)
  loss: LossCounters;
  /**
   * Distinct (tool name, kind) series at most (default 2000, the OTel SDK's
   * default cardinality limit); aggregates of further tool names go to one
   * series per kind marked `otel.metric.overflow=true`.
   */
  cardinalityLimit?: number;
  /**
   * Agents (distinct resources) with series of their own at most (default
   * 1000); the tool metrics of further agents go to the sidecar's resource,
   * with the agent's service.name on each point.
   */
  maxAgents?: number;
  /** An agent with nothing recorded for this long is forgotten, its series ended (default 1 h). */
  agentIdleMs?: number;
}

export const METRIC_SYSCALL_DURATION = 'agentrace.tool.syscall.duration';
export const METRIC_SYSCALLS = 'agentrace.tool.syscalls';
export const METRIC_SYSCALL_ERRORS = 'agentrace.tool.syscall.errors';
export const METRIC_IO_BYTES = 'agentrace.tool.io.bytes';
export const METRIC_EVENTS_DROPPED = 'agentrace.events.dropped';
export const METRIC_EVENTS_EMITTED = 'agentrace.events.emitted';
export const METRIC_EVENTS_CAPPED = 'agentrace.events.capped';
export const METRIC_POLICY_DECISIONS = 'agentrace.policy.decisions';

export const ATTR_TOOL_NAME = 'gen_ai.tool.name';
export const ATTR_SYSCALL = 'agentrace.syscall';
export const ATTR_IO_DIRECTION = 'agentrace.io.direction';
export const ATTR_DROP_REASON = 'agentrace.drop.reason';
/** Which signal an exporter lost: traces and logs count items, metrics count collections. */
export const ATTR_SIGNAL = 'agentrace.signal';
export type LossSignal = 'traces' | 'logs' | 'metrics';
export const ATTR_OVERFLOW = 'otel.metric.overflow';

export const DEFAULT_CARDINALITY_LIMIT = 2000;
export const DEFAULT_MAX_AGENTS = 1000;
export const DEFAULT_AGENT_IDLE_MS = 3_600_000;

/** The agent's resource attributes put on its points where one resource holds all (Prometheus, overflow). */
export const AGENT_IDENTITY_KEYS: readonly string[] = ['service.name', 'service.namespace', 'service.instance.id'];

/**
 * Explicit bucket bounds in seconds: 2^1 .. 2^39 ns. OTLP bounds are inclusive
 * upper bounds, the kernel's lower bounds are inclusive, so a latency of exactly
 * 2^k ns is counted one bucket higher than OTLP's reading of the bounds says;
 * at nanosecond resolution that difference is immaterial.
 */
export const LATENCY_BOUNDARIES_S: readonly number[] = Object.freeze(
  Array.from({ length: LATENCY_BUCKETS - 1 }, (_, i) => 2 ** (i + 1) / 1e9),
);

const IO_KINDS: ReadonlySet<SyscallKind> = new Set<SyscallKind>(['read', 'write', 'send', 'recv']);
const KINDS: ReadonlySet<string> = new Set<SyscallKind>(['read', 'write', 'send', 'recv', 'open', 'connect', 'exec']);

interface Series {
  /** The agent's key ('' for the sidecar's own resource). */
  owner: string;
  startTime: HrTime;
  attributes: Attributes;
  kind: SyscallKind;
  calls: number;
  errors: number;
  bytes: number;
  latencySumNs: number;
  buckets: number[];
}

/** What collect() hands to the exporters, plus what went wrong reading the counters. */
export interface MetricsCollection {
  /** The sidecar's own: loss and event counters, and tool metrics recorded without an agent. */
  resourceMetrics: ResourceMetrics;
  /** One per agent, under its own resource (none from a producer without agents). */
  agents?: ResourceMetrics[];
  errors: Error[];
}

interface Agent {
  resource: Resource;
  identity: Attributes;
  lastRecordMs: number;
}

export class ToolMetrics implements SummaryListener {
  private readonly resource: Resource;
  private readonly startTime: HrTime;
  private readonly series = new Map<string, Series>();
  private readonly limit: number;
  private readonly observed = new ResettableCounters();
  private readonly agents = new Map<string, Agent>();
  private readonly maxAgents: number;
  private readonly agentIdleMs: number;
  private readonly decisions = new Map<string, { attributes: Attributes; n: number }>();

  constructor(private readonly opts: ToolMetricsOptions) {
    this.resource = resourceFromAttributes(opts.resource ?? { 'service.name': 'agentrace' });
    this.startTime = millisToHrTime(Date.now());
    const limit = opts.cardinalityLimit ?? DEFAULT_CARDINALITY_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`cardinalityLimit must be a positive integer, got ${limit}`);
    this.limit = limit;
    this.maxAgents = opts.maxAgents ?? DEFAULT_MAX_AGENTS;
    this.agentIdleMs = opts.agentIdleMs ?? DEFAULT_AGENT_IDLE_MS;
  }

  /** A kernel summary of a tool call: its aggregates, under the tool's name and who ran it. */
  recordSummary(tool: ToolSpan, summary: SpanKernelSummary): void {
    this.record(toolNameOf(tool), summary.aggregates, whoRan(tool), tool.resource);
  }

  /**
   * Adds one ended tool span's kernel aggregates to the cumulative state of
   * (tool name, kind, who). `who` is what the kernel says of the announcing
   * process (its uid, its container): a tool name is the agent's word, so
   * one user's calls never mix into another's series. `agent`: the resource
   * of the agent that ran the tool (its hello); without one, the series is the
   * sidecar's own.
   */
  record(toolName: string, aggs: SpanAggregates, who: Attributes = {}, agent?: Attributes, nowMs: number = Date.now()): void {
    const owner = this.ownerOf(agent, nowMs);
    if (owner === '' && agent !== undefined) who = { ...who, ...identityOf(agent) };
    for (const [kind, agg] of Object.entries(aggs)) {
      if (!KINDS.has(kind) || agg === undefined) continue;
      const calls = count(agg.calls);
      const errors = count(agg.errors);
      const bytes = count(agg.bytes);
      const latencySumNs = count(agg.latencySumNs);
      const buckets = Array.isArray(agg.latencyBuckets) ? agg.latencyBuckets : [];
      if (calls === 0 && errors === 0 && bytes === 0 && latencySumNs === 0 && !buckets.some((b) => count(b) > 0)) continue;
      const series = this.seriesFor(owner, toolName, kind as SyscallKind, who, nowMs);
      series.calls += calls;
      series.errors += errors;
      series.bytes += bytes;
      series.latencySumNs += latencySumNs;
      buckets.forEach((b, i) => {
        // a longer kernel histogram folds into the open-ended last bucket
        series.buckets[Math.min(i, LATENCY_BUCKETS - 1)]! += count(b);
      });
    }
  }

  /**
   * One decision of the policy (allowed ones too): counted by tool (none:
   * outside any call), kind and decision, within the cardinality limit
   * (past it, under otel.metric.overflow).
   */
  recordPolicyDecision(tool: string | undefined, kind: string, decision: string, outside: boolean): void {
    let key = JSON.stringify([tool ?? null, kind, decision, outside]);
    let d = this.decisions.get(key);
    if (d === undefined) {
      let attributes: Attributes = { 'agentrace.policy.kind': kind, 'agentrace.policy.decision': decision };
      if (tool !== undefined) attributes[ATTR_TOOL_NAME] = tool;
      if (outside) attributes['agentrace.policy.outside'] = true;
      if (this.decisions.size >= this.limit) {
        key = 'overflow';
        attributes = { [ATTR_OVERFLOW]: true };
        d = this.decisions.get(key);
      }
      if (d === undefined) {
        d = { attributes, n: 0 };
        this.decisions.set(key, d);
      }
    }
    d.n++;
  }

  /**
   * One cumulative collection, timestamped now. Never throws: a failing
   * counter source is left out and reported in errors. Agents idle for
   * agentIdleMs are forgotten first.
   */
  collect(nowMs: number = Date.now()): MetricsCollection {
    this.forgetIdleAgents(nowMs);
    const endTime = millisToHrTime(nowMs);
    const errors: Error[] = [];
    const byOwner = new Map<string, Series[]>();
    for (const series of this.series.values()) {
      const list = byOwner.get(series.owner);
      if (list === undefined) byOwner.set(series.owner, [series]);
      else list.push(series);
    }
    const own = [...toolMetricData(byOwner.get('') ?? [], endTime), ...this.counterData(endTime, errors)];
    const agents: ResourceMetrics[] = [];
    for (const [key, agent] of this.agents) {
      const series = byOwner.get(key);
      if (series === undefined) continue;
      agents.push({ resource: agent.resource, scopeMetrics: [{ scope: INSTRUMENTATION_SCOPE, metrics: toolMetricData(series, endTime) }] });
    }
    return {
      resourceMetrics: { resource: this.resource, scopeMetrics: [{ scope: INSTRUMENTATION_SCOPE, metrics: own }] },
      agents,
      errors,
    };
  }

  /**
   * All of a collection under the sidecar's resource, each agent's points
   * labelled with its identity (service.name, service.namespace,
   * service.instance.id): for Prometheus, whose exposition has one place per
   * metric name.
   */
  collectMerged(nowMs: number = Date.now()): { resourceMetrics: ResourceMetrics; errors: Error[] } {
    this.forgetIdleAgents(nowMs);
    const endTime = millisToHrTime(nowMs);
    const errors: Error[] = [];
    const all = [...this.series.values()].map((s) => {
      const agent = s.owner === '' ? undefined : this.agents.get(s.owner);
      return agent === undefined ? s : { ...s, attributes: { ...s.attributes, ...agent.identity } };
    });
    const metrics = [...toolMetricData(all, endTime), ...this.counterData(endTime, errors)];
    return { resourceMetrics: { resource: this.resource, scopeMetrics: [{ scope: INSTRUMENTATION_SCOPE, metrics }] }, errors };
  }

  /** Agents with series of their own now. */
  get agentCount(): number {
    return this.agents.size;
  }

  private counterData(endTime: HrTime, errors: Error[]): MetricData[] {
    const metrics: MetricData[] = [];
    if (this.decisions.size > 0) {
      const points = [...this.decisions.values()].map((d) => ({ startTime: this.startTime, endTime, attributes: d.attributes, value: d.n }));
      metrics.push(counter(METRIC_POLICY_DECISIONS, 'Decisions of the per-tool policy, by tool, kind and decision', '{decision}', points));
    }
    const drops = readSource('drops', () => this.opts.loss.drops(), errors);
    if (drops !== undefined) {
      const points: DataPoint<number>[] = [];
      for (const [reason, value] of Object.entries(drops)) {
        if (value === undefined) continue;
        if (typeof value === 'object' && value !== null) {
          for (const [signal, n] of Object.entries(value)) {
            const observed = this.observed.observe(`drop:${reason}:${signal}`, count(n), endTime, this.startTime);
            points.push({ ...observed, endTime, attributes: { [ATTR_DROP_REASON]: reason, [ATTR_SIGNAL]: signal } });
          }
          continue;
        }
        const observed = this.observed.observe(`drop:${reason}`, count(value), endTime, this.startTime);
        points.push({ ...observed, endTime, attributes: { [ATTR_DROP_REASON]: reason } });
      }
      if (points.length > 0) {
        metrics.push(counter(METRIC_EVENTS_DROPPED, 'Kernel events lost before export, by reason', '{event}', points));
      }
    }
    const readEvents = this.opts.loss.events?.bind(this.opts.loss);
    const events = readEvents === undefined ? undefined : readSource('events', readEvents, errors);
    if (events !== undefined) {
      const emitted = this.observed.observe('emitted', count(events.emitted), endTime, this.startTime);
      const capped = this.observed.observe('capped', count(events.capped), endTime, this.startTime);
      metrics.push(
        counter(METRIC_EVENTS_EMITTED, 'Kernel events written to the ring buffer', '{event}', [{ ...emitted, endTime, attributes: {} }]),
        counter(METRIC_EVENTS_CAPPED, 'Kernel events counted but not emitted (per-span cap)', '{event}', [{ ...capped, endTime, attributes: {} }]),
      );
    }
    return metrics;
  }

  /** The agent's key, its entry made or refreshed; '' when there is none or no room for another. */
  private ownerOf(agent: Attributes | undefined, nowMs: number): string {
    if (agent === undefined) return '';
    const key = stableKey(agent);
    const known = this.agents.get(key);
    if (known !== undefined) {
      known.lastRecordMs = nowMs;
      return key;
    }
    if (this.agents.size >= this.maxAgents) return '';
    this.agents.set(key, { resource: resourceFromAttributes(agent), identity: identityOf(agent), lastRecordMs: nowMs });
    return key;
  }

  private forgetIdleAgents(nowMs: number): void {
    const gone = new Set<string>();
    for (const [key, agent] of this.agents) if (nowMs - agent.lastRecordMs > this.agentIdleMs) gone.add(key);
    if (gone.size === 0) return;
    for (const key of gone) this.agents.delete(key);
    for (const [key, series] of this.series) if (gone.has(series.owner)) this.series.delete(key);
  }

  private seriesFor(owner: string, toolName: string, kind: SyscallKind, who: Attributes, nowMs: number): Series {
    const key = `${owner}\0${kind}\0${toolName}\0${JSON.stringify(who)}`;
    const existing = this.series.get(key);
    if (existing !== undefined) return existing;
    const overflow = this.series.size >= this.limit;
    const overflowKey = `${kind}\0overflow`;
    if (overflow) {
      const folded = this.series.get(overflowKey);
      if (folded !== undefined) return folded;
    }
    const series: Series = {
      owner: overflow ? '' : owner,
      // an agent's series start with it (it may come back after being forgotten)
      startTime: owner === '' || overflow ? this.startTime : millisToHrTime(nowMs),
      attributes: overflow ? { [ATTR_OVERFLOW]: true, [ATTR_SYSCALL]: kind } : { [ATTR_TOOL_NAME]: toolName, [ATTR_SYSCALL]: kind, ...who },
      kind,
      calls: 0,
      errors: 0,
      bytes: 0,
      latencySumNs: 0,
      buckets: new Array<number>(LATENCY_BUCKETS).fill(0),
    };
    this.series.set(overflow ? overflowKey : key, series);
    return series;
  }
}

/** The tool metrics (duration histogram, calls, errors, I/O bytes) of these series. */
function toolMetricData(all: readonly Series[], endTime: HrTime): MetricData[] {
  const metrics: MetricData[] = [];
  const point = <T>(s: Series, attributes: Attributes, value: T): DataPoint<T> => ({ startTime: s.startTime, endTime, attributes, value });
  const histogramPoints: DataPoint<Histogram>[] = [];
  for (const s of all) {
    const total = s.buckets.reduce((a, b) => a + b, 0);
    if (total === 0) continue;
    histogramPoints.push(
      point<Histogram>(s, s.attributes, {
        buckets: { boundaries: [...LATENCY_BOUNDARIES_S], counts: [...s.buckets] },
        count: total,
        sum: s.latencySumNs / 1e9,
      }),
    );
  }
  if (histogramPoints.length > 0) {
    metrics.push({
      descriptor: {
        name: METRIC_SYSCALL_DURATION,
        description: 'Duration of the system calls made by tool calls, measured in the kernel (log2 buckets)',
        unit: 's',
        valueType: ValueType.DOUBLE,
      },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: histogramPoints,
    });
  }
  if (all.length > 0) {
    metrics.push(
      counter(METRIC_SYSCALLS, 'System calls made by tool calls', '{call}', all.map((s) => point(s, s.attributes, s.calls))),
      counter(METRIC_SYSCALL_ERRORS, 'System calls made by tool calls that returned an error', '{call}', all.map((s) => point(s, s.attributes, s.errors))),
    );
  }
  const io = all.filter((s) => IO_KINDS.has(s.kind));
  if (io.length > 0) {
    metrics.push(
      counter(
        METRIC_IO_BYTES,
        'Bytes read, written, sent and received by tool calls',
        'By',
        io.map((s) => point(s, { ...withoutKind(s.attributes), [ATTR_IO_DIRECTION]: s.kind }, s.bytes)),
      ),
    );
  }
  return metrics;
}

function identityOf(agent: Attributes): Attributes {
  const identity: Attributes = {};
  for (const key of AGENT_IDENTITY_KEYS) if (agent[key] !== undefined) identity[key] = agent[key];
  return identity;
}

/** The same attributes in any order give the same key. */
function stableKey(attributes: Attributes): string {
  return JSON.stringify(Object.keys(attributes).sort().map((k) => [k, attributes[k]]));
}

/**
 * Counters read from elsewhere (kernel stats, exporter stats) may start over,
 * e.g. when probes are reloaded. A value below the last one is a reset: the
 * series gets a new start time, as OTLP cumulative sums require.
 */
class ResettableCounters {
  private readonly state = new Map<string, { startTime: HrTime; last: number }>();

  observe(key: string, value: number, now: HrTime, initialStart: HrTime): { startTime: HrTime; value: number } {
    let s = this.state.get(key);
    if (s === undefined) {
      s = { startTime: initialStart, last: value };
      this.state.set(key, s);
    } else if (value < s.last) {
      s.startTime = now;
    }
    s.last = value;
    return { startTime: s.startTime, value };
  }
}

function counter(name: string, description: string, unit: string, dataPoints: DataPoint<number>[]): MetricData {
  return {
    descriptor: { name, description, unit, valueType: ValueType.INT },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    isMonotonic: true,
    dataPoints,
  };
}

function withoutKind(attributes: Attributes): Attributes {
  const { [ATTR_SYSCALL]: _kind, ...rest } = attributes;
  return rest;
}

function readSource<T>(what: string, read: () => T, errors: Error[]): T | undefined {
  try {
    return read();
  } catch (error) {
    errors.push(new Error(`reading the ${what} counters failed: ${error instanceof Error ? error.message : String(error)}`));
    return undefined;
  }
}

/** A non-negative integer count; anything else (NaN, negative, non-number) counts as 0. */
function count(n: unknown): number {
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/** Who ran a tool call, on its metrics: its user and container (the kernel's word), and the pod it says it is in. */
function whoRan(tool: ToolSpan): Attributes {
  const who: Attributes = { 'process.user.id': tool.uid };
  for (const key of WHO_KEYS) {
    const v = tool.resource[key];
    if (v !== undefined) who[key] = v;
  }
  return who;
}

/** The resource attributes that name where an agent runs, copied onto its metrics' data points. */
const WHO_KEYS = ['container.id', 'k8s.pod.name', 'k8s.namespace.name', 'k8s.node.name'] as const;
