// What a kernel event looks like as an OpenTelemetry span: names, kinds and
// attributes (OTel semantic conventions, agentrace.* for our own).
import { constants } from 'node:os';
import path from 'node:path';
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { AttrSource, type DnsLookupEvent, type DnsQueryEvent, type FileOpenEvent, type KernelEvent, type NetConnectEvent, type PolicyFileEvent, type PolicyNetEvent, type SocketAddress, type Verdict } from '@agentrace/bpf';
import { decisionAttributes, fileAttributes, peerAttributes, POLICY_DECISION_EVENT, type PolicyKind, type RuleNamer } from './policy/decisions.js';
import type { ExportSpan } from './otlp/span.js';
import { PARENT_UNVERIFIED } from './tool-spans.js';

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));
const EINPROGRESS = constants.errno.EINPROGRESS;

export function errnoName(negErrno: number): string {
  return errnoNames.get(-negErrno) ?? `E${-negErrno}`;
}

const attributionNames: Record<number, string> = {
  [AttrSource.Frame]: 'frame',
  [AttrSource.Slot]: 'slot',
  [AttrSource.Thread]: 'thread',
  [AttrSource.Work]: 'work',
  [AttrSource.Fd]: 'fd',
  [AttrSource.Process]: 'process',
  [AttrSource.Pipe]: 'pipe',
  [AttrSource.PipeAmbiguous]: 'pipe',
};

export function attributionName(source: number): string {
  return attributionNames[source] ?? 'none';
}

/**
 * The rung that found a kernel span's call, and whether that is a guess: a
 * stdio server that took several calls' requests before answering them
 * serves one of them, which one the kernel cannot tell.
 */
export function attributionOf(source: number): Attributes {
  const a: Attributes = { 'agentrace.attribution': attributionName(source) };
  if (source === AttrSource.PipeAmbiguous) a['agentrace.attribution.ambiguous'] = true;
  return a;
}

/** Where a kernel span hangs: its trace, parent and resource. */
export interface KernelSpanParent {
  traceId: string;
  parentSpanId: string;
  resource: Attributes;
  /** The tool call it belongs to (the parent, or the parent's parent for a child process's events). */
  toolSpanId: string;
  /** The tool span's own parent is a claim the sidecar cannot back (agentrace.parent.unverified). */
  unverified?: boolean;
}

/** The `event.name` of each kind of kernel span, on its log record. */
export const KERNEL_EVENTS = {
  open: 'agentrace.file.open',
  connect: 'agentrace.network.connect',
  lookup: 'agentrace.dns.lookup',
  query: 'agentrace.dns.query',
  process: 'agentrace.process.exec',
  send: 'agentrace.network.send',
} as const;

function base(
  event: string,
  parent: KernelSpanParent,
  spanId: string,
  name: string,
  kind: SpanKind,
  startTimeNs: bigint,
  endTimeNs: bigint,
  attributes: Attributes,
): ExportSpan {
  if (parent.unverified) attributes[PARENT_UNVERIFIED] = true;
  return {
    traceId: parent.traceId,
    spanId,
    parentSpanId: parent.parentSpanId,
    name,
    kind,
    startTimeNs,
    endTimeNs,
    attributes,
    status: { code: SpanStatusCode.UNSET },
    resource: parent.resource,
    event: { name: event, toolSpanId: parent.toolSpanId },
  };
}

function fail(span: ExportSpan, ret: number): ExportSpan {
  const name = errnoName(ret);
  span.attributes['error.type'] = name;
  span.status = { code: SpanStatusCode.ERROR, message: name };
  return span;
}

export function fileOpenSpan(e: FileOpenEvent, endNs: bigint, parent: KernelSpanParent, spanId: string): ExportSpan {
  const span = base(KERNEL_EVENTS.open, parent, spanId, 'open', SpanKind.INTERNAL, endNs - e.latencyNs, endNs, {
    'file.path': e.path,
    'agentrace.file.flags': e.flags,
    'process.pid': e.pid,
    'thread.id': e.tid,
    ...attributionOf(e.attrSource),
  });
  if (e.ret >= 0) span.attributes['agentrace.fd'] = e.ret;
  return e.ret < 0 ? fail(span, e.ret) : span;
}

/**
 * What a policy decided about a span's syscall: its verdict and rule on the
 * span, and a span event `agentrace.policy.decision` (with what it was
 * about) when it breached the rule (denied, or let through in audit mode).
 */
function withPolicy(span: ExportSpan, kind: PolicyKind, e: { verdict: Verdict; rule: number }, subject: Attributes, ruleName: RuleNamer | undefined): ExportSpan {
  if (e.verdict === 'none') return span;
  const decision = decisionAttributes(kind, e.verdict, ruleName?.(e.rule) ?? `rule ${e.rule}`);
  Object.assign(span.attributes, decision);
  if (e.verdict === 'allowed') return span;
  const events = [...(span.events ?? []), { name: POLICY_DECISION_EVENT, timeNs: span.endTimeNs, attributes: { ...decision, ...subject } }];
  return { ...span, events };
}

export function connectSpan(e: NetConnectEvent, endNs: bigint, parent: KernelSpanParent, spanId: string, policyRules?: RuleNamer): ExportSpan {
  const attrs: Attributes = {
    'process.pid': e.pid,
    'thread.id': e.tid,
    ...attributionOf(e.attrSource),
    ...peerAttributes(e.peer),
  };
  const p = e.peer;
  if (p.family === 'inet' || p.family === 'inet6') attrs['network.type'] = p.family === 'inet' ? 'ipv4' : 'ipv6';
  if (e.transport) attrs['network.transport'] = e.transport;
  // A non-blocking connect returns at once with EINPROGRESS: the span then
  // measures the syscall, not the handshake.
  attrs['agentrace.connect.result'] = e.ret === 0 ? 'ok' : e.ret === -EINPROGRESS ? 'in_progress' : errnoName(e.ret);
  const text = peerText(p);
  const span = withPolicy(base(KERNEL_EVENTS.connect, parent, spanId, text ? `connect ${text}` : 'connect', SpanKind.CLIENT, endNs - e.latencyNs, endNs, attrs), 'network', e, peerAttributes(p), policyRules);
  return e.ret < 0 && e.ret !== -EINPROGRESS ? fail(span, e.ret) : span;
}

function peerText(p: SocketAddress): string {
  return p.family === 'inet' ? `${p.address}:${p.port}` : p.family === 'inet6' ? `[${p.address}]:${p.port}` : p.family === 'unix' ? p.path : '';
}

/**
 * An open a files rule does not allow: a span of its own (`open PATH`, the
 * file's own path), beside the file family's open span when that is
 * attached. Denied: its process was killed before it used the file.
 */
export function policyOpenSpan(e: PolicyFileEvent, atNs: bigint, parent: KernelSpanParent, spanId: string, policyRules?: RuleNamer): ExportSpan {
  const attrs: Attributes = { 'process.pid': e.pid, 'thread.id': e.tid, ...attributionOf(e.attrSource), ...fileAttributes(e), 'agentrace.fd': e.fd };
  const span = withPolicy(base(KERNEL_EVENTS.open, parent, spanId, `open ${e.path}`, SpanKind.INTERNAL, atNs, atNs, attrs), 'files', e, fileAttributes(e), policyRules);
  if (e.verdict === 'denied') span.status = { code: SpanStatusCode.ERROR, message: 'killed by the policy (SIGKILL)' };
  return span;
}

/** A UDP send a policy refused or audited: a span of its own (allowed sends are only counted in the call's aggregates). */
export function policySendSpan(e: PolicyNetEvent, endNs: bigint, parent: KernelSpanParent, spanId: string, policyRules?: RuleNamer): ExportSpan {
  const attrs: Attributes = { 'process.pid': e.pid, 'thread.id': e.tid, ...attributionOf(e.attrSource), ...peerAttributes(e.peer) };
  if (e.peer.family === 'inet' || e.peer.family === 'inet6') attrs['network.type'] = e.peer.family === 'inet' ? 'ipv4' : 'ipv6';
  if (e.transport) attrs['network.transport'] = e.transport;
  const text = peerText(e.peer);
  const span = withPolicy(base(KERNEL_EVENTS.send, parent, spanId, text ? `send ${text}` : 'send', SpanKind.CLIENT, endNs, endNs, attrs), 'network', e, peerAttributes(e.peer), policyRules);
  return e.ret < 0 ? fail(span, e.ret) : span;
}

// getaddrinfo's EAI_* codes (glibc values), for error.type.
const eaiNames: Record<number, string> = {
  [-1]: 'EAI_BADFLAGS',
  [-2]: 'EAI_NONAME',
  [-3]: 'EAI_AGAIN',
  [-4]: 'EAI_FAIL',
  [-6]: 'EAI_FAMILY',
  [-7]: 'EAI_SOCKTYPE',
  [-8]: 'EAI_SERVICE',
  [-10]: 'EAI_MEMORY',
  [-11]: 'EAI_SYSTEM',
  [-12]: 'EAI_OVERFLOW',
  [-5]: 'EAI_NODATA',
  [-9]: 'EAI_ADDRFAMILY',
};

export function dnsLookupSpan(e: DnsLookupEvent, endNs: bigint, parent: KernelSpanParent, spanId: string): ExportSpan {
  const result = e.ret === 0 ? 'ok' : (eaiNames[e.ret] ?? `EAI_${e.ret}`);
  const span = base(KERNEL_EVENTS.lookup, parent, spanId, `getaddrinfo ${e.name}`, SpanKind.CLIENT, endNs - e.latencyNs, endNs, {
    'dns.question.name': e.name,
    'agentrace.dns.result': result,
    'process.pid': e.pid,
    'thread.id': e.tid,
    ...attributionOf(e.attrSource),
  });
  if (e.ret !== 0) {
    span.attributes['error.type'] = result;
    span.status = { code: SpanStatusCode.ERROR, message: result };
  }
  return span;
}

const dnsTypes: Record<number, string> = { 1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 65: 'HTTPS' };

/** A query written to port 53: a point in time (the answer is not watched). */
export function dnsQuerySpan(e: DnsQueryEvent, atNs: bigint, parent: KernelSpanParent, spanId: string): ExportSpan {
  const type = e.questionType === null ? undefined : (dnsTypes[e.questionType] ?? String(e.questionType));
  const attrs: Attributes = {
    'network.peer.port': e.port,
    'network.transport': e.transport,
    'process.pid': e.pid,
    'thread.id': e.tid,
    ...attributionOf(e.attrSource),
  };
  if (e.name !== null) attrs['dns.question.name'] = e.name;
  if (type) attrs['agentrace.dns.question.type'] = type;
  return base(KERNEL_EVENTS.query, parent, spanId, `dns query ${e.name ?? '?'}${type ? ` ${type}` : ''}`, SpanKind.CLIENT, atNs, atNs, attrs);
}

/** A child process from fork to exit, built up as its events arrive. */
export interface ProcessRecord {
  spanId: string;
  pid: number;
  parentPid: number;
  startNs: bigint;
  parent: KernelSpanParent;
  comm: string;
  executable?: string;
  args?: string[];
  attrSource: number;
  /** Its runtime's own opens (isRuntimeOpen), counted on its span instead of a span each. */
  runtime?: RuntimeOpens;
  /** The tool call's gen_ai.tool.name, for the policy's decisions about it. */
  toolName?: string;
  /** What a loaded policy's exec rule decided about its program. */
  execPolicy?: { verdict: Verdict; rule: number };
}

/** What a child's dynamic loader and libc opened and asked: counts, and which shared objects it loaded. */
export interface RuntimeOpens {
  opens: number;
  failed: number;
  /** Connects of libc to the name service cache daemon (nscd), which a lookup tries first. */
  nscdConnects: number;
  /** Distinct shared objects opened, in order, at most MAX_LIBRARIES. */
  libraries: string[];
  librariesOmitted: number;
}

/** Shared objects listed on one process span at most; the rest are counted. */
const MAX_LIBRARIES = 64;

const SHARED_OBJECT = /\.so(?:\.\d+)*$/;

/**
 * An open a process's runtime makes on its own, not what its program asks
 * for: the dynamic loader's (its cache, preload list and the shared objects
 * it maps) and libc's locale and charset-conversion data. A short `ls` makes
 * dozens; as spans they would drown what the tool itself did, so a child's
 * are counted on its process span, the libraries it loaded listed by path.
 */
export function isRuntimeOpen(file: string): boolean {
  return (
    SHARED_OBJECT.test(file) ||
    file === '/etc/ld.so.cache' ||
    file === '/etc/ld.so.preload' ||
    file.startsWith('/usr/lib/locale/') ||
    file.startsWith('/usr/share/locale/') ||
    file.includes('/gconv/')
  );
}

/** nscd's socket: libc connects to it (and usually finds nobody) before each user, group or host lookup. */
const NSCD_SOCKETS = new Set(['/var/run/nscd/socket', '/run/nscd/socket']);

/** A connect a process's libc makes on its own: to nscd. */
export function isRuntimeConnect(e: NetConnectEvent): boolean {
  return e.peer.family === 'unix' && !e.peer.abstract && NSCD_SOCKETS.has(e.peer.path);
}

/**
 * Counts `e` on its process's record if its runtime made it on its own
 * (isRuntimeOpen, isRuntimeConnect); false, and nothing counted, if not.
 */
export function foldRuntime(rec: ProcessRecord, e: KernelEvent): boolean {
  if (e.kind === 'file.open' && isRuntimeOpen(e.path)) {
    const r = runtimeOf(rec);
    r.opens++;
    if (e.ret < 0) r.failed++;
    else if (SHARED_OBJECT.test(e.path) && !r.libraries.includes(e.path)) {
      if (r.libraries.length < MAX_LIBRARIES) r.libraries.push(e.path);
      else r.librariesOmitted++;
    }
    return true;
  }
  if (e.kind === 'net.connect' && isRuntimeConnect(e)) {
    runtimeOf(rec).nscdConnects++;
    return true;
  }
  return false;
}

function runtimeOf(rec: ProcessRecord): RuntimeOpens {
  return (rec.runtime ??= { opens: 0, failed: 0, nscdConnects: 0, libraries: [], librariesOmitted: 0 });
}

export function processSpan(
  rec: ProcessRecord,
  endNs: bigint,
  exit: { exitCode: number; signal: number } | undefined,
  policyRules?: RuleNamer,
): ExportSpan {
  const attrs: Attributes = {
    'process.pid': rec.pid,
    'process.parent_pid': rec.parentPid,
    ...attributionOf(rec.attrSource),
  };
  if (rec.executable) attrs['process.executable.path'] = rec.executable;
  if (rec.args) attrs['process.command_args'] = rec.args;
  const r = rec.runtime;
  if (r) {
    attrs['agentrace.process.runtime_opens'] = r.opens;
    if (r.failed) attrs['agentrace.process.runtime_opens.failed'] = r.failed;
    if (r.libraries.length) attrs['agentrace.process.libraries'] = r.libraries;
    if (r.librariesOmitted) attrs['agentrace.process.libraries.omitted'] = r.librariesOmitted;
    if (r.nscdConnects) attrs['agentrace.process.nscd_connects'] = r.nscdConnects;
  }
  const name = `process ${rec.executable ? path.basename(rec.executable) : rec.comm}`;
  let span = base(KERNEL_EVENTS.process, rec.parent, rec.spanId, name, SpanKind.INTERNAL, rec.startNs, endNs, attrs);
  if (rec.execPolicy) span = withPolicy(span, 'exec', rec.execPolicy, rec.executable ? { 'process.executable.path': rec.executable } : {}, policyRules);
  if (exit) {
    attrs['process.exit.code'] = exit.signal ? 128 + exit.signal : exit.exitCode;
    if (exit.signal) attrs['agentrace.process.signal'] = exit.signal;
    if (exit.signal || exit.exitCode !== 0) span.status = { code: SpanStatusCode.ERROR, message: exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}` };
  } else {
    attrs['agentrace.process.running'] = true;
  }
  return span;
}
