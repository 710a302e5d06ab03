// Turns ring-buffer samples into typed events. Every integer is read by the
// reader abi.generated.ts made from the object's BTF (its width and sign are
// the header's); strings and the span by the offsets in layout.ts.
import { DecodeError } from './errors.js';
import { AttrSource, EventKind, layouts, SPAN_ID_LEN, TRACE_ID_LEN, COMM_LEN, SOCKADDR_LEN } from './layout.js';
import { verdictName, type Verdict } from './policy-tables.js';
import { enums, read, readNumber } from './abi.generated.js';

export interface SpanRef {
  /** 32 lowercase hex digits */
  traceId: string;
  /** 16 lowercase hex digits */
  spanId: string;
}

export interface EventHeader {
  /** CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) */
  tsNs: bigint;
  pid: number;
  tid: number;
  comm: string;
  /** The span the event was attributed to, or null when no rung knew one. */
  span: SpanRef | null;
  attrSource: AttrSource;
}

export type SocketAddress =
  | { family: 'inet'; address: string; port: number }
  | { family: 'inet6'; address: string; port: number }
  | { family: 'unix'; path: string; abstract: boolean }
  | { family: 'other'; familyNumber: number };

export interface FileOpenEvent extends EventHeader {
  kind: 'file.open';
  /** fd on success, -errno on failure */
  ret: number;
  flags: number;
  mode: number;
  dfd: number;
  latencyNs: bigint;
  path: string;
}

export interface NetConnectEvent extends EventHeader {
  kind: 'net.connect';
  /** 0, or -errno (-EINPROGRESS for a non-blocking socket) */
  ret: number;
  fd: number;
  latencyNs: bigint;
  /** The socket's type; 'tcp'/'udp' for IP sockets, 'unix' for AF_UNIX; null if unknown. */
  transport: 'tcp' | 'udp' | 'unix' | null;
  peer: SocketAddress;
  /** What a loaded policy decided ('none': no policy applied). */
  verdict: Verdict;
  /** The rule that decided (the sidecar's index), with a verdict. */
  rule: number;
}

export interface ProcExecEvent extends EventHeader {
  kind: 'proc.exec';
  ret: number;
  latencyNs: bigint;
  filename: string;
  /** The first arguments (argv[0] included), as many as the probe copied. */
  args: string[];
  /** What a loaded policy's exec rule decided ('denied': the process was killed before the program ran). */
  verdict: Verdict;
  rule: number;
}

/**
 * A network decision no connect event carries: a UDP send a policy refused
 * ('denied': it failed with EPERM) or let through in audit mode; or, with
 * `unseen`, a connect or send of a tracked process that no syscall probe saw
 * (io_uring), decided by the outside rules since its call cannot be told.
 */
export interface PolicyNetEvent extends EventHeader {
  kind: 'policy.net';
  op: 'connect' | 'send';
  /** No syscall probe saw it: no call is known, the outside rules decided. */
  unseen: boolean;
  /** The send's result (bytes, or -errno); for what no probe saw, -EPERM or 0. */
  ret: number;
  transport: 'tcp' | 'udp' | null;
  peer: SocketAddress;
  verdict: Verdict;
  rule: number;
}

/**
 * An open a files rule does not allow: let through ('audited': the agent's
 * own, or audit mode) or its process killed ('denied': a tool's child in
 * kill mode). `path` is the file's own, from the process's root.
 */
export interface PolicyFileEvent extends EventHeader {
  kind: 'policy.file';
  fd: number;
  /** Opened for writing (or with O_CREAT or O_TRUNC). */
  write: boolean;
  path: string;
  /**
   * Why the path is not known whole, when it is not: the components found
   * from the file up ('outside-root', 'too-deep': then held by no prefix,
   * shown as `…/last/components`), or the first bytes ('too-long': judged by
   * them, shown as `/first/bytes…`).
   */
  partial: 'outside-root' | 'too-deep' | 'too-long' | null;
  verdict: Verdict;
  rule: number;
}

export interface ProcForkEvent extends EventHeader {
  kind: 'proc.fork';
  childPid: number;
}

export interface ProcExitEvent extends EventHeader {
  kind: 'proc.exit';
  exitCode: number;
  /** Terminating signal number, 0 for a normal exit. */
  signal: number;
}

/** A process registered a thread slot before anything tracked it: tracked from then on, unconfirmed until its hello. */
export interface ProcDeclareEvent extends EventHeader {
  kind: 'proc.declare';
}

/** A process ran a node binary (its comm starts with "node"): its threadpool is worth hooking now. */
export interface RuntimeExecEvent extends EventHeader {
  kind: 'runtime.exec';
}

export interface DnsLookupEvent extends EventHeader {
  kind: 'dns.lookup';
  /** The name given to getaddrinfo(3). */
  name: string;
  /** 0, or getaddrinfo's EAI_* code (negative). */
  ret: number;
  latencyNs: bigint;
}

export interface DnsQueryEvent extends EventHeader {
  kind: 'dns.query';
  fd: number;
  transport: 'udp' | 'tcp';
  port: number;
  /** The question's name, or null when the message could not be decoded. */
  name: string | null;
  /** The question's type (1 A, 28 AAAA, ...), or null. */
  questionType: number | null;
}

export type KernelEvent =
  | FileOpenEvent
  | NetConnectEvent
  | ProcExecEvent
  | ProcForkEvent
  | ProcExitEvent
  | ProcDeclareEvent
  | RuntimeExecEvent
  | DnsLookupEvent
  | DnsQueryEvent
  | PolicyNetEvent
  | PolicyFileEvent;

/** The first question of a DNS message (RFC 1035 4.1); null if it is not one. */
export function dnsQuestion(msg: Buffer): { name: string; type: number } | null {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return null; // QDCOUNT
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    const len = msg[off];
    if (len === undefined) return null;
    if (len === 0) break;
    if (len > 63 || off + 1 + len > msg.length) return null; // compression is not used in questions
    labels.push(msg.toString('latin1', off + 1, off + 1 + len));
    off += 1 + len;
  }
  if (off + 3 > msg.length) return null;
  return { name: labels.join('.'), type: msg.readUInt16BE(off + 1) };
}

const H = layouts.ar_event_header.fields;
const E = read.ar_event_header;

function cString(buf: Buffer, offset: number, max: number): string {
  const end = buf.indexOf(0, offset);
  const stop = end === -1 || end > offset + max ? offset + max : end;
  return buf.toString('utf8', offset, stop);
}

function isZero(buf: Buffer, start: number, len: number): boolean {
  for (let i = start; i < start + len; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Reads a struct ar_span_ctx at `offset`; an all-zero span id means none. */
export function spanFrom(buf: Buffer, offset: number): SpanRef | null {
  const spanOff = offset + layouts.ar_span_ctx.fields.span_id;
  const traceOff = offset + layouts.ar_span_ctx.fields.trace_id;
  if (isZero(buf, spanOff, SPAN_ID_LEN)) return null;
  return {
    traceId: buf.toString('hex', traceOff, traceOff + TRACE_ID_LEN),
    spanId: buf.toString('hex', spanOff, spanOff + SPAN_ID_LEN),
  };
}

/**
 * Decodes many events in a row. Consecutive events mostly share their span
 * and their thread's name: those are decoded once and the same (immutable)
 * values reused, which is most of the cost of an event.
 */
export class EventDecoder {
  // The last span's words (span id, trace id) and its decoded form.
  private readonly spanWords = new Uint32Array(6);
  private span: SpanRef | null = null;
  private spanValid = false;
  private commTid = -1;
  private readonly commWords = new Uint32Array(4);
  private comm = '';

  /** Decodes the event of `size` bytes at `base` in `buf`. */
  decode(buf: Buffer, base = 0, size = buf.length - base): KernelEvent {
    return decodeAt(buf, base, size, this);
  }

  header(buf: Buffer, base: number): EventHeader {
    const s = base + H.span + layouts.ar_span_ctx.fields.span_id;
    const t = base + H.span + layouts.ar_span_ctx.fields.trace_id;
    const w = this.spanWords;
    const w0 = buf.readUInt32LE(s);
    const w1 = buf.readUInt32LE(s + 4);
    const w2 = buf.readUInt32LE(t);
    const w3 = buf.readUInt32LE(t + 4);
    const w4 = buf.readUInt32LE(t + 8);
    const w5 = buf.readUInt32LE(t + 12);
    if (!this.spanValid || w0 !== w[0] || w1 !== w[1] || w2 !== w[2] || w3 !== w[3] || w4 !== w[4] || w5 !== w[5]) {
      w[0] = w0;
      w[1] = w1;
      w[2] = w2;
      w[3] = w3;
      w[4] = w4;
      w[5] = w5;
      this.spanValid = true;
      this.span = spanFrom(buf, base + H.span);
    }
    const tid = E.tid(buf, base);
    const c = base + H.comm;
    const cw = this.commWords;
    const c0 = buf.readUInt32LE(c);
    const c1 = buf.readUInt32LE(c + 4);
    const c2 = buf.readUInt32LE(c + 8);
    const c3 = buf.readUInt32LE(c + 12);
    if (tid !== this.commTid || c0 !== cw[0] || c1 !== cw[1] || c2 !== cw[2] || c3 !== cw[3]) {
      this.commTid = tid;
      cw[0] = c0;
      cw[1] = c1;
      cw[2] = c2;
      cw[3] = c3;
      this.comm = cString(buf, c, COMM_LEN);
    }
    return {
      tsNs: E.ts_ns(buf, base),
      pid: E.pid(buf, base),
      tid,
      comm: this.comm,
      span: this.span,
      attrSource: E.attr_source(buf, base) as AttrSource,
    };
  }
}

const oneShot = { header: (buf: Buffer, base: number): EventHeader => decodeHeader(buf, base) };

function decodeHeader(buf: Buffer, base: number): EventHeader {
  return {
    tsNs: E.ts_ns(buf, base),
    pid: E.pid(buf, base),
    tid: E.tid(buf, base),
    comm: cString(buf, base + H.comm, COMM_LEN),
    span: spanFrom(buf, base + H.span),
    attrSource: E.attr_source(buf, base) as AttrSource,
  };
}

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;

/** Decodes a raw struct sockaddr as connect(2) received it. */
export function decodeSockaddr(raw: Buffer, addrlen: number): SocketAddress {
  if (addrlen < 2) return { family: 'other', familyNumber: -1 };
  const family = raw.readUInt16LE(0);
  if (family === AF_INET && addrlen >= 8) {
    return { family: 'inet', port: raw.readUInt16BE(2), address: `${raw[4]}.${raw[5]}.${raw[6]}.${raw[7]}` };
  }
  if (family === AF_INET6 && addrlen >= 24) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(raw.readUInt16BE(8 + i * 2).toString(16));
    return { family: 'inet6', port: raw.readUInt16BE(2), address: compressIPv6(groups) };
  }
  if (family === AF_UNIX) {
    const len = Math.min(addrlen, raw.length) - 2;
    if (len > 0 && raw[2] === 0) {
      return { family: 'unix', abstract: true, path: raw.toString('utf8', 3, 2 + len).replace(/\0+$/, '') };
    }
    return { family: 'unix', abstract: false, path: cString(raw, 2, Math.max(len, 0)) };
  }
  return { family: 'other', familyNumber: family };
}

const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;

function transportOf(peer: SocketAddress, sockType: number): NetConnectEvent['transport'] {
  if (peer.family === 'unix') return 'unix';
  if (peer.family !== 'inet' && peer.family !== 'inet6') return null;
  if (sockType === SOCK_STREAM) return 'tcp';
  if (sockType === SOCK_DGRAM) return 'udp';
  return null;
}

function compressIPv6(groups: string[]): string {
  // IPv4-mapped addresses read best in their dotted form.
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') {
    const hi = parseInt(groups[6] ?? '0', 16);
    const lo = parseInt(groups[7] ?? '0', 16);
    return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

function expectSize(have: number, size: number, what: string): void {
  if (have < size) throw new DecodeError(`${what} sample is ${have} bytes, expected ${size}`);
}

/** Decodes one ring-buffer sample (the whole of `buf`). */
export function decodeEvent(buf: Buffer): KernelEvent {
  return decodeAt(buf, 0, buf.length, oneShot);
}

function decodeAt(buf: Buffer, b: number, size: number, headers: { header(buf: Buffer, base: number): EventHeader }): KernelEvent {
  if (b < 0 || size < 0 || b + size > buf.length) throw new DecodeError(`sample [${b}, ${b + size}) lies outside its ${buf.length}-byte batch`);
  expectSize(size, layouts.ar_event_header.size, 'event header');
  const kind = read.ar_event_header.kind(buf, b);
  const hdr = headers.header(buf, b);
  switch (kind) {
    case EventKind.FileOpen: {
      const L = layouts.ar_file_open_event;
      expectSize(size, L.size, 'file.open');
      const f = L.fields;
      const r = read.ar_file_open_event;
      const n = readNumber.ar_file_open_event;
      // Spelled out rather than spread: the hottest event, built in one go.
      return {
        kind: 'file.open',
        tsNs: hdr.tsNs,
        pid: hdr.pid,
        tid: hdr.tid,
        comm: hdr.comm,
        span: hdr.span,
        attrSource: hdr.attrSource,
        // an fd or -errno
        ret: n.ret(buf, b),
        // open flags are an int, held in a u64
        flags: n.flags(buf, b),
        latencyNs: r.latency_ns(buf, b),
        dfd: r.dfd(buf, b),
        mode: r.mode(buf, b),
        path: cString(buf, b + f.path, L.size - f.path),
      };
    }
    case EventKind.NetConnect: {
      const L = layouts.ar_net_connect_event;
      expectSize(size, L.size, 'net.connect');
      const r = read.ar_net_connect_event;
      const peer = decodeSockaddr(buf.subarray(b + L.fields.sockaddr, b + L.fields.sockaddr + SOCKADDR_LEN), r.addrlen(buf, b));
      return {
        kind: 'net.connect',
        ...hdr,
        ret: readNumber.ar_net_connect_event.ret(buf, b),
        latencyNs: r.latency_ns(buf, b),
        fd: r.fd(buf, b),
        transport: transportOf(peer, r.sock_type(buf, b)),
        peer,
        verdict: verdictName(r.verdict(buf, b)),
        rule: r.rule(buf, b),
      };
    }
    case EventKind.ProcExec: {
      const L = layouts.ar_proc_exec_event;
      expectSize(size, L.size, 'proc.exec');
      const f = L.fields;
      const r = read.ar_proc_exec_event;
      const argc = r.argc(buf, b);
      const argsLen = Math.min(r.args_len(buf, b), L.size - f.args);
      const args = argsLen === 0 ? [] : buf.toString('utf8', b + f.args, b + f.args + argsLen).split('\0');
      if (args.length > 0 && args[args.length - 1] === '') args.pop();
      return {
        kind: 'proc.exec',
        ...hdr,
        ret: readNumber.ar_proc_exec_event.ret(buf, b),
        latencyNs: r.latency_ns(buf, b),
        filename: cString(buf, b + f.filename, f.args - f.filename),
        args: args.slice(0, argc),
        verdict: verdictName(r.verdict(buf, b)),
        rule: r.rule(buf, b),
      };
    }
    case EventKind.PolicyNet: {
      const L = layouts.ar_policy_net_event;
      expectSize(size, L.size, 'policy.net');
      const r = read.ar_policy_net_event;
      const peer = decodeSockaddr(buf.subarray(b + L.fields.sockaddr, b + L.fields.sockaddr + SOCKADDR_LEN), SOCKADDR_LEN);
      const flags = r.flags(buf, b);
      const type = r.sock_type(buf, b);
      return {
        kind: 'policy.net',
        ...hdr,
        op: flags & enums.ar_policy_net_flag.AR_POLICY_NET_CONNECT ? 'connect' : 'send',
        unseen: (flags & enums.ar_policy_net_flag.AR_POLICY_NET_UNSEEN) !== 0,
        ret: readNumber.ar_policy_net_event.ret(buf, b),
        transport: type === SOCK_DGRAM ? 'udp' : type === SOCK_STREAM ? 'tcp' : null,
        peer,
        verdict: verdictName(r.verdict(buf, b)),
        rule: r.rule(buf, b),
      };
    }
    case EventKind.PolicyFile: {
      const L = layouts.ar_policy_file_event;
      expectSize(size, L.size, 'policy.file');
      const r = read.ar_policy_file_event;
      const flags = r.flags(buf, b);
      const F = enums.ar_policy_file_flag;
      const len = Math.min(r.path_len(buf, b), L.size - L.fields.path);
      const partial = flags & F.AR_POLICY_FILE_OUTSIDE_ROOT ? 'outside-root' : flags & F.AR_POLICY_FILE_TOO_DEEP ? 'too-deep' : flags & F.AR_POLICY_FILE_TOO_LONG ? 'too-long' : null;
      const text = buf.toString('utf8', b + L.fields.path, b + L.fields.path + len);
      return {
        kind: 'policy.file',
        ...hdr,
        fd: r.fd(buf, b),
        write: (flags & F.AR_POLICY_FILE_WRITE) !== 0,
        // what the walk did not reach (the components above, the rest of a long path) is an ellipsis
        path: partial === 'too-long' ? `${text}…` : partial ? `…${text}` : text,
        partial,
        verdict: verdictName(r.verdict(buf, b)),
        rule: r.rule(buf, b),
      };
    }
    case EventKind.ProcFork: {
      const L = layouts.ar_proc_fork_event;
      expectSize(size, L.size, 'proc.fork');
      return { kind: 'proc.fork', ...hdr, childPid: read.ar_proc_fork_event.child_pid(buf, b) };
    }
    case EventKind.ProcExit: {
      const L = layouts.ar_proc_exit_event;
      expectSize(size, L.size, 'proc.exit');
      return {
        kind: 'proc.exit',
        ...hdr,
        exitCode: read.ar_proc_exit_event.exit_code(buf, b),
        signal: read.ar_proc_exit_event.signal(buf, b),
      };
    }
    case EventKind.ProcDeclare:
      expectSize(size, layouts.ar_proc_declare_event.size, 'proc.declare');
      return { kind: 'proc.declare', ...hdr };
    case EventKind.RuntimeExec:
      expectSize(size, layouts.ar_runtime_exec_event.size, 'runtime.exec');
      return { kind: 'runtime.exec', ...hdr };
    case EventKind.DnsLookup: {
      const L = layouts.ar_dns_lookup_event;
      expectSize(size, L.size, 'dns.lookup');
      const f = L.fields;
      return {
        kind: 'dns.lookup',
        ...hdr,
        ret: read.ar_dns_lookup_event.ret(buf, b),
        latencyNs: read.ar_dns_lookup_event.latency_ns(buf, b),
        name: cString(buf, b + f.name, L.size - f.name),
      };
    }
    case EventKind.DnsQuery: {
      const L = layouts.ar_dns_query_event;
      expectSize(size, L.size, 'dns.query');
      const f = L.fields;
      const r = read.ar_dns_query_event;
      const tcp = r.transport(buf, b) === 2;
      const len = Math.min(r.len(buf, b), L.size - f.payload);
      // Over TCP a DNS message is preceded by its 2-byte length.
      const msg = buf.subarray(b + f.payload + (tcp ? 2 : 0), b + f.payload + len);
      const q = dnsQuestion(msg);
      return {
        kind: 'dns.query',
        ...hdr,
        fd: r.fd(buf, b),
        transport: tcp ? 'tcp' : 'udp',
        port: r.port(buf, b),
        name: q?.name ?? null,
        questionType: q?.type ?? null,
      };
    }
    default:
      throw new DecodeError(`unknown event kind ${kind} (${size} bytes): the BPF object and this decoder disagree`);
  }
}
