/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Work family: uprobes on libuv (inside the node binary) that carry the
 * submitting thread's span to the threadpool thread running the work item
 * (fs.promises, dns.lookup, zlib, crypto, N-API async work). User space
 * attaches them per binary, found through /proc/PID/exe. */

/* uv__work_submit(uv_loop_t *loop, struct uv__work *w, kind, work, done),
 * on the submitting (JS) thread. */
SEC("uprobe")
int BPF_KPROBE(work_submit, void *loop, void *work)
{
	__u64 id = ar_current_id();
	struct ar_proc_info *proc = ar_tracked(id);
	if (!proc)
		return 0;
	struct ar_work_key key = { .tgid = id >> 32, .work = (__u64)work };
	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = -1 };
	struct ar_work_call call = {};
	/* The item's memory is reused: an item submitted with no span must not
	 * inherit the span of an earlier item at the same address. */
	if (ar_attribute_tool(&q, &call.span, &call.tool) == AR_ATTR_NONE)
		bpf_map_delete_elem(&ar_work_items, &key);
	else
		bpf_map_update_elem(&ar_work_items, &key, &call, BPF_ANY);
	return 0;
}

/* uv__fs_work(struct uv__work *w) and its siblings, on the threadpool
 * thread: the thread runs this item's span until its next item. */
SEC("uprobe")
int BPF_KPROBE(work_run, void *work)
{
	__u64 id = ar_current_id();
	if (!ar_is_tracked(id))
		return 0;
	struct ar_work_key key = { .tgid = id >> 32, .work = (__u64)work };
	struct ar_work_call *call = bpf_map_lookup_elem(&ar_work_items, &key);
	if (call)
		bpf_map_update_elem(&ar_work_current, &id, call, BPF_ANY);
	else
		bpf_map_delete_elem(&ar_work_current, &id);
	return 0;
}
