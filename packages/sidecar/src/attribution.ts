// From kernel events to spans under the right tool call. Every event names
// the span the kernel attributed it to; this decides whether to believe it
// (the span must have been announced by the event's process or an ancestor)
// and where the resulting span hangs (under the tool span, or under the
// child process's own span).
import type { FileOpenEvent, KernelEvent } from '@agentrace/bpf';
import type { UserCounts, UserSpaceCounts } from './kernel-summary.js';
import type { SpanSink } from './span-output.js';
import { ProcessTree } from './process-tree.js';
import { toolNameOf, type ToolSpan, type ToolSpanRegistry } from './tool-spans.js';
import { connectSpan, dnsLookupSpan, dnsQuerySpan, fileOpenSpan, foldRuntime, policyOpenSpan, policySendSpan, processSpan, type KernelSpanParent, type ProcessRecord } from './kernel-spans.js';
import { isDecisionEvent, kindOf, type PolicyDecision, type RuleNamer } from './policy/decisions.js';
import { newSpanId } from './ids.js';
import type { ExportSpan } from './otlp/span.js';

export interface KernelClock {
  /** An event's monotonic timestamp, in ns since the epoch. */
  toEpochNs(monotonicNs: bigint): bigint;
}

export interface AttributionOptions {
  registry: ToolSpanRegistry;
  /** The kernel's clock (the Probes): event times into ns since the epoch. */
  clock: KernelClock;
  sink: SpanSink;
  /** Events whose span is not announced yet wait this long for it. */
  pendingTtlMs?: number;
  /** At most this many events wait; more are dropped and counted. */
  maxPending?: number;
  /** The loaded policy's rule names, by the id the kernel's verdicts carry. */
  policyRules?: RuleNamer;
  /** Every decision a policy made (allowed ones too), once, with its tool when it was made inside a call. */
  onPolicyDecision?: (d: PolicyDecision) => void;
}

export interface AttributionStats {
  /** Events turned into spans (or process updates) under a tool span. */
  attributed: number;
  /** Events with no span from the kernel (tracked process, no tool running). */
  unattributed: number;
  /** Events naming a span their process did not announce: not exported. */
  refused: number;
  /** Events that waited for an announcement that never came (or overflowed the wait): dropped as `unmatched`. */
  expired: number;
  /** Events of unsampled tool spans. */
  unsampled: number;
  pending: number;
}

interface Pending {
  event: KernelEvent;
  untilMs: number;
}

export class Attribution implements UserCounts {
  readonly tree = new ProcessTree();
  private readonly processes = new Map<number, ProcessRecord>();
  private readonly pending = new Map<string, Pending[]>();
  private pendingCount = 0;
  /** Per tool span: the opens already exported, and how many repeats were folded. */
  private readonly seenOpens = new Map<string, Map<string, Map<string, number | Set<number>>>>();
  private readonly repeats = new Map<string, number>();
  private readonly stats_ = { attributed: 0, unattributed: 0, refused: 0, expired: 0, unsampled: 0 };
  private readonly ttlMs: number;
  private readonly maxPending: number;

  constructor(private readonly opts: AttributionOptions) {
    // Long enough for a synchronous tool that blocks the agent's event loop
    // (its start frame waits behind it), bounded in count by maxPending.
    this.ttlMs = opts.pendingTtlMs ?? 60_000;
    this.maxPending = opts.maxPending ?? 100_000;
  }

  onEvents(events: KernelEvent[]): void {
    const out: ExportSpan[] = [];
    for (const e of events) this.handle(e, out);
    if (out.length) this.opts.sink.emit(out);
  }

  /** A tool span was announced: events that arrived before it can go now. */
  onToolStarted(span: ToolSpan): void {
    const waiting = this.pending.get(span.spanId);
    if (!waiting) return;
    this.pending.delete(span.spanId);
    this.pendingCount -= waiting.length;
    const out: ExportSpan[] = [];
    for (const p of waiting) this.handle(p.event, out);
    if (out.length) this.opts.sink.emit(out);
  }

  /** Drops events that waited too long; with `all`, every waiting event. */
  expire(nowMs = Date.now(), all = false): void {
    for (const [id, list] of this.pending) {
      const keep = all ? [] : list.filter((p) => p.untilMs > nowMs);
      this.stats_.expired += list.length - keep.length;
      this.pendingCount -= list.length - keep.length;
      if (keep.length) this.pending.set(id, keep);
      else this.pending.delete(id);
    }
    this.tree.prune(nowMs);
  }

  /** Ends the spans of child processes still running (at shutdown). */
  closeRunningProcesses(endNs: bigint): void {
    const out = [...this.processes.values()].map((rec) => processSpan(rec, endNs, undefined));
    this.processes.clear();
    if (out.length) this.opts.sink.emit(out);
  }

  stats(): AttributionStats {
    return { ...this.stats_, pending: this.pendingCount };
  }

  private decided(e: KernelEvent, tool: string | undefined, outside = false): void {
    if (!this.opts.onPolicyDecision || !isDecisionEvent(e) || e.verdict === 'none') return;
    this.opts.onPolicyDecision({ kind: kindOf(e), decision: e.verdict, rule: this.opts.policyRules?.(e.rule) ?? `rule ${e.rule}`, tool, outside, event: e });
  }

  private handle(e: KernelEvent, out: ExportSpan[]): void {
    if (e.kind === 'proc.declare' || e.kind === 'runtime.exec') return; // the sidecar's business, not a span's
    // The process tree is kept for every tracked process, attributed or not:
    // it is what the trust check walks.
    if (e.kind === 'proc.fork') this.tree.addFork(e.pid, e.childPid);

    if (e.kind === 'proc.exec' || e.kind === 'proc.exit') {
      const rec = this.processes.get(e.pid);
      if (rec) {
        if (e.kind === 'proc.exec') {
          if (e.ret === 0) {
            rec.executable = e.filename;
            rec.args = e.args;
          }
          if (e.verdict !== 'none') {
            rec.execPolicy = { verdict: e.verdict, rule: e.rule };
            this.decided(e, rec.toolName);
          }
        } else {
          this.processes.delete(e.pid);
          this.tree.markExited(e.pid);
          out.push(processSpan(rec, this.opts.clock.toEpochNs(e.tsNs), e, this.opts.policyRules));
        }
        this.stats_.attributed++;
        return;
      }
      if (e.kind === 'proc.exit') this.tree.markExited(e.pid);
    }

    if (!e.span) {
      this.stats_.unattributed++;
      this.decided(e, undefined, true);
      return;
    }
    const tool = this.opts.registry.get(e.span.spanId);
    if (!tool) {
      this.wait(e, e.span.spanId);
      return;
    }
    if (tool.traceId !== e.span.traceId || !this.tree.isSelfOrDescendant(e.pid, tool.pid)) {
      this.stats_.refused++;
      this.decided(e, undefined);
      return;
    }
    this.decided(e, toolNameOf(tool));
    if (!tool.sampled) {
      this.stats_.unsampled++;
      return;
    }
    this.stats_.attributed++;
    // A child process of this call's: its events hang under its span, and
    // what its runtime does on its own (loader, locale, nscd) is counted there.
    const rec = this.processes.get(e.pid);
    const child = rec && rec.parent.traceId === tool.traceId ? rec : undefined;
    if (child && foldRuntime(child, e)) return;
    const parent = this.parentFor(child, tool);
    if (e.kind === 'file.open' && this.repeatedOpen(tool.spanId, parent.parentSpanId, e)) return;
    const endNs = this.opts.clock.toEpochNs(e.tsNs);
    switch (e.kind) {
      case 'file.open':
        out.push(fileOpenSpan(e, endNs, parent, newSpanId()));
        return;
      case 'net.connect':
        out.push(connectSpan(e, endNs, parent, newSpanId(), this.opts.policyRules));
        return;
      case 'policy.net':
        out.push(policySendSpan(e, endNs, parent, newSpanId(), this.opts.policyRules));
        return;
      case 'policy.file':
        out.push(policyOpenSpan(e, endNs, parent, newSpanId(), this.opts.policyRules));
        return;
      case 'dns.lookup':
        out.push(dnsLookupSpan(e, endNs, parent, newSpanId()));
        return;
      case 'dns.query':
        out.push(dnsQuerySpan(e, endNs, parent, newSpanId()));
        return;
      case 'proc.fork':
        this.processes.set(e.childPid, {
          spanId: newSpanId(),
          pid: e.childPid,
          parentPid: e.pid,
          startNs: endNs,
          parent,
          comm: e.comm,
          attrSource: e.attrSource,
          toolName: toolNameOf(tool),
        });
        return;
      case 'proc.exec':
      case 'proc.exit':
        // A process that was not forked under a tool (the agent itself).
        return;
    }
  }

  /**
   * Opens are rare events only the first time: a later open of the same
   * path, access mode and outcome under the same parent is counted
   * (agentrace.file.open.repeated on the kernel summary), not exported again.
   */
  private repeatedOpen(toolSpanId: string, parentSpanId: string, e: FileOpenEvent): boolean {
    // One map per parent (the tool, or a child process under it), keyed by
    // path; the value lists the (access mode, outcome) pairs already seen.
    let byParent = this.seenOpens.get(toolSpanId);
    if (!byParent) {
      byParent = new Map();
      this.seenOpens.set(toolSpanId, byParent);
    }
    let byPath = byParent.get(parentSpanId);
    if (!byPath) {
      byPath = new Map();
      byParent.set(parentSpanId, byPath);
    }
    const code = (e.flags & 3) * 65536 + (e.ret < 0 ? -e.ret : 0);
    const seen = byPath.get(e.path);
    if (seen === undefined) {
      byPath.set(e.path, code);
      return false;
    }
    if (typeof seen === 'number' ? seen !== code : !seen.has(code)) {
      if (typeof seen === 'number') byPath.set(e.path, new Set([seen, code]));
      else seen.add(code);
      return false;
    }
    this.repeats.set(toolSpanId, (this.repeats.get(toolSpanId) ?? 0) + 1);
    return true;
  }

  /** Repeated opens folded for a tool span since the last call. */
  takeUserCounts(toolSpanId: string): UserSpaceCounts {
    const repeatedOpens = this.repeats.get(toolSpanId) ?? 0;
    this.repeats.delete(toolSpanId);
    return { repeatedOpens };
  }

  /** Tool spans with repeated opens folded since their last takeUserCounts. */
  spansWithUserCounts(): Iterable<string> {
    return this.repeats.keys();
  }

  /** The tool span is no longer watched: what was kept for it goes. */
  forgetSpan(toolSpanId: string): void {
    this.seenOpens.delete(toolSpanId);
    this.repeats.delete(toolSpanId);
  }

  /** Kernel spans of a child process hang under that process's span. */
  private parentFor(child: ProcessRecord | undefined, tool: ToolSpan): KernelSpanParent {
    const parent: KernelSpanParent = {
      traceId: tool.traceId,
      parentSpanId: child?.spanId ?? tool.spanId,
      resource: tool.resource,
      toolSpanId: tool.spanId,
    };
    if (tool.parentUnverified) parent.unverified = true;
    return parent;
  }

  private wait(e: KernelEvent, spanId: string): void {
    if (this.pendingCount >= this.maxPending) {
      this.stats_.expired++;
      return;
    }
    const list = this.pending.get(spanId) ?? [];
    list.push({ event: e, untilMs: Date.now() + this.ttlMs });
    this.pending.set(spanId, list);
    this.pendingCount++;
  }
}
