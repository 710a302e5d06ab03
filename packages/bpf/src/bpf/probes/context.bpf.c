/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Context family: learns where each thread of a tracked process keeps its
 * slot. The SDK writes its slot, magic first, once per thread and sidecar
 * connection; write(2) hands us the slot's address as its buffer. */

/* For a write of a tracked process (the caller checked). */
static __always_inline void ar_slot_register(__u64 id, __u64 buf, __u64 len)
{
	if (len != AR_SLOT_SIZE)
		return;
	__u64 magic[2];
	if (bpf_probe_read_user(magic, sizeof(magic), (void *)buf))
		return;
	if (magic[0] != AR_SLOT_MAGIC_LO || magic[1] != AR_SLOT_MAGIC_HI)
		return;
	__u64 addr = buf;
	/* a stack copy: otherwise clang hands the map the tracepoint context's
	 * own field, which the verifier refuses */
	asm volatile("" : "+r"(addr));
	bpf_map_update_elem(&ar_thread_slots, &id, &addr, BPF_ANY);
}

/* Attached only while the io family is not: io's write probe registers
 * slots too, so a write runs one program less. */
SEC("tracepoint/syscalls/sys_enter_write")
int context_slot_register(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[2] != AR_SLOT_SIZE)
		return 0; /* cheapest test first: almost no write is 32 bytes */
	__u64 id = bpf_get_current_pid_tgid();
	if (!ar_is_tracked(id))
		return 0;
	ar_slot_register(id, ctx->args[1], ctx->args[2]);
	return 0;
}
