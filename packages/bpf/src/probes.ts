// The typed face of the kernel side: load the agentrace BPF object, attach
// probe groups, choose which processes are tracked and which span each thread
// runs, and receive decoded events. The sidecar uses only this. Reading what
// the kernel aggregates per span is kernel-aggregates.ts's; the uprobes in
// agents' binaries, uprobes.ts's.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Socket } from 'node:net';
import { native, defaultObjectPath, type NativeBpfObject } from './native.js';
import { drainAggregates, takeEventCounts, type SpanAggregates, type SpanEventCounts } from './kernel-aggregates.js';
import { attachDnsProbes, attachWorkProbes, type WorkProbesResult } from './uprobes.js';
import { parseHex } from './hex.js';
import { EventDecoder, spanFrom, type KernelEvent, type SpanRef } from './decode.js';
import { FrameCheck, layouts, ProcFlag, Stat, SPAN_ID_LEN, TRACE_ID_LEN } from './layout.js';
import { encodeV8Layout, type V8Layout } from './v8-layout.js';
import { read, type maps, type programs } from './abi.generated.js';
import { ensureTracefs } from './tracefs.js';
import { cgroup2Root, encodeExecKey, encodeFileKey, encodeHostKey, encodeNetAllow, encodeNetKey, encodeToolEntry, encodeToolKey, type PolicyGeneration, type PolicyTables } from './policy-tables.js';
import { INITIAL_PID_NAMESPACE, ownPidNamespace } from './pid-namespace.js';

const CAT = '/bin/cat';

/**
 * A helper process that inherits `fds` and exits once released (its stdin
 * ends, or this process exits): the last close of each happens there.
 * Undefined when it cannot be started (the caller then closes them itself).
 */
function holdLinks(fds: number[]): { release: () => void } | undefined {
  if (fds.length === 0) return undefined;
  try {
    // cat starts in a millisecond where a second node takes a hundred of CPU
    // that `run`'s user would wait for; node where there is no cat.
    const [file, args] = existsSync(CAT) ? [CAT, []] : [process.execPath, ['-e', "process.stdin.resume().on('end', () => process.exit(0))"]];
    const child = spawn(file, args, {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore', ...fds],
      env: {},
    });
    child.on('error', () => {});
    child.unref();
    return {
      release: () => {
        child.stdin?.end();
        // The pipe closing is the helper's cue; it must not keep this process up.
        if (child.stdin instanceof Socket) child.stdin.unref();
      },
    };
  } catch {
    return undefined;
  }
}

/** Probe families, attached and detached as a whole. */
export const probeGroups = ['file', 'net', 'process', 'context', 'io'] as const;
export type ProbeGroup = (typeof probeGroups)[number];

// Program names in src/bpf/probes/*.bpf.c start with their group's name.
function groupOf(programName: string): ProbeGroup | undefined {
  return probeGroups.find((g) => programName.startsWith(`${g}_`));
}



export interface ProbesOptions {
  /** Path of the compiled BPF object; defaults to the one this package built. */
  objectPath?: string;
  /** Ring buffer size in bytes (a power of two, at least a page). Default 4 MiB. */
  ringBufferBytes?: number;
  /** Events one span may emit before the rest are only counted; 0: no cap. Default DEFAULT_MAX_EVENTS_PER_SPAN. */
  maxEventsPerSpan?: number;
  /**
   * The kernel wakes the consumer only when this many bytes wait (0: on
   * every event); below that, onEvents() drains every pollIntervalMs.
   * Default: a sixteenth of the ring buffer.
   */
  wakeupBytes?: number;
  /**
   * How often onEvents() drains what did not wake it while events come.
   * Default 25 ms; while none come, the kernel wakes the consumer at the
   * next event (and a drain every 5 s checks that it does).
   */
  pollIntervalMs?: number;
  /** (span, kind) aggregates the kernel keeps at once; more are counted as map-full. Default 32768. */
  maxSpanAggregates?: number;
}

export interface ProbeStats {
  /** Events written to the ring buffer. */
  events: bigint;
  /** Events lost because the ring buffer was full. */
  ringbufDrops: bigint;
  /** Syscalls not reported because the per-thread state map was full. */
  pendingFull: bigint;
  /** Children of tracked processes that could not be tracked (map full). */
  trackedFull: bigint;
  /** User memory (paths, addresses) that could not be read. */
  readFaults: bigint;
  /** Events over their span's cap: counted in the span's aggregates, not emitted. */
  capped: bigint;
  /** Syscalls or events not counted because a per-span map was full. */
  aggFull: bigint;
  /** Processes that declared themselves by registering a slot before anything tracked them. */
  declared: bigint;
  /** Syscalls of frame-read threads whose async context could not be read: lower rungs were asked. */
  frameUnreadable: bigint;
  /** Ring-buffer samples user space could not decode. */
  decodeErrors: number;
}

/** What the kernel aggregates per span. */

export type EventsHandler = (events: KernelEvent[]) => void;
export type DecodeErrorHandler = (error: Error, sample: Buffer) => void;

// Names the object has (abi.generated.ts lists them from its BTF): a map or
// program renamed in the C without this file following does not compile.
type MapName = (typeof maps)[number];
type ProgramName = (typeof programs)[number];
const TRACKED: MapName = 'ar_tracked_procs';
const TRACKED_BITS: MapName = 'ar_tracked_bits';
const THREAD_SPANS: MapName = 'otel_traces_ctx_v1';
const ENDED_SPANS: MapName = 'ar_ended_spans';
const V8_LAYOUTS: MapName = 'ar_v8_layouts';
const FRAME_READERS: MapName = 'ar_frame_readers';
const FD_SPANS: MapName = 'ar_fd_spans';
const DNS_FDS: MapName = 'ar_dns_fds';
const EVENTS: MapName = 'ar_events';
const STATS: MapName = 'ar_stats';
const SPAN_AGGS: MapName = 'ar_span_aggs';
const CONFIG: MapName = 'ar_config';
const POLICY_TOOLS: MapName = 'ar_policy_tools';
const NET_TCP: MapName = 'ar_net_tcp';
const NET_UDP: MapName = 'ar_net_udp';
const EXEC_ALLOW: MapName = 'ar_exec_allow';
const HOST_NAMES: MapName = 'ar_host_names';
const HOST_ADDRS: MapName = 'ar_host_addrs';
const FILES_OPEN: MapName = 'ar_files_open';
const FILES_WRITE: MapName = 'ar_files_write';
const POLICY_MAPS: readonly MapName[] = [POLICY_TOOLS, NET_TCP, NET_UDP, EXEC_ALLOW, HOST_NAMES, HOST_ADDRS, FILES_OPEN, FILES_WRITE];
/** The policy group, attached on its own (attachPolicy), never by attach('all'): cgroup programs that decide connects and sends, */
const POLICY_CGROUP_PROGRAMS: readonly ProgramName[] = ['policy_connect4', 'policy_connect6', 'policy_sendmsg4', 'policy_sendmsg6'];
/** and tracing programs that tell them the call of a send, report what they decided, and judge execs. */
const POLICY_TRACING_PROGRAMS: readonly ProgramName[] = [
  'policy_sendto_enter',
  'policy_sendto_exit',
  'policy_sendmsg_enter',
  'policy_sendmsg_exit',
  'policy_sendmmsg_enter',
  'policy_sendmmsg_exit',
  'policy_exec',
];
/**
 * and the programs that judge opens, attached only while the policy has
 * `files` rules: every open on the host runs them, tracked or not.
 */
const POLICY_FILES_PROGRAMS: readonly ProgramName[] = [
  'policy_openat_enter',
  'policy_openat_exit',
  'policy_openat2_enter',
  'policy_openat2_exit',
  'policy_open_enter',
  'policy_open_exit',
  'policy_creat_enter',
  'policy_creat_exit',
];
const POLICY_PROGRAMS: readonly ProgramName[] = [...POLICY_CGROUP_PROGRAMS, ...POLICY_TRACING_PROGRAMS, ...POLICY_FILES_PROGRAMS];
/** pidns.bpf.h: the namespace the probes name processes in, 0 for the initial one. */
const PIDNS_INUM = 'ar_pidns_inum';
/** The context family's write probe; io's write probe does its job too. */
const SLOT_REGISTER: ProgramName = 'context_slot_register';

/** Default cap of events per span (open, connect, DNS); the rest are counted. */
export const DEFAULT_MAX_EVENTS_PER_SPAN = 1000;
const DEFAULT_RING_BUFFER_BYTES = 4 * 1024 * 1024;
const DEFAULT_POLL_INTERVAL_MS = 25;
/** While idle, how often a drain checks that the kernel's wakeup came (it should: this is a safety net). */
const IDLE_CHECK_MS = 5000;

const ONE = Buffer.from([1]);

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function pidTgid(pid: number, tid: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE((BigInt(pid) << 32n) | BigInt(tid >>> 0));
  return b;
}


export class Probes {
  readonly objectPath: string;
  private readonly obj: NativeBpfObject;
  private readonly programsByGroup: ReadonlyMap<ProbeGroup, readonly string[]>;
  private readonly cpus: number;
  private decodeErrors = 0;
  private closed = false;
  private pollTimer?: NodeJS.Timeout;
  private config?: Buffer;
  /** attachPolicy was called (and not detachPolicy since). */
  private policyGroupAttached = false;
  /** The tables in force have files rules. */
  private policyHasFiles = false;
  /** Groups the user asked for; syncPrograms links their programs. */
  private readonly wanted = new Set<ProbeGroup>();
  /** CLOCK_REALTIME - CLOCK_MONOTONIC in ns, to turn event times into epoch times. */
  private readonly epochOffsetNs: bigint;

  private constructor(
    objectPath: string,
    obj: NativeBpfObject,
    private readonly pollIntervalMs: number,
  ) {
    this.objectPath = objectPath;
    this.obj = obj;
    const byGroup = new Map<ProbeGroup, string[]>(probeGroups.map((g) => [g, []]));
    for (const { name } of obj.programs()) {
      const g = groupOf(name);
      if (g) byGroup.get(g)?.push(name);
    }
    this.programsByGroup = byGroup;
    const addon = native();
    this.cpus = addon.numPossibleCpus();
    this.epochOffsetNs = BigInt(Date.now()) * 1_000_000n - addon.monotonicNs();
  }

  /**
   * Opens and loads the object (verifying every program); attaches nothing.
   * Processes and threads are named as this process's PID namespace names
   * them (a sidecar in a container sees its own), in maps and events alike.
   */
  static load(options: ProbesOptions = {}): Probes {
    const { objectPath, obj } = Probes.open(options);
    try {
      obj.load();
    } catch (err) {
      obj.close();
      throw err;
    }
    return Probes.configured(objectPath, obj, options);
  }

  /**
   * load(), with the verifier's few hundred milliseconds on the libuv
   * threadpool: the caller's thread does the rest of its start-up meanwhile.
   */
  static async loadAsync(options: ProbesOptions = {}): Promise<Probes> {
    const { objectPath, obj } = Probes.open(options);
    try {
      await obj.loadAsync();
    } catch (err) {
      obj.close();
      throw err;
    }
    return Probes.configured(objectPath, obj, options);
  }

  private static open(options: ProbesOptions): { objectPath: string; obj: NativeBpfObject } {
    ensureTracefs();
    const objectPath = options.objectPath ?? defaultObjectPath;
    const obj = new (native().BpfObject)(objectPath);
    try {
      if (options.ringBufferBytes !== undefined) obj.setMaxEntries(EVENTS, options.ringBufferBytes);
      if (options.maxSpanAggregates !== undefined) obj.setMaxEntries(SPAN_AGGS, options.maxSpanAggregates);
      const pidns = ownPidNamespace();
      if (pidns !== INITIAL_PID_NAMESPACE) obj.setConstant(PIDNS_INUM, u32(pidns));
    } catch (err) {
      obj.close();
      throw err;
    }
    return { objectPath, obj };
  }

  private static configured(objectPath: string, obj: NativeBpfObject, options: ProbesOptions): Probes {
    const probes = new Probes(objectPath, obj, options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
    try {
      const ring = options.ringBufferBytes ?? DEFAULT_RING_BUFFER_BYTES; // maps.bpf.h's size
      probes.writeConfig({ wakeupBytes: options.wakeupBytes ?? Math.floor(ring / 16) });
      probes.setMaxEventsPerSpan(options.maxEventsPerSpan ?? DEFAULT_MAX_EVENTS_PER_SPAN);
    } catch (err) {
      probes.close();
      throw err;
    }
    return probes;
  }

  programs(group?: ProbeGroup): string[] {
    if (group) return [...(this.programsByGroup.get(group) ?? [])];
    return this.obj.programs().map((p) => p.name);
  }

  /**
   * Attaches a whole group, or every group. Already attached programs stay
   * as they are. Takes effect at once for every tracked process.
   */
  attach(group: ProbeGroup | 'all' = 'all'): void {
    for (const g of group === 'all' ? probeGroups : [this.checkGroup(group)]) this.wanted.add(g);
    this.syncPrograms();
  }

  /**
   * Detaches a group (or all): its programs are unlinked from their
   * tracepoints, so they cost nothing at all; the maps keep their state.
   */
  detach(group: ProbeGroup | 'all' = 'all'): void {
    for (const g of group === 'all' ? probeGroups : [this.checkGroup(group)]) this.wanted.delete(g);
    this.syncPrograms();
  }

  isAttached(group: ProbeGroup): boolean {
    return this.wanted.has(this.checkGroup(group)) && this.groupPrograms(group).every((name) => this.obj.isAttached(name));
  }

  /** The programs linked to the kernel now, with their sections (attach points). */
  attachedPrograms(): Array<{ name: string; section: string }> {
    return this.obj
      .programs()
      .filter((p) => this.obj.isAttached(p.name))
      .map((p) => ({ name: p.name, section: p.section }));
  }

  /** The groups attached now. */
  attachedGroups(): ProbeGroup[] {
    return probeGroups.filter((g) => this.isAttached(g));
  }

  attachProgram(name: string): void {
    this.obj.attach(name);
  }

  detachProgram(name: string): void {
    this.obj.detach(name);
  }



  /** See attachWorkProbes in uprobes.ts. */
  attachWorkProbes(binaryPath: string): WorkProbesResult {
    return attachWorkProbes(this.obj, binaryPath);
  }

  /** See attachDnsProbes in uprobes.ts. */
  attachDnsProbes(libcPath: string): { ok: true } | { ok: false; reason: string } {
    return attachDnsProbes(this.obj, libcPath);
  }

  /**
   * Traces a process from now on (its future children are tracked by the
   * kernel), or confirms one that declared itself: it keeps what the kernel
   * knows of it (an inherited span) and is no longer self-declared.
   */
  track(pid: number): void {
    const key = u32(pid);
    const F = layouts.ar_proc_info.fields;
    const info = this.obj.mapLookup(TRACKED, key);
    if (info === null) {
      this.obj.mapUpdate(TRACKED, key, Buffer.alloc(layouts.ar_proc_info.size));
    } else if (read.ar_proc_info.flags(info, 0) & ProcFlag.SelfDeclared) {
      info.writeUInt32LE(read.ar_proc_info.flags(info, 0) & ~ProcFlag.SelfDeclared, F.flags);
      this.obj.mapUpdate(TRACKED, key, info);
    }
    // The entry first: a set bit with no entry is harmless, the reverse is not.
    this.obj.mapSetBit(TRACKED_BITS, pid, true);
  }

  /** Whether `pid` is tracked only because it declared itself (not confirmed at hello yet). */
  isSelfDeclared(pid: number): boolean {
    const info = this.obj.mapLookup(TRACKED, u32(pid));
    return info !== null && (read.ar_proc_info.flags(info, 0) & ProcFlag.SelfDeclared) !== 0;
  }

  /**
   * Forgets what the kernel keeps per descriptor (owner, DNS socket) for
   * processes that have exited: a process killed with its descriptors open
   * never closes them, and a later process given its pid must not inherit
   * them. Returns how many entries went.
   */
  forgetDescriptors(tgids: ReadonlySet<number>): number {
    if (tgids.size === 0) return 0;
    let gone = 0;
    for (const map of [FD_SPANS, DNS_FDS]) {
      for (const key of this.obj.mapKeys(map)) {
        if (tgids.has(read.ar_fd_key.tgid(key, 0)) && this.obj.mapDelete(map, key)) gone++;
      }
    }
    return gone;
  }

  /** The descriptors the kernel keeps an owner for, of one process (for tests and diagnostics). */
  descriptorsOf(tgid: number): number[] {
    const F = layouts.ar_fd_key.fields;
    return this.obj
      .mapKeys(FD_SPANS)
      .filter((k) => read.ar_fd_key.tgid(k, 0) === tgid)
      .map((k) => read.ar_fd_key.fd(k, 0));
  }

  /**
   * Tells the kernel that a tool call ended: I/O outside any call on a
   * descriptor it owned is nobody's from now on.
   */
  markEnded(spanId: string): void {
    this.obj.mapUpdate(ENDED_SPANS, parseHex(spanId, SPAN_ID_LEN, 'spanId'), ONE);
  }

  untrack(pid: number): boolean {
    this.obj.mapSetBit(TRACKED_BITS, pid, false);
    return this.obj.mapDelete(TRACKED, u32(pid));
  }

  isTracked(pid: number): boolean {
    return this.obj.mapLookup(TRACKED, u32(pid)) !== null;
  }

  trackedPids(): number[] {
    return this.obj.mapKeys(TRACKED).map((k) => k.readUInt32LE(0));
  }

  /** The span a tracked process inherited when it was forked, if any. */
  inheritedSpan(pid: number): SpanRef | null {
    const v = this.obj.mapLookup(TRACKED, u32(pid));
    return v ? spanFrom(v, layouts.ar_proc_info.fields.span) : null;
  }

  /**
   * Gives the kernel the V8 layout of process `pid`'s node binary: from its
   * threads' next slot registration on, the kernel proves the frame rung for
   * each (frameCheck) and reads their calls from their async context.
   */
  setV8Layout(pid: number, layout: V8Layout): void {
    this.obj.mapUpdate(V8_LAYOUTS, u32(pid), encodeV8Layout(layout));
  }

  /** How the frame rung was checked for thread `tid` of `pid` at its last registration; undefined if it was not. */
  frameCheck(pid: number, tid: number): FrameCheck | undefined {
    const v = this.obj.mapLookup(FRAME_READERS, pidTgid(pid, tid));
    return v ? (read.ar_frame_reader.check(v, 0) as FrameCheck) : undefined;
  }

  /** Says that thread `tid` of process `pid` now runs `span` (otel_traces_ctx_v1). */
  setThreadSpan(pid: number, tid: number, span: SpanRef): void {
    const v = Buffer.alloc(layouts.ar_span_ctx.size);
    parseHex(span.traceId, TRACE_ID_LEN, 'traceId').copy(v, layouts.ar_span_ctx.fields.trace_id);
    parseHex(span.spanId, SPAN_ID_LEN, 'spanId').copy(v, layouts.ar_span_ctx.fields.span_id);
    this.obj.mapUpdate(THREAD_SPANS, pidTgid(pid, tid), v);
  }

  threadSpan(pid: number, tid: number): SpanRef | null {
    const v = this.obj.mapLookup(THREAD_SPANS, pidTgid(pid, tid));
    return v ? spanFrom(v, 0) : null;
  }

  clearThreadSpan(pid: number, tid: number): boolean {
    return this.obj.mapDelete(THREAD_SPANS, pidTgid(pid, tid));
  }

  /**
   * Delivers decoded events in batches from the libuv loop whenever the ring
   * buffer has data. Undecodable samples are counted and given to onError.
   */
  onEvents(handler: EventsHandler, onError?: DecodeErrorHandler): void {
    const decoder = new EventDecoder();
    // Below the wakeup threshold the kernel does not wake us: drain on a
    // timer every pollIntervalMs while events come. Once a drain finds none,
    // the kernel wakes us at the next event instead (ar_config's
    // consumer_idle), and the timer only checks, rarely, that it did: an
    // idle sidecar costs the host next to no wakeups.
    let idle = false;
    const poll = (): void => {
      this.pollTimer = undefined;
      if (this.closed) return;
      if (this.obj.pollRingBuffer() > 0) {
        if (!idle) this.pollTimer ??= setTimeout(poll, this.pollIntervalMs).unref();
        return;
      }
      if (!idle) {
        idle = true;
        this.writeConfig({ consumerIdle: true });
        // An event submitted before the kernel saw the flag woke nobody:
        // take it now (the batch handler below ends the idleness).
        this.obj.pollRingBuffer();
      }
      if (idle) this.pollTimer ??= setTimeout(poll, IDLE_CHECK_MS).unref();
    };
    const wake = (): void => {
      if (!idle || this.closed) return;
      idle = false;
      this.writeConfig({ consumerIdle: false });
      clearTimeout(this.pollTimer);
      this.pollTimer = setTimeout(poll, this.pollIntervalMs).unref();
    };
    this.obj.startRingBuffer(EVENTS, (data, bounds, count) => {
      wake();
      const events: KernelEvent[] = [];
      for (let i = 0; i < 2 * count; i += 2) {
        const off = bounds[i]!;
        const size = bounds[i + 1]!;
        try {
          events.push(decoder.decode(data, off, size));
        } catch (err) {
          this.decodeErrors++;
          // a copy: `data` is reused for the next batch
          onError?.(err instanceof Error ? err : new Error(String(err)), Buffer.from(data.subarray(off, off + size)));
        }
      }
      if (events.length > 0) handler(events);
    });
    this.pollTimer = setTimeout(poll, this.pollIntervalMs).unref();
  }

  /**
   * Caps the events (open, connect, DNS) one span may emit; the rest are
   * counted in its aggregates and as `capped`. 0: no cap. Takes effect at once.
   */
  setMaxEventsPerSpan(max: number): void {
    if (!Number.isInteger(max) || max < 0 || max > 0xffffffff) {
      throw new RangeError(`max events per span must be an integer from 0 (no cap) to 4294967295, got ${max}`);
    }
    this.writeConfig({ maxEventsPerSpan: max });
  }

  /**
   * Attaches the policy group: cgroup connect4/6 and sendmsg4/6 programs on
   * `cgroup` (default: the cgroup v2 root, so every process), and the
   * tracing programs that tell them each tracked thread's call and tool and
   * judge execs. They decide nothing until setPolicyTables gives them rules.
   */
  attachPolicy(cgroup: string = cgroup2Root()): void {
    for (const name of POLICY_CGROUP_PROGRAMS) this.obj.attach(name, cgroup);
    for (const name of POLICY_TRACING_PROGRAMS) this.obj.attach(name);
    this.policyGroupAttached = true;
    this.attachFilesPrograms();
  }

  /** The open programs, attached while the policy group is and the tables have files rules. */
  private attachFilesPrograms(): void {
    for (const name of POLICY_FILES_PROGRAMS) {
      if (this.policyGroupAttached && this.policyHasFiles) this.obj.attach(name);
      else this.obj.detach(name);
    }
  }

  /** Detaches the policy group and empties its tables: nothing is decided any more. */
  detachPolicy(): void {
    this.writeConfig({ policy: 0, policyFiles: false });
    this.policyGroupAttached = false;
    this.policyHasFiles = false;
    for (const name of POLICY_PROGRAMS) this.obj.detach(name);
    for (const map of POLICY_MAPS) for (const key of this.obj.mapKeys(map)) this.obj.mapDelete(map, key);
  }

  /** Whether the policy group is attached. */
  policyAttached(): boolean {
    return [...POLICY_CGROUP_PROGRAMS, ...POLICY_TRACING_PROGRAMS].every((name) => this.obj.isAttached(name));
  }

  /** The generation of the tables the kernel decides from now (0: none). */
  policyGeneration(): number {
    const v = this.obj.mapLookup(CONFIG, u32(0));
    return v ? read.ar_config.policy(v, 0) : 0;
  }

  /**
   * Replaces the tables the policy programs decide from, with no moment
   * where a decision sees half of either: the new tables are written under
   * the generation not running, one write of ar_config switches to it, and
   * then the old generation's entries go. Everything is encoded (and so
   * checked) before anything in the kernel changes. Returns the generation
   * now in force: verdicts name their rule with it (ruleRef).
   */
  setPolicyTables(tables: PolicyTables): PolicyGeneration {
    const running = this.policyGeneration();
    const gen: PolicyGeneration = running === 1 ? 2 : 1;
    const entries: Array<readonly [MapName, Buffer, Buffer]> = [
      ...tables.tools.map((e) => [POLICY_TOOLS, encodeToolKey(gen, e.tool), encodeToolEntry(gen, e)] as const),
      ...tables.net.map((e) => [e.protocol === 'udp' ? NET_UDP : NET_TCP, encodeNetKey(gen, e), encodeNetAllow(e)] as const),
      ...tables.exec.map((e) => [EXEC_ALLOW, encodeExecKey(gen, e), u32(1)] as const),
      ...tables.hosts.map((e) => [HOST_NAMES, encodeHostKey(gen, e), encodeNetAllow(e)] as const),
      ...(tables.files ?? []).map((e) => [e.access === 'write' ? FILES_WRITE : FILES_OPEN, encodeFileKey(gen, e), u32(1)] as const),
    ];
    const files = tables.tools.some((t) => t.filesMode !== undefined && t.filesMode !== 'none');
    // leftovers of an interrupted reload under this generation go first
    this.deleteGeneration(gen);
    for (const [map, k, v] of entries) this.obj.mapUpdate(map, k, v);
    // the open programs come before the switch and go after it: no open the new policy judges goes unseen
    if (files) this.policyHasFiles = true;
    this.attachFilesPrograms();
    this.writeConfig({ policy: gen, policyFiles: files });
    this.policyHasFiles = files;
    this.attachFilesPrograms();
    this.deleteGeneration(gen === 1 ? 2 : 1);
    return gen;
  }

  /** Every policy table's entries of one generation (the generation is the key's first word, after an LPM prefix length). */
  private deleteGeneration(gen: PolicyGeneration): void {
    for (const map of POLICY_MAPS) {
      const at = map === NET_TCP || map === NET_UDP ? layouts.ar_net_key.fields.gen : map === FILES_OPEN || map === FILES_WRITE ? layouts.ar_file_key.fields.gen : 0;
      for (const key of this.obj.mapKeys(map)) if (key.readUInt32LE(at) === gen) this.obj.mapDelete(map, key);
    }
  }

  private writeConfig(change: { maxEventsPerSpan?: number; wakeupBytes?: number; consumerIdle?: boolean; policy?: number; policyFiles?: boolean }): void {
    const F = layouts.ar_config.fields;
    // Only this object writes ar_config: no lookup per change (the ring
    // buffer's idle flag changes at every burst of events).
    const v = (this.config ??= this.obj.mapLookup(CONFIG, u32(0)) ?? Buffer.alloc(layouts.ar_config.size));
    if (change.maxEventsPerSpan !== undefined) v.writeUInt32LE(change.maxEventsPerSpan, F.max_events_per_span);
    if (change.wakeupBytes !== undefined) v.writeUInt32LE(Math.min(change.wakeupBytes, 0xffffffff), F.wakeup_bytes);
    if (change.consumerIdle !== undefined) v.writeUInt32LE(change.consumerIdle ? 1 : 0, F.consumer_idle);
    if (change.policy !== undefined) v.writeUInt32LE(change.policy, F.policy);
    if (change.policyFiles !== undefined) v.writeUInt32LE(change.policyFiles ? 1 : 0, F.policy_files);
    this.obj.mapUpdate(CONFIG, u32(0), v);
  }

  maxEventsPerSpan(): number {
    const v = this.obj.mapLookup(CONFIG, u32(0));
    return v ? read.ar_config.max_events_per_span(v, 0) : 0;
  }




  /**
   * Moves the kernel's per-span aggregates out, merged per span: each call
   * counted once. The caller holds what belongs to spans it does not report
   * yet (the sidecar's KernelSummaries).
   */
  drainSpanAggregates(): Map<string, SpanAggregates> {
    return drainAggregates(this.obj);
  }

  /** Takes the kernel's event accounting of a span (emitted, capped, lost); undefined when it has none. */
  takeSpanEventCounts(spanId: string): SpanEventCounts | undefined {
    return takeEventCounts(this.obj, spanId);
  }

  /** Consumes what the ring buffer holds right now; returns the number of samples. */
  drain(): number {
    return this.obj.pollRingBuffer();
  }

  stats(): ProbeStats {
    const sum = (stat: number): bigint => {
      const v = this.obj.mapLookup(STATS, u32(stat));
      if (!v) return 0n;
      let total = 0n;
      // Per-CPU values are 8-byte aligned, one per possible CPU.
      for (let cpu = 0; cpu < this.cpus; cpu++) total += v.readBigUInt64LE(cpu * 8);
      return total;
    };
    return {
      events: sum(Stat.Events),
      ringbufDrops: sum(Stat.RingbufDrops),
      pendingFull: sum(Stat.PendingFull),
      trackedFull: sum(Stat.TrackedFull),
      readFaults: sum(Stat.ReadFaults),
      capped: sum(Stat.Capped),
      aggFull: sum(Stat.AggFull),
      declared: sum(Stat.Declared),
      frameUnreadable: sum(Stat.FrameUnreadable),
      decodeErrors: this.decodeErrors,
    };
  }

  /** Converts an event's monotonic timestamp to nanoseconds since the Unix epoch. */
  toEpochNs(tsNs: bigint): bigint {
    return tsNs + this.epochOffsetNs;
  }

  /** Stops event delivery, detaches every program and frees the object. Idempotent. */
  /**
   * Detaches everything and frees the object. Detaching a link waits for the
   * kernel (an RCU grace period per tracepoint or uprobe: 1 to 2 s for all of
   * them here, even in parallel). With `inBackground`, a short-lived helper
   * process holds the links while this one closes them, so that the kernel's
   * teardown happens when the helper exits, after this process is gone: for
   * `agentrace run`, whose user waits for it. The probes stop firing at once
   * either way (what they would see is no longer read).
   */
  close(options: { inBackground?: boolean } = {}): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.pollTimer);
    const holder = options.inBackground ? holdLinks(this.obj.linkFds()) : undefined;
    this.obj.close();
    holder?.release();
  }

  private checkGroup(group: string): ProbeGroup {
    if (!(probeGroups as readonly string[]).includes(group)) {
      throw new RangeError(`unknown probe group ${JSON.stringify(group)}; groups are ${probeGroups.join(', ')}`);
    }
    return group as ProbeGroup;
  }

  /** The programs a group needs now: context's write probe is redundant while io's runs. */
  private groupPrograms(group: ProbeGroup): readonly string[] {
    const names = this.programsByGroup.get(group) ?? [];
    if (group === 'context' && this.wanted.has('io')) return names.filter((n) => n !== SLOT_REGISTER);
    return names;
  }

  /** Links exactly the programs of the wanted groups; attaches before it detaches, so no syscall goes unseen. */
  private syncPrograms(): void {
    const want = new Set<string>();
    for (const g of this.wanted) for (const name of this.groupPrograms(g)) want.add(name);
    for (const name of want) this.obj.attach(name);
    for (const g of probeGroups) {
      for (const name of this.programsByGroup.get(g) ?? []) if (!want.has(name)) this.obj.detach(name);
    }
  }
}

export { workSubmitFunction, workRunFunctions, type WorkProbesResult } from './uprobes.js';
export type { AggregateKind, SyscallAggregate, SpanAggregates, SpanEventCounts, SpanKernelSummary } from './kernel-aggregates.js';
