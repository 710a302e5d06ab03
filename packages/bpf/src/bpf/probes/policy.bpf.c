/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Policy family (docs/POLICY.md): cgroup connect hooks that decide, for
 * the exact tool call, whether a connect may go on. The connect probe
 * (net.bpf.c) leaves the thread's tool and whether it runs a call in
 * ar_policy_ctxs; these programs read the address the kernel copied (not
 * the caller's memory, which could change under them), decide, and leave
 * the verdict there for the probe's exit, which puts it in the event. */

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

/* 1: let it go on; 0: refuse it (EPERM). */
static __always_inline int ar_policy_connect(struct bpf_sock_addr *ctx, struct ar_net_key *k)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ar_policy_ctx *pc = bpf_map_lookup_elem(&ar_policy_ctxs, &id);
	if (!pc)
		return 1; /* not a tracked process's connect(2) */
	__u32 tool = pc->tool;
	struct ar_policy_tool *t = tool ? bpf_map_lookup_elem(&ar_policy_tools, &tool) : 0;
	if (!t) {
		tool = pc->in_call ? AR_POLICY_DEFAULT : AR_POLICY_OUTSIDE;
		t = bpf_map_lookup_elem(&ar_policy_tools, &tool);
	}
	if (!t || t->net_mode == AR_POLICY_NONE)
		return 1;
	k->prefixlen = 32 + 128;
	k->tool = tool;
	struct ar_net_allow *a;
	if (ctx->type == 2 /* SOCK_DGRAM */)
		a = bpf_map_lookup_elem(&ar_net_udp, k);
	else
		a = bpf_map_lookup_elem(&ar_net_tcp, k);
	pc->rule = t->net_rule;
	if (a && ar_port_allowed(a, bpf_ntohs((__u16)ctx->user_port))) {
		pc->verdict = AR_VERDICT_ALLOWED;
		return 1;
	}
	if (t->net_mode == AR_POLICY_ENFORCE) {
		pc->verdict = AR_VERDICT_DENIED;
		return 0;
	}
	pc->verdict = AR_VERDICT_AUDITED;
	return 1;
}

SEC("cgroup/connect4")
int policy_connect4(struct bpf_sock_addr *ctx)
{
	struct ar_net_key k = {};
	k.addr[10] = 0xff;
	k.addr[11] = 0xff;
	__u32 ip = ctx->user_ip4; /* network order, as the bytes go */
	__builtin_memcpy(&k.addr[12], &ip, 4);
	return ar_policy_connect(ctx, &k);
}

SEC("cgroup/connect6")
int policy_connect6(struct bpf_sock_addr *ctx)
{
	struct ar_net_key k = {};
	/* the context's fields are read one by one at constant offsets (the
	 * verifier refuses a moved context pointer) */
	__u32 w0 = ctx->user_ip6[0], w1 = ctx->user_ip6[1], w2 = ctx->user_ip6[2], w3 = ctx->user_ip6[3];
	__builtin_memcpy(&k.addr[0], &w0, 4);
	__builtin_memcpy(&k.addr[4], &w1, 4);
	__builtin_memcpy(&k.addr[8], &w2, 4);
	__builtin_memcpy(&k.addr[12], &w3, 4);
	return ar_policy_connect(ctx, &k);
}
