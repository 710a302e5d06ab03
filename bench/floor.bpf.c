// The bare syscall-tracepoint floor (docs/PLATFORM.md): while any syscall
// tracepoint has a program attached, every syscall of every process takes
// the traced entry/exit path. This program does nothing, on a syscall no
// benchmark loop makes (acct), so what a loop pays with it attached is that
// path alone: the floor agentrace's probes are measured against.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_enter_acct")
int floor_enter(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_acct")
int floor_exit(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
