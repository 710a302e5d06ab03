// Function symbols of an ELF binary, resolved to file offsets in one pass:
// libbpf resolves a uprobe's function by name on every attach, re-reading
// the whole symbol table of a 100 MB node binary each time.
#ifndef AGENTRACE_BPF_ELF_SYMBOLS_H_
#define AGENTRACE_BPF_ELF_SYMBOLS_H_

#include <napi.h>

namespace agentrace {

// Adds resolveFunctions(binaryPath, names) -> { name: fileOffset } (names
// not found are left out), and readSymbols (symbols of any type with their
// first bytes, and the thread-local block) to exports.
void InitElfSymbols(Napi::Env env, Napi::Object exports);

}  // namespace agentrace

#endif  // AGENTRACE_BPF_ELF_SYMBOLS_H_
