/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* DNS family: uprobes on libc's getaddrinfo (Node's dns.lookup runs it on a
 * threadpool thread, where the work-item rung finds the span; child
 * processes run it themselves). User space attaches them to the libc the
 * agent maps. */

SEC("uprobe")
int BPF_KPROBE(dns_getaddrinfo_enter, const char *name, const char *service, const void *hints, void *res)
{
	__u64 id = ar_current_id();
	if (!ar_is_tracked(id))
		return 0;
	struct ar_pending_dns p = { .ts_ns = bpf_ktime_get_ns(), .name = (__u64)name, .res = (__u64)res };
	if (bpf_map_update_elem(&ar_pending_dns, &id, &p, BPF_ANY))
		ar_count(AR_STAT_PENDING_FULL);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(dns_getaddrinfo_exit, int ret)
{
	__u64 id = ar_current_id();
	struct ar_proc_info *proc = ar_tracked(id);
	if (!proc)
		return 0;
	struct ar_pending_dns *p = bpf_map_lookup_elem(&ar_pending_dns, &id);
	if (!p)
		return 0;
	struct ar_pending_dns saved = *p;
	bpf_map_delete_elem(&ar_pending_dns, &id);
	if (ret == 0)
		ar_policy_learn_hosts(id, proc, saved.name, saved.res);

	__u64 now = bpf_ktime_get_ns();
	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = -1 };
	struct ar_emit em;
	if (!ar_prepare(&q, &em))
		return 0;
	struct ar_dns_lookup_event *e = ar_reserve_counted(sizeof(*e), em.counts);
	if (!e)
		return 0;
	ar_fill_header_from(&e->hdr, AR_EV_DNS_LOOKUP, &q, &em, now);
	e->ret = ret;
	e->_pad = 0;
	e->latency_ns = e->hdr.ts_ns - saved.ts_ns;
	if (!saved.name || bpf_probe_read_user_str(e->name, sizeof(e->name), (void *)saved.name) < 0) {
		e->name[0] = 0;
		if (saved.name)
			ar_count(AR_STAT_READ_FAULTS);
	}
	ar_submit_counted(e, em.counts);
	return 0;
}
