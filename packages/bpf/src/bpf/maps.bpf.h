/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Every map of the agentrace object. Sizes are defaults; the loader may
 * change max_entries before load. */
#ifndef AR_MAPS_BPF_H
#define AR_MAPS_BPF_H

#include "agentrace.h"

/* Processes whose syscalls are traced, by tgid. The sidecar adds the agent;
 * the fork probe adds descendants; the exit probe removes them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct ar_proc_info);
} ar_tracked_procs SEC(".maps");

/* The first test of every probe: one bit per tgid, set for tracked
 * processes. An inlined array load, where a hash lookup costs an untracked
 * process (every other process on the host) several times more. User space
 * flips bits with atomic ops on the mmap()ed array; the fork and exit probes
 * with BPF atomics. ar_tracked_procs stays the authority (and holds the
 * inherited span): a bit without an entry there is not tracked. */
#define AR_PID_MAX_LIMIT 4194304 /* PID_MAX_LIMIT on 64-bit */
#define AR_TRACKED_WORDS (AR_PID_MAX_LIMIT / 64)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, AR_TRACKED_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} ar_tracked_bits SEC(".maps");

/* Rung 2: the span each thread runs, written by the sidecar (OTEP 4855
 * layout and name, so other eBPF readers can share it). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ar_span_ctx);
} otel_traces_ctx_v1 SEC(".maps");

/* Rung 1: where each thread's slot lives in its process (user address). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} ar_thread_slots SEC(".maps");

/* Rung 0: V8's layout in each process whose frames may be read (written by
 * user space at the agent's hello), and each thread whose frames are read. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct ar_v8_layout);
} ar_v8_layouts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ar_frame_reader);
} ar_frame_readers SEC(".maps");

/* Rung 3: a libuv work item (struct uv__work *) submitted under a span, by
 * process, and the span of the item each threadpool thread runs now. */
/* The call a work item was submitted under, and its tool word. */
struct ar_work_call {
	struct ar_span_ctx span;
	__u32 tool;
	__u32 _pad;
};

struct ar_work_key {
	__u32 tgid;
	__u32 _pad;
	__u64 work; /* user address of the struct uv__work */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ar_work_key);
	__type(value, struct ar_work_call);
} ar_work_items SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ar_work_call);
} ar_work_current SEC(".maps");

/* getaddrinfo calls in progress, by thread: the name pointer and the start
 * time. Not ar_pending: getaddrinfo makes syscalls of its own meanwhile. */
struct ar_pending_dns {
	__u64 ts_ns;
	__u64 name;
	__u64 res; /* struct addrinfo **: where the answer goes */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct ar_pending_dns);
} ar_pending_dns SEC(".maps");

/* Rung 4: the call each descriptor of a tracked process belongs to now
 * (struct ar_fd_owner: opened or connected under it, or last used by it). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ar_fd_key);
	__type(value, struct ar_fd_owner);
} ar_fd_spans SEC(".maps");

/* Tool calls that have ended (key: span id), written by the sidecar when it
 * reads their end: I/O outside any call on a descriptor an ended call owned
 * is nobody's. LRU: only recent ends matter (a descriptor an older call
 * owned and nobody used since is rare and costs at most a late count). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} ar_ended_spans SEC(".maps");

/* Sockets of tracked processes connected to port 53: value 1 udp, 2 tcp. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ar_fd_key);
	__type(value, __u8);
} ar_dns_fds SEC(".maps");

/* Descriptor I/O in progress, by thread: which span and kind it counts to,
 * and when it entered (for the latency histogram). */
struct ar_pending_io {
	struct ar_agg_key key;
	__u64 ts_ns;
	__u32 ambiguous; /* the descriptor carries several calls at once */
	__u32 chan_op;   /* enum ar_chan_op: this syscall's part in the pipe rung */
	__u64 chan;      /* the channel it writes into or reads from */
	struct ar_span_ctx chan_span; /* the writer's own span (chan_op WRITE) */
	__u32 chan_msg;               /* enum ar_chan_msg: what it writes (chan_op WRITE) */
	__u32 _pad2;
	__u64 chan_seq;               /* its segment's seq, reserved on entry (0: recorded on exit) */
	__u64 chan_len;               /* the bytes it reserved */
};

/* Task-local (no hashing, no delete: freed with the thread); ts_ns 0 = none. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ar_pending_io);
} ar_pending_io SEC(".maps");

/* The pipe rung: channels by their reading end, what each process reading
 * requests on its stdin serves now, and where its stdin and stdout are (by
 * tgid). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct ar_channel);
} ar_channels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct ar_serving);
} ar_serving SEC(".maps");

/* The stdio wires of tracked processes, by tgid, from their exec. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct ar_stdio);
} ar_stdio SEC(".maps");

/* In-kernel aggregates per (span, kind): calls, errors, bytes and a log2
 * latency histogram. User space reads and deletes them after the span ends. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, struct ar_agg_key);
	__type(value, struct ar_agg_value);
} ar_span_aggs SEC(".maps");

/* Event accounting per span (key: span id), for the per-span cap and for
 * loss reported on the span. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ar_span_counts);
} ar_span_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ar_config);
} ar_config SEC(".maps");

/* A zeroed aggregate to create entries from (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ar_agg_value);
} ar_agg_zero SEC(".maps");

/* Syscall arguments saved at sys_enter, consumed at sys_exit. */
struct ar_pending_syscall {
	__u64 ts_ns;
	__u64 args[4];
	__u32 kind;
	__u32 _pad;
};

/* Task-local, like ar_pending_io; kind 0 = none. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ar_pending_syscall);
} ar_pending SEC(".maps");

/* execve's arguments must be read before the old image is gone, so the
 * whole event is built at sys_enter and completed at sys_exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct ar_proc_exec_event);
} ar_pending_exec SEC(".maps");

/* Scratch space for building an exec event (too big for the BPF stack).
 * The verifier cannot relate a variable offset into args to the variable
 * length read there, so args is followed by slack it can prove in bounds. */
struct ar_exec_scratch {
	struct ar_proc_exec_event ev;
	char slack[AR_ARGS_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ar_exec_scratch);
} ar_exec_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} ar_events SEC(".maps");

/* Loss and volume counters, indexed by enum ar_stat. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AR_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ar_stats SEC(".maps");

/* Per-tool policy (docs/POLICY.md): the modes of each tool's rules, the
 * destinations each may reach by protocol, and the connect probe's word to
 * the cgroup program of the same syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ar_policy_key);
	__type(value, struct ar_policy_tool);
} ar_policy_tools SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ar_exec_key);
	__type(value, __u32);
} ar_exec_allow SEC(".maps");

/* The path of an exec the policy judges, hashed where it lies. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[AR_PATH_LEN]);
} ar_path_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct ar_net_key);
	__type(value, struct ar_net_allow);
} ar_net_tcp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct ar_net_key);
	__type(value, struct ar_net_allow);
} ar_net_udp SEC(".maps");

/* Host names the tools' rules name, and the addresses their lookups
 * returned (what a `host:` rule allows). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ar_host_key);
	__type(value, struct ar_net_allow);
} ar_host_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ar_host_addr_key);
	__type(value, struct ar_net_allow);
} ar_host_addrs SEC(".maps");

/* The path prefixes each tool's files rule allows: any open, and opens for
 * writing. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct ar_file_key);
	__type(value, __u32);
} ar_files_open SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct ar_file_key);
	__type(value, __u32);
} ar_files_write SEC(".maps");

/* An open's flags, from its enter to its exit (by the raw pid_tgid). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} ar_policy_opens SEC(".maps");

/* Where an open's path is walked and built: the trie key, room for a
 * last component written past its end, and the components found. */
struct ar_file_scratch {
	struct ar_file_key key;
	char spill[256];
	__u64 names[AR_PATH_DEPTH]; /* const unsigned char *, leaf first */
	__u32 lens[AR_PATH_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ar_file_scratch);
} ar_file_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ar_policy_ctx);
} ar_policy_ctxs SEC(".maps");

#endif /* AR_MAPS_BPF_H */

