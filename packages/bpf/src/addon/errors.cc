#include "errors.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>

namespace agentrace {

namespace {

constexpr size_t kMaxLogLines = 20;
constexpr size_t kMaxLineLength = 1024;

// libbpf reports through a process-wide callback but always on the thread
// that called into it, so a per-thread ring keeps worker threads apart.
struct LogRing {
  std::deque<std::string> lines;
  std::string partial;  // text after the last '\n' (libbpf may split a line)
};

thread_local LogRing t_log;
bool g_echo_to_stderr = false;

void PushLine(LogRing& ring, std::string line) {
  if (line.size() > kMaxLineLength) {
    line.resize(kMaxLineLength);
    line += "...";
  }
  ring.lines.push_back(std::move(line));
  while (ring.lines.size() > kMaxLogLines) ring.lines.pop_front();
}

void Append(LogRing& ring, const char* text, size_t len) {
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] != '\n') continue;
    ring.partial.append(text + start, i - start);
    PushLine(ring, std::move(ring.partial));
    ring.partial.clear();
    start = i + 1;
  }
  ring.partial.append(text + start, len - start);
  if (ring.partial.size() > kMaxLineLength) {
    PushLine(ring, std::move(ring.partial));
    ring.partial.clear();
  }
}

int LibbpfPrint(enum libbpf_print_level level, const char* format,
                va_list args) {
  if (g_echo_to_stderr) {
    va_list copy;
    va_copy(copy, args);
    vfprintf(stderr, format, copy);
    va_end(copy);
  }
  // Debug chatter would push the interesting warnings out of the ring.
  if (level == LIBBPF_DEBUG) return 0;
  try {
    va_list sizing;
    va_copy(sizing, args);
    int needed = vsnprintf(nullptr, 0, format, sizing);
    va_end(sizing);
    if (needed <= 0) return 0;
    std::string text(static_cast<size_t>(needed) + 1, '\0');
    va_list copy;
    va_copy(copy, args);
    vsnprintf(&text[0], text.size(), format, copy);
    va_end(copy);
    Append(t_log, text.data(), static_cast<size_t>(needed));
  } catch (...) {
    // Never let a C++ exception unwind through libbpf's C frames.
  }
  return 0;
}

bool Contains(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

const char* const kPrivilegeHint =
    "run as root or grant CAP_BPF and CAP_PERFMON (and CAP_SYS_RESOURCE on "
    "older kernels)";
const char* const kBtfHint =
    "kernel BTF (/sys/kernel/btf/vmlinux) is missing; a kernel with "
    "CONFIG_DEBUG_INFO_BTF=y is needed";
const char* const kVerifierHint =
    "the verifier rejected a program; see err.libbpfLog";
const char* const kSeeLog = "see err.libbpfLog for libbpf's explanation";

bool LooksLikeMissingBtf(int err, const std::string& log) {
  if (err != ESRCH && err != ENOENT) return false;
  if (Contains(log, "vmlinux BTF is not found") ||
      Contains(log, "Error loading vmlinux BTF") ||
      Contains(log, "failed to find valid kernel BTF")) {
    return true;
  }
  // "X is not found in vmlinux BTF" means BTF exists but lacks X; only blame
  // BTF itself when the file really is absent.
  return Contains(log, "vmlinux BTF") &&
         access("/sys/kernel/btf/vmlinux", R_OK) != 0;
}

bool IsTracepointSection(const std::string& section) {
  return section.rfind("tracepoint/", 0) == 0 || section.rfind("tp/", 0) == 0;
}

}  // namespace

void InitLibbpfLogging() {
  // Once per process: the main thread and workers may load the addon.
  static std::once_flag once;
  std::call_once(once, [] {
    const char* debug = getenv("AGENTRACE_LIBBPF_DEBUG");
    g_echo_to_stderr = debug != nullptr && strcmp(debug, "1") == 0;
    libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
    libbpf_set_print(LibbpfPrint);
  });
}

LibbpfLogScope::LibbpfLogScope() {
  t_log.lines.clear();
  t_log.partial.clear();
}

std::string RecentLibbpfLog() {
  std::string out;
  for (const std::string& line : t_log.lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  if (!t_log.partial.empty()) {
    if (!out.empty()) out += '\n';
    out += t_log.partial;
  }
  return out;
}

void AdoptLibbpfLog(const std::string& log) {
  t_log.lines.clear();
  t_log.partial.clear();
  size_t start = 0;
  while (start <= log.size() && !log.empty()) {
    size_t nl = log.find('\n', start);
    if (nl == std::string::npos) {
      t_log.lines.push_back(log.substr(start));
      break;
    }
    t_log.lines.push_back(log.substr(start, nl - start));
    start = nl + 1;
  }
}

std::string ErrnoName(int err) {
  static const char* const kLibbpfNames[] = {
      "LIBBPF_ERRNO__LIBELF",   "LIBBPF_ERRNO__FORMAT",
      "LIBBPF_ERRNO__KVERSION", "LIBBPF_ERRNO__ENDIAN",
      "LIBBPF_ERRNO__INTERNAL", "LIBBPF_ERRNO__RELOC",
      "LIBBPF_ERRNO__LOAD",     "LIBBPF_ERRNO__VERIFY",
      "LIBBPF_ERRNO__PROG2BIG", "LIBBPF_ERRNO__KVER",
      "LIBBPF_ERRNO__PROGTYPE", "LIBBPF_ERRNO__WRNGPID",
      "LIBBPF_ERRNO__INVSEQ",   "LIBBPF_ERRNO__NLPARSE",
  };
  if (err >= __LIBBPF_ERRNO__START && err < __LIBBPF_ERRNO__END) {
    size_t index = static_cast<size_t>(err - __LIBBPF_ERRNO__START);
    if (index < sizeof(kLibbpfNames) / sizeof(kLibbpfNames[0])) {
      return kLibbpfNames[index];
    }
  }
  // The kernel also returns its internal codes (ENOTSUPP=524, ...), which
  // glibc does not know.
  switch (err) {
    case 512: return "ERESTARTSYS";
    case 524: return "ENOTSUPP";
    default: break;
  }
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

std::string ErrnoDescription(int err) {
  if (err == 524) return "Operation is not supported";
  char buf[256];
  if (libbpf_strerror(err, buf, sizeof(buf)) == 0) return buf;
  return "Unknown error " + std::to_string(err);
}

std::string HintFor(int err, const ErrorContext& ctx) {
  const std::string log = RecentLibbpfLog();
  if (LooksLikeMissingBtf(err, log)) return kBtfHint;

  switch (ctx.phase) {
    case Phase::kOpen:
      if (err == ENOENT) {
        return "no such BPF object file: " + ctx.path +
               "; build it with `pnpm -C packages/bpf build`";
      }
      if (err == EACCES || err == EPERM) {
        return "cannot read " + ctx.path + "; check its permissions";
      }
      if (err == LIBBPF_ERRNO__FORMAT || err == LIBBPF_ERRNO__LIBELF ||
          err == EINVAL) {
        return ctx.path +
               " is not a valid BPF object; rebuild it with `pnpm -C "
               "packages/bpf build`";
      }
      return kSeeLog;

    case Phase::kLoad:
      if (Contains(log, "BEGIN PROG LOAD LOG")) return kVerifierHint;
      if (err == EPERM || err == EACCES) return kPrivilegeHint;
      if (Contains(log, "failed to create")) {
        return "the kernel refused to create a map (its size or type); see "
               "err.libbpfLog";
      }
      if (err == EINVAL || err == LIBBPF_ERRNO__VERIFY) return kVerifierHint;
      if (err == E2BIG || err == LIBBPF_ERRNO__PROG2BIG) {
        return "a program is too large or complex for the verifier; see "
               "err.libbpfLog";
      }
      if (err == LIBBPF_ERRNO__PROGTYPE || err == EOPNOTSUPP || err == 524) {
        return "this kernel does not support a program or map type used by "
               "the object; see err.libbpfLog";
      }
      return kSeeLog;

    case Phase::kAttach:
      if ((err == EPERM || err == EACCES) && Contains(log, "perf event ID")) {
        // libbpf could not read events/<category>/<name>/id from tracefs.
        return std::string(kPrivilegeHint) +
               "; reading tracepoint ids also needs read access to "
               "/sys/kernel/tracing/events (root-only by default)";
      }
      if ((err == EPERM || err == EACCES) &&
          ctx.section.rfind("uprobe", 0) == 0) {
        // perf_uprobe_event_init checks CAP_SYS_ADMIN, not CAP_PERFMON
        // (measured on 6.18); so do seccomp's default profiles for
        // perf_event_open.
        return "run as root or grant CAP_SYS_ADMIN (uprobes need it; "
               "CAP_BPF and CAP_PERFMON are not enough)";
      }
      if (err == EPERM || err == EACCES) return kPrivilegeHint;
      if (err == ENOENT) {
        if (IsTracepointSection(ctx.section)) {
          if (access("/sys/kernel/tracing/events", F_OK) != 0 &&
              access("/sys/kernel/debug/tracing/events", F_OK) != 0) {
            return "tracepoint not found: tracefs is not mounted; mount it "
                   "with `mount -t tracefs nodev /sys/kernel/tracing`";
          }
          return "tracepoint not found; check /sys/kernel/tracing/events/" +
                 ctx.section.substr(ctx.section.find('/') + 1);
        }
        return "attach target not found; see err.libbpfLog";
      }
      if (err == EOPNOTSUPP || err == ESRCH) {
        return "section '" + ctx.section +
               "' cannot be auto-attached; use a full section name such as "
               "tracepoint/<category>/<event>";
      }
      if (err == EBUSY || err == EEXIST) {
        return "the attach point is already in use";
      }
      return kSeeLog;

    case Phase::kMap:
      if (err == EPERM || err == EACCES) return kPrivilegeHint;
      if (err == E2BIG) {
        return "the map is full (or an array index is >= maxEntries); raise "
               "maxEntries with setMaxEntries() before load()";
      }
      if (err == EEXIST) return "the key already exists (flags had BPF_NOEXIST)";
      if (err == ENOENT) return "the key does not exist (flags had BPF_EXIST)";
      if (err == ENOMEM) return "the kernel could not allocate a map element";
      if (err == EOPNOTSUPP || err == 524) {
        return "this map type does not support the operation";
      }
      return kSeeLog;

    case Phase::kRingBuffer:
      if (err == EPERM || err == EACCES) return kPrivilegeHint;
      return kSeeLog;

    case Phase::kOther:
      break;
  }
  if (err == EPERM || err == EACCES) return kPrivilegeHint;
  return kSeeLog;
}

Napi::Error MakeBpfError(Napi::Env env, const std::string& what, int err,
                         const std::string& hint) {
  const std::string name = ErrnoName(err);
  std::string message =
      what + " failed: " + name + " (" + ErrnoDescription(err) + ")";
  if (!hint.empty()) message += ": " + hint;
  Napi::String log = Napi::String::New(env, RecentLibbpfLog());
  auto* ctor = env.GetInstanceData<Napi::FunctionReference>();
  if (ctor != nullptr && !ctor->IsEmpty()) {
    return Napi::Error(
        env, ctor->New({Napi::String::New(env, message),
                        Napi::String::New(env, name),
                        Napi::Number::New(env, err), log}));
  }
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object obj = error.Value();
  obj.Set("errnoName", Napi::String::New(env, name));
  obj.Set("errno", Napi::Number::New(env, err));
  obj.Set("libbpfLog", log);
  return error;
}

namespace {

void SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "setErrorClass(ctor): ctor must be a class");
  }
  // The environment owns (and deletes) it at teardown.
  env.SetInstanceData<Napi::FunctionReference>(
      new Napi::FunctionReference(Napi::Persistent(info[0].As<Napi::Function>())));
}

}  // namespace

void InitErrorClass(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass",
              Napi::Function::New(env, SetErrorClass, "setErrorClass"));
}

Napi::Error MakeUsageError(Napi::Env env, const std::string& what, int err,
                           const std::string& hint) {
  LibbpfLogScope fresh;  // stale lines from earlier calls would mislead
  return MakeBpfError(env, what, err, hint);
}

Napi::Error MakeLibbpfError(Napi::Env env, const std::string& what, int err,
                            const ErrorContext& ctx) {
  return MakeBpfError(env, what, err, HintFor(err, ctx));
}

int PositiveErr(long ret) {
  if (ret < 0) return static_cast<int>(-ret);
  if (ret > 0) return static_cast<int>(ret);
  return errno != 0 ? errno : EINVAL;
}

}  // namespace agentrace
