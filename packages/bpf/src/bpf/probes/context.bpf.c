/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Context family: learns where each thread keeps its slot. The SDK writes
 * its slot, magic first, once per thread (at its first use, and again on
 * every sidecar connection); write(2) hands us the slot's address as its
 * buffer. The first registration of a process nobody tracks yet declares
 * it: it is tracked from that write on, before any round trip to the
 * sidecar, which confirms it at hello (SO_PEERCRED) or forgets it. A
 * process can only declare itself, and only its own threads' slots. */

/* Whether a write's buffer starts with the slot magic. */
static __always_inline int ar_is_slot_write(__u64 buf, __u64 len)
{
	if (len != AR_SLOT_SIZE)
		return 0;
	__u64 magic[2];
	if (bpf_probe_read_user(magic, sizeof(magic), (void *)buf))
		return 0;
	return magic[0] == AR_SLOT_MAGIC_LO && magic[1] == AR_SLOT_MAGIC_HI;
}

static __always_inline void ar_slot_remember(__u64 id, __u64 buf)
{
	__u64 addr = buf;
	/* a stack copy: otherwise clang hands the map the tracepoint context's
	 * own field, which the verifier refuses */
	asm volatile("" : "+r"(addr));
	bpf_map_update_elem(&ar_thread_slots, &id, &addr, BPF_ANY);
}

/* For a write of a tracked process (the caller checked). Where user space
 * gave the process's V8 layout (at its hello), the registration also proves
 * the frame rung for the thread (frame.bpf.h). */
static __always_inline void ar_slot_register(__u64 id, __u64 buf, __u64 len)
{
	if (ar_is_slot_write(buf, len)) {
		ar_slot_remember(id, buf);
		ar_frame_verify(id, buf);
	}
}

/* An event that is only a header, about the current process (a declaration,
 * a node starting), handed over at once rather than at the next poll: user
 * space hooks the process's binaries on it. */
static __always_inline void ar_notify(__u32 kind, __u64 size, __u64 id)
{
	struct ar_event_header *e = ar_reserve(size);
	if (!e)
		return;
	e->ts_ns = bpf_ktime_get_ns();
	e->kind = kind;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->attr_source = AR_ATTR_NONE;
	e->_pad[0] = e->_pad[1] = e->_pad[2] = 0;
	__builtin_memset(&e->span, 0, sizeof(e->span));
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	ar_count(AR_STAT_EVENTS);
}

/* For a 32-byte write of a process nobody tracks: a slot registration makes
 * it tracked (self-declared) and says so to user space, once. */
static __always_inline void ar_slot_declare(__u64 id, __u64 buf)
{
	if (!ar_is_slot_write(buf, AR_SLOT_SIZE))
		return;
	__u32 tgid = id >> 32;
	if (!tgid)
		return; /* a process the sidecar cannot see (another pod's) */
	struct ar_proc_info info = { .flags = AR_PROC_SELF_DECLARED };
	/* NOEXIST: another thread of it may have declared it meanwhile */
	int err = bpf_map_update_elem(&ar_tracked_procs, &tgid, &info, BPF_NOEXIST);
	if (err == -17 /* EEXIST */) {
		ar_tracked_bit(tgid, 1);
		ar_slot_remember(id, buf);
		return;
	}
	if (err) {
		ar_count(AR_STAT_TRACKED_FULL);
		return;
	}
	ar_tracked_bit(tgid, 1);
	ar_slot_remember(id, buf);
	ar_count(AR_STAT_DECLARED);
	ar_notify(AR_EV_PROC_DECLARE, sizeof(struct ar_proc_declare_event), id);
}

/* A node starts: say so at once (not at the next poll), so that user space
 * hooks its threadpool while it still loads its modules. Any process, so
 * that the first tool call of an agent in another container finds its node
 * hooked; only names starting "node" (node, nodejs, node24), so that this
 * costs a comparison per exec. */
SEC("tp_btf/sched_process_exec")
int context_runtime_exec(__u64 *ctx)
{
	char comm[16];
	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] != 'n' || comm[1] != 'o' || comm[2] != 'd' || comm[3] != 'e')
		return 0;
	__u64 id = ar_current_id();
	if (!(id >> 32))
		return 0; /* a process the sidecar cannot see */
	ar_notify(AR_EV_RUNTIME_EXEC, sizeof(struct ar_runtime_exec_event), id);
	return 0;
}

/* Attached only while the io family is not: io's write probe registers
 * slots too, so a write runs one program less. */
SEC("tracepoint/syscalls/sys_enter_write")
int context_slot_register(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[2] != AR_SLOT_SIZE)
		return 0; /* cheapest test first: almost no write is 32 bytes */
	__u64 buf = ctx->args[1];
	/* one load from the context: the verifier refuses a ctx pointer that
	 * clang moved before dereferencing it on two paths */
	asm volatile("" : "+r"(buf));
	__u64 id = ar_current_id();
	if (!ar_is_tracked(id))
		ar_slot_declare(id, buf);
	else
		ar_slot_register(id, buf, AR_SLOT_SIZE);
	return 0;
}
