// Argument checking for the JS-facing methods: wrong types become TypeErrors
// with code ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE, like Node's own APIs.
#ifndef AGENTRACE_BPF_ARGS_H_
#define AGENTRACE_BPF_ARGS_H_

#include <napi.h>

#include <cstdint>
#include <string>

namespace agentrace {

std::string StringArg(const Napi::CallbackInfo& info, size_t index,
                      const char* method, const char* name);

Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t index,
                                const char* method, const char* name);

Napi::Function FunctionArg(const Napi::CallbackInfo& info, size_t index,
                           const char* method, const char* name);

// An integer in [0, max]; `fallback` if the argument is undefined and
// optional is true.
uint64_t IntegerArg(const Napi::CallbackInfo& info, size_t index,
                    const char* method, const char* name, uint64_t max,
                    bool optional = false, uint64_t fallback = 0);

}  // namespace agentrace

#endif  // AGENTRACE_BPF_ARGS_H_
