/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* File family: open, openat and openat2, with path, flags and result.
 * Arguments are saved at enter and read at exit, when the kernel has already
 * faulted the path in, so the user-memory read does not fail. */

#define AR_OPEN_AT 0
#define AR_OPEN_AT2 1
#define AR_OPEN_LEGACY 2

/* a3 is the mode, or for openat2 the struct open_how pointer. */
static __always_inline int ar_open_enter(__u64 dfd, __u64 path, __u64 flags, __u64 a3)
{
	__u64 id = ar_current_id();
	if (!ar_is_tracked(id))
		return 0;
	ar_pending_save(id, AR_EV_FILE_OPEN, dfd, path, flags, a3);
	return 0;
}

static __always_inline int ar_open_exit(long ret, int variant)
{
	__u64 id = ar_current_id();
	struct ar_proc_info *proc = ar_tracked(id);
	if (!proc)
		return 0;
	struct ar_pending_syscall p;
	if (!ar_pending_take(id, AR_EV_FILE_OPEN, &p))
		return 0;

	__u64 now = bpf_ktime_get_ns();
	struct ar_attr_query q = { .pid_tgid = id, .proc = proc, .fd = -1 };
	struct ar_emit em;
	int admitted = ar_prepare(&q, &em);
	ar_aggregate_emit(&em, AR_AGG_OPEN, ret, now - p.ts_ns);
	if (ret >= 0)
		ar_fd_remember(id, (__s32)ret, &em, 0); /* also when capped: its I/O still counts */
	if (!admitted)
		return 0;

	struct ar_file_open_event *e = ar_reserve_counted(sizeof(*e), em.counts);
	if (!e)
		return 0;
	ar_fill_header_from(&e->hdr, AR_EV_FILE_OPEN, &q, &em, now);
	e->ret = ret;
	e->latency_ns = now - p.ts_ns;
	e->dfd = (__s32)p.args[0];
	e->flags = p.args[2];
	e->mode = (__u32)p.args[3];
	if (variant == AR_OPEN_AT2) {
		/* args[3] holds the struct open_how pointer */
		struct open_how how = {};
		if (bpf_probe_read_user(&how, sizeof(how), (void *)p.args[3]) == 0) {
			e->flags = how.flags;
			e->mode = (__u32)how.mode;
		} else {
			e->flags = 0;
			e->mode = 0;
			ar_count(AR_STAT_READ_FAULTS);
		}
	}
	if (bpf_probe_read_user_str(e->path, sizeof(e->path), (void *)p.args[1]) < 0) {
		e->path[0] = 0;
		ar_count(AR_STAT_READ_FAULTS);
	}
	ar_submit_counted(e, em.counts);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int file_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return ar_open_enter(ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int file_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return ar_open_exit(ctx->ret, AR_OPEN_AT);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int file_openat2_enter(struct trace_event_raw_sys_enter *ctx)
{
	return ar_open_enter(ctx->args[0], ctx->args[1], 0, ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int file_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return ar_open_exit(ctx->ret, AR_OPEN_AT2);
}

/* open(2) still exists on x86_64 and static binaries use it. */
SEC("tracepoint/syscalls/sys_enter_open")
int file_open_enter(struct trace_event_raw_sys_enter *ctx)
{
	return ar_open_enter((__u64)(__s64)-100 /* AT_FDCWD */, ctx->args[0], ctx->args[1],
			     ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_open")
int file_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return ar_open_exit(ctx->ret, AR_OPEN_LEGACY);
}
