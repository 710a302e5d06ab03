// Ground truth for attribution: test/fixtures/ground-truth-agent.mjs runs N
// tool calls at once, each doing work only it does; the real sidecar (in this
// process, probes attached) exports what the kernel saw; every recognisable
// action is then looked up in the export and scored:
//   true positive   its span hangs under ITS tool span (parentSpanId chain,
//                   same trace)
//   false positive  its span hangs under another tool span (or none)
//   missed          no span of it was exported
// per action kind, as precision (spans under the right tool / spans found)
// and recall (actions found under the right tool / actions).
// Used by test/ground-truth.test.ts and bench/ground-truth.ts.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Sidecar, createExporters, resolveOtlpConfig, type SidecarStats } from '@agentrace/sidecar';
import { startDnsServer, type DnsServer } from './dns-server.js';
import { ancestry, readOtlpFile, type FlatSpan } from './otlp.js';

export const agentScript = fileURLToPath(new URL('../fixtures/ground-truth-agent.mjs', import.meta.url));

/** One tool call of the plan and everything that makes its work recognisable. */
export interface CallPlan {
  index: number;
  callId: string;
  syncFile: string;
  asyncFile: string;
  writeFile: string;
  writeData: string;
  shellFile: string;
  /** Opened right after running a callback in scopeOwner's async scope (AgentPlan.nestedScopes). */
  scopeFile: string;
  /** Opened by a callback in this call's async scope, which another call runs (AgentPlan.nestedScopes). */
  inScopeFile: string;
  /** The call (on the same thread) whose scope this call runs a callback in; none for the warm-up. */
  scopeOwner: string | null;
  tcpPort: number;
  undiciPort: number;
  fetchPort: number;
  dnsName: string;
  dnsAddress: string;
  /** Asked with c-ares (dns.promises.Resolver) of the lab's server on 127.0.0.1:53. */
  resolveName: string;
}

export interface AgentPlan {
  /** 0: every call on the main thread; k: split over k worker_threads. */
  workers: number;
  /** Every step once, outside any tool call, before the calls (files and servers of its own). */
  warmup: CallPlan;
  /**
   * When set, every thread also runs these steps in a loop outside any tool
   * call while its calls run; with workers, write paths get `.THREADID`.
   */
  background: CallPlan | null;
  /**
   * Each call also runs a callback in scopeOwner's async scope, which opens
   * scopeOwner's inScopeFile, then opens its own scopeFile.
   */
  nestedScopes: boolean;
  calls: CallPlan[];
}

/**
 * Bytes a call's own file write (and read back) is made of: large, so that
 * one call's file I/O counted under another call cannot hide in what else
 * that call reads and writes (sockets, the hosts file, its child's loader).
 */
export const FILE_IO_BYTES = 64 * 1024;
/**
 * Descriptor I/O under a call besides its own file write (read): HTTP
 * requests on its sockets (responses, the hosts file, the files it opens,
 * what its shell and cat read while loading). Each well under
 * FILE_IO_BYTES, so another call's file I/O cannot fit in it.
 */
export const IO_SLACK = { write: 8 * 1024, read: 32 * 1024 } as const;

/** The action kinds scored, in table order. */
export const KINDS = [
  'file.open.sync',
  'file.open.async',
  'file.write',
  'file.read',
  'file.io.write',
  'file.io.read',
  'net.connect',
  'http.undici',
  'http.fetch',
  'dns.lookup',
  'dns.resolve',
  'process',
  'process.child.open',
  'file.open.in-scope',
  'file.open.after-scope',
] as const;
export type Kind = (typeof KINDS)[number];

/** Kinds whose action only runs when the plan asks for it (no actions otherwise). */
export function planned(plan: AgentPlan, kind: Kind): boolean {
  return (kind !== 'file.open.in-scope' && kind !== 'file.open.after-scope') || plan.nestedScopes;
}

/** What each kind's action is, and which exported span shows it. */
export const KIND_DOC: Record<Kind, string> = {
  'file.open.sync': 'fs.readFileSync of a file of its own: the open span with that file.path',
  'file.open.async': 'fs.promises.readFile of a file of its own: the open span with that file.path',
  'file.write': 'fs.promises.writeFile of a file of its own: the open span of it for writing',
  'file.read': 'fs.promises.readFile of the file it wrote: the open span of it read-only',
  'file.io.write':
    `the write(2) of those ${FILE_IO_BYTES / 1024}+ KiB: agentrace.syscall.write.bytes of the kernel summary spans under its tool ` +
    `within [its bytes, +${IO_SLACK.write / 1024} KiB]`,
  'file.io.read':
    `the read(2) of them back: agentrace.syscall.read.bytes of the kernel summary spans under its tool ` +
    `within [its bytes, +${IO_SLACK.read / 1024} KiB]`,
  'net.connect': 'net.connect to a port of its own: the connect span with that network.peer.port',
  'http.undici': "undici request() with a dispatcher of its own: the connect span to its server's port",
  'http.fetch': "global fetch to a server of its own: the connect span to that server's port",
  'dns.lookup': 'dns.promises.lookup of a name of its own: a span with that dns.question.name',
  'dns.resolve': 'a c-ares query (dns.promises.Resolver.resolve4) of a name of its own to 127.0.0.1:53: a span with that dns.question.name',
  process: "execFile /bin/sh -c 'cat FILE; exit 0': the process span with those process.command_args",
  'process.child.open': "that shell's cat opening FILE: the open span with that file.path",
  'file.open.in-scope':
    'fs.readFileSync of a file of its own by a callback in its async scope, which another call runs ' +
    'synchronously (AsyncResource.runInAsyncScope): its open span',
  'file.open.after-scope':
    "fs.readFileSync of a file of its own right after it ran a callback in another call's async scope: its open span",
};

const O_ACCMODE = 3;

function attr(s: FlatSpan, key: string): unknown {
  return s.attributes[key];
}

function isOpen(s: FlatSpan): boolean {
  return typeof attr(s, 'agentrace.file.flags') === 'number';
}

/** The kinds scored from byte counts per tool call, not from one span each. */
type IoKind = 'file.io.write' | 'file.io.read';
const IO_KINDS: readonly Kind[] = ['file.io.write', 'file.io.read'];
/** The kinds one span shows. */
export type SpanKind = Exclude<Kind, IoKind>;
export const SPAN_KINDS = KINDS.filter((k): k is SpanKind => !IO_KINDS.includes(k));

/** Does span `s` show action `kind` of call `c`? */
export function shows(kind: SpanKind, c: CallPlan, s: FlatSpan): boolean {
  switch (kind) {
    case 'file.open.sync':
      return isOpen(s) && attr(s, 'file.path') === c.syncFile;
    case 'file.open.async':
      return isOpen(s) && attr(s, 'file.path') === c.asyncFile;
    case 'file.write':
      return isOpen(s) && attr(s, 'file.path') === c.writeFile && ((attr(s, 'agentrace.file.flags') as number) & O_ACCMODE) !== 0;
    case 'file.read':
      return isOpen(s) && attr(s, 'file.path') === c.writeFile && ((attr(s, 'agentrace.file.flags') as number) & O_ACCMODE) === 0;
    case 'net.connect':
      return attr(s, 'network.peer.port') === c.tcpPort && attr(s, 'network.peer.address') === '127.0.0.1';
    case 'http.undici':
      return attr(s, 'network.peer.port') === c.undiciPort && attr(s, 'network.peer.address') === '127.0.0.1';
    case 'http.fetch':
      return attr(s, 'network.peer.port') === c.fetchPort && attr(s, 'network.peer.address') === '127.0.0.1';
    case 'dns.lookup':
      return attr(s, 'dns.question.name') === c.dnsName;
    case 'dns.resolve':
      return attr(s, 'dns.question.name') === c.resolveName;
    case 'process': {
      const args = attr(s, 'process.command_args');
      return Array.isArray(args) && args.includes(`cat ${c.shellFile}; exit 0`);
    }
    case 'process.child.open':
      return isOpen(s) && attr(s, 'file.path') === c.shellFile;
    case 'file.open.in-scope':
      return isOpen(s) && attr(s, 'file.path') === c.inScopeFile;
    case 'file.open.after-scope':
      return isOpen(s) && attr(s, 'file.path') === c.scopeFile;
  }
}

export interface Misplaced {
  /** The call whose action it is ("?" when byte counts cannot say). */
  callId: string;
  /** callId of the tool span it hangs under, or "none". */
  under: string;
  rung: string;
  thread: unknown;
  detail?: string;
}

export interface KindScore {
  kind: Kind;
  actions: number;
  /** Actions with a span under their own tool. */
  truePositives: number;
  /** Spans that show an action of this kind (file.io kinds: calls with bytes counted). */
  spansFound: number;
  spansUnderOwnTool: number;
  /** Spans under another tool call (or under none). */
  falsePositives: Misplaced[];
  /** callIds of actions with no span under their own tool. */
  missed: string[];
  /** For the file.io kinds: what was counted for the first missed calls. */
  notes: string[];
  /** `agentrace.attribution` of the spans under their own tool: which rung found them. */
  rungs: Record<string, number>;
  /** spansUnderOwnTool / spansFound; NaN when nothing was found. */
  precision: number;
  /** truePositives / actions. */
  recall: number;
}

/** Work done outside any tool call (AgentPlan.background): nothing of it may be exported under one. */
export interface UntracedScore {
  kind: SpanKind;
  /** How many times each thread ran the step, summed. */
  actions: number;
  /** Its spans exported: each hangs under a tool call it is no part of. */
  underTool: Misplaced[];
}

export interface Scored {
  scores: Record<Kind, KindScore>;
  /** Per kind, when the plan had background work. */
  untraced: UntracedScore[];
  /** Tool spans exported, by callId (each should be there once). */
  toolSpans: Map<string, FlatSpan[]>;
  /** Every `agentrace.attribution` value seen in the export, with counts. */
  rungsSeen: Record<string, number>;
  /** Every attribute key seen in the export. */
  attributeKeys: Set<string>;
}

const TOOL_SPAN = 'execute_tool ground_truth';

/** `backgroundRounds`: how many times the threads ran the background steps, summed (from the agent's report). */
export function score(plan: AgentPlan, spans: FlatSpan[], backgroundRounds = 0): Scored {
  const toolSpans = new Map<string, FlatSpan[]>();
  const toolBySpanId = new Map<string, string>();
  for (const s of spans) {
    if (s.name !== TOOL_SPAN) continue;
    const id = String(attr(s, 'gen_ai.tool.call.id'));
    toolSpans.set(id, [...(toolSpans.get(id) ?? []), s]);
    toolBySpanId.set(s.spanId, id);
  }
  const kernel = spans.filter((s) => !s.name.startsWith('execute_tool'));
  const rungsSeen: Record<string, number> = {};
  for (const s of kernel) {
    const io = attr(s, 'agentrace.syscall.read.bytes') !== undefined || attr(s, 'agentrace.syscall.write.bytes') !== undefined;
    const r = String(attr(s, 'agentrace.attribution') ?? (io ? 'io counts' : 'none'));
    rungsSeen[r] = (rungsSeen[r] ?? 0) + 1;
  }
  /** callId of the nearest tool span above `s`, and whether the trace matches it. */
  const toolOf = (s: FlatSpan): { callId: string; traceId: string } | undefined => {
    for (const a of ancestry(s, spans)) {
      const id = toolBySpanId.get(a.spanId);
      if (id !== undefined) return { callId: id, traceId: a.traceId };
    }
    return undefined;
  };

  // Descriptor I/O counted under each call: the kernel summary spans below its tool span.
  const io = new Map<string, { read: number; write: number }>();
  for (const s of kernel) {
    const r = attr(s, 'agentrace.syscall.read.bytes');
    const w = attr(s, 'agentrace.syscall.write.bytes');
    if (r === undefined && w === undefined) continue;
    const tool = toolOf(s);
    if (!tool || tool.traceId !== s.traceId) continue;
    const t = io.get(tool.callId) ?? { read: 0, write: 0 };
    t.read += typeof r === 'number' ? r : 0;
    t.write += typeof w === 'number' ? w : 0;
    io.set(tool.callId, t);
  }

  const scores = {} as Record<Kind, KindScore>;
  for (const kind of KINDS) {
    const calls = planned(plan, kind) ? plan.calls : [];
    const k: KindScore = {
      kind,
      actions: calls.length,
      truePositives: 0,
      spansFound: 0,
      spansUnderOwnTool: 0,
      falsePositives: [],
      missed: [],
      notes: [],
      rungs: {},
      precision: NaN,
      recall: 0,
    };
    for (const c of calls) {
      if (kind === 'file.io.write' || kind === 'file.io.read') {
        // Its own bytes must be counted under it, and nobody else's file I/O.
        const dir = kind === 'file.io.write' ? 'write' : 'read';
        const own = Buffer.byteLength(c.writeData);
        const got = io.get(c.callId)?.[dir] ?? 0;
        if (got > 0) k.spansFound++;
        if (got > own + IO_SLACK[dir]) {
          k.falsePositives.push({
            callId: '?',
            under: c.callId,
            rung: 'fd',
            thread: undefined,
            detail: `${got} B ${dir} counted, its own file is ${own} B (+${IO_SLACK[dir]} B allowed for the rest)`,
          });
        } else if (got >= own) {
          k.truePositives++;
          k.spansUnderOwnTool++;
          k.rungs['fd'] = (k.rungs['fd'] ?? 0) + 1;
        } else {
          k.missed.push(c.callId);
          if (k.notes.length < 3) k.notes.push(`${c.callId}: ${got} B ${dir} counted, its file is ${own} B`);
        }
        continue;
      }
      let hit = false;
      for (const s of kernel) {
        if (!shows(kind, c, s)) continue;
        k.spansFound++;
        const tool = toolOf(s);
        const rung = String(attr(s, 'agentrace.attribution') ?? 'none');
        if (tool && tool.callId === c.callId && tool.traceId === s.traceId) {
          k.spansUnderOwnTool++;
          k.rungs[rung] = (k.rungs[rung] ?? 0) + 1;
          hit = true;
        } else {
          k.falsePositives.push({ callId: c.callId, under: tool?.callId ?? 'none', rung, thread: attr(s, 'thread.id') });
        }
      }
      if (hit) k.truePositives++;
      else k.missed.push(c.callId);
    }
    const judged = IO_KINDS.includes(kind) ? k.truePositives + k.falsePositives.length : k.spansFound;
    k.precision = judged === 0 ? NaN : k.spansUnderOwnTool / judged;
    k.recall = k.actions === 0 ? NaN : k.truePositives / k.actions;
    scores[kind] = k;
  }
  const untraced: UntracedScore[] = [];
  const bg = plan.background;
  if (bg) {
    // Each thread writes its own copy of the background file.
    const variants = Array.from({ length: plan.workers + 1 }, (_, t) => ({ ...bg, writeFile: `${bg.writeFile}.${t}` }));
    // (Its in-scope step opens a call's file: scored with that call.)
    for (const kind of SPAN_KINDS.filter((k) => planned(plan, k) && k !== 'file.open.in-scope')) {
      const u: UntracedScore = { kind, actions: backgroundRounds, underTool: [] };
      for (const s of kernel) {
        if (!variants.some((v) => shows(kind, v, s))) continue;
        u.underTool.push({
          callId: bg.callId,
          under: toolOf(s)?.callId ?? 'none',
          rung: String(attr(s, 'agentrace.attribution') ?? 'none'),
          thread: attr(s, 'thread.id'),
        });
      }
      untraced.push(u);
    }
  }
  const attributeKeys = new Set(spans.flatMap((s) => Object.keys(s.attributes)));
  return { scores, untraced, toolSpans, rungsSeen, attributeKeys };
}

/**
 * Why a kind is under 100%, from what the export shows (not from what we
 * expect): misplaced spans name the tool and rung they landed on; for
 * missing ones, whether the mechanism they need shows up anywhere at all.
 */
export function reasonFor(kind: Kind, s: KindScore, scored: Scored): string {
  const parts: string[] = [];
  const list = (ids: string[]): string => `${ids.slice(0, 8).join(', ')}${ids.length > 8 ? ', …' : ''}`;
  if (s.falsePositives.length) {
    const ex = s.falsePositives
      .slice(0, 3)
      .map((f) => (f.detail ? `under ${f.under}: ${f.detail}` : `${f.callId} under ${f.under} (rung ${f.rung}, thread ${String(f.thread)})`))
      .join('; ');
    parts.push(`${s.falsePositives.length} span(s) under the wrong tool call: ${ex}`);
  }
  // Missed with nothing found anywhere (not just found in the wrong place).
  const absent = s.missed.filter((id) => !s.falsePositives.some((f) => f.callId === id));
  if (absent.length) {
    let why = list(absent);
    switch (kind) {
      case 'file.open.async':
      case 'file.write':
      case 'file.read':
      case 'dns.lookup':
        if (!scored.rungsSeen['work']) {
          why =
            'it runs on a libuv threadpool thread (no slot, no thread-map entry) and nothing in the run was ' +
            'attributed by the work-item rung: exported unattributed, i.e. not at all';
        }
        break;
      case 'file.io.write':
      case 'file.io.read':
        why = scored.attributeKeys.has(`agentrace.syscall.${kind === 'file.io.write' ? 'write' : 'read'}.bytes`)
          ? s.notes.join('; ')
          : 'no span carries agentrace.syscall.*.bytes (descriptor I/O is not counted per span yet)';
        break;
    }
    if ((kind === 'dns.lookup' || kind === 'dns.resolve') && !scored.attributeKeys.has('dns.question.name')) {
      why = 'no span of the run carries dns.question.name (DNS is not exported yet)';
    }
    parts.push(`${absent.length} missing: ${why}`);
  }
  return parts.join('; ');
}

export function pct(x: number): string {
  return Number.isNaN(x) ? 'n/a' : `${(x * 100).toFixed(x === 1 || x === 0 ? 0 : 1)}%`;
}

function rungText(r: Record<string, number>): string {
  const e = Object.entries(r);
  return e.length ? e.map(([k, v]) => `${k} ${v}`).join(', ') : '-';
}

/** A markdown table: one row per kind. */
export function table(scored: Scored): string {
  const rows = [
    '| kind | actions | spans found | under own tool | under another | precision | recall | rung |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const kind of KINDS) {
    const s = scored.scores[kind];
    if (s.actions === 0) continue;
    const counts = `${s.actions} | ${s.spansFound} | ${s.spansUnderOwnTool} | ${s.falsePositives.length}`;
    rows.push(`| ${kind} | ${counts} | ${pct(s.precision)} | ${pct(s.recall)} | ${rungText(s.rungs)} |`);
  }
  return rows.join('\n');
}

/** A markdown table of the background work: how much of it was exported under a tool call. */
export function untracedTable(scored: Scored): string {
  const rows = ['| kind (outside any tool call) | actions | exported under a tool call | rung |', '| --- | --- | --- | --- |'];
  for (const u of scored.untraced) {
    const rungs: Record<string, number> = {};
    for (const m of u.underTool) rungs[m.rung] = (rungs[m.rung] ?? 0) + 1;
    rows.push(`| ${u.kind} | ${u.actions} | ${u.underTool.length} | ${rungText(rungs)} |`);
  }
  return rows.join('\n');
}

export interface RunOptions {
  /** The node binary the agent runs on. */
  node: string;
  calls: number;
  workers: number;
  /** Names the run's files (socket, OTLP file, plan). */
  tag: string;
  /** Also run the steps outside any tool call while the calls run (AgentPlan.background). */
  background?: boolean;
  /** Add the open after a nested async scope to every call (AgentPlan.nestedScopes). */
  nestedScopes?: boolean;
  /** Options for the agent's node (before its script). */
  nodeArgs?: string[];
  /** More environment for the agent. */
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface RunResult {
  plan: AgentPlan;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The agent's own report (its JSON line), when it printed one. */
  report:
    | {
        node: string;
        pid: number;
        threads: Array<{
          welcomed: boolean;
          thread?: number;
          calls?: number;
          ms?: number;
          backgroundRounds?: number;
          failures?: string[];
          /** With RunOptions.nodeArgs ['--expose-internals']: async hooks Node had enabled while the calls ran (most seen at once). */
          asyncHooks?: { samples: number; maxEnabled: number };
          /** With --expose-gc: full collections the calls' pauses made. */
          collections?: number;
        }>;
      }
    | undefined;
  spans: FlatSpan[];
  scored: Scored;
  stats: SidecarStats;
  sidecarLog: string[];
  wallMs: number;
}

/**
 * Local servers for every call (loopback only; a DNS server on
 * 127.0.0.1:53 for c-ares), files, a private hosts file, and a sidecar per run. The agent runs in a mount namespace of its own in
 * which /etc/hosts maps every call's name and /etc/nsswitch.conf resolves
 * hosts from files only, so no lookup leaves the machine.
 */
export class GroundTruthLab {
  private readonly children = new Set<number>();
  private constructor(
    readonly dir: string,
    private readonly servers: net.Server[],
    private readonly ports: Array<{ tcp: number; undici: number; fetch: number }>,
    private readonly hostsFile: string,
    private readonly nsswitchFile: string,
    private readonly names: string[],
    /** Answers every c-ares query NXDOMAIN, and records the names asked. */
    readonly dnsServer: DnsServer,
  ) {}

  /** Listening servers and name entries for up to `maxCalls` calls. */
  static async start(maxCalls: number): Promise<GroundTruthLab> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-gt-'));
    const servers: net.Server[] = [];
    const listen = async (server: net.Server): Promise<number> => {
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return (server.address() as net.AddressInfo).port;
    };
    const httpServer = (what: string): http.Server => {
      const server = http.createServer((req, res) => {
        req.resume();
        res.setHeader('connection', 'close');
        res.end(`${what} ${(server.address() as net.AddressInfo).port}`);
      });
      return server;
    };
    const ports: Array<{ tcp: number; undici: number; fetch: number }> = [];
    // One set per call, one for the warm-up (index maxCalls), one for the background (maxCalls + 1).
    for (let i = 0; i <= maxCalls + 1; i++) {
      ports.push({
        tcp: await listen(net.createServer((s) => s.destroy())),
        undici: await listen(httpServer('undici')),
        fetch: await listen(httpServer('fetch')),
      });
    }
    const tag = randomBytes(3).toString('hex');
    const names = Array.from(
      { length: maxCalls + 2 },
      (_, i) => (i < maxCalls ? `call-${i}` : i === maxCalls ? 'warmup' : 'background') + `-${tag}.gt.agentrace.test`,
    );
    const hostsFile = path.join(dir, 'hosts');
    fs.writeFileSync(hostsFile, ['127.0.0.1 localhost', ...names.map((n, i) => `${dnsAddress(i)} ${n}`), ''].join('\n'));
    const nsswitchFile = path.join(dir, 'nsswitch.conf');
    let nss = '';
    try {
      nss = fs.readFileSync('/etc/nsswitch.conf', 'utf8');
    } catch {
      nss = 'passwd: files\ngroup: files\n';
    }
    nss = nss.split('\n').filter((l) => !/^\s*hosts\s*:/.test(l)).join('\n');
    fs.writeFileSync(nsswitchFile, `${nss.trimEnd()}\nhosts: files\n`);
    // Port 53 is the one c-ares queries are recognised on; nothing else may hold it.
    const dnsServer = await startDnsServer();
    return new GroundTruthLab(dir, servers, ports, hostsFile, nsswitchFile, names, dnsServer);
  }

  get maxCalls(): number {
    return this.ports.length - 2;
  }

  /** Writes the files of a plan of `calls` calls; nothing else is created. */
  plan(calls: number, workers: number, tag: string, extra: { background?: boolean; nestedScopes?: boolean } = {}): AgentPlan {
    if (calls > this.maxCalls) throw new RangeError(`the lab serves ${this.maxCalls} calls, not ${calls}`);
    const d = path.join(this.dir, tag);
    fs.mkdirSync(d, { recursive: true });
    // Calls are split over the threads in runs of `share`; each runs a
    // callback in the scope of the next call of its own run.
    const share = Math.ceil(calls / Math.max(workers, 1));
    const ownerOf = (i: number): string => {
      const start = Math.floor(i / share) * share;
      const size = Math.min(share, calls - start);
      return `call-${start + ((i - start + 1) % size)}`;
    };
    const call = (i: number, callId: string): CallPlan => {
      const file = (what: string, content?: string): string => {
        const f = path.join(d, `${what}-${callId}.txt`);
        if (content !== undefined) fs.writeFileSync(f, content);
        else fs.rmSync(f, { force: true });
        return f;
      };
      const p = this.ports[i]!;
      // Unique content, FILE_IO_BYTES and a few more.
      const head = `written by ${callId} ${randomBytes(8).toString('hex')}\n`;
      return {
        index: i,
        callId,
        syncFile: file('sync', `sync ${callId}\n`),
        asyncFile: file('async', `async ${callId}\n`),
        writeFile: file('written'),
        writeData: head + 'x'.repeat(FILE_IO_BYTES + 61 * i) + '\n',
        shellFile: file('shell', `shell ${callId}\n`),
        scopeFile: file('scope', `after scope ${callId}\n`),
        inScopeFile: file('inscope', `in scope ${callId}\n`),
        scopeOwner: i < calls ? ownerOf(i) : null,
        tcpPort: p.tcp,
        undiciPort: p.undici,
        fetchPort: p.fetch,
        dnsName: this.names[i]!,
        dnsAddress: dnsAddress(i),
        resolveName: `r-${this.names[i]!}`,
      };
    };
    const list = Array.from({ length: calls }, (_, i) => call(i, `call-${i}`));
    return {
      workers,
      warmup: call(this.maxCalls, 'warmup'),
      background: extra.background ? call(this.maxCalls + 1, 'background') : null,
      nestedScopes: extra.nestedScopes ?? false,
      calls: list,
    };
  }

  /** One agent run under a fresh in-process sidecar, scored. */
  async run(opts: RunOptions): Promise<RunResult> {
    const plan = this.plan(opts.calls, opts.workers, opts.tag, opts);
    const planFile = path.join(this.dir, `${opts.tag}.plan.json`);
    fs.writeFileSync(planFile, JSON.stringify(plan));
    const socketPath = path.join(this.dir, `${opts.tag}.sock`);
    const otlpFile = path.join(this.dir, `${opts.tag}.jsonl`);
    const sidecarLog: string[] = [];
    const sidecar = await Sidecar.start({
      socketPath,
      exporters: createExporters(resolveOtlpConfig({ file: otlpFile }, {})),
      log: (line) => sidecarLog.push(line),
    });
    let stats: SidecarStats;
    let exit: { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; wallMs: number };
    try {
      exit = await this.spawnAgent(opts.node, opts.nodeArgs ?? [], planFile, socketPath, opts.timeoutMs ?? 60_000, opts.env ?? {});
      await sidecar.settle(3000);
      stats = sidecar.stats();
    } finally {
      await sidecar.stop();
    }
    const spans = readOtlpFile(otlpFile);
    let report: RunResult['report'];
    try {
      report = JSON.parse(exit.stdout.trim().split('\n').pop() ?? '') as RunResult['report'];
    } catch {
      report = undefined;
    }
    return {
      plan,
      exitCode: exit.code,
      signal: exit.signal,
      stdout: exit.stdout,
      stderr: exit.stderr,
      report,
      spans,
      scored: score(plan, spans, report?.threads.reduce((n, t) => n + (t.backgroundRounds ?? 0), 0) ?? 0),
      stats,
      sidecarLog,
      wallMs: exit.wallMs,
    };
  }

  private async spawnAgent(
    node: string,
    nodeArgs: string[],
    planFile: string,
    socketPath: string,
    timeoutMs: number,
    env: Record<string, string>,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; wallMs: number }> {
    // unshare without --fork execs: the agent keeps the pid spawn() gives us.
    const script = 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf && shift 2 && exec "$@"';
    const t0 = performance.now();
    const child = spawn(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', this.hostsFile, this.nsswitchFile, node, ...nodeArgs, agentScript, planFile],
      { env: { ...process.env, ...env, AGENTRACE_SOCKET: socketPath }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const pid = child.pid;
    if (pid !== undefined) this.children.add(pid);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
    }, timeoutMs);
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    clearTimeout(timer);
    if (pid !== undefined) this.children.delete(pid);
    return { code, signal, stdout, stderr, wallMs: performance.now() - t0 };
  }

  /** Stops what is still running (by pid), closes the servers, removes the files. */
  async close(): Promise<void> {
    for (const pid of this.children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.children.clear();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.dnsServer.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function dnsAddress(i: number): string {
  return `127.77.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}
