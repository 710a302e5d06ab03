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

#define AR_S_IFMT 00170000
#define AR_S_IFIFO 0010000
#define AR_S_IFSOCK 0140000

/* The channel behind a descriptor, named by its receiving end: a pipe's
 * pipe_inode_info (both ends share it), or for an AF_UNIX stream socket
 * the sock that reads (its own when reading, its peer's when writing).
 * 0: neither. */
static __always_inline __u64 ar_channel_of(__s32 fd, int writing)
{
	struct file *file = ar_file_of(fd);
	if (!file)
		return 0;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	__u16 mode = BPF_CORE_READ(inode, i_mode);
	if ((mode & AR_S_IFMT) == AR_S_IFIFO)
		return (__u64)BPF_CORE_READ(inode, i_pipe);
	if ((mode & AR_S_IFMT) != AR_S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, type) != 1 /* SOCK_STREAM */)
		return 0;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != 1 /* AF_UNIX */)
		return 0;
	if (!writing)
		return (__u64)sk;
	return (__u64)BPF_CORE_READ((struct unix_sock *)sk, peer);
}

/* The pipe rung's part of a syscall, decided on entry: a write into a
 * channel (its bytes carry the writer's own call), a read on stdin
 * (requests taken), or a serving process's write on stdout (an answer). */
struct ar_chan_io {
	__u32 op;      /* enum ar_chan_op */
	__u32 request; /* WRITE: a JSON-RPC request, not a notification */
	__u64 key;
	struct ar_span_ctx span;
};

#define AR_JSON_PEEK 48

/* Whether `"id":` is in buf[0, n) (n at most AR_JSON_PEEK). */
static __always_inline int ar_peek_id(const char *buf, __u32 n)
{
	for (int i = 0; i + 5 <= AR_JSON_PEEK; i++) {
		if (i + 5 > n)
			break;
		if (buf[i] == '"' && buf[i + 1] == 'i' && buf[i + 2] == 'd' && buf[i + 3] == '"' && buf[i + 4] == ':')
			return 1;
	}
	return 0;
}

/* Whether a JSON-RPC message written whole is a request (it names an "id",
 * which serializers put first or last: Python's pydantic, the MCP SDK's
 * spread) rather than a notification, which is never answered. Only the
 * ends of the message are looked at. */
static __always_inline int ar_json_request(__u64 buf, __u64 len)
{
	char peek[AR_JSON_PEEK];
	if (!buf || len < 5)
		return 0;
	__u32 n = len < AR_JSON_PEEK ? (__u32)len : AR_JSON_PEEK;
	if (bpf_probe_read_user(peek, n & (64 - 1), (void *)buf) == 0 && ar_peek_id(peek, n))
		return 1;
	if (len <= AR_JSON_PEEK)
		return 0;
	if (bpf_probe_read_user(peek, AR_JSON_PEEK, (void *)(buf + len - AR_JSON_PEEK)) == 0)
		return ar_peek_id(peek, AR_JSON_PEEK);
	return 0;
}

/* Whether fd is the process's stdin (writing = 0) or stdout wire: the file
 * it had there at exec, wherever it is now; fd 0 or 1 when its exec was
 * not seen (it was tracked later). */
static __always_inline int ar_stdio_wire(__u32 tgid, __s64 fd, int writing)
{
	struct ar_stdio *w = bpf_map_lookup_elem(&ar_stdio, &tgid);
	if (!w)
		return fd == (writing ? 1 : 0);
	__u64 wire = writing ? w->out : w->in;
	return wire && ar_channel_of((__s32)fd, writing) == wire;
}

static __always_inline void ar_chan_enter(__u64 id, __s64 fd, __u32 kind, __u64 buf, __u64 len, struct ar_chan_io *c)
{
	int writing = kind == AR_AGG_WRITE || kind == AR_AGG_SEND;
	__u32 tgid = id >> 32;
	if (writing && bpf_map_lookup_elem(&ar_serving, &tgid) && ar_stdio_wire(tgid, fd, 1)) {
		/* A response names its request's id; a notification (a log
		 * line, progress) names none and answers nothing. */
		if (!buf || ar_json_request(buf, len))
			c->op = AR_CHAN_ANSWER;
		return;
	}
	if (!writing) {
		if (!ar_stdio_wire(tgid, fd, 0))
			return;
		/* Whether requests come this way is asked on exit: a reader
		 * thread blocked here since before the first request (Python's
		 * mcp reads stdin so) would miss the channel it creates. */
		c->key = ar_channel_of((__s32)fd, 0);
		if (c->key)
			c->op = AR_CHAN_READ;
		return;
	}
	/* The descriptor first: most writes are to files and terminals. */
	__u64 key = ar_channel_of((__s32)fd, 1);
	if (!key)
		return;
	__u8 source = ar_running_span(id, &c->span, 0);
	if (source == AR_ATTR_NOBODY || source == AR_ATTR_NONE)
		__builtin_memset(&c->span, 0, sizeof(c->span));
	/* Outside any call, only into a channel that carries calls' requests
	 * (so its reader's count of bytes stays right). */
	if (!ar_span_is_set(&c->span) && !bpf_map_lookup_elem(&ar_channels, &key))
		return;
	c->key = key;
	c->op = AR_CHAN_WRITE;
	/* writev and sendmsg: no single buffer to look at; counted as requests */
	c->request = buf ? ar_json_request(buf, len) : 1;
}

const struct ar_channel ar_channel_fresh = {};

static __always_inline void ar_chan_write(__u64 key, const struct ar_span_ctx *span, __u32 request, long n)
{
	struct ar_channel *ch = bpf_map_lookup_elem(&ar_channels, &key);
	if (!ch) {
		/* a new channel's value, too large for the stack */
		bpf_map_update_elem(&ar_channels, &key, &ar_channel_fresh, BPF_NOEXIST);
		ch = bpf_map_lookup_elem(&ar_channels, &key);
		if (!ch)
			return;
	}
	__u64 seq = __sync_fetch_and_add(&ch->wseq, 1);
	__u64 end = __sync_fetch_and_add(&ch->written, (__u64)n) + (__u64)n;
	struct ar_chan_seg *seg = &ch->segs[seq & (AR_CHAN_SEGS - 1)];
	seg->span = *span;
	seg->end = end;
	seg->request = request;
	seg->seq = seq + 1;
}

/* Requests read on stdin: the process now serves the call of the last one
 * (all of them, when it took several calls' requests at once: ambiguous). */
static __always_inline void ar_chan_read(__u64 id, __u64 key, long n)
{
	struct ar_channel *ch = bpf_map_lookup_elem(&ar_channels, &key);
	if (!ch)
		return;
	struct ar_span_ctx first = {};
	int spans = 0, multi = 0;
	__u32 done = 0;
	__u64 upto = ch->read + (__u64)n;
	ch->read = upto;
	__u64 rseq = ch->rseq;
	for (int i = 0; i < AR_CHAN_SEGS; i++) {
		if (rseq >= ch->wseq)
			break;
		struct ar_chan_seg *seg = &ch->segs[rseq & (AR_CHAN_SEGS - 1)];
		__u64 mine = seg->seq;
		if (mine < rseq + 1)
			break; /* numbered, not written yet: the next read takes it */
		if (mine > rseq + 1) {
			/* overwritten before it was read: what it carried is unknown */
			multi = 1;
			rseq++;
			continue;
		}
		/* A notification is never answered: it does not make the
		 * process serve its call (it would serve it for good). */
		if (seg->request && ar_span_is_set(&seg->span)) {
			if (!spans) {
				first = seg->span;
				spans = 1;
			} else if (ar_span_key(&seg->span) != ar_span_key(&first)) {
				multi = 1;
			}
		}
		if (seg->end > upto)
			break; /* partly read: the rest comes with the next read */
		rseq++;
		if (seg->request)
			done++;
	}
	ch->rseq = rseq;

	__u32 tgid = id >> 32;
	struct ar_serving *sv = bpf_map_lookup_elem(&ar_serving, &tgid);
	struct ar_serving now = {};
	if (sv)
		now = *sv;
	if (spans) {
		if (now.outstanding > 0 && ar_span_key(&now.span) != ar_span_key(&first))
			now.ambiguous = 1;
		now.span = first;
	} else if (done && now.outstanding > 0) {
		now.ambiguous = 1; /* a request made outside any call, while serving one */
	}
	if (multi)
		now.ambiguous = 1;
	now.outstanding += done;
	if (!ar_span_is_set(&now.span))
		return;
	bpf_map_update_elem(&ar_serving, &tgid, &now, BPF_ANY);
}

/* An answer on stdout: once every request taken is answered, the process
 * serves nobody. */
static __always_inline void ar_chan_answer(__u64 id)
{
	__u32 tgid = id >> 32;
	struct ar_serving *sv = bpf_map_lookup_elem(&ar_serving, &tgid);
	if (!sv)
		return;
	if (sv->outstanding > 1)
		__sync_fetch_and_add(&sv->outstanding, -1);
	else
		bpf_map_delete_elem(&ar_serving, &tgid);
}

static __always_inline void ar_chan_exit(__u64 id, struct ar_pending_io *p, long ret)
{
	__u32 op = p->chan_op;
	p->chan_op = AR_CHAN_NONE;
	if (ret <= 0)
		return;
	if (op == AR_CHAN_WRITE)
		ar_chan_write(p->chan, &p->chan_span, p->chan_request, ret);
	else if (op == AR_CHAN_READ)
		ar_chan_read(id, p->chan, ret);
	else if (op == AR_CHAN_ANSWER)
		ar_chan_answer(id);
}

/* For a thread of a tracked process (the caller checked). */
static __always_inline int ar_io_enter(__u64 id, __s64 fd, __u32 kind, __u64 buf, __u64 len)
{
	struct ar_fd_key fk = { .tgid = id >> 32, .fd = (__s32)fd };
	struct ar_fd_owner *o = bpf_map_lookup_elem(&ar_fd_spans, &fk);
	struct ar_chan_io c = {};
	ar_chan_enter(id, fd, kind, buf, len, &c);
	if (!o && c.op == AR_CHAN_NONE)
		return 0;
	struct ar_pending_io *p =
		bpf_task_storage_get(&ar_pending_io, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p) {
		ar_count(AR_STAT_PENDING_FULL);
		return 0;
	}
	p->chan_op = c.op;
	p->chan = c.key;
	p->chan_span = c.span;
	p->chan_request = c.request;
	if (!o)
		return 0;
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
	if (!pending)
		return 0;
	if (pending->chan_op != AR_CHAN_NONE)
		ar_chan_exit(ar_current_id(), pending, ret);
	if (pending->ts_ns == 0)
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

/* A tracked process exec'ed: where its stdio wires are (ar_stdio), before
 * it can move them. Every exec on the host runs this; untracked ones
 * return at the bit test. */
SEC("tp_btf/sched_process_exec")
int io_stdio_exec(__u64 *ctx)
{
	__u64 id = ar_current_id();
	if (!ar_is_tracked(id))
		return 0;
	__u32 tgid = id >> 32;
	struct ar_stdio w = { .in = ar_channel_of(0, 0), .out = ar_channel_of(1, 1) };
	if (w.in || w.out)
		bpf_map_update_elem(&ar_stdio, &tgid, &w, BPF_ANY);
	else
		bpf_map_delete_elem(&ar_stdio, &tgid);
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
		return ar_io_enter(id, (__s64)ctx->args[0], kind, 0, 0);  \
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
		return ar_io_enter(id, fd, kind, buf, len);                       \
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
