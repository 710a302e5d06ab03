// Turning libbpf failures into helpful JS errors, and capturing what libbpf
// prints so it can be attached to those errors.
#ifndef AGENTRACE_BPF_ERRORS_H_
#define AGENTRACE_BPF_ERRORS_H_

#include <napi.h>

#include <string>

namespace agentrace {

// Installs the libbpf print callback (lines go into a per-thread ring that
// errors attach as err.libbpfLog; echoed to stderr only when
// AGENTRACE_LIBBPF_DEBUG=1) and enables libbpf strict mode. Idempotent.
void InitLibbpfLogging();

// Exports setErrorClass(ctor): the class MakeBpfError instantiates, as
// new ctor(message, errnoName, errno, libbpfLog), so what the addon throws is
// the package's typed BpfError. Kept per environment (worker threads load
// the addon again).
void InitErrorClass(Napi::Env env, Napi::Object exports);

// Starts a fresh capture: clears this thread's ring of libbpf log lines so an
// error raised by the current operation only carries lines it caused.
// Use one at the top of every operation that calls into libbpf.
class LibbpfLogScope {
 public:
  LibbpfLogScope();
  LibbpfLogScope(const LibbpfLogScope&) = delete;
  LibbpfLogScope& operator=(const LibbpfLogScope&) = delete;
};

// The last lines (at most ~20) libbpf printed on this thread, '\n'-joined.
std::string RecentLibbpfLog();

// Makes `log` (RecentLibbpfLog() of another thread) this thread's capture, so
// an error raised here for work done there carries its lines and hint.
void AdoptLibbpfLog(const std::string& log);

// "EPERM", "ENOENT", "LIBBPF_ERRNO__FORMAT", ... ("E<n>" if unknown).
std::string ErrnoName(int err);
// Human text ("Operation not permitted"), libbpf-specific codes included.
std::string ErrnoDescription(int err);

// Where in the object's life an error happened; selects the hint.
enum class Phase { kOpen, kLoad, kAttach, kMap, kRingBuffer, kOther };

struct ErrorContext {
  Phase phase = Phase::kOther;
  std::string path;     // kOpen: the object file
  std::string section;  // kAttach: the program's ELF section
};

// Picks the "what to do" hint for errno `err` (positive), looking at the
// captured libbpf log where that tells causes apart (missing BTF, verifier).
std::string HintFor(int err, const ErrorContext& ctx);

// Builds `<what> failed: <NAME> (<description>): <hint>` as the class given
// to setErrorClass (a plain Error before it is set), with errnoName = NAME,
// errno = err (positive), libbpfLog = the captured log.
Napi::Error MakeBpfError(Napi::Env env, const std::string& what, int err,
                         const std::string& hint);

// For misuse detected before calling libbpf (closed object, not loaded,
// unknown name...): MakeBpfError with an empty err.libbpfLog.
Napi::Error MakeUsageError(Napi::Env env, const std::string& what, int err,
                           const std::string& hint);

// MakeBpfError with HintFor(err, ctx) as the hint.
Napi::Error MakeLibbpfError(Napi::Env env, const std::string& what, int err,
                            const ErrorContext& ctx);

// Normalizes a libbpf return value / errno into a positive error number.
int PositiveErr(long ret);

}  // namespace agentrace

#endif  // AGENTRACE_BPF_ERRORS_H_
