// What a policy decided, as facts: the attributes a decision carries on its
// span and span event, and the log record of a decision outside any tool
// call (no span to hang it on, but an audit trail needs it all the same).
import type { Attributes } from '@opentelemetry/api';
import type { NetConnectEvent, PolicyFileEvent, PolicyNetEvent, ProcExecEvent, SocketAddress, Verdict } from '@agentrace/bpf';
import { SeverityNumber, type ExportLogRecord } from '../otlp/log-record.js';

export type PolicyKind = 'network' | 'exec' | 'files';
export type DecisionEvent = NetConnectEvent | PolicyNetEvent | ProcExecEvent | PolicyFileEvent;

/** The `event.name` of a decision's span event and of its log record outside calls. */
export const POLICY_DECISION_EVENT = 'agentrace.policy.decision';

/** One decision the kernel made, with the tool it was made for (undefined: outside any call, or a call not known). */
export interface PolicyDecision {
  kind: PolicyKind;
  decision: Exclude<Verdict, 'none'>;
  /** The rule that decided, as the policy names it. */
  rule: string;
  tool: string | undefined;
  /** Made outside any tool call (by the `outside` rules). */
  outside: boolean;
  event: DecisionEvent;
}

export function isDecisionEvent(e: { kind: string; verdict?: Verdict }): e is DecisionEvent {
  return (e.kind === 'net.connect' || e.kind === 'policy.net' || e.kind === 'proc.exec' || e.kind === 'policy.file') && e.verdict !== undefined && e.verdict !== 'none';
}

export function kindOf(e: DecisionEvent): PolicyKind {
  return e.kind === 'proc.exec' ? 'exec' : e.kind === 'policy.file' ? 'files' : 'network';
}

/** Names the rule a kernel verdict carries (its generation and index: ruleRef). */
export type RuleNamer = (raw: number) => string;

/** A decision about what no syscall probe saw (io_uring): no call could be told. */
export function unseen(e: DecisionEvent): boolean {
  return e.kind === 'policy.net' && e.unseen;
}

/** What a decision was about: the destination, or the program. */
export function subjectOf(e: DecisionEvent): Attributes {
  if (e.kind === 'proc.exec') return { 'process.executable.path': e.filename };
  if (e.kind === 'policy.file') return fileAttributes(e);
  return peerAttributes(e.peer);
}

/** An open a files rule judged: the file's own path, the access, and why the path is partial when it is. */
export function fileAttributes(e: PolicyFileEvent): Attributes {
  return { 'file.path': e.path, 'agentrace.file.access': e.write ? 'write' : 'read', ...(e.partial ? { 'agentrace.file.path_partial': e.partial } : {}) };
}

export function peerAttributes(p: SocketAddress): Attributes {
  if (p.family === 'inet' || p.family === 'inet6') return { 'network.peer.address': p.address, 'network.peer.port': p.port };
  if (p.family === 'unix') return { 'network.peer.address': p.abstract ? `@${p.path}` : p.path };
  return {};
}

/** The attributes every record of a decision carries. */
export function decisionAttributes(kind: PolicyKind, decision: Verdict, rule: string): Attributes {
  return { 'agentrace.policy.decision': decision, 'agentrace.policy.rule': rule, 'agentrace.policy.kind': kind };
}

/**
 * A breach outside any tool call (the `outside` rules): a log record with no
 * trace, under the agent process's resource as far as the sidecar knows it.
 */
export function outsideDecisionRecord(d: PolicyDecision, timeNs: bigint, observedTimeNs: bigint, resource: Attributes): ExportLogRecord {
  const subject = subjectOf(d.event);
  const what =
    d.kind === 'exec'
      ? `exec ${String(subject['process.executable.path'])}`
      : d.kind === 'files'
        ? `open ${String(subject['file.path'])} (${String(subject['agentrace.file.access'])})`
        : `${d.event.kind === 'policy.net' ? d.event.op : 'connect'} ${String(subject['network.peer.address'] ?? '')}${subject['network.peer.port'] !== undefined ? `:${String(subject['network.peer.port'])}` : ''}`;
  return {
    timeNs,
    observedTimeNs,
    eventName: POLICY_DECISION_EVENT,
    severityNumber: d.decision === 'allowed' ? SeverityNumber.INFO : SeverityNumber.WARN,
    body: unseen(d.event) ? `policy ${d.decision} ${what}: no syscall probe saw it (io_uring), so no call is known and the outside rules decided` : `policy ${d.decision} ${what} outside any tool call`,
    attributes: {
      ...decisionAttributes(d.kind, d.decision, d.rule),
      ...subject,
      'process.pid': d.event.pid,
      'thread.id': d.event.tid,
      'agentrace.policy.outside': true,
      ...(unseen(d.event) ? { 'agentrace.policy.unseen': true } : {}),
    },
    traceId: '',
    spanId: '',
    resource,
  };
}
