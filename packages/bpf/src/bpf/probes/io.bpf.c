/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* I/O family: reads, writes, sends and receives on descriptors that were
 * opened or connected under a span are counted (calls, bytes) under that
 * span, in the kernel, whenever they happen: also when libuv does them
 * outside any JS callback. close() forgets the descriptor. */

/* A write to a socket connected to port 53: report the query it carries. */
static __always_inline void ar_dns_query(__u64 id, struct ar_proc_info *proc, __s32 fd, __u64 buf, __u64 len)
{
	struct ar_fd_key fk = { .tgid = id >> 32, .fd = fd };
	__u8 *transport = bpf_map_lookup_elem(&ar_dns_fds, &fk);
	if (!transport || !buf)
		return;
	struct ar_dns_query_event *e = ar_reserve(sizeof(*e));
	if (!e)
		return;
	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = fd };
	ar_fill_header(&e->hdr, AR_EV_DNS_QUERY, &q);
	e->fd = fd;
	e->len = (__u32)len;
	e->port = 53;
	e->transport = *transport;
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	__u32 n = len > AR_DNS_PAYLOAD_LEN ? AR_DNS_PAYLOAD_LEN : (__u32)len;
	__builtin_memset(e->payload, 0, sizeof(e->payload));
	if (bpf_probe_read_user(e->payload, n, (void *)buf))
		ar_count(AR_STAT_READ_FAULTS);
	ar_submit(e);
}

/* For a thread of a tracked process (the caller checked). */
static __always_inline int ar_io_enter(__u64 id, __s64 fd, __u32 kind)
{
	struct ar_fd_key fk = { .tgid = id >> 32, .fd = (__s32)fd };
	struct ar_span_ctx *span = bpf_map_lookup_elem(&ar_fd_spans, &fk);
	if (!span)
		return 0;
	struct ar_io_key key = { .kind = kind };
	__builtin_memcpy(key.span_id, span->span_id, sizeof(key.span_id));
	if (bpf_map_update_elem(&ar_pending_io, &id, &key, BPF_ANY))
		ar_count(AR_STAT_PENDING_FULL);
	return 0;
}

static __always_inline int ar_io_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ar_io_key *pending = bpf_map_lookup_elem(&ar_pending_io, &id);
	if (!pending)
		return 0;
	struct ar_io_key key = *pending;
	bpf_map_delete_elem(&ar_pending_io, &id);
	struct ar_io_totals *t = bpf_map_lookup_elem(&ar_io_totals, &key);
	if (!t) {
		/* NOEXIST: another CPU may have created it meanwhile; either way
		 * the lookup below finds it unless the map is full. */
		struct ar_io_totals zero = {};
		bpf_map_update_elem(&ar_io_totals, &key, &zero, BPF_NOEXIST);
		t = bpf_map_lookup_elem(&ar_io_totals, &key);
		if (!t) {
			ar_count(AR_STAT_PENDING_FULL);
			return 0;
		}
	}
	__sync_fetch_and_add(&t->calls, 1);
	if (ret > 0)
		__sync_fetch_and_add(&t->bytes, (__u64)ret);
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
		__u64 id = bpf_get_current_pid_tgid();                    \
		if (!ar_tracked(id))                                      \
			return 0;                                         \
		return ar_io_enter(id, (__s64)ctx->args[0], kind);        \
	}                                                                 \
	AR_IO_EXIT(name)

/* write and sendto also report DNS queries (buf and len are args 1 and 2). */
#define AR_IO_DNS_PROBES(name, kind)                                              \
	SEC("tracepoint/syscalls/sys_enter_" #name)                               \
	int io_##name##_enter(struct trace_event_raw_sys_enter *ctx)              \
	{                                                                         \
		__u64 id = bpf_get_current_pid_tgid();                            \
		struct ar_proc_info *proc = ar_tracked(id);                       \
		if (!proc)                                                        \
			return 0;                                                 \
		ar_dns_query(id, proc, (__s32)ctx->args[0], ctx->args[1], ctx->args[2]); \
		return ar_io_enter(id, (__s64)ctx->args[0], kind);                \
	}                                                                         \
	AR_IO_EXIT(name)

AR_IO_PROBES(read, AR_IO_READ)
AR_IO_PROBES(readv, AR_IO_READ)
AR_IO_PROBES(pread64, AR_IO_READ)
AR_IO_DNS_PROBES(write, AR_IO_WRITE)
AR_IO_PROBES(writev, AR_IO_WRITE)
AR_IO_PROBES(pwrite64, AR_IO_WRITE)
AR_IO_DNS_PROBES(sendto, AR_IO_SEND)
AR_IO_PROBES(sendmsg, AR_IO_SEND)
AR_IO_PROBES(recvfrom, AR_IO_RECV)
AR_IO_PROBES(recvmsg, AR_IO_RECV)

SEC("tracepoint/syscalls/sys_enter_close")
int io_close_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!ar_tracked(id))
		return 0;
	struct ar_fd_key fk = { .tgid = id >> 32, .fd = (__s32)ctx->args[0] };
	bpf_map_delete_elem(&ar_fd_spans, &fk);
	bpf_map_delete_elem(&ar_dns_fds, &fk);
	return 0;
}
