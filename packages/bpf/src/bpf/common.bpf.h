/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Helpers every probe family uses: the tracked-process filter, counters and
 * event headers. */
#ifndef AR_COMMON_BPF_H
#define AR_COMMON_BPF_H

#include "maps.bpf.h"
#include "pidns.bpf.h"

static __always_inline void ar_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&ar_stats, &stat);
	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

/* The first thing every probe does: untracked processes leave here after
 * one inlined array load, on top of the tracepoint floor. */
static __always_inline int ar_is_tracked(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;
	__u32 word = tgid >> 6;
	__u64 *bits = bpf_map_lookup_elem(&ar_tracked_bits, &word);
	return bits && (*bits & (1ULL << (tgid & 63)));
}

/* Tracked: the process's entry (its inherited span), else 0. */
static __always_inline struct ar_proc_info *ar_tracked(__u64 pid_tgid)
{
	if (!ar_is_tracked(pid_tgid))
		return 0;
	__u32 tgid = pid_tgid >> 32;
	return bpf_map_lookup_elem(&ar_tracked_procs, &tgid);
}

static __always_inline void ar_tracked_bit(__u32 tgid, int on)
{
	__u32 word = tgid >> 6;
	__u64 *bits = bpf_map_lookup_elem(&ar_tracked_bits, &word);
	if (!bits)
		return;
	if (on)
		__sync_fetch_and_or(bits, 1ULL << (tgid & 63));
	else
		__sync_fetch_and_and(bits, ~(1ULL << (tgid & 63)));
}

static __always_inline int ar_span_is_set(const struct ar_span_ctx *s)
{
	const __u64 *w = (const __u64 *)s->span_id;
	return *w != 0;
}

static __always_inline __u64 ar_span_key(const struct ar_span_ctx *span)
{
	return *(const __u64 *)span->span_id;
}

/* The span's event accounting, created on first use; 0 if the map is full
 * (its events still go out and are counted globally; only the per-span
 * split is missing, which is no lost event). */
static __always_inline struct ar_span_counts *ar_span_counts_of(const struct ar_span_ctx *span)
{
	__u64 key = ar_span_key(span);
	struct ar_span_counts *c = bpf_map_lookup_elem(&ar_span_counts, &key);
	if (c)
		return c;
	struct ar_span_counts zero = {};
	/* NOEXIST: another CPU may have created it meanwhile; the lookup below
	 * finds it either way unless the map is full. */
	bpf_map_update_elem(&ar_span_counts, &key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&ar_span_counts, &key);
}

/* Whether an event of this span may go to the ring buffer: spans over their
 * cap (ar_config) are only counted. Events outside any span are not capped
 * here (user space counts them as unattributed). */
static __always_inline int ar_admit(const struct ar_span_ctx *span, struct ar_span_counts **counts)
{
	*counts = 0;
	if (!ar_span_is_set(span))
		return 1;
	struct ar_span_counts *c = ar_span_counts_of(span);
	*counts = c;
	if (!c)
		return 1;
	__u32 zero = 0;
	struct ar_config *cfg = bpf_map_lookup_elem(&ar_config, &zero);
	__u32 cap = cfg ? cfg->max_events_per_span : 0;
	if (cap && c->emitted + c->ringbuf_drops >= cap) {
		__sync_fetch_and_add(&c->capped, 1);
		ar_count(AR_STAT_CAPPED);
		return 0;
	}
	return 1;
}

/* Reserves an event for a span admitted by ar_admit: a full ring buffer is
 * counted globally and on the span. */
static __always_inline void *ar_reserve_counted(__u64 size, struct ar_span_counts *counts)
{
	void *e = bpf_ringbuf_reserve(&ar_events, size, 0);
	if (!e) {
		ar_count(AR_STAT_RINGBUF_DROPS);
		if (counts)
			__sync_fetch_and_add(&counts->ringbuf_drops, 1);
	}
	return e;
}

static __always_inline void *ar_reserve(__u64 size)
{
	return ar_reserve_counted(size, 0);
}

/* The struct file behind descriptor fd of the current task, or 0. */
static __always_inline struct file *ar_file_of(__s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return 0;
	return file;
}

/* The socket's type (stream or datagram) tells TCP from UDP; it lives in
 * the struct socket behind the descriptor. */
static __always_inline __u32 ar_sock_type(__s32 fd)
{
	struct file *file = ar_file_of(fd);
	if (!file)
		return 0;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return 0;
	return (__u32)BPF_CORE_READ(sock, type);
}

/* Wakeup flags for a submit: none until enough data waits (ar_config), or,
 * while the consumer sleeps on no timer, the kernel's adaptive wakeup (the
 * first event after the buffer was drained wakes it). */
static __always_inline __u64 ar_wakeup_flags(void)
{
	__u32 zero = 0;
	struct ar_config *cfg = bpf_map_lookup_elem(&ar_config, &zero);
	__u32 threshold = cfg ? cfg->wakeup_bytes : 0;
	if (threshold == 0 || (cfg && cfg->consumer_idle))
		return 0; /* adaptive: the kernel's own choice */
	return bpf_ringbuf_query(&ar_events, BPF_RB_AVAIL_DATA) >= threshold ? BPF_RB_FORCE_WAKEUP
									       : BPF_RB_NO_WAKEUP;
}

static __always_inline void ar_submit_counted(void *e, struct ar_span_counts *counts)
{
	bpf_ringbuf_submit(e, ar_wakeup_flags());
	ar_count(AR_STAT_EVENTS);
	if (counts)
		__sync_fetch_and_add(&counts->emitted, 1);
}

static __always_inline void ar_submit(void *e)
{
	ar_submit_counted(e, 0);
}

/* For events built outside the ring buffer (exec): copy them in. */
static __always_inline void ar_output(void *e, __u64 size, struct ar_span_counts *counts)
{
	if (bpf_ringbuf_output(&ar_events, e, size, ar_wakeup_flags()) == 0) {
		ar_count(AR_STAT_EVENTS);
		if (counts)
			__sync_fetch_and_add(&counts->emitted, 1);
	} else {
		ar_count(AR_STAT_RINGBUF_DROPS);
		if (counts)
			__sync_fetch_and_add(&counts->ringbuf_drops, 1);
	}
}

/* floor(log2(v)) for v > 0, 0 for 0; the verifier has no clz. */
static __always_inline __u32 ar_log2(__u64 v)
{
	__u32 r = 0, s;
	s = (v > 0xFFFFFFFFULL) << 5; v >>= s; r |= s;
	s = (v > 0xFFFF) << 4; v >>= s; r |= s;
	s = (v > 0xFF) << 3; v >>= s; r |= s;
	s = (v > 0xF) << 2; v >>= s; r |= s;
	s = (v > 0x3) << 1; v >>= s; r |= s;
	return r | (__u32)(v >> 1);
}

/* Adds one call to the (span, kind) aggregate. */
static __always_inline void ar_aggregate(const __u8 *span_id, __u32 kind, long ret, __u64 latency_ns)
{
	struct ar_agg_key key = { .kind = kind };
	__builtin_memcpy(key.span_id, span_id, sizeof(key.span_id));
	struct ar_agg_value *v = bpf_map_lookup_elem(&ar_span_aggs, &key);
	if (!v) {
		/* allocated off the stack: the value is larger than it allows */
		__u32 zero = 0;
		struct ar_agg_value *z = bpf_map_lookup_elem(&ar_agg_zero, &zero);
		if (!z)
			return;
		bpf_map_update_elem(&ar_span_aggs, &key, z, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&ar_span_aggs, &key);
		if (!v) {
			ar_count(AR_STAT_AGG_FULL);
			/* said on the span too, when its accounting exists */
			__u64 sk = *(const __u64 *)span_id;
			struct ar_span_counts *c = bpf_map_lookup_elem(&ar_span_counts, &sk);
			if (c)
				__sync_fetch_and_add(&c->map_full, 1);
			return;
		}
	}
	__sync_fetch_and_add(&v->calls, 1);
	if (ret < 0)
		__sync_fetch_and_add(&v->errors, 1);
	else if (kind <= AR_AGG_RECV && ret > 0)
		__sync_fetch_and_add(&v->bytes, (__u64)ret);
	__sync_fetch_and_add(&v->latency_sum_ns, latency_ns);
	__u32 b = ar_log2(latency_ns);
	if (b >= AR_HIST_BUCKETS)
		b = AR_HIST_BUCKETS - 1;
	__sync_fetch_and_add(&v->latency_hist[b], 1);
}

/* Saves a syscall's arguments for its exit, in the thread's own storage. */
static __always_inline void ar_pending_save(__u64 pid_tgid, __u32 kind, __u64 a0, __u64 a1,
					     __u64 a2, __u64 a3)
{
	struct ar_pending_syscall *p =
		bpf_task_storage_get(&ar_pending, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p) {
		ar_count(AR_STAT_PENDING_FULL);
		return;
	}
	p->ts_ns = bpf_ktime_get_ns();
	p->args[0] = a0;
	p->args[1] = a1;
	p->args[2] = a2;
	p->args[3] = a3;
	p->kind = kind;
}

/* Returns the saved state (a copy) and forgets it; 0 if there was none. */
static __always_inline int ar_pending_take(__u64 pid_tgid, __u32 kind,
					   struct ar_pending_syscall *out)
{
	struct ar_pending_syscall *p = bpf_task_storage_get(&ar_pending, bpf_get_current_task_btf(), 0, 0);
	if (!p || p->kind == 0)
		return 0;
	*out = *p;
	p->kind = 0;
	return out->kind == kind;
}

#endif /* AR_COMMON_BPF_H */
