// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The agentrace BPF object. All probe families are compiled as one object so
 * they share one set of maps (tracked processes, thread spans, ring buffer);
 * each family lives in its own file under probes/, and user space attaches
 * and detaches them by program name at run time.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "attribution.bpf.h"

#include "probes/file.bpf.c"
#include "probes/policy.bpf.c" /* before net: its connect probe prepares the decision */
#include "probes/net.bpf.c"
#include "probes/process.bpf.c"
#include "probes/context.bpf.c"
#include "probes/work.bpf.c"
#include "probes/dns.bpf.c"
#include "probes/io.bpf.c"

/* Keep the event structs in the object's BTF even where the code only casts
 * to them, so the layout test can read them back. */
struct ar_file_open_event *ar_btf_file_open __attribute__((unused));
struct ar_call_record *ar_btf_call_record __attribute__((unused));
struct ar_net_connect_event *ar_btf_net_connect __attribute__((unused));
struct ar_proc_exec_event *ar_btf_proc_exec __attribute__((unused));
struct ar_proc_fork_event *ar_btf_proc_fork __attribute__((unused));
struct ar_proc_exit_event *ar_btf_proc_exit __attribute__((unused));
struct ar_dns_lookup_event *ar_btf_dns_lookup __attribute__((unused));
struct ar_dns_query_event *ar_btf_dns_query __attribute__((unused));
struct ar_pending_syscall *ar_btf_pending __attribute__((unused));
struct ar_thread_slot *ar_btf_thread_slot __attribute__((unused));
struct ar_agg_key *ar_btf_agg_key __attribute__((unused));
struct ar_agg_value *ar_btf_agg_value __attribute__((unused));
struct ar_span_counts *ar_btf_span_counts __attribute__((unused));
struct ar_config *ar_btf_config __attribute__((unused));
struct ar_proc_declare_event *ar_btf_proc_declare __attribute__((unused));
struct ar_runtime_exec_event *ar_btf_runtime_exec __attribute__((unused));
struct ar_fd_owner *ar_btf_fd_owner __attribute__((unused));
struct ar_fd_key *ar_btf_fd_key __attribute__((unused));
struct ar_serving *ar_btf_serving __attribute__((unused));
struct ar_stdio *ar_btf_stdio __attribute__((unused));
struct ar_policy_tool *ar_btf_policy_tool __attribute__((unused));
struct ar_net_key *ar_btf_net_key __attribute__((unused));
struct ar_net_allow *ar_btf_net_allow __attribute__((unused));
struct ar_policy_ctx *ar_btf_policy_ctx __attribute__((unused));
struct ar_policy_key *ar_btf_policy_key __attribute__((unused));
struct ar_exec_key *ar_btf_exec_key __attribute__((unused));
struct ar_policy_net_event *ar_btf_policy_net __attribute__((unused));
struct ar_policy_file_event *ar_btf_policy_file __attribute__((unused));
struct ar_file_key *ar_btf_file_key __attribute__((unused));
struct ar_host_key *ar_btf_host_key __attribute__((unused));
struct ar_host_addr_key *ar_btf_host_addr_key __attribute__((unused));

/* And the enums, which nothing declares a variable of: user space's
 * src/abi.generated.ts is generated from this BTF (scripts/gen-abi.mjs). */
enum ar_event_kind ar_btf_event_kind __attribute__((unused));
enum ar_attr_source ar_btf_attr_source __attribute__((unused));
enum ar_stat ar_btf_stat __attribute__((unused));
enum ar_agg_kind ar_btf_agg_kind __attribute__((unused));
enum ar_proc_flag ar_btf_proc_flag __attribute__((unused));
enum ar_fd_flag ar_btf_fd_flag __attribute__((unused));
enum ar_fd_op ar_btf_fd_op __attribute__((unused));
enum ar_chan_op ar_btf_chan_op __attribute__((unused));
enum ar_chan_msg ar_btf_chan_msg __attribute__((unused));
enum ar_policy_mode ar_btf_policy_mode __attribute__((unused));
enum ar_verdict ar_btf_verdict __attribute__((unused));
enum ar_policy_net_flag ar_btf_policy_net_flag __attribute__((unused));
enum ar_policy_file_flag ar_btf_policy_file_flag __attribute__((unused));
enum ar_files_flag ar_btf_files_flag __attribute__((unused));
enum ar_frame_check ar_btf_frame_check __attribute__((unused));

char LICENSE[] SEC("license") = "Dual BSD/GPL";
