/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* I/O family: reads, writes, sends and receives on descriptors that were
 * opened or connected under a span are aggregated (calls, errors, bytes,
 * latency histogram) under that span in the kernel, never one event each,
 * whenever they happen: also when libuv does them outside any JS callback.
 * close() forgets the descriptor. */

/* A write to a socket connected to port 53: report the query it carries. */
static __always_inline void ar_dns_query(__u64 id, struct ar_proc_info *proc, __s32 fd, __u64 buf, __u64 len)
{
	struct ar_fd_key fk = { .tgid = id >> 32, .fd = fd };
	__u8 *transport = bpf_map_lookup_elem(&ar_dns_fds, &fk);
	if (!transport || !buf)
		return;
	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = fd };
	struct ar_emit em;
	if (!ar_prepare(&q, &em))
		return;
	struct ar_dns_query_event *e = ar_reserve_counted(sizeof(*e), em.counts);
	if (!e)
		return;
	ar_fill_header_from(&e->hdr, AR_EV_DNS_QUERY, &q, &em, bpf_ktime_get_ns());
	e->fd = fd;
	e->len = (__u32)len;
	e->port = 53;
	e->transport = *transport;
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	__u32 n = len > AR_DNS_PAYLOAD_LEN ? AR_DNS_PAYLOAD_LEN : (__u32)len;
	__builtin_memset(e->payload, 0, sizeof(e->payload));
	if (bpf_probe_read_user(e->payload, n, (void *)buf))
		ar_count(AR_STAT_READ_FAULTS);
	ar_submit_counted(e, em.counts);
}

/* Whom a descriptor's I/O belongs to: its owner (struct ar_fd_owner), which
 * the call using it takes over. A call that writes on the descriptor (its
 * thread runs it now: slot, thread map or work item) becomes the owner, so a pooled
 * keep-alive connection's request and the response read for it afterwards
 * (by libuv, outside any call) count for the call that sent the request,
 * not for the one that opened the connection. A request written while the
 * previous owner still runs and its request is unanswered (its last I/O
 * here was a write), or that the agent says is nobody's (made outside any
 * call: queued, pipelined), means the connection carries several requests
 * at once: flagged for good, never guessed. I/O outside any call on a
 * descriptor whose owner ended is nobody's. Returns 0 when the I/O counts
 * for nobody. */
static __always_inline int ar_fd_user(__u64 id, struct ar_fd_key *fk, struct ar_fd_owner *o, __u32 kind,
				      struct ar_pending_io *p)
{
	int writing = kind == AR_AGG_WRITE || kind == AR_AGG_SEND;
	struct ar_fd_owner now = *o;
	struct ar_span_ctx cur = {};
	int changed = 0;
	/* Only a write hands a descriptor over (a request is written by the call
	 * that makes it); a read counts for the owner, so reads, the most
	 * frequent I/O, skip the slot read. */
	__u8 source = writing ? ar_current_span(id, &cur) : AR_ATTR_NONE;
	if (source != AR_ATTR_NONE) {
		/* NOBODY: a request made outside any call takes the descriptor from its owner */
		if (ar_span_key(&cur) != ar_span_key(&now.span)) {
			/* The owner still runs, and either its request is unanswered or
			 * the agent cannot say whose the new request is: the split of
			 * what follows between them is unknown. */
			if (writing && ar_span_is_set(&now.span) &&
			    (now.last_op == AR_FD_OP_WRITE || source == AR_ATTR_NOBODY) &&
			    !ar_span_ended(&now.span)) {
				now.flags |= AR_FD_AMBIGUOUS;
				struct ar_span_counts *prev = ar_span_counts_of(&now.span);
				if (prev)
					__sync_fetch_and_add(&prev->ambiguous, 1);
			}
			now.span = cur; /* zero for NOBODY */
			changed = 1;
		}
	} else if (ar_span_is_set(&now.span) && ar_span_ended(&now.span)) {
		__builtin_memset(&now.span, 0, sizeof(now.span));
		changed = 1;
	}
	__u32 op = writing ? AR_FD_OP_WRITE : AR_FD_OP_READ;
	if (changed) {
		/* An update swaps the whole value: no reader sees half a span. */
		now.last_op = op;
		bpf_map_update_elem(&ar_fd_spans, fk, &now, BPF_EXIST);
	} else if (o->last_op != op) {
		o->last_op = op;
	}
	if (!ar_span_is_set(&now.span))
		return 0;
	__builtin_memcpy(p->key.span_id, now.span.span_id, sizeof(p->key.span_id));
	p->ambiguous = now.flags & AR_FD_AMBIGUOUS;
	return 1;
}

/* For a thread of a tracked process (the caller checked). */
static __always_inline int ar_io_enter(__u64 id, __s64 fd, __u32 kind)
{
	struct ar_fd_key fk = { .tgid = id >> 32, .fd = (__s32)fd };
	struct ar_fd_owner *o = bpf_map_lookup_elem(&ar_fd_spans, &fk);
	if (!o)
		return 0;
	struct ar_pending_io *p =
		bpf_task_storage_get(&ar_pending_io, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p) {
		ar_count(AR_STAT_PENDING_FULL);
		return 0;
	}
	if (!ar_fd_user(id, &fk, o, kind, p))
		return 0;
	p->key.kind = kind;
	p->key._pad = 0;
	p->ts_ns = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int ar_io_exit(long ret)
{
	if (!ar_is_tracked(ar_current_id()))
		return 0;
	struct ar_pending_io *pending = bpf_task_storage_get(&ar_pending_io, bpf_get_current_task_btf(), 0, 0);
	if (!pending || pending->ts_ns == 0)
		return 0;
	struct ar_pending_io p = *pending;
	pending->ts_ns = 0;
	ar_aggregate(p.key.span_id, p.key.kind, ret, bpf_ktime_get_ns() - p.ts_ns);
	if (p.ambiguous) {
		struct ar_span_ctx span = {};
		__builtin_memcpy(span.span_id, p.key.span_id, sizeof(span.span_id));
		struct ar_span_counts *c = ar_span_counts_of(&span);
		if (c)
			__sync_fetch_and_add(&c->ambiguous, 1);
	}
	return 0;
}

/* The exit half is the same for every I/O syscall. */
#define AR_IO_EXIT(name)                                                  \
	SEC("tracepoint/syscalls/sys_exit_" #name)                        \
	int io_##name##_exit(struct trace_event_raw_sys_exit *ctx)        \
	{                                                                 \
		return ar_io_exit(ctx->ret);                              \
	}

#define AR_IO_PROBES(name, kind)                                          \
	SEC("tracepoint/syscalls/sys_enter_" #name)                       \
	int io_##name##_enter(struct trace_event_raw_sys_enter *ctx)      \
	{                                                                 \
		__u64 id = ar_current_id();                    \
		if (!ar_is_tracked(id))                                      \
			return 0;                                         \
		return ar_io_enter(id, (__s64)ctx->args[0], kind);        \
	}                                                                 \
	AR_IO_EXIT(name)

/* write and sendto also report DNS queries (buf and len are args 1 and 2);
 * write also registers thread slots and declares processes (the context
 * family's job, done here so that a write runs one program less while both
 * families are attached). */
#define AR_IO_DNS_PROBES(name, kind, slots)                                       \
	SEC("tracepoint/syscalls/sys_enter_" #name)                               \
	int io_##name##_enter(struct trace_event_raw_sys_enter *ctx)              \
	{                                                                         \
		/* every argument read up front, straight from the context */   \
		__s64 fd = ctx->args[0];                                          \
		__u64 buf = ctx->args[1], len = ctx->args[2];                     \
		__u64 id = ar_current_id();                            \
		struct ar_proc_info *proc = ar_tracked(id);                       \
		if (!proc) {                                                      \
			/* a slot registration declares its process */            \
			if (slots && len == AR_SLOT_SIZE)                         \
				ar_slot_declare(id, buf);                         \
			return 0;                                                 \
		}                                                                 \
		if (slots)                                                        \
			ar_slot_register(id, buf, len);                           \
		ar_dns_query(id, proc, (__s32)fd, buf, len);                      \
		return ar_io_enter(id, fd, kind);                                 \
	}                                                                         \
	AR_IO_EXIT(name)

AR_IO_PROBES(read, AR_AGG_READ)
AR_IO_PROBES(readv, AR_AGG_READ)
AR_IO_PROBES(pread64, AR_AGG_READ)
AR_IO_DNS_PROBES(write, AR_AGG_WRITE, 1)
AR_IO_PROBES(writev, AR_AGG_WRITE)
AR_IO_PROBES(pwrite64, AR_AGG_WRITE)
AR_IO_DNS_PROBES(sendto, AR_AGG_SEND, 0)
AR_IO_PROBES(sendmsg, AR_AGG_SEND)
AR_IO_PROBES(recvfrom, AR_AGG_RECV)
AR_IO_PROBES(recvmsg, AR_AGG_RECV)

SEC("tracepoint/syscalls/sys_enter_close")
int io_close_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = ar_current_id();
	if (!ar_is_tracked(id))
		return 0;
	struct ar_fd_key fk = { .tgid = id >> 32, .fd = (__s32)ctx->args[0] };
	bpf_map_delete_elem(&ar_fd_spans, &fk);
	/* almost no descriptor is a DNS socket: a lockless lookup first */
	if (bpf_map_lookup_elem(&ar_dns_fds, &fk))
		bpf_map_delete_elem(&ar_dns_fds, &fk);
	return 0;
}
