/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every struct shared between the BPF programs and user space: ring-buffer
 * events and map values. The TypeScript decoder (src/layout.ts) mirrors these
 * by offset; test/layout.test.ts checks it against the BTF of the compiled
 * object, so the two cannot drift. Change a layout here, then there.
 *
 * Only fixed-width types; every struct is padded explicitly so that its size
 * and offsets are the same for clang -target bpf and any user-space reader.
 */
#ifndef AGENTRACE_H
#define AGENTRACE_H

#define AR_TRACE_ID_LEN 16
#define AR_SPAN_ID_LEN 8
#define AR_COMM_LEN 16
#define AR_PATH_LEN 256
#define AR_ARGS_LEN 256 /* first arguments of an exec, NUL-separated */
#define AR_MAX_ARGS 8
#define AR_SOCKADDR_LEN 112 /* enough for sockaddr_in6 and sockaddr_un */

enum ar_event_kind {
	AR_EV_FILE_OPEN = 1,
	AR_EV_NET_CONNECT = 2,
	AR_EV_PROC_EXEC = 3,
	AR_EV_PROC_FORK = 4,
	AR_EV_PROC_EXIT = 5,
	AR_EV_DNS_LOOKUP = 6,
	AR_EV_DNS_QUERY = 7,
	AR_EV_PROC_DECLARE = 8,
	AR_EV_RUNTIME_EXEC = 9,
	AR_EV_POLICY_NET = 10,
	AR_EV_POLICY_FILE = 11,
};

/* Which rung of the attribution ladder (DESIGN.md) found the span. */
enum ar_attr_source {
	AR_ATTR_NONE = 0,
	AR_ATTR_SLOT = 1,    /* thread slot in the agent's memory */
	AR_ATTR_THREAD = 2,  /* otel_traces_ctx_v1, written by the sidecar */
	AR_ATTR_WORK = 3,    /* libuv work item submitted under a span */
	AR_ATTR_FD = 4,      /* descriptor opened under a span */
	AR_ATTR_PROCESS = 5, /* process forked under a span */
	/* The slot says "nobody's" (AR_SPAN_NOBODY): the agent is writing a
	 * request it made outside any call. Never on an event. */
	AR_ATTR_NOBODY = 6,
	AR_ATTR_PIPE = 7,           /* a stdio server serving the request written under a span */
	AR_ATTR_PIPE_AMBIGUOUS = 8, /* the same, while it serves several calls' requests at once */
	AR_ATTR_FRAME = 9,          /* the call record in V8's async context (Node 24+: struct ar_call_record) */
};

/* A span id the slot holds while the agent writes a request made outside
 * any known call (a pooled HTTP request written from another call's
 * callback): the descriptor passes to nobody, not to the call whose
 * callback it is. */
#define AR_SPAN_NOBODY 0xffffffffffffffffULL

/* Indexes of the per-CPU counters in the ar_stats map. */
enum ar_stat {
	AR_STAT_EVENTS = 0,          /* events written to the ring buffer */
	AR_STAT_RINGBUF_DROPS = 1,   /* ring buffer full: event lost */
	AR_STAT_PENDING_FULL = 2,    /* per-thread syscall state map full: syscall not seen */
	AR_STAT_TRACKED_FULL = 3,    /* child of a tracked process not tracked */
	AR_STAT_READ_FAULTS = 4,     /* user memory could not be read */
	AR_STAT_CAPPED = 5,          /* span over its event cap: counted, not emitted */
	AR_STAT_AGG_FULL = 6,        /* per-span aggregate or counter map full: not counted */
	AR_STAT_DECLARED = 7,        /* processes that declared themselves by a slot registration */
	AR_STAT_FRAME_UNREADABLE = 8, /* a thread's async context could not be read: lower rungs asked */
	AR_STAT_MAX = 9,
};
/* Value of otel_traces_ctx_v1 (OTEP 4855: key pid_tgid, value trace and span
 * id), so other eBPF tools can read which span a thread runs. */
struct ar_span_ctx {
	__u8 trace_id[AR_TRACE_ID_LEN];
	__u8 span_id[AR_SPAN_ID_LEN];
};

/* The thread slot (rung 1): OTEP 4947's thread context record, which the
 * agent keeps in its own memory and rewrites on every context switch. The
 * probes read it with bpf_probe_read_user; no syscall per switch.
 * A thread registers its slot by write(2)-ing it (AR_SLOT_SIZE bytes) while
 * trace_id holds AR_SLOT_MAGIC: the write probe then records where it is. */
#define AR_SLOT_SIZE 32
#define AR_SLOT_MAGIC "agentrace:slot:1" /* 16 bytes, over trace_id */
#define AR_SLOT_MAGIC_LO 0x636172746e656761ULL /* "agentrac", little-endian */
#define AR_SLOT_MAGIC_HI 0x313a746f6c733a65ULL /* "e:slot:1" */

struct ar_thread_slot {
	__u8 trace_id[AR_TRACE_ID_LEN];
	__u8 span_id[AR_SPAN_ID_LEN];
	__u8 valid; /* 1: trace_id/span_id are the running span */
	__u8 trace_flags;
	__u16 attrs_size; /* OTEP 4947 attributes that follow; always 0 here */
	__u32 tool;       /* FNV-1a (32 bits) of the call's gen_ai.tool.name; 0: none (per-tool policy) */
};

/* Rung 0, on Node with AsyncContextFrame (24+): the call record. The SDK
 * keeps each call's record in an AsyncLocalStorage store, and V8 carries the
 * store with every continuation by itself: the isolate's continuation-
 * preserved embedder data is the running AsyncContextFrame, a JS Map from
 * each AsyncLocalStorage to its store. The kernel walks it from the thread's
 * isolate at syscall time, so JS runs nothing per await. The record is the
 * slot's OTEP 4947 record, and a tag that says it is one. */
#define AR_CALL_RECORD_SIZE 40
#define AR_CALL_RECORD_TAG "arcall:1" /* 8 bytes, after the OTEP 4947 record */
#define AR_CALL_RECORD_TAG_U64 0x313a6c6c61637261ULL /* the same, little-endian */
/* The SDK's AsyncLocalStorage holds this Smi in a field of its own: how the
 * kernel tells the SDK's store from other libraries' in a frame (the object
 * moves with the GC, its field does not change). */
#define AR_FRAME_KEY_TAG 826561089 /* 0x31435241, "ARC1" little-endian: a Smi on every V8 */

struct ar_call_record {
	struct ar_thread_slot ctx; /* valid = 1 */
	__u64 tag;                 /* AR_CALL_RECORD_TAG */
};

/* Where one node binary's V8 keeps what the frame rung reads (v8-layout.ts
 * finds it in the binary's symbols), by process; byte offsets. */
struct ar_v8_layout {
	__s64 isolate_tls;      /* the thread's v8::internal::Isolate*, at fsbase + this */
	__u32 cped;             /* Isolate: continuation-preserved embedder data (the frame) */
	__u32 undefined_root;   /* Isolate: the slot of the undefined value */
	__u32 table;            /* JSMap: its OrderedHashMap */
	__u32 fixed_array_data; /* FixedArray (the OrderedHashMap): element 0 */
	__u32 typed_array_data; /* JSTypedArray: external_pointer (off-heap data: base_pointer is 0) */
	__u32 _pad;
};

/* How a thread's frame reader was checked at its slot registration: the
 * SDK registers from inside a store that holds the slot itself, and the
 * kernel must find the slot's address walking the frame. */
enum ar_frame_check {
	AR_FRAME_OK = 1,
	AR_FRAME_NO_ISOLATE = 2,  /* no Isolate* at the thread-local */
	AR_FRAME_NO_FRAME = 3,    /* the isolate holds no frame (not AsyncContextFrame) */
	AR_FRAME_UNREADABLE = 4,  /* the frame or its table could not be read */
	AR_FRAME_NOT_FOUND = 5,   /* the frame holds no store whose data is the slot */
	AR_FRAME_NO_KEY_TAG = 6,  /* that store's AsyncLocalStorage has no AR_FRAME_KEY_TAG field */
};

/* A thread whose frames the kernel reads (rung 0), by pid_tgid. */
struct ar_frame_reader {
	__u64 isolate;
	__u64 undefined; /* the undefined value: a store of nobody's */
	__u32 key_tag;   /* offset of AR_FRAME_KEY_TAG in the SDK's AsyncLocalStorage object */
	__u32 check;     /* enum ar_frame_check; the rung is used only when AR_FRAME_OK */
	__u32 hint;      /* the entry the SDK's store was last found at (frames copy their parent's in order) */
	__u32 _pad;
	struct ar_v8_layout layout;
};

/* What is aggregated per span in the kernel (ar_agg_key.kind): descriptor
 * I/O (on descriptors opened or connected under the span) and the rare
 * syscalls that also produce events. */
enum ar_agg_kind {
	AR_AGG_READ = 0,    /* read, readv, pread64 */
	AR_AGG_WRITE = 1,   /* write, writev, pwrite64 */
	AR_AGG_SEND = 2,    /* sendto, sendmsg */
	AR_AGG_RECV = 3,    /* recvfrom, recvmsg */
	AR_AGG_OPEN = 4,    /* open, openat, openat2 */
	AR_AGG_CONNECT = 5, /* connect */
	AR_AGG_EXEC = 6,    /* execve, execveat */
	AR_AGG_KINDS = 7,
};

/* log2 latency histogram: bucket i counts calls that took [2^i, 2^(i+1)) ns
 * (bucket 0 also 0 ns); the last bucket is open-ended (about 9 minutes). */
#define AR_HIST_BUCKETS 40

struct ar_agg_key {
	__u8 span_id[AR_SPAN_ID_LEN];
	__u32 kind; /* enum ar_agg_kind */
	__u32 _pad;
};

struct ar_agg_value {
	__u64 calls;
	__u64 errors; /* calls that returned < 0 */
	__u64 bytes;  /* I/O kinds: bytes transferred */
	__u64 latency_sum_ns;
	__u64 latency_hist[AR_HIST_BUCKETS];
};

/* Per-span event accounting (ar_span_counts, keyed by span id): what was
 * emitted to the ring buffer, and every event that was not, by reason. */
struct ar_span_counts {
	__u64 emitted;
	__u64 capped;        /* over the span's cap: counted in aggregates only */
	__u64 ringbuf_drops; /* ring buffer full */
	__u64 map_full;      /* per-thread state or aggregate map full */
	__u64 ambiguous;     /* I/O on a connection that carried several calls' requests at once */
};

/* Settings user space may change at run time (ar_config[0]). */
struct ar_config {
	__u32 max_events_per_span; /* 0: no cap */
	/* Wake the consumer only once this many bytes wait in the ring buffer
	 * (0: on every event); user space also drains on a timer. A wakeup per
	 * event costs both sides more than the event itself. */
	__u32 wakeup_bytes;
	/* User space drains on no timer: wake it at the first event (the ring
	 * buffer's adaptive wakeup: when it was empty) instead of at wakeup_bytes. */
	__u32 consumer_idle;
	/* The generation of the policy loaded (1 or 2; 0: none). The policy
	 * tables hold a reload's entries beside the running ones under the
	 * other generation until this word switches to it: no decision sees
	 * half a policy. */
	__u32 policy;
	/* The policy in force has `files` rules: only then do opens of tracked
	 * processes leave their flags for the policy's open exit. */
	__u32 policy_files;
};

/* ar_proc_info.flags */
enum ar_proc_flag {
	/* Tracked because it registered a slot (the SDK's first act), before its
	 * hello: the sidecar confirms it at hello (SO_PEERCRED) or forgets it. */
	AR_PROC_SELF_DECLARED = 1,
};

/* Value of ar_tracked_procs, keyed by tgid. A zero span means the process
 * was tracked by the sidecar itself rather than inherited from a parent. */
struct ar_proc_info {
	struct ar_span_ctx span;
	__u32 parent_tgid;
	__u32 flags; /* enum ar_proc_flag */
	__u32 tool;  /* the tool word of the call it was forked under (0: not known) */
	__u32 _pad;
};

/* Key of the per-descriptor maps (ar_fd_spans, ar_dns_fds). */
struct ar_fd_key {
	__u32 tgid;
	__s32 fd;
};

/* ar_fd_owner.flags */
enum ar_fd_flag {
	/* A second call wrote a request while the owner's was still unanswered
	 * (HTTP/2, pipelining): the connection's I/O cannot be told apart. */
	AR_FD_AMBIGUOUS = 1,
};

/* ar_fd_owner.last_op */
enum ar_fd_op {
	AR_FD_OP_NONE = 0,
	AR_FD_OP_WRITE = 1,
	AR_FD_OP_READ = 2,
};

/* A syscall's part in the pipe rung (struct ar_pending_io). */
enum ar_chan_op {
	AR_CHAN_NONE = 0,
	AR_CHAN_WRITE = 1,  /* a write into a channel: its bytes carry the writer's span */
	AR_CHAN_READ = 2,   /* a read on stdin: requests taken */
	AR_CHAN_ANSWER = 3, /* a write on stdout by a process serving a call: an answer */
};

/* The pipe rung: the requests a channel (a pipe, or an AF_UNIX stream
 * socket pair: what a stdio MCP server's stdin is) carries, in order, each
 * with the span it was written under (zero: outside any call). */
/* What a write into a channel carries (a JSON-RPC message written whole). */
enum ar_chan_msg {
	AR_CHAN_MSG_NOTIFICATION = 0, /* no "id": never answered */
	AR_CHAN_MSG_REQUEST = 1,      /* an "id": it will be answered */
	AR_CHAN_MSG_CANCEL = 2,       /* notifications/cancelled: a request taken will not be */
	AR_CHAN_MSG_VOID = 3,         /* no message: bytes that never went in, or the rest of one */
};

#define AR_CHAN_SEGS 8
struct ar_chan_seg {
	struct ar_span_ctx span;
	__u64 start;   /* bytes written into the channel before this write */
	__u64 end;     /* bytes written into the channel once this write is in */
	__u64 seq;     /* its writer's sequence number + 1: 0 or stale, not (yet) this one */
	__u32 msg;     /* enum ar_chan_msg */
	__u32 _pad;
};

/* Lock-free (tracing programs cannot take BPF spin locks): writers number
 * their writes and count bytes with atomics; the channel's reader (one
 * thread reads a stdin at a time) alone moves rseq and read. */
struct ar_channel {
	struct ar_chan_seg segs[AR_CHAN_SEGS];
	__u64 wseq;    /* writes so far */
	__u64 written; /* bytes written so far */
	__u64 rseq;    /* writes wholly read so far */
	__u64 read;    /* bytes read so far */
	__u64 rest;    /* bytes of a message written in part still to come (the next writes) */
};

/* Per-tool policy (docs/POLICY.md). A tool is known to the kernel by the
 * FNV-1a of its name (the slot's `tool` word); two ids stand for the rules
 * of calls no pattern names and of activity outside any call. */
#define AR_POLICY_DEFAULT 1u
#define AR_POLICY_OUTSIDE 2u
#define AR_POLICY_PORTS 8

enum ar_policy_mode {
	AR_POLICY_NONE = 0,    /* no rule of this kind: anything goes, nothing recorded */
	AR_POLICY_AUDIT = 1,   /* a breach is allowed and recorded */
	AR_POLICY_ENFORCE = 2, /* a breach is refused (EPERM) and recorded */
	AR_POLICY_KILL = 3,    /* exec: a tool's child that breaches is killed (SIGKILL) before the program runs */
};

enum ar_verdict {
	AR_VERDICT_NONE = 0,    /* no policy applied */
	AR_VERDICT_ALLOWED = 1, /* the rule allows it */
	AR_VERDICT_AUDITED = 2, /* the rule does not allow it; audit mode let it through */
	AR_VERDICT_DENIED = 3,  /* the rule does not allow it; refused */
};

/* Key of ar_policy_tools: a tool in a generation of the policy. */
struct ar_policy_key {
	__u32 gen;
	__u32 tool;
};

/* ar_policy_tools[gen, tool]: the modes of the tool's rules, per kind. */
struct ar_policy_tool {
	__u32 net_mode;  /* enum ar_policy_mode */
	__u32 net_rule;  /* which rule (user space names it) */
	__u32 exec_mode; /* enum ar_policy_mode */
	__u32 exec_rule;
	__u32 files_mode;  /* enum ar_policy_mode: audit or kill */
	__u32 files_rule;
	__u32 files_flags; /* enum ar_files_flag: which opens the rule restricts */
	__u32 _pad;
};

enum ar_files_flag {
	AR_FILES_OPEN = 1,  /* every open: only under ar_files_open's prefixes */
	AR_FILES_WRITE = 2, /* opens for writing (or O_CREAT, O_TRUNC): only under ar_files_write's */
};

/* Bytes of a path a files rule's key holds: an LPM trie's 256 bytes of
 * data, less generation and tool. */
#define AR_FILE_KEY_LEN 248
/* Components of a path the files rules walk (to the process's root). */
#define AR_PATH_DEPTH 32

/* Key of the files tries (ar_files_open, ar_files_write): a tool and a path
 * prefix, a whole number of components and a '/' after them ("/tmp/"; the
 * root is "/"); a path is looked up with a '/' after it too, so that /tmp
 * holds /tmp and /tmp/x, not /tmpfoo. prefixlen counts generation and tool. */
struct ar_file_key {
	__u32 prefixlen;
	__u32 gen;
	__u32 tool;
	char path[AR_FILE_KEY_LEN];
};

/* Key of ar_exec_allow: a program a tool's children may execute, by the
 * FNV-1a (32 bits) of its path as execve was given it, or of a directory
 * and '*' ("/usr/bin/" then '*': any file right in /usr/bin). */
struct ar_exec_key {
	__u32 gen;
	__u32 tool;
	__u32 path;
};

/* Key of the allowed-destination tries (ar_net_tcp, ar_net_udp): a tool and
 * an address block (IPv4 as ::ffff:a.b.c.d); prefixlen counts the 64 bits of
 * generation and tool too. */
struct ar_net_key {
	__u32 prefixlen;
	__u32 gen;
	__u32 tool;
	__u8 addr[16];
};

struct ar_port_range {
	__u16 from; /* host order; 0-0 never matches */
	__u16 to;
};

/* The ports allowed to an address block (the longest block that holds the
 * address decides: user space copies the ports of the blocks around it
 * into it). nports 0: every port. */
struct ar_net_allow {
	__u32 nports;
	struct ar_port_range ports[AR_POLICY_PORTS];
};

/* Key of ar_host_names: a host name a tool's network rule names (`host:`),
 * by the FNV-1a (32 bits) of its letters lower-cased, without a trailing
 * dot, for one protocol (6: TCP, 17: UDP). Its value is the ports allowed. */
struct ar_host_key {
	__u32 gen;
	__u32 tool;
	__u32 name;
	__u32 proto;
};

/* Key of ar_host_addrs: an address a lookup of such a name (getaddrinfo)
 * returned to one of the tool's calls; the tool may reach it as the name's
 * rule says, for the rest of the generation (or until the LRU evicts it). */
struct ar_host_addr_key {
	__u32 gen;
	__u32 tool;
	__u32 proto;
	__u8 addr[16]; /* IPv4 as ::ffff:a.b.c.d */
};

/* What the connect probe leaves for the cgroup program of the same
 * syscall (by the raw pid_tgid: cgroup programs cannot read the slot), and
 * what the cgroup program decided, for the exit probe's event. */
struct ar_policy_ctx {
	__u32 tool;    /* 0: not known */
	__u32 in_call; /* the syscall belongs to a call */
	__u32 verdict; /* enum ar_verdict (of a send: its worst message's) */
	__u32 rule;
	/* a send's breach: where to (IPv4 as ::ffff:a.b.c.d), for its event */
	__u8 addr[16];
	__u16 port;   /* network order */
	__u16 family; /* AF_INET, AF_INET6 */
	__u32 sock_type;
};

/* A process's stdio wires, as it was exec'ed (ar_channel_of: stdin's
 * reading end, and the reading end of what its stdout writes into). A
 * server may move them to other descriptors (Python's mcp keeps them
 * above fd 2 and points fd 1 at stderr): they are known by their file,
 * whatever the descriptor. 0: not a pipe or AF_UNIX stream. */
struct ar_stdio {
	__u64 in;
	__u64 out;
};

/* What a process reading requests on its stdin serves now: the call of the
 * last request it read, until it has answered (written to its stdout) as
 * many times as it read requests. */
struct ar_serving {
	struct ar_span_ctx span;
	__u32 outstanding;
	__u32 ambiguous; /* it took another call's request while one was unanswered */
};

/* Rung 4: the call a descriptor's I/O belongs to now. Set when it is opened
 * or connected; a pooled connection passes to the call that uses it (writes
 * a request on it), and I/O outside any call after its owner ended is
 * nobody's. A zero span: known socket, no owner now. */
struct ar_fd_owner {
	struct ar_span_ctx span;
	__u32 flags;   /* enum ar_fd_flag */
	__u32 last_op; /* enum ar_fd_op */
};

struct ar_event_header {
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 kind;  /* enum ar_event_kind */
	__u32 pid;   /* tgid, as the kernel sees it */
	__u32 tid;
	__u8 attr_source; /* enum ar_attr_source */
	__u8 _pad[3];
	struct ar_span_ctx span;
	char comm[AR_COMM_LEN];
};

struct ar_file_open_event {
	struct ar_event_header hdr;
	__s64 ret; /* fd, or -errno */
	__u64 flags;
	__u64 latency_ns;
	__s32 dfd;
	__u32 mode;
	char path[AR_PATH_LEN];
};

struct ar_net_connect_event {
	struct ar_event_header hdr;
	__s64 ret; /* 0, or -errno (-EINPROGRESS for non-blocking sockets) */
	__u64 latency_ns;
	__s32 fd;
	__u32 addrlen;
	__u32 sock_type; /* SOCK_STREAM, SOCK_DGRAM, ...; 0 if unknown */
	__u32 verdict;   /* enum ar_verdict: what the policy decided */
	__u8 sockaddr[AR_SOCKADDR_LEN]; /* raw struct sockaddr as the caller passed it */
	__u32 rule;      /* the policy's rule that decided (user space names it) */
	__u32 _pad;
};

enum ar_policy_net_flag {
	AR_POLICY_NET_CONNECT = 1, /* a connect (else a UDP send) */
	/* no syscall probe saw it (io_uring submits without connect(2) or
	 * sendmsg(2)): its call cannot be told, the outside rules decided */
	AR_POLICY_NET_UNSEEN = 2,
};

/* A network decision no connect event carries: a UDP send the policy
 * refused or audited (sendto/sendmsg/sendmmsg to an address: the cgroup
 * sendmsg4/6 programs decide each message), or a connect or send of a
 * tracked process that no syscall probe saw. Allowed sends are not events:
 * they are counted in the span's aggregates. */
struct ar_policy_net_event {
	struct ar_event_header hdr;
	__s64 ret;      /* the send's result; for what no probe saw, -EPERM or 0 */
	__s32 fd;
	__u32 sock_type;
	__u32 verdict;  /* enum ar_verdict */
	__u32 rule;
	__u32 flags;    /* enum ar_policy_net_flag */
	__u32 _pad;
	__u8 sockaddr[AR_SOCKADDR_LEN]; /* sockaddr_in or sockaddr_in6 of the destination */
};

enum ar_policy_file_flag {
	AR_POLICY_FILE_WRITE = 1, /* opened for writing (or with O_CREAT or O_TRUNC) */
	/* Its path is not known whole: judged as held by no prefix */
	AR_POLICY_FILE_OUTSIDE_ROOT = 2, /* not reachable from the process's root (a descriptor from outside a chroot) */
	AR_POLICY_FILE_TOO_DEEP = 4,     /* more than AR_PATH_DEPTH components */
	AR_POLICY_FILE_TOO_LONG = 8,     /* longer than AR_FILE_KEY_LEN: judged by its first bytes */
};

/* An open a files rule does not allow: let through (audit; the agent's own
 * opens) or its process killed (kill: a tool's child). Allowed opens are
 * not events. The path is the file's own, walked from its dentry to the
 * process's root: links and ".." resolved, as the kernel opened it. */
struct ar_policy_file_event {
	struct ar_event_header hdr;
	__s32 fd;
	__u32 verdict;  /* enum ar_verdict */
	__u32 rule;
	__u32 flags;    /* enum ar_policy_file_flag */
	__u32 path_len; /* bytes of path (no NUL) */
	__u32 _pad;
	char path[AR_FILE_KEY_LEN];
};

struct ar_proc_exec_event {
	struct ar_event_header hdr;
	__s64 ret;
	__u64 latency_ns;
	__u32 argc;     /* arguments copied into args (at most AR_MAX_ARGS) */
	__u32 args_len; /* bytes used in args */
	__u32 verdict;  /* enum ar_verdict: what the policy decided */
	__u32 rule;     /* the policy's rule that decided */
	char filename[AR_PATH_LEN];
	char args[AR_ARGS_LEN];
};

struct ar_proc_fork_event {
	struct ar_event_header hdr; /* pid/tid: the forking thread */
	__u32 child_pid;            /* tgid of the new process */
	__u32 _pad;
};

struct ar_proc_exit_event {
	struct ar_event_header hdr;
	__s32 exit_code; /* exit status, or 0 when killed by a signal */
	__u32 signal;    /* terminating signal, 0 for a normal exit */
};

/* A process registered a slot before anyone tracked it: it is tracked from
 * now on, unconfirmed until its hello. */
struct ar_proc_declare_event {
	struct ar_event_header hdr;
};

/* A process (tracked or not) exec'd a node binary: user space hooks its
 * libuv threadpool now, before the agent gets to call a tool. */
struct ar_runtime_exec_event {
	struct ar_event_header hdr;
};

/* getaddrinfo(3) in libc: the name looked up, its result and latency. */
struct ar_dns_lookup_event {
	struct ar_event_header hdr;
	__s32 ret; /* 0, or an EAI_* code (negative) */
	__u32 _pad;
	__u64 latency_ns;
	char name[AR_PATH_LEN];
};

#define AR_DNS_PAYLOAD_LEN 256

/* A DNS query written to port 53 (resolvers that do not use getaddrinfo,
 * such as c-ares behind Node's dns.resolve*): the start of the message;
 * user space decodes the question. */
struct ar_dns_query_event {
	struct ar_event_header hdr;
	__s32 fd;
	__u32 len;       /* bytes the caller wrote */
	__u16 port;      /* destination port (53) */
	__u8 transport;  /* 1 udp, 2 tcp (with its 2-byte length prefix) */
	__u8 _pad[5];
	__u8 payload[AR_DNS_PAYLOAD_LEN];
};

#endif /* AGENTRACE_H */
