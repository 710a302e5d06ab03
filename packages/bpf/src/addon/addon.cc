// Module entry point for agentrace_bpf.node.
#include <napi.h>

#include "bpf_object.h"
#include "errors.h"
#include "peer_cred.h"
#include "elf_symbols.h"
#include "sysinfo.h"

namespace {

Napi::Object InitAgentraceBpf(Napi::Env env, Napi::Object exports) {
  agentrace::InitLibbpfLogging();
  agentrace::InitErrorClass(env, exports);
  agentrace::BpfObject::Init(env, exports);
  agentrace::InitSysInfo(env, exports);
  agentrace::InitPeerCred(env, exports);
  agentrace::InitElfSymbols(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(agentrace_bpf, InitAgentraceBpf)
