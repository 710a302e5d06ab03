/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Policy family (docs/POLICY.md): decides, for the exact tool call, whether
 * a connect or a UDP send may go on (cgroup connect4/6 and sendmsg4/6:
 * EPERM), and kills a tool's child that executes what its rule forbids
 * (sched_process_exec: this kernel has no LSM hook to refuse an exec).
 *
 * The cgroup programs cannot read the thread slot: the syscall's enter
 * probe (net.bpf.c for connect, here for the sends) leaves the thread's
 * call and tool in ar_policy_ctxs; they read the address the kernel copied
 * (not the caller's memory, which could change under them), decide, and
 * leave the verdict there for the exit probe's event. Every table is keyed
 * by the generation ar_config.policy names, read once per decision. */

static __always_inline __u32 ar_policy_gen(void)
{
	__u32 zero = 0;
	struct ar_config *cfg = bpf_map_lookup_elem(&ar_config, &zero);
	return cfg ? cfg->policy : 0;
}

/* The rules of `tool` in `gen`; a tool with none of its own (or not known)
 * gets the default's inside a call and the outside rules elsewhere. Sets
 * *tool to the id whose rules apply. */
static __always_inline struct ar_policy_tool *ar_policy_rules(__u32 gen, __u32 *tool, int in_call)
{
	struct ar_policy_key pk = { .gen = gen, .tool = *tool };
	struct ar_policy_tool *t = pk.tool ? bpf_map_lookup_elem(&ar_policy_tools, &pk) : 0;
	if (!t) {
		pk.tool = in_call ? AR_POLICY_DEFAULT : AR_POLICY_OUTSIDE;
		t = bpf_map_lookup_elem(&ar_policy_tools, &pk);
	}
	*tool = pk.tool;
	return t;
}

/* With a policy loaded: what the cgroup program of this syscall needs to
 * decide for the exact call. */
static __always_inline void ar_policy_prepare(__u64 id, __s32 fd)
{
	if (!ar_policy_gen())
		return;
	struct ar_proc_info *proc = ar_tracked(id);
	if (!proc)
		return;
	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = fd };
	struct ar_span_ctx span = {};
	struct ar_policy_ctx pc = {};
	pc.in_call = ar_attribute_tool(&q, &span, &pc.tool) != AR_ATTR_NONE;
	__u64 raw = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&ar_policy_ctxs, &raw, &pc, BPF_ANY);
}

static __always_inline int ar_port_allowed(const struct ar_net_allow *a, __u16 port)
{
	__u32 n = a->nports;
	if (n == 0)
		return 1;
	for (int i = 0; i < AR_POLICY_PORTS; i++) {
		if (i >= n)
			break;
		if (port >= a->ports[i].from && port <= a->ports[i].to)
			return 1;
	}
	return 0;
}

struct ar_net_decision {
	__u32 verdict; /* enum ar_verdict; AR_VERDICT_NONE: no rule applies */
	__u32 rule;
};

/* What the rules of `tool` (or, when it has none, the default's in a call
 * and the outside rules elsewhere) say of this destination. */
static __always_inline struct ar_net_decision ar_policy_decide(struct bpf_sock_addr *ctx, struct ar_net_key *k, __u32 tool, int in_call)
{
	struct ar_net_decision d = { .verdict = AR_VERDICT_NONE, .rule = 0 };
	__u32 gen = ar_policy_gen();
	struct ar_policy_tool *t = ar_policy_rules(gen, &tool, in_call);
	if (!t || t->net_mode == AR_POLICY_NONE)
		return d;
	k->prefixlen = 64 + 128;
	k->gen = gen;
	k->tool = tool;
	struct ar_net_allow *a;
	if (ctx->type == 2 /* SOCK_DGRAM */)
		a = bpf_map_lookup_elem(&ar_net_udp, k);
	else
		a = bpf_map_lookup_elem(&ar_net_tcp, k);
	d.rule = t->net_rule;
	d.verdict = AR_VERDICT_ALLOWED;
	if (!a || !ar_port_allowed(a, bpf_ntohs((__u16)ctx->user_port)))
		d.verdict = t->net_mode == AR_POLICY_ENFORCE ? AR_VERDICT_DENIED : AR_VERDICT_AUDITED;
	return d;
}

/* The destination as a sockaddr_in or sockaddr_in6, as the caller wrote it. */
static __always_inline void ar_policy_sockaddr(__u8 *sa, __u16 family, __u16 port /* network order */, const __u8 *addr16)
{
	sa[0] = family;
	__builtin_memcpy(&sa[2], &port, 2);
	if (family == 2)
		__builtin_memcpy(&sa[4], &addr16[12], 4);
	else
		__builtin_memcpy(&sa[8], addr16, 16);
}

/* A connect or send of a tracked process that no syscall probe prepared:
 * io_uring submits them without connect(2) or sendmsg(2) (in the process,
 * or in its io-wq threads, which share its tgid). Its call cannot be told,
 * so the outside rules decide it, and a breach is an event of its own: a
 * hole closed, and said to be one. */
static __always_inline int ar_policy_unseen(struct bpf_sock_addr *ctx, struct ar_net_key *k, int send)
{
	__u64 id = ar_current_id();
	if (!ar_is_tracked(id) || !ar_policy_gen())
		return 1;
	struct ar_net_decision d = ar_policy_decide(ctx, k, 0, 0);
	if (d.verdict != AR_VERDICT_DENIED && d.verdict != AR_VERDICT_AUDITED)
		return 1;
	struct ar_policy_net_event *e = ar_reserve(sizeof(*e));
	if (e) {
		__builtin_memset(e, 0, sizeof(*e));
		e->hdr.ts_ns = bpf_ktime_get_ns();
		e->hdr.kind = AR_EV_POLICY_NET;
		e->hdr.pid = id >> 32;
		e->hdr.tid = (__u32)id;
		e->hdr.attr_source = AR_ATTR_NONE;
		bpf_get_current_comm(e->hdr.comm, sizeof(e->hdr.comm));
		e->ret = d.verdict == AR_VERDICT_DENIED ? -1 /* EPERM */ : 0;
		e->fd = -1;
		e->sock_type = ctx->type;
		e->verdict = d.verdict;
		e->rule = d.rule;
		e->flags = AR_POLICY_NET_UNSEEN | (send ? 0 : AR_POLICY_NET_CONNECT);
		ar_policy_sockaddr(e->sockaddr, ctx->user_family, (__u16)ctx->user_port, k->addr);
		bpf_ringbuf_submit(e, 0);
	}
	return d.verdict != AR_VERDICT_DENIED;
}

/* 1: let it go on; 0: refuse it (EPERM). A send's verdict is the worst of
 * its messages' (sendmmsg decides each), and its address is the one that
 * breached. */
static __always_inline int ar_policy_net(struct bpf_sock_addr *ctx, struct ar_net_key *k, int send)
{
	__u64 raw = bpf_get_current_pid_tgid();
	struct ar_policy_ctx *pc = bpf_map_lookup_elem(&ar_policy_ctxs, &raw);
	if (!pc)
		return ar_policy_unseen(ctx, k, send);
	struct ar_net_decision d = ar_policy_decide(ctx, k, pc->tool, pc->in_call);
	if (d.verdict == AR_VERDICT_NONE)
		return 1;
	if (d.verdict >= pc->verdict) {
		pc->verdict = d.verdict;
		pc->rule = d.rule;
		if (send && d.verdict != AR_VERDICT_ALLOWED) {
			__builtin_memcpy(pc->addr, k->addr, sizeof(pc->addr));
			pc->port = (__u16)ctx->user_port;
			pc->family = ctx->user_family;
			pc->sock_type = ctx->type;
		}
	}
	return d.verdict != AR_VERDICT_DENIED;
}

static __always_inline void ar_key4(struct ar_net_key *k, __u32 ip /* network order */)
{
	k->addr[10] = 0xff;
	k->addr[11] = 0xff;
	__builtin_memcpy(&k->addr[12], &ip, 4);
}

/* The context's fields are read one by one at constant offsets (the
 * verifier refuses a moved context pointer). */
#define AR_KEY6(k, ctx)                                                           \
	do {                                                                      \
		__u32 w0 = ctx->user_ip6[0], w1 = ctx->user_ip6[1];               \
		__u32 w2 = ctx->user_ip6[2], w3 = ctx->user_ip6[3];               \
		__builtin_memcpy(&k.addr[0], &w0, 4);                             \
		__builtin_memcpy(&k.addr[4], &w1, 4);                             \
		__builtin_memcpy(&k.addr[8], &w2, 4);                             \
		__builtin_memcpy(&k.addr[12], &w3, 4);                            \
	} while (0)

SEC("cgroup/connect4")
int policy_connect4(struct bpf_sock_addr *ctx)
{
	struct ar_net_key k = {};
	ar_key4(&k, ctx->user_ip4);
	return ar_policy_net(ctx, &k, 0);
}

SEC("cgroup/connect6")
int policy_connect6(struct bpf_sock_addr *ctx)
{
	struct ar_net_key k = {};
	AR_KEY6(k, ctx);
	return ar_policy_net(ctx, &k, 0);
}

SEC("cgroup/sendmsg4")
int policy_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct ar_net_key k = {};
	ar_key4(&k, ctx->user_ip4);
	return ar_policy_net(ctx, &k, 1);
}

SEC("cgroup/sendmsg6")
int policy_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct ar_net_key k = {};
	AR_KEY6(k, ctx);
	return ar_policy_net(ctx, &k, 1);
}

/* A send to an address (UDP): the cgroup sendmsg program decides each
 * message; these leave it the call, and report what it refused or let
 * through in audit. */
static __always_inline int ar_policy_send_enter(__s32 fd)
{
	__u64 id = ar_current_id();
	if (!ar_is_tracked(id))
		return 0;
	/* only datagram sockets' sends reach sendmsg4/6 with an address */
	if (ar_sock_type(fd) != 2 /* SOCK_DGRAM */)
		return 0;
	ar_policy_prepare(id, fd);
	return 0;
}

static __always_inline int ar_policy_send_exit(long ret)
{
	__u64 raw = bpf_get_current_pid_tgid();
	struct ar_policy_ctx *pcp = bpf_map_lookup_elem(&ar_policy_ctxs, &raw);
	if (!pcp)
		return 0;
	struct ar_policy_ctx pc = *pcp;
	bpf_map_delete_elem(&ar_policy_ctxs, &raw);
	if (pc.verdict != AR_VERDICT_DENIED && pc.verdict != AR_VERDICT_AUDITED)
		return 0;
	__u64 id = ar_current_id();
	struct ar_proc_info *proc = ar_tracked(id);
	if (!proc)
		return 0;
	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = -1 };
	struct ar_emit em;
	if (!ar_prepare(&q, &em))
		return 0;
	struct ar_policy_net_event *e = ar_reserve_counted(sizeof(*e), em.counts);
	if (!e)
		return 0;
	ar_fill_header_from(&e->hdr, AR_EV_POLICY_NET, &q, &em, bpf_ktime_get_ns());
	e->ret = ret;
	e->fd = -1;
	e->sock_type = pc.sock_type;
	e->verdict = pc.verdict;
	e->rule = pc.rule;
	e->flags = 0;
	e->_pad = 0;
	__builtin_memset(e->sockaddr, 0, sizeof(e->sockaddr));
	ar_policy_sockaddr(e->sockaddr, pc.family, pc.port, pc.addr);
	ar_submit_counted(e, em.counts);
	return 0;
}

#define AR_POLICY_SEND_PROBES(name)                                        \
	SEC("tracepoint/syscalls/sys_enter_" #name)                        \
	int policy_##name##_enter(struct trace_event_raw_sys_enter *ctx)   \
	{                                                                  \
		return ar_policy_send_enter((__s32)ctx->args[0]);          \
	}                                                                  \
	SEC("tracepoint/syscalls/sys_exit_" #name)                         \
	int policy_##name##_exit(struct trace_event_raw_sys_exit *ctx)     \
	{                                                                  \
		return ar_policy_send_exit(ctx->ret);                      \
	}

AR_POLICY_SEND_PROBES(sendto)
AR_POLICY_SEND_PROBES(sendmsg)
AR_POLICY_SEND_PROBES(sendmmsg)

#define AR_FNV_PRIME 0x01000193u

struct ar_path_hash {
	const char *path; /* the path, in a per-CPU buffer */
	__u32 full;       /* FNV-1a of the whole path */
	__u32 dir;        /* FNV-1a of the path up to and with its last '/' */
};

static long ar_path_hash_step(__u32 i, struct ar_path_hash *h)
{
	char c = h->path[i & (AR_PATH_LEN - 1)];
	if (c == 0)
		return 1;
	h->full = (h->full ^ (__u8)c) * AR_FNV_PRIME;
	if (c == '/')
		h->dir = h->full;
	return 0;
}

/* A program a tool's child executes, by its rule: a child forked under a
 * call (never a process forked outside one, such as the agent itself) that
 * executes what its tool's rule does not allow is killed in `kill` mode
 * before the program runs a single instruction (the signal is taken on the
 * way back to user space). The verdict goes into the exec event. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(policy_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 id = ar_current_id();
	struct ar_proc_info *proc = ar_tracked(id);
	if (!proc)
		return 0;
	__u32 gen = ar_policy_gen();
	if (!gen)
		return 0;
	int in_call = ar_span_is_set(&proc->span);
	__u32 tool = in_call ? proc->tool : 0;
	struct ar_policy_tool *t = ar_policy_rules(gen, &tool, in_call);
	if (!t || t->exec_mode == AR_POLICY_NONE)
		return 0;
	__u32 zero = 0;
	char *path = bpf_map_lookup_elem(&ar_path_scratch, &zero);
	if (!path)
		return 0;
	/* the kernel's copy of the path: what the exec is of */
	if (bpf_probe_read_kernel_str(path, AR_PATH_LEN, BPF_CORE_READ(bprm, filename)) <= 0)
		path[0] = 0;
	path[AR_PATH_LEN - 1] = 0;
	struct ar_path_hash h = { .path = path, .full = 0x811c9dc5u, .dir = 0 };
	bpf_loop(AR_PATH_LEN, ar_path_hash_step, &h, 0);
	struct ar_exec_key k = { .gen = gen, .tool = tool, .path = h.full };
	__u32 verdict = AR_VERDICT_ALLOWED;
	if (!bpf_map_lookup_elem(&ar_exec_allow, &k)) {
		k.path = (h.dir ^ '*') * AR_FNV_PRIME;
		if (!h.dir || !bpf_map_lookup_elem(&ar_exec_allow, &k))
			verdict = AR_VERDICT_AUDITED;
	}
	if (verdict == AR_VERDICT_AUDITED && t->exec_mode == AR_POLICY_KILL && in_call) {
		bpf_send_signal(9 /* SIGKILL */);
		verdict = AR_VERDICT_DENIED;
	}
	struct ar_proc_exec_event *e = bpf_map_lookup_elem(&ar_pending_exec, &id);
	if (e) {
		e->verdict = verdict;
		e->rule = t->exec_rule;
	}
	return 0;
}
