/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Process family: execve/execveat with path and first arguments, fork (the
 * child is tracked and inherits the forking thread's span), and exit with
 * the exit code. Thread exit forgets all per-thread state. */

static __always_inline int ar_exec_enter(__u64 filename, __u64 argv)
{
	__u64 id = ar_current_id();
	if (!ar_tracked(id))
		return 0;
	__u32 zero = 0;
	struct ar_exec_scratch *scratch = bpf_map_lookup_elem(&ar_exec_scratch, &zero);
	if (!scratch)
		return 0;
	struct ar_proc_exec_event *e = &scratch->ev;
	e->hdr.ts_ns = bpf_ktime_get_ns(); /* enter time until exit completes it */
	e->ret = 0;
	e->latency_ns = 0;
	if (bpf_probe_read_user_str(e->filename, sizeof(e->filename), (void *)filename) < 0) {
		e->filename[0] = 0;
		ar_count(AR_STAT_READ_FAULTS);
	}

	__u32 off = 0, argc = 0;
#pragma unroll
	for (int i = 0; i < AR_MAX_ARGS; i++) {
		const char *arg = 0;
		if (bpf_probe_read_user(&arg, sizeof(arg), (void *)(argv + i * sizeof(arg))) || !arg)
			break;
		if (off >= AR_ARGS_LEN)
			break;
		/* may run into the scratch slack; args_len is clamped below */
		long n = bpf_probe_read_user_str(&e->args[off & (AR_ARGS_LEN - 1)], AR_ARGS_LEN, arg);
		if (n <= 0)
			break;
		off += n;
		argc++;
	}
	e->argc = argc;
	e->args_len = off > AR_ARGS_LEN ? AR_ARGS_LEN : off;
	e->verdict = 0; /* the policy's exec program decides, if one is loaded */
	e->rule = 0;
	if (bpf_map_update_elem(&ar_pending_exec, &id, e, BPF_ANY))
		ar_count(AR_STAT_PENDING_FULL);
	return 0;
}

static __always_inline int ar_exec_exit(long ret)
{
	__u64 id = ar_current_id();
	struct ar_proc_info *proc = ar_tracked(id);
	if (!proc)
		return 0;
	struct ar_proc_exec_event *e = bpf_map_lookup_elem(&ar_pending_exec, &id);
	if (!e)
		return 0;
	__u64 entered = e->hdr.ts_ns;
	__u64 now = bpf_ktime_get_ns();
	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = -1 };
	/* Process lifecycle events are never capped: process spans need them. */
	struct ar_emit em = {};
	em.source = ar_attribute(&q, &em.span);
	if (em.source != AR_ATTR_NONE)
		em.counts = ar_span_counts_of(&em.span);
	ar_aggregate_emit(&em, AR_AGG_EXEC, ret, now - entered);
	ar_fill_header_from(&e->hdr, AR_EV_PROC_EXEC, &q, &em, now);
	e->latency_ns = now - entered;
	e->ret = ret;
	ar_output(e, sizeof(*e), em.counts);
	bpf_map_delete_elem(&ar_pending_exec, &id);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int process_execve_enter(struct trace_event_raw_sys_enter *ctx)
{
	return ar_exec_enter(ctx->args[0], ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int process_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	return ar_exec_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int process_execveat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return ar_exec_enter(ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int process_execveat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return ar_exec_exit(ctx->ret);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u64 id = ar_current_id();
	struct ar_proc_info *proc = ar_tracked(id);
	if (!proc)
		return 0;
	if (child->tgid == parent->tgid)
		return 0; /* a new thread: it is covered by its process */
	__u32 child_tgid = ar_task_id(child) >> 32;
	if (!child_tgid)
		return 0; /* in no namespace the sidecar sees: not its to trace */

	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = -1 };
	struct ar_proc_info info = { .parent_tgid = id >> 32 };
	ar_attribute_tool(&q, &info.span, &info.tool);
	/* a forked child has its parent's descriptors, not a dead namesake's
	 * wires (the pipe rung falls back on fd 0 and 1 until it execs) */
	bpf_map_delete_elem(&ar_stdio, &child_tgid);
	if (bpf_map_update_elem(&ar_tracked_procs, &child_tgid, &info, BPF_NOEXIST))
		ar_count(AR_STAT_TRACKED_FULL);
	else
		ar_tracked_bit(child_tgid, 1);

	struct ar_proc_fork_event *e = ar_reserve(sizeof(*e));
	if (!e)
		return 0;
	ar_fill_header(&e->hdr, AR_EV_PROC_FORK, &q);
	e->child_pid = child_tgid;
	e->_pad = 0;
	ar_submit(e);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(process_exit, struct task_struct *task)
{
	__u64 id = ar_current_id();
	struct ar_proc_info *proc = ar_tracked(id);
	if (!proc)
		return 0;
	/* signal->live has been decremented before this tracepoint: zero means
	 * this is the last thread, so the process is gone. (Newer kernels pass
	 * group_dead as an argument; reading it would not load on older ones.) */
	if (BPF_CORE_READ(task, signal, live.counter) == 0) {
		struct ar_proc_exit_event *e = ar_reserve(sizeof(*e));
		if (e) {
			struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = -1 };
			ar_fill_header(&e->hdr, AR_EV_PROC_EXIT, &q);
			__u32 code = BPF_CORE_READ(task, exit_code);
			e->signal = code & 0x7f;
			e->exit_code = e->signal ? 0 : (code >> 8) & 0xff;
			ar_submit(e);
		}
		__u32 tgid = id >> 32;
		ar_tracked_bit(tgid, 0);
		bpf_map_delete_elem(&ar_tracked_procs, &tgid);
		/* the pipe rung's, lest a process given its tgid inherit them */
		bpf_map_delete_elem(&ar_stdio, &tgid);
		bpf_map_delete_elem(&ar_serving, &tgid);
		bpf_map_delete_elem(&ar_v8_layouts, &tgid);
	}
	bpf_map_delete_elem(&otel_traces_ctx_v1, &id);
	bpf_map_delete_elem(&ar_thread_slots, &id);
	bpf_map_delete_elem(&ar_frame_readers, &id);
	bpf_map_delete_elem(&ar_work_current, &id);
	bpf_map_delete_elem(&ar_pending_dns, &id);
	bpf_map_delete_elem(&ar_pending_exec, &id);
	return 0;
}
