/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The attribution ladder of DESIGN.md: which span does this syscall belong
 * to? Rungs are tried in order; the first that knows wins, and the event
 * records which one it was (enum ar_attr_source).
 *
 *   0. frame           on Node 24+, the call record in the thread's V8 async
 *                      context (frame.bpf.h), for threads whose walk was
 *                      proved at registration
 *   1. thread slot     the span the agent published in its own memory (on
 *                      frame-read threads, only while the SDK overrides the
 *                      context: a pooled request written for another call,
 *                      its own socket I/O)
 *   2. thread map      otel_traces_ctx_v1[pid_tgid], for threads with no slot
 *   3. work item       the span a libuv work item was submitted under
 *   3b. pipe           in a process with no slot on the thread: the call
 *                      whose request (written into its stdin under that
 *                      call) it read and has not answered yet on stdout; a
 *                      stdio server serving several calls at once gets
 *                      AR_ATTR_PIPE_AMBIGUOUS, a guess flagged as one
 *   4. descriptor      the call the descriptor belongs to now (opened,
 *                      connected or last written under it; not once it ended)
 *   5. process         the span the process was forked under
 */
#ifndef AR_ATTRIBUTION_BPF_H
#define AR_ATTRIBUTION_BPF_H

#include "common.bpf.h"
#include "frame.bpf.h"

struct ar_attr_query {
	__u64 pid_tgid;
	const struct ar_proc_info *proc; /* the tracked process, from ar_tracked() */
	__s32 fd;                        /* descriptor the syscall acts on, or -1 */
};

/* Rungs 1-3, and the pipe rung with `pipe`: the call this thread runs now
 * (slot, thread map, work item; or, in a process with no slot on this
 * thread, the call whose request it is serving), whatever resource the
 * syscall acts on; AR_ATTR_NOBODY when the slot says the syscall is
 * nobody's (out is then left as it was). With `tool`, the call's tool word
 * too (the FNV-1a of its tool name), from the slot or the work item (left
 * as it was by the pipe rung, which does not know it). */
/* A function of its own (not inlined in every syscall program): with the
 * frame rung's call, inlined copies would not fit their programs' stack. */
static __noinline __u8 ar_running_span(__u64 pid_tgid, struct ar_span_ctx *out, int pipe, __u32 *tool)
{
	/* A registered, readable slot is authoritative for its thread: empty
	 * means no tool call runs there now, and the thread map (which only
	 * knows the last call started on the thread) must not be asked. */
	int slot_known = 0;
	__u64 *slot_addr = bpf_map_lookup_elem(&ar_thread_slots, &pid_tgid);
	if (slot_addr) {
		struct ar_thread_slot slot;
		if (bpf_probe_read_user(&slot, sizeof(slot), (void *)*slot_addr) == 0) {
			slot_known = 1;
			if (slot.valid && *(__u64 *)slot.span_id == AR_SPAN_NOBODY)
				return AR_ATTR_NOBODY;
			if (slot.valid) {
				__builtin_memcpy(out->trace_id, slot.trace_id, sizeof(out->trace_id));
				__builtin_memcpy(out->span_id, slot.span_id, sizeof(out->span_id));
				if (tool)
					*tool = slot.tool;
				return AR_ATTR_SLOT;
			}
		}
		/* A thread whose frames are read (only a registered slot's can
		 * be): the frame says which call runs, or that none does (then,
		 * as an empty slot, nothing lower is asked). */
		struct ar_frame_reader *fr = bpf_map_lookup_elem(&ar_frame_readers, &pid_tgid);
		if (fr && fr->check == AR_FRAME_OK) {
			int got = ar_frame_call(fr, out, tool);
			if (got == AR_FRAME_CALL)
				return AR_ATTR_FRAME;
			if (got == AR_FRAME_NO_CALL)
				slot_known = 1;
			else
				ar_count(AR_STAT_FRAME_UNREADABLE);
		}
	}
	struct ar_span_ctx *s = slot_known ? 0 : bpf_map_lookup_elem(&otel_traces_ctx_v1, &pid_tgid);
	if (s && ar_span_is_set(s)) {
		*out = *s;
		return AR_ATTR_THREAD;
	}
	struct ar_work_call *w = bpf_map_lookup_elem(&ar_work_current, &pid_tgid);
	if (w && ar_span_is_set(&w->span)) {
		*out = w->span;
		if (tool)
			*tool = w->tool;
		return AR_ATTR_WORK;
	}
	if (pipe && !slot_known) {
		__u32 tgid = pid_tgid >> 32;
		struct ar_serving *sv = bpf_map_lookup_elem(&ar_serving, &tgid);
		if (sv && ar_span_is_set(&sv->span)) {
			*out = sv->span;
			return sv->ambiguous ? AR_ATTR_PIPE_AMBIGUOUS : AR_ATTR_PIPE;
		}
	}
	return AR_ATTR_NONE;
}

static __always_inline __u8 ar_current_span(__u64 pid_tgid, struct ar_span_ctx *out)
{
	return ar_running_span(pid_tgid, out, 1, 0);
}

static __always_inline int ar_span_ended(const struct ar_span_ctx *span)
{
	__u64 key = ar_span_key(span);
	return bpf_map_lookup_elem(&ar_ended_spans, &key) != 0;
}

/* The ladder for a syscall; with `tool`, the call's tool word where the rung
 * that answered knows it (slot, work item, process; not the pipe or the
 * descriptor rung: left as it was). */
static __always_inline __u8 ar_attribute_tool(const struct ar_attr_query *q, struct ar_span_ctx *out, __u32 *tool)
{
	__u8 source = ar_running_span(q->pid_tgid, out, 1, tool);
	if (source == AR_ATTR_NOBODY)
		return AR_ATTR_NONE;
	if (source != AR_ATTR_NONE)
		return source;
	if (q->fd >= 0) {
		struct ar_fd_key fk = { .tgid = q->pid_tgid >> 32, .fd = q->fd };
		struct ar_fd_owner *o = bpf_map_lookup_elem(&ar_fd_spans, &fk);
		if (o && ar_span_is_set(&o->span) && !ar_span_ended(&o->span)) {
			*out = o->span;
			return AR_ATTR_FD;
		}
	}
	if (ar_span_is_set(&q->proc->span)) {
		*out = q->proc->span;
		if (tool)
			*tool = q->proc->tool;
		return AR_ATTR_PROCESS;
	}
	return AR_ATTR_NONE;
}

static __always_inline __u8 ar_attribute(const struct ar_attr_query *q, struct ar_span_ctx *out)
{
	return ar_attribute_tool(q, out, 0);
}

/* An event about to be emitted: its span, found before anything is reserved
 * so that a cap or a full ring buffer is counted on the span it hit. */
struct ar_emit {
	struct ar_span_ctx span;
	struct ar_span_counts *counts; /* the span's accounting, or 0 */
	__u8 source;                   /* enum ar_attr_source */
};

/* Attributes the event; returns whether it may be emitted (not capped). */
static __always_inline int ar_prepare(const struct ar_attr_query *q, struct ar_emit *em)
{
	__builtin_memset(&em->span, 0, sizeof(em->span));
	em->source = ar_attribute(q, &em->span);
	return ar_admit(&em->span, &em->counts);
}

static __always_inline void ar_fill_header_from(struct ar_event_header *h, __u32 kind,
						const struct ar_attr_query *q,
						const struct ar_emit *em, __u64 ts_ns)
{
	h->ts_ns = ts_ns;
	h->kind = kind;
	h->pid = q->pid_tgid >> 32;
	h->tid = (__u32)q->pid_tgid;
	h->attr_source = em->source;
	h->_pad[0] = h->_pad[1] = h->_pad[2] = 0;
	h->span = em->span;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/* Fills the header of a lifecycle event (fork, exit): never capped. */
static __always_inline void ar_fill_header(struct ar_event_header *h, __u32 kind,
					   const struct ar_attr_query *q)
{
	h->ts_ns = bpf_ktime_get_ns();
	h->kind = kind;
	h->pid = q->pid_tgid >> 32;
	h->tid = (__u32)q->pid_tgid;
	h->_pad[0] = h->_pad[1] = h->_pad[2] = 0;
	__builtin_memset(&h->span, 0, sizeof(h->span));
	h->attr_source = ar_attribute(q, &h->span);
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/* A descriptor opened or connected under a span belongs to it (rung 4).
 * With `always`, a descriptor opened outside any call is remembered too,
 * with no owner, so that a call that later uses it (a pooled connection the
 * agent opened) takes it over. */
static __always_inline void ar_fd_remember(__u64 pid_tgid, __s32 fd, const struct ar_emit *em, int always)
{
	if (fd < 0 || (em->source == AR_ATTR_NONE && !always))
		return;
	struct ar_fd_key fk = { .tgid = pid_tgid >> 32, .fd = fd };
	struct ar_fd_owner o = { .flags = 0, .last_op = AR_FD_OP_NONE };
	if (em->source != AR_ATTR_NONE)
		o.span = em->span;
	bpf_map_update_elem(&ar_fd_spans, &fk, &o, BPF_ANY);
}

/* Adds a syscall to its span's aggregate, when it has a span. */
static __always_inline void ar_aggregate_emit(const struct ar_emit *em, __u32 kind, long ret, __u64 latency_ns)
{
	if (em->source != AR_ATTR_NONE)
		ar_aggregate(em->span.span_id, kind, ret, latency_ns);
}

#endif /* AR_ATTRIBUTION_BPF_H */
