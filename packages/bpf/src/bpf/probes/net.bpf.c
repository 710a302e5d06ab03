/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Network family: connect(2) with the peer address (IPv4, IPv6 or Unix),
 * result and latency from enter to exit. The raw sockaddr is shipped to user
 * space, which knows how to decode every family. */

/* The port of an AF_INET/AF_INET6 sockaddr (network order at offset 2), or 0. */
static __always_inline __u16 ar_sockaddr_port(const __u8 *sa)
{
	__u16 family = sa[0] | (sa[1] << 8);
	if (family != 2 && family != 10)
		return 0;
	return (sa[2] << 8) | sa[3];
}

/* A socket connected to port 53 carries DNS: its writes are shown as queries. */
static __always_inline void ar_dns_fd_remember(__u64 pid_tgid, __s32 fd, __u32 sock_type, const __u8 *sa)
{
	if (ar_sockaddr_port(sa) != 53 || (sock_type != 1 && sock_type != 2))
		return;
	struct ar_fd_key fk = { .tgid = pid_tgid >> 32, .fd = fd };
	__u8 transport = sock_type == 2 ? 1 : 2; /* SOCK_DGRAM: udp, SOCK_STREAM: tcp */
	bpf_map_update_elem(&ar_dns_fds, &fk, &transport, BPF_ANY);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int net_connect_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = ar_current_id();
	if (!ar_is_tracked(id))
		return 0;
	ar_pending_save(id, AR_EV_NET_CONNECT, ctx->args[0], ctx->args[1], ctx->args[2], 0);
	ar_policy_prepare(id, (__s32)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int net_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = ar_current_id();
	struct ar_proc_info *proc = ar_tracked(id);
	if (!proc)
		return 0;
	struct ar_pending_syscall p;
	if (!ar_pending_take(id, AR_EV_NET_CONNECT, &p))
		return 0;

	__u64 now = bpf_ktime_get_ns();
	long ret = ctx->ret;
	__s32 fd = (__s32)p.args[0];
	/* what the policy decided, if one is loaded */
	struct ar_policy_ctx pc = {};
	__u64 raw = bpf_get_current_pid_tgid();
	struct ar_policy_ctx *pcp = bpf_map_lookup_elem(&ar_policy_ctxs, &raw);
	if (pcp) {
		pc = *pcp;
		bpf_map_delete_elem(&ar_policy_ctxs, &raw);
	}
	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = fd };
	struct ar_emit em;
	int admitted = ar_prepare(&q, &em);
	/* a non-blocking connect's EINPROGRESS is not a failure */
	ar_aggregate_emit(&em, AR_AGG_CONNECT, ret == -115 ? 0 : ret, now - p.ts_ns);
	__u32 sock_type = ar_sock_type(fd);
	if (ret == 0 || ret == -115 /* EINPROGRESS */) {
		ar_fd_remember(id, fd, &em, 1);
		/* the port decides whether writes are DNS queries: read it even when capped */
		__u8 sa[4] = {};
		if (bpf_probe_read_user(sa, sizeof(sa), (void *)p.args[1]) == 0)
			ar_dns_fd_remember(id, fd, sock_type, sa);
	}
	if (!admitted)
		return 0;

	struct ar_net_connect_event *e = ar_reserve_counted(sizeof(*e), em.counts);
	if (!e)
		return 0;
	ar_fill_header_from(&e->hdr, AR_EV_NET_CONNECT, &q, &em, now);
	e->ret = ret;
	e->latency_ns = now - p.ts_ns;
	e->fd = fd;
	e->sock_type = sock_type;
	e->verdict = pc.verdict;
	e->rule = pc.rule;
	e->_pad = 0;
	e->addrlen = (__u32)p.args[2];
	__builtin_memset(e->sockaddr, 0, sizeof(e->sockaddr));
	__u32 len = e->addrlen;
	if (len > sizeof(e->sockaddr))
		len = sizeof(e->sockaddr);
	if (bpf_probe_read_user(e->sockaddr, len, (void *)p.args[1]))
		ar_count(AR_STAT_READ_FAULTS);
	ar_submit_counted(e, em.counts);
	return 0;
}
