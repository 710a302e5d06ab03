export { Probes, probeGroups, workRunFunctions, workSubmitFunction, DEFAULT_MAX_EVENTS_PER_SPAN } from './probes.js';
export type { ProbeGroup, ProbesOptions, ProbeStats, EventsHandler, DecodeErrorHandler, WorkProbesResult, AggregateKind, SyscallAggregate, SpanAggregates, SpanEventCounts, SpanKernelSummary } from './probes.js';
export { emptyAggregate, mergeAggregates, noEvents } from './kernel-aggregates.js';
export { decodeEvent, decodeSockaddr, dnsQuestion, EventDecoder } from './decode.js';
export type {
  KernelEvent,
  EventHeader,
  FileOpenEvent,
  NetConnectEvent,
  PolicyNetEvent,
  PolicyFileEvent,
  ProcExecEvent,
  ProcForkEvent,
  ProcExitEvent,
  ProcDeclareEvent,
  RuntimeExecEvent,
  DnsLookupEvent,
  DnsQueryEvent,
  SocketAddress,
  SpanRef,
} from './decode.js';
export { AttrSource, EventKind, AggKind, AGG_KIND_COUNT, HIST_BUCKETS, Stat, STAT_COUNT, ProcFlag, FrameCheck, SLOT_MAGIC, SLOT_SIZE, layouts } from './layout.js';
export type { StructLayout, StructName } from './layout.js';
export { defaultObjectPath } from './native.js';
export { peerCredentials } from './peer.js';
export type { PeerCredentials } from './native.js';
export { bpfUnavailableReason } from './availability.js';
export { INITIAL_PID_NAMESPACE, ownPidNamespace } from './pid-namespace.js';
export { AddonLoadError, BpfError, DecodeError, isBpfError } from './errors.js';
/** The BPF object's program names (the kernel shows their first 15 characters). */
export { programs } from './abi.generated.js';
export {
  address16,
  cgroup2Root,
  POLICY_DEFAULT_TOOL,
  POLICY_MAX_PORT_RANGES,
  POLICY_OUTSIDE_TOOL,
  type PolicyMode,
  type PolicyNetEntry,
  type PolicyHostEntry,
  type PolicyFileEntry,
  POLICY_FILE_KEY_LEN,
  hostHash,
  type PolicyTables,
  type PolicyToolEntry,
  type PolicyExecEntry,
  type PolicyGeneration,
  fnv1a,
  ruleRef,
  type Verdict,
} from './policy-tables.js';
export { readElfSymbols, readV8Layout, setterDisplacements, staticTlsOffset, v8LayoutSymbols } from './v8-layout.js';
export type { ElfSymbol, ElfSymbols } from './native.js';
export type { V8Layout, V8LayoutResult } from './v8-layout.js';
