/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Context family: learns where each thread of a tracked process keeps its
 * slot. The SDK writes its slot, magic first, once per thread and sidecar
 * connection; write(2) hands us the slot's address as its buffer. */

SEC("tracepoint/syscalls/sys_enter_write")
int context_slot_register(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[2] != AR_SLOT_SIZE)
		return 0; /* cheapest test first: almost no write is 32 bytes */
	__u64 id = bpf_get_current_pid_tgid();
	if (!ar_tracked(id))
		return 0;
	__u64 magic[2];
	if (bpf_probe_read_user(magic, sizeof(magic), (void *)ctx->args[1]))
		return 0;
	if (magic[0] != AR_SLOT_MAGIC_LO || magic[1] != AR_SLOT_MAGIC_HI)
		return 0;
	__u64 addr = ctx->args[1];
	bpf_map_update_elem(&ar_thread_slots, &id, &addr, BPF_ANY);
	return 0;
}
