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
	__u32 op;  /* enum ar_chan_op */
	__u32 msg; /* WRITE: enum ar_chan_msg */
	__u64 key;
	__u64 seq; /* WRITE: its segment's seq, reserved on entry; 0: recorded on exit */
	__u64 len; /* WRITE: the bytes reserved */
	struct ar_span_ctx span;
};

#define AR_JSON_PEEK 64

/* `"id":` and `/cancelled"` as little-endian words (the bytes in order). */
#define AR_WORD_ID 0x3a22646922ULL         /* "id": */
#define AR_WORD_CANCELL 0x6c6c65636e61632fULL /* /cancell */
#define AR_WORD_ED 0x226465ULL             /* ed" */

/* Where in buf[0, n) a word occurs (its low `bytes` bytes), or -1. The
 * buffer is AR_JSON_PEEK + 8 bytes, zero past n. */
static __always_inline int ar_peek_word(const char *buf, __u32 n, __u64 word, __u64 mask, __u32 bytes)
{
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < AR_JSON_PEEK; i++) {
		if (i + bytes > n)
			break;
		/* one byte first: most positions fail there, cheaply */
		if ((__u8)buf[i] != (__u8)word)
			continue;
		__u64 w;
		__builtin_memcpy(&w, &buf[i], sizeof(w));
		if ((w & mask) == word)
			return (int)i;
	}
	return -1;
}

/* What a JSON-RPC message written whole is: a request (it names an "id",
 * which serializers put first or last: Python's pydantic, the MCP SDK's
 * spread), a cancellation (its method is near the start either way), or
 * another notification, which is never answered. Only the ends of the
 * message are looked at. A global function: the verifier checks it once,
 * not at every call site. */
__noinline __u32 ar_json_msg(__u64 buf, __u64 len)
{
	char peek[AR_JSON_PEEK + 8] = {};
	if (!buf || len < 5)
		return AR_CHAN_MSG_NOTIFICATION;
	__u32 n = len < AR_JSON_PEEK ? (__u32)len : AR_JSON_PEEK;
	if (bpf_probe_read_user(peek, n & (2 * AR_JSON_PEEK - 1), (void *)buf))
		return AR_CHAN_MSG_NOTIFICATION;
	if (ar_peek_word(peek, n, AR_WORD_ID, 0xffffffffffULL, 5) >= 0)
		return AR_CHAN_MSG_REQUEST;
	if (len > AR_JSON_PEEK) {
		char tail[AR_JSON_PEEK + 8] = {};
		if (bpf_probe_read_user(tail, AR_JSON_PEEK, (void *)(buf + len - AR_JSON_PEEK)) == 0 &&
		    ar_peek_word(tail, AR_JSON_PEEK, AR_WORD_ID, 0xffffffffffULL, 5) >= 0)
			return AR_CHAN_MSG_REQUEST;
	}
	/* a notification: a cancellation, or another */
	int at = ar_peek_word(peek, n, AR_WORD_CANCELL, ~0ULL, 11);
	if (at >= 0 && at < AR_JSON_PEEK) {
		__u64 w;
		__builtin_memcpy(&w, &peek[at + 8], sizeof(w));
		if ((w & 0xffffffULL) == AR_WORD_ED)
			return AR_CHAN_MSG_CANCEL;
	}
	return AR_CHAN_MSG_NOTIFICATION;
}

/* Whether a write's bytes may be a JSON-RPC message: they start with `{`
 * (a writev, unseen: maybe). The SDK's own frames to the sidecar, and
 * every other binary protocol on a pipe or Unix socket, are not looked at. */
static __always_inline int ar_json_start(__u64 buf)
{
	char first = 0;
	return !buf || (bpf_probe_read_user(&first, 1, (void *)buf) == 0 && first == '{');
}

const struct ar_channel ar_channel_fresh = {};

static __always_inline struct ar_channel *ar_channel_get(__u64 key)
{
	struct ar_channel *ch = bpf_map_lookup_elem(&ar_channels, &key);
	if (ch)
		return ch;
	/* a new channel's value, too large for the stack */
	bpf_map_update_elem(&ar_channels, &key, &ar_channel_fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&ar_channels, &key);
}

/* One write's segment: its bytes carry `span`. Returns its seq (0: none). */
static __always_inline __u64 ar_chan_record(struct ar_channel *ch, const struct ar_span_ctx *span, __u32 msg, __u64 n)
{
	/* The rest of a message written in part is no message of its own
	 * (Node writes it when the pipe has room again, outside any call). */
	__u64 rest = ch->rest;
	if (rest) {
		ch->rest = rest > n ? rest - n : 0;
		msg = AR_CHAN_MSG_VOID;
	}
	__u64 seq = __sync_fetch_and_add(&ch->wseq, 1);
	__u64 end = __sync_fetch_and_add(&ch->written, n) + n;
	struct ar_chan_seg *seg = &ch->segs[seq & (AR_CHAN_SEGS - 1)];
	seg->span = *span;
	seg->start = end - n;
	seg->end = end;
	seg->msg = msg;
	seg->seq = seq + 1;
	return seq + 1;
}

/* A write recorded on exit (writev, sendmsg: its length is known then). */
static __always_inline void ar_chan_write(__u64 key, const struct ar_span_ctx *span, __u32 msg, long n)
{
	struct ar_channel *ch = ar_channel_get(key);
	if (ch)
		ar_chan_record(ch, span, msg, (__u64)n);
}

/* A write of `len` bytes from one buffer is recorded on entry, before any
 * of its bytes can reach the reader: a reader thread blocked in read(2)
 * (Python's mcp) may return and take them before the writer's exit probe
 * runs. */
static __always_inline void ar_chan_reserve(struct ar_chan_io *c, __u64 len)
{
	struct ar_channel *ch = ar_channel_get(c->key);
	if (!ch)
		return;
	c->seq = ar_chan_record(ch, &c->span, c->msg, len);
	c->len = len;
}

/* On exit, a reserved write that put in less than it reserved: its
 * segment shrinks to what went in, and what did not is the next writes'
 * (a retry of the whole message: nothing went in; the rest of it: part
 * did). Only while it is still the channel's last segment: after another
 * write, the ends of both are off by what is missing. */
static __always_inline void ar_chan_settle(__u64 key, __u64 seq, __u64 len, long ret)
{
	__u64 in = ret > 0 ? (__u64)ret : 0;
	if (in >= len)
		return;
	struct ar_channel *ch = bpf_map_lookup_elem(&ar_channels, &key);
	if (!ch || ch->wseq != seq)
		return;
	struct ar_chan_seg *seg = &ch->segs[(seq - 1) & (AR_CHAN_SEGS - 1)];
	if (seg->seq != seq)
		return;
	__sync_fetch_and_add(&ch->written, -(len - in));
	seg->end = seg->start + in;
	if (in == 0)
		seg->msg = AR_CHAN_MSG_VOID;
	else
		ch->rest = len - in;
}

/* Whether fd is the process's stdin (writing = 0) or stdout wire: the file
 * it had there at exec, wherever it is now; fd 0 or 1 when its exec was
 * not seen (it was tracked later). With `key`, its channel (ar_channel_of)
 * when it is. */
static __always_inline int ar_stdio_wire(__u32 tgid, __s64 fd, int writing, __u64 *key)
{
	struct ar_stdio *w = bpf_map_lookup_elem(&ar_stdio, &tgid);
	if (!w) {
		if (fd != (writing ? 1 : 0))
			return 0;
		if (key)
			*key = ar_channel_of((__s32)fd, writing);
		return 1;
	}
	__u64 wire = writing ? w->out : w->in;
	if (!wire)
		return 0;
	if (ar_channel_of((__s32)fd, writing) != wire)
		return 0;
	if (key)
		*key = wire;
	return 1;
}

static __always_inline void ar_chan_enter(__u64 id, __s64 fd, __u32 kind, __u64 buf, __u64 len, struct ar_chan_io *c)
{
	int writing = kind == AR_AGG_WRITE || kind == AR_AGG_SEND;
	__u32 tgid = id >> 32;
	if (writing && bpf_map_lookup_elem(&ar_serving, &tgid) && ar_stdio_wire(tgid, fd, 1, 0)) {
		/* A response names its request's id; a notification (a log
		 * line, progress) names none and answers nothing. */
		if (!buf || (ar_json_start(buf) && ar_json_msg(buf, len) == AR_CHAN_MSG_REQUEST))
			c->op = AR_CHAN_ANSWER;
		return;
	}
	if (!writing) {
		/* Whether requests come this way is asked on exit: a reader
		 * thread blocked here since before the first request (Python's
		 * mcp reads stdin so) would miss the channel it creates. */
		if (ar_stdio_wire(tgid, fd, 0, &c->key) && c->key)
			c->op = AR_CHAN_READ;
		return;
	}
	/* The descriptor first: most writes are to files and terminals. */
	__u64 key = ar_channel_of((__s32)fd, 1);
	if (!key)
		return;
	__u8 source = ar_running_span(id, &c->span, 0, 0);
	if (source == AR_ATTR_NOBODY || source == AR_ATTR_NONE)
		__builtin_memset(&c->span, 0, sizeof(c->span));
	/* A channel is started by a call's JSON message; outside any call,
	 * and for other bytes, only one that exists is written into (so its
	 * reader's count of bytes stays right). */
	int json = ar_json_start(buf);
	if ((!ar_span_is_set(&c->span) || !json) && !bpf_map_lookup_elem(&ar_channels, &key))
		return;
	c->key = key;
	c->op = AR_CHAN_WRITE;
	/* writev and sendmsg: no single buffer to look at; counted as requests,
	 * recorded on exit, once their length is known */
	c->msg = !buf ? AR_CHAN_MSG_REQUEST : json ? ar_json_msg(buf, len) : AR_CHAN_MSG_NOTIFICATION;
	if (buf && len)
		ar_chan_reserve(c, len);
}

/* Requests read on stdin: the process now serves the call of the last one
 * (all of them, when it took several calls' requests at once: ambiguous). */
/* The walk over a channel's segments a read makes (bpf_loop: the verifier
 * checks one step, not every path through eight). */
struct ar_read_walk {
	struct ar_channel *ch;
	__u64 rseq;
	__u64 before; /* bytes read before this read */
	__u64 upto;   /* bytes read once it is in */
	struct ar_span_ctx first;
	__u32 spans, multi, done, cancels;
};

static long ar_read_step(__u64 index, void *ctx)
{
	struct ar_read_walk *w = ctx;
	struct ar_channel *ch = w->ch;
	__u64 rseq = w->rseq;
	if (rseq >= ch->wseq)
		return 1;
	struct ar_chan_seg *seg = &ch->segs[rseq & (AR_CHAN_SEGS - 1)];
	__u64 mine = seg->seq;
	if (mine < rseq + 1)
		return 1; /* numbered, not written yet: the next read takes it */
	if (mine > rseq + 1) {
		/* overwritten before it was read: what it carried is unknown */
		w->multi = 1;
		w->rseq = rseq + 1;
		return 0;
	}
	if (seg->start >= w->upto)
		return 1; /* reserved, none of it read yet */
	if (seg->end <= w->before) {
		/* Read before it was recorded (a write recorded on exit, whose
		 * reader returned before the writer's exit probe ran): its
		 * request was missed (the server's work for it is no call's);
		 * taken now, it would count an answer that never comes, and
		 * every later call would look ambiguous. */
		w->rseq = rseq + 1;
		return 0;
	}
	/* A notification is never answered: it does not make the process
	 * serve its call (it would serve it for good). */
	__u32 msg = seg->msg;
	if (msg == AR_CHAN_MSG_REQUEST && ar_span_is_set(&seg->span)) {
		if (!w->spans) {
			w->first = seg->span;
			w->spans = 1;
		} else if (ar_span_key(&seg->span) != ar_span_key(&w->first)) {
			w->multi = 1;
		}
	}
	if (seg->end > w->upto)
		return 1; /* partly read: the rest comes with the next read */
	w->rseq = rseq + 1;
	if (msg == AR_CHAN_MSG_REQUEST)
		w->done++;
	else if (msg == AR_CHAN_MSG_CANCEL)
		w->cancels++;
	return 0;
}

static __always_inline void ar_chan_read(__u64 id, __u64 key, long n)
{
	struct ar_channel *ch = bpf_map_lookup_elem(&ar_channels, &key);
	if (!ch)
		return;
	struct ar_read_walk w = { .ch = ch, .rseq = ch->rseq, .before = ch->read };
	w.upto = w.before + (__u64)n;
	ch->read = w.upto;
	bpf_loop(AR_CHAN_SEGS, ar_read_step, &w, 0);
	ch->rseq = w.rseq;

	__u32 tgid = id >> 32;
	struct ar_serving *sv = bpf_map_lookup_elem(&ar_serving, &tgid);
	struct ar_serving now = {};
	if (sv)
		now = *sv;
	if (w.spans) {
		if (now.outstanding > 0 && ar_span_key(&now.span) != ar_span_key(&w.first))
			now.ambiguous = 1;
		now.span = w.first;
	} else if (w.done && now.outstanding > 0) {
		now.ambiguous = 1; /* a request made outside any call, while serving one */
	}
	if (w.multi)
		now.ambiguous = 1;
	now.outstanding += w.done;
	/* A request cancelled may never be answered (the MCP SDK's servers
	 * answer none): it is served no longer. Which one it was is not
	 * known here; the call served stays the last one read. */
	if (w.cancels) {
		now.outstanding = now.outstanding > w.cancels ? now.outstanding - w.cancels : 0;
		if (!now.outstanding) {
			if (sv)
				bpf_map_delete_elem(&ar_serving, &tgid);
			return;
		}
	}
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
	if (op == AR_CHAN_WRITE && p->chan_seq) {
		ar_chan_settle(p->chan, p->chan_seq, p->chan_len, ret);
		return;
	}
	if (ret <= 0)
		return;
	if (op == AR_CHAN_WRITE)
		ar_chan_write(p->chan, &p->chan_span, p->chan_msg, ret);
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
	p->chan_msg = c.msg;
	p->chan_seq = c.seq;
	p->chan_len = c.len;
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
	__u64 id = ar_current_id();
	if (!ar_is_tracked(id))
		return 0;
	struct ar_pending_io *pending = bpf_task_storage_get(&ar_pending_io, bpf_get_current_task_btf(), 0, 0);
	if (!pending)
		return 0;
	if (pending->chan_op != AR_CHAN_NONE)
		ar_chan_exit(id, pending, ret);
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
