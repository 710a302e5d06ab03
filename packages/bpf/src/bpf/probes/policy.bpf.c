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
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	if (a && ar_port_allowed(a, port))
		return d;
	/* an address a lookup of a name the tool's rule names returned */
	struct ar_host_addr_key hk = { .gen = gen, .tool = tool, .proto = ctx->type == 2 ? 17 : 6 };
	__builtin_memcpy(hk.addr, k->addr, sizeof(hk.addr));
	a = bpf_map_lookup_elem(&ar_host_addrs, &hk);
	if (a && ar_port_allowed(a, port))
		return d;
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

/* A host name as a `host:` rule is keyed: letters lower-cased, a trailing
 * dot dropped (FNV-1a, as user space hashes the rule's name). */
struct ar_name_hash {
	const char *name; /* in a per-CPU buffer, NUL-terminated */
	__u32 h;
};

static long ar_name_hash_step(__u32 i, struct ar_name_hash *n)
{
	char c = n->name[i & (AR_PATH_LEN - 1)];
	if (c == 0 || (c == '.' && n->name[(i + 1) & (AR_PATH_LEN - 1)] == 0))
		return 1;
	if (c >= 'A' && c <= 'Z')
		c += 'a' - 'A';
	n->h = (n->h ^ (__u8)c) * AR_FNV_PRIME;
	return 0;
}

/* glibc's and musl's struct addrinfo on 64-bit Linux. */
struct ar_addrinfo {
	__s32 flags;
	__s32 family;
	__s32 socktype;
	__s32 protocol;
	__u32 addrlen;
	__u32 _pad;
	__u64 addr;      /* struct sockaddr * */
	__u64 canonname;
	__u64 next;      /* struct addrinfo * */
};

#define AR_HOST_ADDRS 16 /* entries of an answer looked at (glibc gives one per address and socket type) */

/* A name lookup (getaddrinfo) returned: when the rules of its call's tool
 * name the host, the addresses in the answer become destinations the tool
 * may reach, by that rule's ports, from now on in this generation. */
static __always_inline void ar_policy_learn_hosts(__u64 id, struct ar_proc_info *proc, __u64 name, __u64 res)
{
	__u32 gen = ar_policy_gen();
	if (!gen || !name || !res)
		return;
	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = -1 };
	struct ar_span_ctx span = {};
	__u32 tool = 0;
	int in_call = ar_attribute_tool(&q, &span, &tool) != AR_ATTR_NONE;
	struct ar_policy_tool *t = ar_policy_rules(gen, &tool, in_call);
	if (!t || t->net_mode == AR_POLICY_NONE)
		return;
	__u32 zero = 0;
	char *buf = bpf_map_lookup_elem(&ar_path_scratch, &zero);
	if (!buf)
		return;
	if (bpf_probe_read_user_str(buf, AR_PATH_LEN, (void *)name) <= 0)
		return;
	buf[AR_PATH_LEN - 1] = 0;
	struct ar_name_hash nh = { .name = buf, .h = 0x811c9dc5u };
	bpf_loop(AR_PATH_LEN, ar_name_hash_step, &nh, 0);
	struct ar_host_key nk = { .gen = gen, .tool = tool, .name = nh.h, .proto = 6 };
	struct ar_net_allow *tcp = bpf_map_lookup_elem(&ar_host_names, &nk);
	nk.proto = 17;
	struct ar_net_allow *udp = bpf_map_lookup_elem(&ar_host_names, &nk);
	/* two tests, not one on the pointers or'ed (the verifier refuses that) */
	if (!tcp) {
		barrier_var(tcp);
		if (!udp)
			return;
	}
	__u64 ai = 0;
	if (bpf_probe_read_user(&ai, sizeof(ai), (void *)res))
		return;
	struct ar_host_addr_key ak = { .gen = gen, .tool = tool };
	for (int i = 0; i < AR_HOST_ADDRS && ai; i++) {
		struct ar_addrinfo r;
		if (bpf_probe_read_user(&r, sizeof(r), (void *)ai))
			break;
		ai = r.next;
		__builtin_memset(ak.addr, 0, sizeof(ak.addr));
		if (r.family == 2 /* AF_INET */) {
			ak.addr[10] = 0xff;
			ak.addr[11] = 0xff;
			if (bpf_probe_read_user(&ak.addr[12], 4, (void *)(r.addr + 4)))
				continue;
		} else if (r.family == 10 /* AF_INET6 */) {
			if (bpf_probe_read_user(ak.addr, 16, (void *)(r.addr + 8)))
				continue;
		} else {
			continue;
		}
		if (tcp) {
			ak.proto = 6;
			bpf_map_update_elem(&ar_host_addrs, &ak, tcp, BPF_ANY);
		}
		if (udp) {
			ak.proto = 17;
			bpf_map_update_elem(&ar_host_addrs, &ak, udp, BPF_ANY);
		}
	}
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

/* Opens, by the tool's files rule. This kernel cannot refuse an open (no
 * LSM hook): the decision is made at the syscall's exit, on the file the
 * kernel opened, so that the path judged is the file's own (links and ".."
 * resolved), walked from its dentry up to the process's root. A tool's
 * child that opened what its rule does not allow is killed in `kill` mode
 * before it returns to user space, so it never reads or writes a byte
 * through it (what O_CREAT or O_TRUNC did has happened); the agent's own
 * opens are only recorded. */

#define AR_O_ACCMODE 3
#define AR_O_CREAT 0100
#define AR_O_TRUNC 01000
#define AR_MNT_INTERNAL 0x4000

static __always_inline int ar_policy_files_loaded(void)
{
	__u32 zero = 0;
	struct ar_config *cfg = bpf_map_lookup_elem(&ar_config, &zero);
	return cfg && cfg->policy && cfg->policy_files;
}

static __always_inline int ar_policy_open_enter(__u32 flags)
{
	__u64 id = ar_current_id();
	if (!ar_is_tracked(id) || !ar_policy_files_loaded())
		return 0;
	__u64 raw = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&ar_policy_opens, &raw, &flags, BPF_ANY);
	return 0;
}

enum ar_walk_end {
	AR_WALK_ON = 0,
	AR_WALK_ROOT = 1,    /* reached the process's root: the path is whole */
	AR_WALK_PSEUDO = 2,  /* a file of an internal mount (pipe, socket, anon inode): no path */
	AR_WALK_OUTSIDE = 3, /* the root of a mount tree that is not the process's */
	AR_WALK_DEEP = 4,
};

struct ar_walk {
	struct dentry *d;
	struct vfsmount *mnt;
	struct dentry *root_d;
	struct vfsmount *root_mnt;
	struct ar_file_scratch *s;
	__u32 n;
	__u32 end; /* enum ar_walk_end */
};

/* One step up: a component, or from a mount's root to where it is mounted. */
static long ar_walk_step(__u32 i, struct ar_walk *w)
{
	struct dentry *d = w->d;
	struct vfsmount *mnt = w->mnt;
	if (d == w->root_d && mnt == w->root_mnt) {
		w->end = AR_WALK_ROOT;
		return 1;
	}
	struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (d == mnt_root || d == parent) {
		if (d != mnt_root) {
			w->end = AR_WALK_OUTSIDE; /* a dentry cut off from its tree */
			return 1;
		}
		struct mount *m = (struct mount *)((void *)mnt - bpf_core_field_offset(struct mount, mnt));
		struct mount *pm = BPF_CORE_READ(m, mnt_parent);
		if (pm == m) {
			int flags = BPF_CORE_READ(mnt, mnt_flags);
			w->end = flags & AR_MNT_INTERNAL ? AR_WALK_PSEUDO : AR_WALK_OUTSIDE;
			return 1;
		}
		w->d = BPF_CORE_READ(m, mnt_mountpoint);
		w->mnt = (struct vfsmount *)((void *)pm + bpf_core_field_offset(struct mount, mnt));
		return 0;
	}
	if (w->n >= AR_PATH_DEPTH) {
		w->end = AR_WALK_DEEP;
		return 1;
	}
	__u32 k = w->n & (AR_PATH_DEPTH - 1);
	w->s->names[k] = (__u64)BPF_CORE_READ(d, d_name.name);
	w->s->lens[k] = BPF_CORE_READ(d, d_name.len);
	w->n++;
	w->d = parent;
	return 0;
}

struct ar_build {
	struct ar_file_scratch *s;
	__u32 n;
	__u32 pos;
	__u32 long_path;
};

/* One component into the key's path, root first: '/' and its name. */
static long ar_build_step(__u32 i, struct ar_build *b)
{
	if (i >= b->n)
		return 1;
	__u32 pos = b->pos;
	if (pos >= AR_FILE_KEY_LEN) {
		b->long_path = 1;
		return 1;
	}
	struct ar_file_scratch *s = b->s;
	__u32 k = (b->n - 1 - i) & (AR_PATH_DEPTH - 1);
	s->key.path[pos] = '/';
	pos++;
	__u32 len = s->lens[k];
	if (len > 255)
		len = 255;
	/* at most 255 bytes from pos <= AR_FILE_KEY_LEN: into spill at worst */
	bpf_probe_read_kernel(&s->key.path[pos], len, (void *)s->names[k]);
	pos += len;
	if (pos > AR_FILE_KEY_LEN) {
		pos = AR_FILE_KEY_LEN;
		b->long_path = 1;
	}
	b->pos = pos;
	return 0;
}

static __noinline int ar_policy_open_exit(long ret)
{
	__u64 raw = bpf_get_current_pid_tgid();
	__u32 *fp = bpf_map_lookup_elem(&ar_policy_opens, &raw);
	if (!fp)
		return 0;
	__u32 oflags = *fp;
	bpf_map_delete_elem(&ar_policy_opens, &raw);
	if (ret < 0)
		return 0;
	__u64 id = ar_current_id();
	struct ar_proc_info *proc = ar_tracked(id);
	__u32 gen = ar_policy_gen();
	if (!proc || !gen)
		return 0;
	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = -1 };
	struct ar_span_ctx span = {};
	__u32 tool = 0;
	int in_call = ar_attribute_tool(&q, &span, &tool) != AR_ATTR_NONE;
	struct ar_policy_tool *t = ar_policy_rules(gen, &tool, in_call);
	if (!t || t->files_mode == AR_POLICY_NONE)
		return 0;
	int write = (oflags & AR_O_ACCMODE) != 0 || (oflags & (AR_O_CREAT | AR_O_TRUNC)) != 0;
	/* a write must be under a write prefix (when writes are restricted),
	 * and any open under an open prefix (when opens are; the open tries
	 * hold the write prefixes too) */
	int judge_write = write && (t->files_flags & AR_FILES_WRITE);
	int judge_open = (t->files_flags & AR_FILES_OPEN) != 0;
	if (!judge_write && !judge_open)
		return 0;
	__u32 files_mode = t->files_mode, files_rule = t->files_rule;

	struct file *file = ar_file_of((__s32)ret);
	if (!file)
		return 0;
	__u32 zero = 0;
	struct ar_file_scratch *s = bpf_map_lookup_elem(&ar_file_scratch, &zero);
	if (!s)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ar_walk w = {
		.d = BPF_CORE_READ(file, f_path.dentry),
		.mnt = BPF_CORE_READ(file, f_path.mnt),
		.root_d = BPF_CORE_READ(task, fs, root.dentry),
		.root_mnt = BPF_CORE_READ(task, fs, root.mnt),
		.s = s,
	};
	bpf_loop(2 * AR_PATH_DEPTH, ar_walk_step, &w, 0);
	if (w.end == AR_WALK_PSEUDO)
		return 0;
	__u32 flags = write ? AR_POLICY_FILE_WRITE : 0;
	if (w.end == AR_WALK_OUTSIDE)
		flags |= AR_POLICY_FILE_OUTSIDE_ROOT;
	else if (w.end != AR_WALK_ROOT)
		flags |= AR_POLICY_FILE_TOO_DEEP;

	struct ar_build b = { .s = s, .n = w.n, .pos = 0 };
	bpf_loop(AR_PATH_DEPTH, ar_build_step, &b, 0);
	__u32 pos = b.pos;
	if (b.long_path)
		flags |= AR_POLICY_FILE_TOO_LONG;
	__u32 path_len = pos ? pos : 1; /* the root: "/" (the '/' below) */
	if (pos < AR_FILE_KEY_LEN) {
		s->key.path[pos] = '/';
		pos++;
	}
	s->key.gen = gen;
	s->key.tool = tool;
	s->key.prefixlen = 64 + 8 * pos;
	__u32 verdict = AR_VERDICT_ALLOWED;
	/* a path not known whole is held by no prefix */
	if (flags & (AR_POLICY_FILE_OUTSIDE_ROOT | AR_POLICY_FILE_TOO_DEEP))
		verdict = AR_VERDICT_AUDITED;
	else if (judge_write && !bpf_map_lookup_elem(&ar_files_write, &s->key))
		verdict = AR_VERDICT_AUDITED;
	else if (judge_open && !bpf_map_lookup_elem(&ar_files_open, &s->key))
		verdict = AR_VERDICT_AUDITED;
	if (verdict == AR_VERDICT_ALLOWED)
		return 0;
	/* only a process forked under a call, never the agent */
	if (files_mode == AR_POLICY_KILL && ar_span_is_set(&proc->span)) {
		bpf_send_signal(9 /* SIGKILL */);
		verdict = AR_VERDICT_DENIED;
	}

	struct ar_emit em;
	if (!ar_prepare(&q, &em))
		return 0;
	struct ar_policy_file_event *e = ar_reserve_counted(sizeof(*e), em.counts);
	if (!e)
		return 0;
	ar_fill_header_from(&e->hdr, AR_EV_POLICY_FILE, &q, &em, bpf_ktime_get_ns());
	e->fd = (__s32)ret;
	e->verdict = verdict;
	e->rule = files_rule;
	e->flags = flags;
	e->path_len = path_len > AR_FILE_KEY_LEN ? AR_FILE_KEY_LEN : path_len;
	e->_pad = 0;
	__builtin_memcpy(e->path, s->key.path, AR_FILE_KEY_LEN);
	ar_submit_counted(e, em.counts);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int policy_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return ar_policy_open_enter((__u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int policy_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return ar_policy_open_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int policy_openat2_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 how_flags = 0;
	if (bpf_probe_read_user(&how_flags, sizeof(how_flags), (void *)ctx->args[2]))
		how_flags = 2; /* unreadable: judged as a write (O_RDWR) */
	return ar_policy_open_enter((__u32)how_flags);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int policy_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return ar_policy_open_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_open")
int policy_open_enter(struct trace_event_raw_sys_enter *ctx)
{
	return ar_policy_open_enter((__u32)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_open")
int policy_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return ar_policy_open_exit(ctx->ret);
}

/* creat(2): open(path, O_CREAT | O_WRONLY | O_TRUNC), still a syscall on x86_64 */
SEC("tracepoint/syscalls/sys_enter_creat")
int policy_creat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return ar_policy_open_enter(AR_O_CREAT | 1 /* O_WRONLY */ | AR_O_TRUNC);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int policy_creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return ar_policy_open_exit(ctx->ret);
}
