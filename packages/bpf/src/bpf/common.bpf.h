/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Helpers every probe family uses: the tracked-process filter, counters and
 * event headers. */
#ifndef AR_COMMON_BPF_H
#define AR_COMMON_BPF_H

#include "maps.bpf.h"

static __always_inline void ar_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&ar_stats, &stat);
	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

/* The first thing every probe does: untracked processes leave here, so the
 * rest of the host pays only a hash lookup on top of the tracepoint floor. */
static __always_inline struct ar_proc_info *ar_tracked(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;
	return bpf_map_lookup_elem(&ar_tracked_procs, &tgid);
}

static __always_inline int ar_span_is_set(const struct ar_span_ctx *s)
{
	const __u64 *w = (const __u64 *)s->span_id;
	return *w != 0;
}

static __always_inline void *ar_reserve(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&ar_events, size, 0);
	if (!e)
		ar_count(AR_STAT_RINGBUF_DROPS);
	return e;
}

static __always_inline void ar_submit(void *e)
{
	bpf_ringbuf_submit(e, 0);
	ar_count(AR_STAT_EVENTS);
}

/* For events built outside the ring buffer (exec): copy them in. */
static __always_inline void ar_output(void *e, __u64 size)
{
	if (bpf_ringbuf_output(&ar_events, e, size, 0) == 0)
		ar_count(AR_STAT_EVENTS);
	else
		ar_count(AR_STAT_RINGBUF_DROPS);
}

static __always_inline void ar_pending_save(__u64 pid_tgid, __u32 kind, __u64 a0, __u64 a1,
					     __u64 a2, __u64 a3)
{
	struct ar_pending_syscall p = {
		.ts_ns = bpf_ktime_get_ns(),
		.args = { a0, a1, a2, a3 },
		.kind = kind,
	};
	if (bpf_map_update_elem(&ar_pending, &pid_tgid, &p, BPF_ANY))
		ar_count(AR_STAT_PENDING_FULL);
}

/* Returns the saved state (a copy) and forgets it; 0 if there was none. */
static __always_inline int ar_pending_take(__u64 pid_tgid, __u32 kind,
					   struct ar_pending_syscall *out)
{
	struct ar_pending_syscall *p = bpf_map_lookup_elem(&ar_pending, &pid_tgid);
	if (!p)
		return 0;
	*out = *p;
	bpf_map_delete_elem(&ar_pending, &pid_tgid);
	return out->kind == kind;
}

#endif /* AR_COMMON_BPF_H */
