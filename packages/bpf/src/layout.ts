// The byte layout of every struct in src/bpf/agentrace.h, by offset. This is
// the only place the TS side knows offsets; test/layout.test.ts compares it
// with the BTF of the compiled object, member by member.

export interface StructLayout {
  /** sizeof(struct) */
  readonly size: number;
  /** member name -> byte offset */
  readonly fields: Readonly<Record<string, number>>;
}

export const TRACE_ID_LEN = 16;
export const SPAN_ID_LEN = 8;
export const COMM_LEN = 16;
export const PATH_LEN = 256;
export const ARGS_LEN = 256;
export const SOCKADDR_LEN = 112;

export const EventKind = {
  FileOpen: 1,
  NetConnect: 2,
  ProcExec: 3,
  ProcFork: 4,
  ProcExit: 5,
  DnsLookup: 6,
  DnsQuery: 7,
  ProcDeclare: 8,
  RuntimeExec: 9,
} as const;
export type EventKind = (typeof EventKind)[keyof typeof EventKind];

/** Which rung of the attribution ladder found an event's span. */
export const AttrSource = {
  None: 0,
  Slot: 1,
  Thread: 2,
  Work: 3,
  Fd: 4,
  Process: 5,
  Nobody: 6,
} as const;
export type AttrSource = (typeof AttrSource)[keyof typeof AttrSource];

/** What the kernel aggregates per span (ar_agg_key.kind). */
export const AggKind = { Read: 0, Write: 1, Send: 2, Recv: 3, Open: 4, Connect: 5, Exec: 6 } as const;
export type AggKind = (typeof AggKind)[keyof typeof AggKind];
export const AGG_KIND_COUNT = 7;
/** Buckets of the kernel's log2 latency histograms: [2^i, 2^(i+1)) ns, the last open-ended. */
export const HIST_BUCKETS = 40;

/** Indexes of the ar_stats per-CPU counters. */
export const Stat = {
  Events: 0,
  RingbufDrops: 1,
  PendingFull: 2,
  TrackedFull: 3,
  ReadFaults: 4,
  Capped: 5,
  AggFull: 6,
  Declared: 7,
} as const;
export const STAT_COUNT = 8;

/** ar_proc_info.flags */
export const ProcFlag = { SelfDeclared: 1 } as const;

/** The slot registration: a write of SLOT_SIZE bytes starting with this magic. */
export const SLOT_SIZE = 32;
export const SLOT_MAGIC = 'agentrace:slot:1';

export const layouts = {
  ar_thread_slot: {
    size: 32,
    fields: { trace_id: 0, span_id: 16, valid: 24, trace_flags: 25, attrs_size: 26, _reserved: 28 },
  },
  ar_span_ctx: { size: 24, fields: { trace_id: 0, span_id: 16 } },
  ar_agg_key: { size: 16, fields: { span_id: 0, kind: 8, _pad: 12 } },
  ar_agg_value: { size: 352, fields: { calls: 0, errors: 8, bytes: 16, latency_sum_ns: 24, latency_hist: 32 } },
  ar_span_counts: { size: 40, fields: { emitted: 0, capped: 8, ringbuf_drops: 16, map_full: 24, ambiguous: 32 } },
  ar_config: { size: 8, fields: { max_events_per_span: 0, wakeup_bytes: 4 } },
  ar_proc_info: { size: 32, fields: { span: 0, parent_tgid: 24, flags: 28 } },
  ar_fd_key: { size: 8, fields: { tgid: 0, fd: 4 } },
  ar_fd_owner: { size: 32, fields: { span: 0, flags: 24, last_op: 28 } },
  ar_event_header: {
    size: 64,
    fields: { ts_ns: 0, kind: 8, pid: 12, tid: 16, attr_source: 20, _pad: 21, span: 24, comm: 48 },
  },
  ar_file_open_event: {
    size: 352,
    fields: { hdr: 0, ret: 64, flags: 72, latency_ns: 80, dfd: 88, mode: 92, path: 96 },
  },
  ar_net_connect_event: {
    size: 208,
    fields: { hdr: 0, ret: 64, latency_ns: 72, fd: 80, addrlen: 84, sock_type: 88, _pad: 92, sockaddr: 96 },
  },
  ar_proc_exec_event: {
    size: 600,
    fields: { hdr: 0, ret: 64, latency_ns: 72, argc: 80, args_len: 84, filename: 88, args: 344 },
  },
  ar_proc_fork_event: { size: 72, fields: { hdr: 0, child_pid: 64, _pad: 68 } },
  ar_proc_exit_event: { size: 72, fields: { hdr: 0, exit_code: 64, signal: 68 } },
  ar_proc_declare_event: { size: 64, fields: { hdr: 0 } },
  ar_runtime_exec_event: { size: 64, fields: { hdr: 0 } },
  ar_dns_lookup_event: { size: 336, fields: { hdr: 0, ret: 64, _pad: 68, latency_ns: 72, name: 80 } },
  ar_dns_query_event: {
    size: 336,
    fields: { hdr: 0, fd: 64, len: 68, port: 72, transport: 74, _pad: 75, payload: 80 },
  },
} as const satisfies Record<string, StructLayout>;

export type StructName = keyof typeof layouts;
