/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Process and thread ids as user space names them. A sidecar on the host
 * names them as the kernel does, and ids are bpf_get_current_pid_tgid()'s.
 * A sidecar in a container (a pod sidecar, with the pod's processes shared)
 * sees its own PID namespace only: every id the probes key maps by or put
 * in events is then the task's id in that namespace, and a task that
 * namespace cannot see gets 0, which is never tracked.
 */
#ifndef AR_PIDNS_BPF_H
#define AR_PIDNS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* The inode of the sidecar's PID namespace (/proc/self/ns/pid), set before
 * load; 0 when it is the initial one. A constant: on the host, the
 * verifier drops the translation below altogether. */
const volatile __u32 ar_pidns_inum = 0;

/* That namespace's depth below the initial one, learned from the first task
 * found in it (a namespace never moves); 0 while unknown. User space in a
 * container cannot see it: its /proc stops at its own namespace. */
__u32 ar_pidns_level = 0;

/* Deep enough for a pod in a VM in a container; the kernel allows 32. */
#define AR_PIDNS_MAX_LEVEL 8

static __always_inline __u32 ar_upid_in(struct pid *p, __u32 level)
{
	struct upid u = {};
	if (level >= AR_PIDNS_MAX_LEVEL ||
	    bpf_probe_read_kernel(&u, sizeof(u), (void *)&p->numbers[0] + level * bpf_core_type_size(struct upid)))
		return 0;
	if (!u.ns || BPF_CORE_READ(u.ns, ns.inum) != ar_pidns_inum)
		return 0;
	return (__u32)u.nr;
}

/* The id of `p` in the sidecar's namespace, or 0 if it has none there. */
static __always_inline __u32 ar_pid_nr(struct pid *p)
{
	if (!p)
		return 0;
	__u32 depth = BPF_CORE_READ(p, level);
	__u32 level = ar_pidns_level;
	if (level)
		return level <= depth ? ar_upid_in(p, level) : 0;
	/* Not learned yet: look at every level this pid has. */
	for (__u32 l = 1; l < AR_PIDNS_MAX_LEVEL; l++) {
		if (l > depth)
			break;
		__u32 nr = ar_upid_in(p, l);
		if (nr) {
			ar_pidns_level = l;
			return nr;
		}
	}
	return 0;
}

/* pid_tgid of `task` as the sidecar names it: tgid << 32 | tid; 0 when it
 * is not in the sidecar's namespace or below. */
static __always_inline __u64 ar_task_id(struct task_struct *task)
{
	if (!ar_pidns_inum)
		return ((__u64)BPF_CORE_READ(task, tgid) << 32) | (__u32)BPF_CORE_READ(task, pid);
	__u32 tid = ar_pid_nr(BPF_CORE_READ(task, thread_pid));
	__u32 tgid = tid ? ar_pid_nr(BPF_CORE_READ(task, group_leader, thread_pid)) : 0;
	return tgid ? ((__u64)tgid << 32) | tid : 0;
}

/* bpf_get_current_pid_tgid(), in the sidecar's namespace. */
static __always_inline __u64 ar_current_id(void)
{
	if (!ar_pidns_inum)
		return bpf_get_current_pid_tgid();
	return ar_task_id((struct task_struct *)bpf_get_current_task());
}

#endif /* AR_PIDNS_BPF_H */
