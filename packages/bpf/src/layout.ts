// The kernel ABI as the rest of user space uses it: offsets, lengths and enum
// values, all read from abi.generated.ts (generated from the compiled
// object's BTF by scripts/gen-abi.mjs; the build fails while it is stale),
// under the names the decoder and the probes use.
import { enums, structs, type AbiStruct } from './abi.generated.js';

export interface StructLayout {
  /** sizeof(struct) */
  readonly size: number;
  /** member name -> byte offset */
  readonly fields: Readonly<Record<string, number>>;
}

// Widths the ABI spells as array lengths.
export const TRACE_ID_LEN: number = structs.ar_span_ctx.fields.trace_id.count;
export const SPAN_ID_LEN: number = structs.ar_span_ctx.fields.span_id.count;
export const COMM_LEN: number = structs.ar_event_header.fields.comm.count;
export const PATH_LEN: number = structs.ar_file_open_event.fields.path.count;
export const ARGS_LEN: number = structs.ar_proc_exec_event.fields.args.count;
export const SOCKADDR_LEN: number = structs.ar_net_connect_event.fields.sockaddr.count;

const K = enums.ar_event_kind;
export const EventKind = {
  FileOpen: K.AR_EV_FILE_OPEN,
  NetConnect: K.AR_EV_NET_CONNECT,
  ProcExec: K.AR_EV_PROC_EXEC,
  ProcFork: K.AR_EV_PROC_FORK,
  ProcExit: K.AR_EV_PROC_EXIT,
  DnsLookup: K.AR_EV_DNS_LOOKUP,
  DnsQuery: K.AR_EV_DNS_QUERY,
  ProcDeclare: K.AR_EV_PROC_DECLARE,
  RuntimeExec: K.AR_EV_RUNTIME_EXEC,
  PolicyNet: K.AR_EV_POLICY_NET,
  PolicyFile: K.AR_EV_POLICY_FILE,
} as const;
export type EventKind = (typeof EventKind)[keyof typeof EventKind];

const A = enums.ar_attr_source;
/** Which rung of the attribution ladder found an event's span. */
export const AttrSource = {
  None: A.AR_ATTR_NONE,
  Slot: A.AR_ATTR_SLOT,
  Thread: A.AR_ATTR_THREAD,
  Work: A.AR_ATTR_WORK,
  Fd: A.AR_ATTR_FD,
  Process: A.AR_ATTR_PROCESS,
  Nobody: A.AR_ATTR_NOBODY,
  Pipe: A.AR_ATTR_PIPE,
  PipeAmbiguous: A.AR_ATTR_PIPE_AMBIGUOUS,
  Frame: A.AR_ATTR_FRAME,
} as const;
export type AttrSource = (typeof AttrSource)[keyof typeof AttrSource];

const G = enums.ar_agg_kind;
/** What the kernel aggregates per span (ar_agg_key.kind). */
export const AggKind = {
  Read: G.AR_AGG_READ,
  Write: G.AR_AGG_WRITE,
  Send: G.AR_AGG_SEND,
  Recv: G.AR_AGG_RECV,
  Open: G.AR_AGG_OPEN,
  Connect: G.AR_AGG_CONNECT,
  Exec: G.AR_AGG_EXEC,
} as const;
export type AggKind = (typeof AggKind)[keyof typeof AggKind];
export const AGG_KIND_COUNT: number = G.AR_AGG_KINDS;
/** Buckets of the kernel's log2 latency histograms: [2^i, 2^(i+1)) ns, the last open-ended. */
export const HIST_BUCKETS: number = structs.ar_agg_value.fields.latency_hist.count;

const S = enums.ar_stat;
/** Indexes of the ar_stats per-CPU counters. */
export const Stat = {
  Events: S.AR_STAT_EVENTS,
  RingbufDrops: S.AR_STAT_RINGBUF_DROPS,
  PendingFull: S.AR_STAT_PENDING_FULL,
  TrackedFull: S.AR_STAT_TRACKED_FULL,
  ReadFaults: S.AR_STAT_READ_FAULTS,
  Capped: S.AR_STAT_CAPPED,
  AggFull: S.AR_STAT_AGG_FULL,
  Declared: S.AR_STAT_DECLARED,
  FrameUnreadable: S.AR_STAT_FRAME_UNREADABLE,
} as const;
export const STAT_COUNT: number = S.AR_STAT_MAX;

const F = enums.ar_frame_check;
/** How a thread's frame reader was checked at its registration (ar_frame_reader.check). */
export const FrameCheck = {
  Ok: F.AR_FRAME_OK,
  NoIsolate: F.AR_FRAME_NO_ISOLATE,
  NoFrame: F.AR_FRAME_NO_FRAME,
  Unreadable: F.AR_FRAME_UNREADABLE,
  NotFound: F.AR_FRAME_NOT_FOUND,
  NoKeyTag: F.AR_FRAME_NO_KEY_TAG,
} as const;
export type FrameCheck = (typeof FrameCheck)[keyof typeof FrameCheck];

/** ar_proc_info.flags */
export const ProcFlag = { SelfDeclared: enums.ar_proc_flag.AR_PROC_SELF_DECLARED } as const;

/** The slot registration: a write of SLOT_SIZE bytes starting with this magic. */
export const SLOT_SIZE: number = structs.ar_thread_slot.size;
export const SLOT_MAGIC = 'agentrace:slot:1';

type Offsets<S extends AbiStruct> = { readonly size: number; readonly fields: { readonly [F in keyof S['fields']]: number } };

/** Every struct of agentrace.h: its size and each member's offset (widths and signedness: abi.generated.ts). */
export const layouts = Object.fromEntries(
  Object.entries(structs).map(([name, st]) => [name, { size: st.size, fields: Object.fromEntries(Object.entries(st.fields).map(([f, d]) => [f, d.offset])) }]),
) as { readonly [N in keyof typeof structs]: Offsets<(typeof structs)[N]> };

export type StructName = keyof typeof layouts;
