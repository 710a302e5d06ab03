// Free functions exported next to BpfObject: CPU count, the BPF clock and
// the libbpf version.
#ifndef AGENTRACE_BPF_SYSINFO_H_
#define AGENTRACE_BPF_SYSINFO_H_

#include <napi.h>

namespace agentrace {

// Adds numPossibleCpus(), monotonicNs() and libbpfVersion() to exports.
void InitSysInfo(Napi::Env env, Napi::Object exports);

}  // namespace agentrace

#endif  // AGENTRACE_BPF_SYSINFO_H_
