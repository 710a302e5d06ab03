// The daemon: probes attached, socket served, kernel events turned into
// spans, everything exported. `agentrace sidecar` and `agentrace run` both
// drive this.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SpanKind, type Attributes, type SpanStatusCode } from '@opentelemetry/api';
import { Probes, probeGroups, ruleRef, workSubmitFunction, type KernelEvent, type ProbeGroup, type ProbeStats } from '@agentrace/bpf';
import { messageOf, ToolPatterns, type CheckFramesMessage, type FramesAnswer, type SpanEndMessage, type SpanStartMessage } from '@agentrace/protocol';
import { framesAnswer, V8Layouts } from './v8-layouts.js';
import { compilePolicy, type CompiledPolicy } from './policy/compile.js';
import { PolicyError, readPolicy } from './policy/policy-file.js';
import { outsideDecisionRecord, type PolicyDecision } from './policy/decisions.js';
import { SocketServer, emptySocketStats, type AgentConnection, type SocketLimits, type SocketServerStats } from './socket-server.js';
import { ControlServer } from './control-server.js';
import { switchableGroups, type SwitchableGroup } from './control-protocol.js';
import { ToolSpanRegistry, Refusal, PARENT_UNVERIFIED, ATTRIBUTION_INCOMPLETE, type RefusalReason, type ToolSpan, type ToolSpanLimits } from './tool-spans.js';
import { ThreadSpans } from './thread-spans.js';
import { Attribution, type AttributionStats } from './attribution.js';
import { SelfDeclared } from './self-declared.js';
import { withVerifiedIdentity } from './process-identity.js';
import { resolveCommand } from './launch.js';
import { executableOf, fileHere, mappedLibc, type ProcessFile } from './process-files.js';
import { KernelSummaries, SETTLE_MS } from './kernel-summary.js';
import { ToolMetrics, type LossCounters } from './tool-metrics.js';
import { SpanOutput, sumStats } from './span-output.js';
import { StatusServer } from './status-server.js';
import { createMetricsReader, type MetricsReader } from './otlp/metric-reader.js';
import type { OtlpMetricsConfig } from './otlp/metric-config.js';
import { nowNs } from './time.js';
import { limitedLog } from './limited-log.js';
import type { ExportSpan } from './otlp/span.js';
import type { ExporterStats, LogExporter, SpanExporter } from './otlp/exporter.js';

/** Protocol errors logged one by one; the rest are counted in the shutdown line. */
const PROTOCOL_ERRORS_LOGGED = 5;

/** How often the per-descriptor maps are swept of processes that exited. */
const DESCRIPTOR_SWEEP_MS = 2000;
/** Housekeeping while a call's kernel summary is due: it settles that long. */
const HOUSEKEEPING_DUE_MS = SETTLE_MS;
/** Housekeeping otherwise: expiries, sweeps, late I/O of ended calls. */
const HOUSEKEEPING_IDLE_MS = 1000;

export const SIDECAR_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

export interface SidecarOptions {
  socketPath: string;
  exporters: SpanExporter[];
  /** Where kernel events go as log records (kernel-logs.ts); none: no logs. */
  logExporters?: LogExporter[];
  /** Called for every batch of spans exported, e.g. to print a tree. */
  onSpans?: (spans: ExportSpan[]) => void;
  /** Called when an agent announces a tool span (exported by the sidecar or not). */
  onToolStart?: (spanId: string, name: string) => void;
  /** Diagnostics (one line each). Default: stderr. */
  log?: (line: string) => void;
  ringBufferBytes?: number;
  /**
   * Probes already being loaded (Probes.loadAsync() with its defaults: no
   * ringBufferBytes), e.g. started before the rest of the command's modules
   * were imported. Default: loaded here.
   */
  probes?: Promise<Probes>;
  /** Events (open, connect, DNS) one tool span may emit before the rest are only counted; 0: no cap. */
  maxEventsPerSpan?: number;
  /** Export the tools' kernel metrics (and loss counters) here; none if undefined. */
  metrics?: OtlpMetricsConfig;
  /** Serve the control socket (`agentrace probes`) here, mode 0600. Default: none. */
  controlSocketPath?: string;
  /** Groups attached at start (default all); `context` is always attached. */
  probeGroups?: readonly SwitchableGroup[];
  /** A per-tool policy to enforce (docs/POLICY.md): its rules go into the kernel at start. */
  policy?: CompiledPolicy;
  /** The file the policy came from: reloadPolicy() reads it again. */
  policyFile?: string;
  /** How long a process that declared itself (slot registration) has to say hello. Default 5 s. */
  selfDeclaredGraceMs?: number;
  /** How long kernel events wait for their span's announcement (start frame). Default 60 s. */
  unmatchedTtlMs?: number;
  /** Limits on what agents announce: spans in flight (total, per user, per process), attributes. */
  spanLimits?: Partial<ToolSpanLimits>;
  /** Limits of the agent socket: connections (total, per user), unfinished frames (time, bytes). */
  socketLimits?: Partial<SocketLimits>;
  /**
   * stop() leaves the kernel's detaching of the probes (1 to 2 s of RCU
   * waits) to a helper process that outlives this one: for `run`, whose
   * user should not wait for it.
   */
  detachInBackground?: boolean;
}

export interface SidecarHealth {
  ready: boolean;
  healthy: boolean;
  /** What is wrong, one line each (empty when healthy). */
  problems: string[];
  /** Which probe groups are attached (a group detached on purpose is not a problem). */
  probes: Partial<Record<ProbeGroup, boolean>>;
}

export interface SidecarStats {
  probes: ProbeStats;
  attribution: AttributionStats;
  socket: SocketServerStats;
  /** Spans announced and not ended yet, over all agents. */
  spansInFlight: number;
  /** Attribute characters those spans hold (bounded: attributeCharsInFlight). */
  attributeCharsInFlight: number;
  /** Ended spans still remembered for late kernel events, and those let go before their 30 s (over maxEnded). */
  spansRetained: number;
  spansForgottenEarly: number;
  spansRefused: number;
  /** Refused spans by reason (invalid, not_own, in_flight_total, in_flight_user, in_flight_process). */
  spansRefusedBy: Record<RefusalReason, number>;
  /** Attribute values agents sent cut to the length limit, and attributes left out (count limit, type). */
  attributesTruncated: number;
  attributesDropped: number;
  /** Processes that declared themselves and never said hello: no longer traced. */
  selfDeclaredForgotten: number;
  /** Hellos read after their process had exited: its spans are exported, nothing is tracked. */
  helloAfterExit: number;
  /** Per-descriptor kernel entries of exited processes removed (descriptors they never closed). */
  descriptorsForgotten: number;
  /** Kernel aggregates no span claimed within 10 minutes (spans never announced or never ended), dropped. */
  aggregatesUnclaimed: number;
  exporters: Record<string, ReturnType<SpanExporter['stats']>>;
  logExporters: Record<string, ReturnType<LogExporter['stats']>>;
  /** Per signal, over its exporters: items (traces, logs) or collections (metrics). */
  export: Record<'traces' | 'logs' | 'metrics', ExporterStats>;
  /** As /healthz says it. */
  health: { healthy: boolean; problems: string[] };
}

export class Sidecar implements LossCounters {
  private readonly registry: ToolSpanRegistry;
  private readonly threads: ThreadSpans;
  private readonly attribution: Attribution;
  private readonly summaries: KernelSummaries;
  private readonly metrics: ToolMetrics;
  /** The policy in force (the start's, or the last reload's). */
  private policy: CompiledPolicy | undefined;
  /** Rule names by the generation they were loaded under: a verdict read after a reload names its own policy's rule. */
  private readonly rulesByGeneration = new Map<number, readonly string[]>();
  private warnedToolUnknown = false;
  /** Agents' resources by pid (from their hello), for decisions outside calls. */
  private readonly agentResources = new Map<number, Attributes>();
  private readonly declared: SelfDeclared;
  private helloAfterExit = 0;
  private readonly v8Layouts = new V8Layouts();
  /** Reasons the frame rung was refused, logged once each. */
  private readonly v8Refusals = new Set<string>();
  /** Processes told once that the frame rung is refused (forgotten when they exit). */
  private readonly framesRefused = new Set<number>();
  /** Closed connections: a few lines, then only the count (the shutdown line). */
  private readonly logProtocolError: (line: string) => void;
  /** Tracked processes that exited since the last sweep of the per-descriptor maps. */
  private readonly exited = new Set<number>();
  private lastSweepMs = Date.now();
  private descriptorsForgotten = 0;
  private metricsReader?: MetricsReader;
  private server?: SocketServer;
  private control?: ControlServer;
  private status?: StatusServer;
  private housekeeping?: NodeJS.Timeout;
  private housekeepingAtMs = 0;
  private stopped = false;
  /** The kernel counters as they were when the probes were freed. */
  private closedProbeStats?: ProbeStats;
  private readonly hooked = new Set<string>();
  /** When hooks went into a file (epoch ns, by ProcessFile key): libuv's threadpool in a node, getaddrinfo in a libc. */
  private readonly hookedAtNs = new Map<string, bigint>();
  /** The node binary and libc each process runs (ProcessFile keys), for ToolSpan.incomplete. */
  private readonly runtimeOf = new Map<number, { exe?: string; libc?: string; warned?: boolean }>();
  private readonly logIncomplete: (line: string) => void;
  private readonly log: (line: string) => void;
  private readonly output: SpanOutput;

  private constructor(
    private readonly probes: Probes,
    private readonly opts: SidecarOptions,
  ) {
    this.log = opts.log ?? ((line) => process.stderr.write(`agentrace: ${line}\n`));
    this.logProtocolError = limitedLog(PROTOCOL_ERRORS_LOGGED, this.log, 'further ones');
    this.logIncomplete = limitedLog(PROTOCOL_ERRORS_LOGGED, this.log, 'further processes');
    this.registry = new ToolSpanRegistry(opts.spanLimits);
    this.threads = new ThreadSpans(probes);
    this.output = new SpanOutput(opts.exporters, opts.logExporters, opts.onSpans);
    this.policy = opts.policy;
    this.metrics = new ToolMetrics({
      resource: { 'service.name': 'agentrace-sidecar', 'service.version': SIDECAR_VERSION },
      loss: this,
    });
    this.attribution = new Attribution({
      registry: this.registry,
      clock: probes,
      sink: this.output,
      ...(opts.unmatchedTtlMs !== undefined ? { pendingTtlMs: opts.unmatchedTtlMs } : {}),
      policyRules: (raw) => this.ruleName(raw),
      onPolicyDecision: (d) => this.onPolicyDecision(d),
    });
    this.summaries = new KernelSummaries({
      kernel: probes,
      sink: this.output,
      userCounts: this.attribution,
      listener: this.metrics,
      ...(opts.spanLimits?.maxEnded !== undefined ? { maxWatched: opts.spanLimits.maxEnded } : {}),
    });
    this.declared = new SelfDeclared({
      probes,
      tree: this.attribution.tree,
      log: this.log,
      ...(opts.selfDeclaredGraceMs !== undefined ? { graceMs: opts.selfDeclaredGraceMs } : {}),
    });
  }

  /** LossCounters, for the metrics: the kernel's and the exporters' losses so far. */
  drops(): ReturnType<LossCounters['drops']> {
    const s = this.stats();
    return {
      ringbuf_full: Number(s.probes.ringbufDrops),
      map_full: Number(s.probes.pendingFull + s.probes.aggFull + s.probes.trackedFull),
      decode_error: s.probes.decodeErrors,
      unmatched: s.attribution.expired,
      exporter_queue_full: { traces: s.export.traces.dropped, logs: s.export.logs.dropped, metrics: s.export.metrics.dropped },
      export_failed: { traces: s.export.traces.failed, logs: s.export.logs.failed, metrics: s.export.metrics.failed },
    };
  }

  /** LossCounters: events the kernel wrote, and those it only counted (per-span cap). */
  events(): { emitted: number; capped: number } {
    const p = this.closedProbeStats ?? this.probes.stats();
    return { emitted: Number(p.events), capped: Number(p.capped) };
  }

  /** Loads and attaches the probes, then (and only then) creates the socket. */
  static async start(opts: SidecarOptions): Promise<Sidecar> {
    const probes = await (opts.probes ??
      Probes.loadAsync({
        ...(opts.ringBufferBytes ? { ringBufferBytes: opts.ringBufferBytes } : {}),
        ...(opts.maxEventsPerSpan !== undefined ? { maxEventsPerSpan: opts.maxEventsPerSpan } : {}),
      }));
    try {
      if (opts.probes && opts.maxEventsPerSpan !== undefined) probes.setMaxEventsPerSpan(opts.maxEventsPerSpan);
      probes.attach('context');
      for (const g of opts.probeGroups ?? switchableGroups) probes.attach(g);
      let generation = 0;
      if (opts.policy) {
        // the rules first: attached with none, the programs allow everything
        generation = probes.setPolicyTables(opts.policy.tables);
        probes.attachPolicy();
      }
      const sidecar = new Sidecar(probes, opts);
      if (opts.policy) sidecar.rulesByGeneration.set(generation, opts.policy.rules);
      sidecar.hookLikelyBinaries();
      probes.onEvents(
        (events) => sidecar.onKernelEvents(events),
        (err) => sidecar.log(`dropped an undecodable kernel event: ${err.message}`),
      );
      sidecar.server = await SocketServer.listen(opts.socketPath, sidecar.handlers(), SIDECAR_VERSION, opts.socketLimits);
      if (opts.policy) sidecar.tellToolPatterns(opts.policy.tools);
      if (opts.controlSocketPath) {
        try {
          sidecar.control = await ControlServer.listen(opts.controlSocketPath, {
            probeStatus: () => sidecar.probeStatus(),
            setProbes: (op, groups) => sidecar.setProbes(op, groups),
            stats: () => sidecar.stats(),
            reloadPolicy: () => sidecar.reloadPolicy(),
            log: sidecar.log,
          });
        } catch (err) {
          await sidecar.server.close();
          throw err;
        }
      }
      if (opts.metrics) {
        sidecar.metricsReader = createMetricsReader(sidecar.metrics, opts.metrics, { onError: (err) => sidecar.log(`metrics export: ${err.message}`) });
        sidecar.metricsReader.start();
      }
      if (opts.metrics?.prometheus) {
        try {
          sidecar.status = await StatusServer.listen({
            ...opts.metrics.prometheus,
            collect: () => sidecar.metrics.collectMerged(),
            health: () => sidecar.health(),
            log: sidecar.log,
          });
        } catch (err) {
          await sidecar.control?.close();
          await sidecar.server.close();
          await sidecar.metricsReader?.shutdown(0);
          throw err;
        }
      }
      sidecar.housekeep(HOUSEKEEPING_IDLE_MS);
      return sidecar;
    } catch (err) {
      probes.close();
      throw err;
    }
  }

  get socketPath(): string {
    return this.opts.socketPath;
  }

  get controlSocketPath(): string | undefined {
    return this.control?.socketPath;
  }

  /** Where /metrics, /healthz and /readyz are served, if they are. */
  get statusUrl(): string | undefined {
    return this.status?.url;
  }

  /** Which probe groups are attached now. */
  probeStatus(): Record<ProbeGroup, boolean> {
    return Object.fromEntries(probeGroups.map((g) => [g, this.probes.isAttached(g)])) as Record<ProbeGroup, boolean>;
  }

  /** Attaches or detaches whole probe groups while agents keep running (`context` stays). */
  setProbes(op: 'attach' | 'detach', groups: readonly SwitchableGroup[]): Record<ProbeGroup, boolean> {
    for (const g of groups) {
      if (!switchableGroups.includes(g)) throw new RangeError(`cannot ${op} probe group ${JSON.stringify(g)}: only ${switchableGroups.join(', ')} can (context stays attached: attribution needs it)`);
      if (op === 'attach') this.probes.attach(g);
      else this.probes.detach(g);
    }
    return this.probeStatus();
  }

  /**
   * Ready: serving agents (the socket listens, the context probes are
   * attached). Healthy: ready, and every exporter works (none is failing since
   * its last export). Problems say what is not.
   */
  health(): SidecarHealth {
    const problems: string[] = [];
    if (this.stopped) problems.push('the sidecar is stopping');
    if (this.server === undefined) problems.push('the agent socket is not listening');
    if (!this.stopped && !this.probes.isAttached('context')) problems.push('the context probes are not attached');
    const ready = problems.length === 0;
    const exporters = this.output.health();
    if (this.metricsReader) exporters.push(this.metricsReader.health());
    for (const h of exporters) if (!h.ok) problems.push(h.reason);
    return { ready, healthy: problems.length === 0, problems, probes: this.stopped ? {} : this.probeStatus() };
  }

  stats(): SidecarStats {
    const out = this.output.stats();
    return {
      probes: this.closedProbeStats ?? this.probes.stats(),
      attribution: this.attribution.stats(),
      socket: this.server?.stats() ?? emptySocketStats(),
      spansInFlight: this.registry.inFlightCount,
      attributeCharsInFlight: this.registry.attributeCharsInFlight,
      spansRetained: this.registry.endedCount,
      spansForgottenEarly: this.registry.endedEvicted,
      spansRefused: this.registry.refused,
      spansRefusedBy: { ...this.registry.refusedBy },
      attributesTruncated: this.registry.attributesTruncated,
      attributesDropped: this.registry.attributesDropped,
      selfDeclaredForgotten: this.declared.forgotten,
      helloAfterExit: this.helloAfterExit,
      descriptorsForgotten: this.descriptorsForgotten,
      aggregatesUnclaimed: this.summaries.unclaimed,
      exporters: out.spans,
      logExporters: out.logs,
      export: {
        traces: sumStats(Object.values(out.spans)),
        logs: sumStats(Object.values(out.logs)),
        // in collections, not items: a collection carries every series
        metrics: this.metricsReader?.stats() ?? { exported: 0, dropped: 0, failed: 0 },
      },
      health: (({ healthy, problems }) => ({ healthy, problems }))(this.health()),
    };
  }

  /**
   * Traces a process that `run` started, from before it runs anything (it
   * waits for this to exec the command): it and everything it forks, hello
   * or not. `binaries` are the executables it is about to run (the command,
   * its interpreter), hooked now so that its first threadpool work and name
   * lookups are attributed too.
   */
  trackLaunched(pid: number, binaries: readonly string[]): void {
    this.probes.track(pid);
    for (const b of binaries) {
      const file = fileHere(b);
      if (file) this.hookBinary(file, true);
    }
  }

  /**
   * Hooks, before any agent shows up, the node binaries agents most likely
   * run (this one, and the `node` on PATH) and this system's libc: an agent
   * that calls a tool the moment it starts then has its threadpool work and
   * name lookups attributed too, not only once its binary was seen.
   */
  private hookLikelyBinaries(): void {
    const candidates = [process.execPath, resolveCommand('node', process.env)];
    for (const c of candidates) {
      const file = c === undefined ? undefined : fileHere(c);
      if (file) this.hookBinary(file, true);
    }
    const libc = mappedLibc(process.pid);
    if (libc) this.hookLibc(libc);
  }

  /**
   * After the agent exited: waits until its connections have closed (their
   * last frames read) or `timeoutMs` passed, then drains the kernel's events.
   */
  async settle(timeoutMs = 1000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.server?.stats().open ?? 0) > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    // One more turn of the loop for ring-buffer wakeups already queued.
    await new Promise((r) => setImmediate(r));
    this.probes.drain();
  }

  /** Drains the kernel's events and hands everything to the exporters. */
  async flush(timeoutMs = 5000): Promise<void> {
    this.probes.drain();
    await Promise.all([this.output.flush(timeoutMs), this.metricsReader?.flush(timeoutMs)]);
  }

  /** Stops serving, drains what the kernel still holds, ends what is open, flushes, frees the probes. */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.housekeeping);
    await this.status?.close();
    await this.control?.close();
    await this.server?.close();
    this.probes.drain();
    const end = nowNs();
    this.toolEnded(this.registry.abandon(undefined, end));
    this.attribution.expire(Date.now(), true);
    this.attribution.closeRunningProcesses(end);
    this.summaries.collect(Date.now(), true);
    this.probes.drain();
    this.closedProbeStats = this.probes.stats();
    this.probes.close({ inBackground: this.opts.detachInBackground === true });
    await this.output.shutdown(timeoutMs);
    // Last: the final collection carries the exporters' own drops.
    await this.metricsReader?.shutdown(timeoutMs);
    const s = this.stats();
    const p = s.probes;
    const exporterDrops = Object.values(s.exporters).reduce((n, e) => n + e.dropped, 0);
    for (const [name, e] of Object.entries(s.exporters)) {
      if (e.failed > 0 || e.dropped > 0) this.log(`${name}: ${e.exported} spans exported, ${e.failed} failed, ${e.dropped} dropped (queue full)`);
    }
    for (const [name, e] of Object.entries(s.logExporters)) {
      if (e.failed > 0 || e.dropped > 0) this.log(`${name}: ${e.exported} log records exported, ${e.failed} failed, ${e.dropped} dropped (queue full)`);
    }
    const m = s.export.metrics;
    if (m.failed > 0 || m.dropped > 0) this.log(`metrics: ${m.exported} collections exported, ${m.failed} failed, ${m.dropped} replaced by a newer one or unsent`);
    const mapFull = p.pendingFull + p.aggFull + p.trackedFull;
    const sk = s.socket;
    if (sk.unseenPeers > 0) this.log(`agent socket: ${sk.unseenPeers} connections refused from processes outside the sidecar's PID namespace`);
    if (sk.refusedConnections > 0 || sk.partialFrameTimeouts > 0 || sk.pendingBudgetClosed > 0 || sk.protocolErrors > 0 || sk.throttledProcess > 0 || sk.throttledUser > 0) {
      this.log(
        `agent socket: ${sk.refusedConnections} connections refused (over their share), ${sk.partialFrameTimeouts} closed for an unfinished frame, ` +
          `${sk.pendingBudgetClosed} for the unfinished-bytes budget, ${sk.protocolErrors} for protocol errors; ` +
          `reading paused ${sk.throttledProcess} times for a process's frame rate, ${sk.throttledUser} for a user's`,
      );
    }
    if (s.spansRefused > 0 || s.attributesTruncated > 0 || s.attributesDropped > 0) {
      const by = Object.entries(s.spansRefusedBy)
        .filter(([, n]) => n > 0)
        .map(([r, n]) => `${n} ${r}`)
        .join(', ');
      this.log(
        `spans refused: ${s.spansRefused}${by ? ` (${by})` : ''}; attribute values truncated: ${s.attributesTruncated}, attributes dropped: ${s.attributesDropped}`,
      );
    }
    if (p.ringbufDrops > 0n || mapFull > 0n || s.attribution.expired > 0 || s.attribution.refused > 0 || exporterDrops > 0 || p.decodeErrors > 0 || s.selfDeclaredForgotten > 0) {
      this.log(
        `kernel events: ${p.ringbufDrops} lost to a full ring buffer, ${mapFull} to full maps, ${p.decodeErrors} undecodable, ` +
          `${s.attribution.expired} unmatched (their span was never announced), ${s.attribution.refused} refused (span not announced by their process); ` +
          `${exporterDrops} spans dropped by full exporter queues; ` +
          `${s.selfDeclaredForgotten} self-declared processes forgotten (no hello)`,
      );
    }
    // Never silently: syscalls whose call the frame rung could not read went to lower rungs.
    if (p.frameUnreadable > 0n) {
      this.log(`frame rung: ${p.frameUnreadable} syscalls of Node 24 agents whose async context the kernel could not read (memory not resident): attributed by the lower rungs, or to no call`);
    }
  }

  private handlers() {
    return {
      onHello: (conn: AgentConnection, msg: { resource?: Attributes; sdk?: string; runtime?: string; frames?: boolean }): { frames?: FramesAnswer } | void => {
        // What the kernel says of the process overrides what the client said.
        conn.resource = withVerifiedIdentity(this.registry.sanitizeResource(msg.resource), conn.process, conn.uid) as Attributes;
        // A hello read after its process exited (a short-lived agent) still
        // brings its spans, but its pid may be someone else's by now.
        if (!conn.alive()) {
          this.helloAfterExit++;
          return;
        }
        this.agentResources.set(conn.pid, conn.resource);
        this.probes.track(conn.pid);
        this.declared.confirmed(conn.pid);
        const exe = this.hookBinaries(conn.pid);
        if (msg.frames === true) return { frames: this.giveV8Layout(conn.pid, exe) };
      },
      onCheckFrames: (conn: AgentConnection, msg: CheckFramesMessage): FramesAnswer => {
        const tid = conn.threads.resolve(msg.tid);
        const answer = tid === undefined ? { ok: false, reason: `thread ${msg.tid} is not one of pid ${conn.pid}'s` } : framesAnswer(this.probes.frameCheck(conn.pid, tid));
        return this.framesRefusal(conn.pid, answer);
      },
      onSpanStart: (conn: AgentConnection, msg: SpanStartMessage) => {
        let span: ToolSpan;
        try {
          span = this.registry.start(conn, conn.resource, msg);
        } catch (err) {
          if (!(err instanceof Refusal)) throw err;
          conn.refuse(err.wireCode, err.message);
          return;
        }
        // Only spans their thread runs (tool calls) go to the thread map; a
        // framework's own runs around them would catch activity outside tools.
        // A thread whose slot the kernel reads needs no thread-map entry.
        if (span.onThread && msg.slot !== true && span.threadAlive) this.threads.push(span);
        this.opts.onToolStart?.(span.spanId, span.name);
        this.attribution.onToolStarted(span);
      },
      onSpanEnd: (conn: AgentConnection, msg: SpanEndMessage) => {
        let span: ToolSpan | undefined;
        try {
          span = this.registry.end(conn.pid, msg);
        } catch (err) {
          if (!(err instanceof Refusal)) throw err;
          conn.refuse(err.wireCode, err.message);
          return;
        }
        if (span) this.toolEnded([span]);
      },
      onClose: (conn: AgentConnection) => {
        // Closed by stop(), which ends what is open itself (the probes may be gone).
        if (this.stopped) return;
        // Only this connection's spans: an agent has one connection per
        // thread, and a worker that exits leaves the others' calls alone.
        this.threads.dropConnection(conn.id);
        this.toolEnded(this.registry.abandon(conn.id, nowNs()));
      },
      onProtocolError: (conn: AgentConnection | undefined, err: Error) => {
        this.logProtocolError(`closed ${conn ? `the connection of pid ${conn.pid}` : 'a connection'}: ${err.message}`);
      },
    };
  }

  /**
   * Gives the kernel the V8 layout of an agent that keeps its calls in its
   * async context (read once per binary): its threads' next registrations
   * prove the frame rung. What cannot be read is said to the agent, which
   * keeps its async hook, and logged once per binary.
   */
  private giveV8Layout(pid: number, exe: ProcessFile | undefined): FramesAnswer {
    const r = this.v8Layouts.of(pid, exe);
    if (!r.ok) return this.framesRefusal(pid, { ok: false, reason: r.reason });
    try {
      this.probes.setV8Layout(pid, r.layout);
    } catch (err) {
      return this.framesRefusal(pid, { ok: false, reason: `the sidecar could not give the kernel the layout: ${messageOf(err)}` });
    }
    return { ok: true };
  }

  /**
   * A refusal of the frame rung: logged once per reason, and printed by the
   * agent once per process (the first thread told prints it).
   */
  private framesRefusal(pid: number, answer: FramesAnswer): FramesAnswer {
    if (answer.ok) return answer;
    const reason = answer.reason ?? 'no reason given';
    if (!this.v8Refusals.has(reason)) {
      this.v8Refusals.add(reason);
      this.log(`pid ${pid}: the kernel cannot read tool calls from its async context (${reason}); its SDK keeps an async hook`);
    }
    const first = !this.framesRefused.has(pid);
    this.framesRefused.add(pid);
    return { ...answer, warn: first };
  }

  /**
   * What the kernel keeps per descriptor goes with the process: one that
   * exited (killed, with descriptors open) is forgotten every few seconds,
   * in one pass over the maps for all of them.
   */
  private sweepDescriptors(nowMs = Date.now()): void {
    if (this.exited.size === 0 || nowMs - this.lastSweepMs < DESCRIPTOR_SWEEP_MS) return;
    this.lastSweepMs = nowMs;
    try {
      this.descriptorsForgotten += this.probes.forgetDescriptors(this.exited);
      for (const pid of this.exited) this.runtimeOf.delete(pid);
    } catch (err) {
      this.log(`cannot sweep the descriptor maps: ${messageOf(err)}`);
    }
    this.exited.clear();
  }

  /** Kernel events: processes that declared themselves or ran a new binary, then attribution. */
  /**
   * A decision of the policy: counted (agentrace.policy.decisions); a breach
   * outside any call, which has no span to carry it, is a log record of its
   * own (one inside a call is on its span, and so on that span's record).
   */
  private onPolicyDecision(d: PolicyDecision): void {
    this.metrics.recordPolicyDecision(d.tool, d.kind, d.decision, d.outside);
    if (!this.warnedToolUnknown && d.tool !== undefined && this.policy?.defaultRules.includes(d.rule) && new ToolPatterns(this.policy.tools).match(d.tool) !== undefined) {
      // the file names the tool, the kernel did not know the call's tool: say so, once
      this.warnedToolUnknown = true;
      this.log(
        `policy: a ${d.kind} decision in a call of ${d.tool} was made by the default rules: the kernel did not know the call's tool there (pid ${d.event.pid}: a stdio server's or an inherited descriptor's syscall; docs/POLICY.md). Further ones are not reported`,
      );
    }
    if (!d.outside || d.decision === 'allowed') return;
    const resource = this.agentResources.get(d.event.pid) ?? { 'process.pid': d.event.pid };
    this.output.emitLogs([outsideDecisionRecord(d, this.probes.toEpochNs(d.event.tsNs), nowNs(), resource)]);
  }

  /**
   * Reads the policy file again and puts it in force for the next decision
   * (docs/POLICY.md: the kernel switches generations in one write). A file
   * that cannot be used is refused with its line and reason, and the
   * running policy stays.
   */
  reloadPolicy(): { file: string; rules: number } {
    const file = this.opts.policyFile;
    if (file === undefined) throw new PolicyError('(none)', undefined, undefined, 'no policy is loaded (start with --policy FILE)');
    const next = compilePolicy(readPolicy(file));
    this.rulesByGeneration.set(this.probes.setPolicyTables(next.tables), next.rules);
    this.policy = next;
    // agents key their calls by the new patterns from their next switch
    this.tellToolPatterns(next.tools);
    this.log(`policy: reloaded ${file} (${next.rules.length - 1} rules, generation ${this.probes.policyGeneration()})`);
    return { file, rules: next.rules.length - 1 };
  }

  private tellToolPatterns(tools: readonly string[]): void {
    try {
      this.server?.setToolPatterns(tools);
    } catch (err) {
      this.log(`policy: ${messageOf(err)}`);
    }
  }

  private ruleName(raw: number): string {
    const { generation, index } = ruleRef(raw);
    return this.rulesByGeneration.get(generation)?.[index] ?? `rule ${index} of policy generation ${generation}`;
  }

  private onKernelEvents(events: KernelEvent[]): void {
    for (const e of events) {
      if (e.kind === 'proc.declare') {
        this.declared.declared(e.pid, e.comm);
        // Early, before its hello; a short-lived one may be gone already (its hello says why, if it comes).
        this.hookBinaries(e.pid, true);
      } else if (e.kind === 'runtime.exec') {
        // A node starting, agent or not (yet).
        this.hookRuntime(e.pid);
      } else if (e.kind === 'proc.exit') {
        this.exited.add(e.pid);
        this.agentResources.delete(e.pid);
        this.framesRefused.delete(e.pid);
      } else if (e.kind === 'proc.exec' && e.ret === 0) {
        // A tracked process now runs another binary (a shell that execs
        // node, npx, ...): hook its threadpool if it is a node.
        const exe = executableOf(e.pid);
        if (exe) {
          this.hookBinary(exe, true);
          this.runtimeOf.set(e.pid, { exe: exe.key });
        }
      }
    }
    this.attribution.onEvents(events);
  }

  /**
   * Hooks a node that just started: its threadpool at once, its libc as soon
   * as its loader has mapped it (looked for every few ms, for a while), so
   * both are in place before it loads its modules and calls a tool. Not
   * noted in runtimeOf: most nodes are no agent, and only tracked processes'
   * exits are seen; its declaration notes it.
   */
  private hookRuntime(pid: number, attempt = 0): void {
    if (this.stopped) return;
    if (attempt === 0) {
      const exe = executableOf(pid);
      if (!exe) return;
      this.hookBinary(exe, true);
    }
    const libc = mappedLibc(pid);
    if (libc) this.hookLibc(libc);
    else if (attempt < RUNTIME_LIBC_TRIES) setTimeout(() => this.hookRuntime(pid, attempt + 1), RUNTIME_LIBC_RETRY_MS).unref();
  }

  /**
   * Hooks what the agent's own binaries run: libuv's threadpool in its node
   * binary, getaddrinfo in its libc. Once per binary; what cannot be hooked
   * is said once and the rest of the ladder still works. Returns the
   * executable, for what else is read from it (its V8 layout).
   */
  private hookBinaries(pid: number, quietIfGone = false): ProcessFile | undefined {
    const binary = executableOf(pid);
    const libc = binary === undefined ? undefined : mappedLibc(pid);
    if (binary === undefined) {
      if (!quietIfGone) this.log(`cannot read the binaries of pid ${pid}: threadpool work and name lookups are attributed by process only`);
      return undefined;
    }
    this.hookBinary(binary, false);
    this.runtimeOf.set(pid, { exe: binary.key, ...(libc ? { libc: libc.key } : {}) });
    if (libc === undefined) {
      if (!this.hooked.has(`no-libc:${binary.key}`)) this.log(`pid ${pid} (${binary.name}) maps no glibc: its name lookups are not seen`);
      this.hooked.add(`no-libc:${binary.key}`);
    } else {
      this.hookLibc(libc);
    }
    return binary;
  }

  /** Hooks libuv's threadpool in `binary`; `quiet`: a binary without libuv is not worth a word (not a node). */
  private hookBinary(binary: ProcessFile, quiet: boolean): void {
    if (this.hooked.has(binary.key)) return;
    this.hooked.add(binary.key);
    const { missing, noThreadpool } = this.probes.attachWorkProbes(binary.path);
    if (missing.length > 0 && !noThreadpool && goneWhileHooked(binary.path)) {
      // Unreadable through a process that exited meanwhile (a short-lived `node -e`, a
      // probe's exec): nothing wrong with the binary. The next process running it
      // hooks it again (a probe attached twice runs twice, to the same effect).
      // A binary that was read and has no threadpool (`ls`, a shell) is not
      // read again for each process that runs it.
      this.hooked.delete(binary.key);
      return;
    }
    if (!missing.some((m) => m.func === workSubmitFunction)) this.hookedAtNs.set(binary.key, preciseNowNs());
    if (quiet && missing.some((m) => m.func === workSubmitFunction)) return;
    for (const m of missing) {
      this.log(`${binary.name}: cannot hook ${m.func} (${m.reason}); its threadpool work is attributed by process only`);
    }
  }

  private hookLibc(libc: ProcessFile): void {
    if (this.hooked.has(libc.key)) return;
    this.hooked.add(libc.key);
    const r = this.probes.attachDnsProbes(libc.path);
    if (!r.ok && goneWhileHooked(libc.path)) {
      this.hooked.delete(libc.key); // as in hookBinary
      return;
    }
    if (r.ok) this.hookedAtNs.set(libc.key, preciseNowNs());
    if (!r.ok) this.log(`${libc.name}: cannot hook getaddrinfo (${r.reason}); name lookups are not seen`);
  }

  /**
   * Expiries, sweeps and the kernel summaries of ended calls. Every
   * HOUSEKEEPING_DUE_MS while a summary is due (a call ended: its summary
   * settles that long), every HOUSEKEEPING_IDLE_MS otherwise: each wakeup of
   * a quiet sidecar costs the host CPU for nothing.
   */
  private housekeep(delayMs: number): void {
    clearTimeout(this.housekeeping);
    this.housekeepingAtMs = Date.now() + delayMs;
    this.housekeeping = setTimeout(() => {
      this.housekeeping = undefined;
      if (this.stopped) return;
      this.attribution.expire();
      this.declared.expire();
      this.sweepDescriptors();
      this.summaries.collect();
      this.registry.prune();
      this.housekeep(this.summaries.settlingCount > 0 ? HOUSEKEEPING_DUE_MS : HOUSEKEEPING_IDLE_MS);
    }, delayMs).unref();
  }

  private toolEnded(spans: ToolSpan[]): void {
    if (spans.length > 0 && !this.stopped && this.housekeepingAtMs - Date.now() > HOUSEKEEPING_DUE_MS) this.housekeep(HOUSEKEEPING_DUE_MS);
    const out: ExportSpan[] = [];
    for (const span of spans) {
      this.checkHooks(span);
      this.threads.remove(span);
      // From now on, I/O outside any call on what it owned is nobody's.
      if (span.onThread) this.markEnded(span.spanId);
      this.summaries.toolEnded(span);
      if (span.exportSelf && span.sampled) out.push(toExportSpan(span));
      this.registry.retire(span);
    }
    if (out.length) this.output.emit(out);
  }

  /**
   * Flags a call that started before its process's binaries were hooked (an
   * agent that called a tool the moment its node started, before the sidecar
   * saw it): its threadpool work or name lookups may be missing, and the
   * export says so rather than look complete.
   */
  private checkHooks(span: ToolSpan): void {
    if (!span.onThread) return;
    const rt = this.runtimeOf.get(span.pid);
    if (rt === undefined) return;
    const missed: string[] = [];
    const late = (key: string | undefined): boolean => {
      if (key === undefined) return false;
      const at = this.hookedAtNs.get(key);
      return at === undefined || at > span.startNs;
    };
    if (late(rt.exe)) missed.push('threadpool');
    if (late(rt.libc)) missed.push('getaddrinfo');
    if (missed.length === 0) return;
    span.incomplete = missed;
    if (rt.warned) return;
    rt.warned = true;
    this.logIncomplete(
      `pid ${span.pid}: a tool call started before its ${missed.join(' and ')} hooks were in place; ` +
        `what it did there may be missing (flagged ${ATTRIBUTION_INCOMPLETE})`,
    );
  }

  private markEnded(spanId: string): void {
    try {
      this.probes.markEnded(spanId);
    } catch {
      // a full LRU map evicts, it does not fail; anything else is not worth losing the span over
    }
  }
}

function toExportSpan(s: ToolSpan): ExportSpan {
  const span: ExportSpan = {
    traceId: s.traceId,
    spanId: s.spanId,
    name: s.name,
    kind: (s.kind as SpanKind) ?? SpanKind.INTERNAL,
    startTimeNs: s.startNs,
    endTimeNs: s.endNs ?? s.startNs,
    attributes: {
      ...s.attrs,
      ...(s.parentUnverified ? { [PARENT_UNVERIFIED]: true } : {}),
      ...(s.incomplete ? { [ATTRIBUTION_INCOMPLETE]: s.incomplete } : {}),
    },
    status: { code: (s.status?.code ?? 0) as SpanStatusCode, ...(s.status?.message ? { message: s.status.message } : {}) },
    resource: s.resource,
  };
  if (s.parentSpanId) span.parentSpanId = s.parentSpanId;
  return span;
}

/** How long a starting node's libc is looked for (its loader maps it within a few ms). */
const RUNTIME_LIBC_TRIES = 20;
const RUNTIME_LIBC_RETRY_MS = 5;

/** Whether `path` (/proc/PID/exe, /proc/PID/root/...) was reached through a process that is gone. */
function goneWhileHooked(path: string): boolean {
  const pid = /^\/proc\/(\d+)\//.exec(path)?.[1];
  return pid !== undefined && !existsSync(`/proc/${pid}`);
}

/** The wall clock in ns, to the microsecond (nowNs is to the millisecond): hook times are compared with span starts. */
function preciseNowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

