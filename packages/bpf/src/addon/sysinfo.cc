#include "sysinfo.h"

#include <bpf/libbpf.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <time.h>

#include <cstdint>
#include <string>

#include "errors.h"

namespace agentrace {

namespace {

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibbpfLogScope log;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) {
    throw MakeBpfError(env, "numPossibleCpus()", PositiveErr(cpus),
                       "cannot read /sys/devices/system/cpu/possible");
  }
  return Napi::Number::New(env, cpus);
}

// Same clock as bpf_ktime_get_ns(), so BPF timestamps can be compared.
Napi::Value MonotonicNs(const Napi::CallbackInfo& info) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull +
                static_cast<uint64_t>(ts.tv_nsec);
  return Napi::BigInt::New(info.Env(), ns);
}

// "major.minor" from the loaded library, plus ".patch" when the shared
// object's real file name (libbpf.so.1.1.2) reveals it.
std::string LibbpfVersionString() {
  std::string version = std::to_string(libbpf_major_version()) + "." +
                        std::to_string(libbpf_minor_version());
  Dl_info dl;
  if (dladdr(reinterpret_cast<void*>(&libbpf_major_version), &dl) == 0 ||
      dl.dli_fname == nullptr) {
    return version;
  }
  char resolved[PATH_MAX];
  if (realpath(dl.dli_fname, resolved) == nullptr) return version;
  const std::string file(resolved);
  const std::string marker = ".so." + version + ".";
  size_t at = file.rfind(marker);
  if (at == std::string::npos) return version;
  std::string patch = file.substr(at + marker.size());
  if (patch.empty() ||
      patch.find_first_not_of("0123456789") != std::string::npos) {
    return version;
  }
  return version + "." + patch;
}

Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), LibbpfVersionString());
}

}  // namespace

void InitSysInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus,
                                                     "numPossibleCpus"));
  exports.Set("monotonicNs",
              Napi::Function::New(env, MonotonicNs, "monotonicNs"));
  exports.Set("libbpfVersion",
              Napi::Function::New(env, LibbpfVersion, "libbpfVersion"));
}

}  // namespace agentrace
