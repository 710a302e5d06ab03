// BpfObject: class registration, open/load/close and program attach/detach.
// Map access lives in bpf_object_maps.cc, the ring buffer in
// bpf_object_ringbuf.cc.
#include "bpf_object.h"

#include <fcntl.h>
#include <unistd.h>

#include <sys/mman.h>

#include <system_error>
#include <thread>
#include <vector>

#include <bpf/libbpf.h>
#include <errno.h>

#include "args.h"
#include "errors.h"
#include "ring_buffer.h"

namespace agentrace {

void BpfObject::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "BpfObject",
      {
          InstanceMethod<&BpfObject::Load>("load"),
          InstanceMethod<&BpfObject::LoadAsync>("loadAsync"),
          InstanceMethod<&BpfObject::Programs>("programs"),
          InstanceMethod<&BpfObject::Maps>("maps"),
          InstanceMethod<&BpfObject::SetMaxEntries>("setMaxEntries"),
          InstanceMethod<&BpfObject::SetConstant>("setConstant"),
          InstanceMethod<&BpfObject::Attach>("attach"),
          InstanceMethod<&BpfObject::Detach>("detach"),
          InstanceMethod<&BpfObject::IsAttached>("isAttached"),
          InstanceMethod<&BpfObject::AttachUprobe>("attachUprobe"),
          InstanceMethod<&BpfObject::DetachUprobe>("detachUprobe"),
          InstanceMethod<&BpfObject::MapUpdate>("mapUpdate"),
          InstanceMethod<&BpfObject::MapLookup>("mapLookup"),
          InstanceMethod<&BpfObject::MapDelete>("mapDelete"),
          InstanceMethod<&BpfObject::MapKeys>("mapKeys"),
          InstanceMethod<&BpfObject::MapSetBit>("mapSetBit"),
          InstanceMethod<&BpfObject::MapDrain>("mapDrain"),
          InstanceMethod<&BpfObject::StartRingBuffer>("startRingBuffer"),
          InstanceMethod<&BpfObject::PollRingBuffer>("pollRingBuffer"),
          InstanceMethod<&BpfObject::StopRingBuffer>("stopRingBuffer"),
          InstanceMethod<&BpfObject::Close>("close"),
          InstanceMethod<&BpfObject::LinkFds>("linkFds"),
      });
  exports.Set("BpfObject", ctor);
}

BpfObject::BpfObject(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<BpfObject>(info) {
  Napi::Env env = info.Env();
  path_ = StringArg(info, 0, "new BpfObject()", "path");
  LibbpfLogScope log;
  errno = 0;
  struct bpf_object* obj = bpf_object__open_file(path_.c_str(), nullptr);
  if (obj == nullptr) {
    int err = PositiveErr(-errno);
    ErrorContext ctx;
    ctx.phase = Phase::kOpen;
    ctx.path = path_;
    throw MakeLibbpfError(env, "open(" + path_ + ")", err, ctx);
  }
  obj_ = obj;
}

BpfObject::~BpfObject() { CloseInternal(); }

void BpfObject::RequireOpen(Napi::Env env, const std::string& what) const {
  if (obj_ == nullptr || close_after_load_) {
    throw MakeUsageError(env, what, EBADF,
                         "this BpfObject was closed; create a new one");
  }
  if (loading_) {
    throw MakeUsageError(env, what, EBUSY,
                         "loadAsync() has not settled yet; await it first");
  }
}

void BpfObject::RequireLoaded(Napi::Env env, const std::string& what) const {
  RequireOpen(env, what);
  if (!loaded_) {
    throw MakeUsageError(env, what, EINVAL,
                         load_failed_ ? "load() failed earlier; fix the "
                                        "object and create a new BpfObject"
                                      : "call load() first");
  }
}

struct bpf_program* BpfObject::FindProgram(Napi::Env env,
                                           const std::string& what,
                                           const std::string& name) const {
  struct bpf_program* prog =
      bpf_object__find_program_by_name(obj_, name.c_str());
  if (prog != nullptr) return prog;
  std::string available;
  bpf_object__for_each_program(prog, obj_) {
    if (!available.empty()) available += ", ";
    available += bpf_program__name(prog);
  }
  throw MakeUsageError(
      env, what, ENOENT,
      "no program named '" + name + "' in " + path_ + "; available: " +
          (available.empty() ? std::string("(none)") : available));
}

struct bpf_map* BpfObject::FindMap(Napi::Env env, const std::string& what,
                                   const std::string& name) const {
  struct bpf_map* map = bpf_object__find_map_by_name(obj_, name.c_str());
  if (map != nullptr) return map;
  std::string available;
  bpf_object__for_each_map(map, obj_) {
    if (!available.empty()) available += ", ";
    available += bpf_map__name(map);
  }
  throw MakeUsageError(
      env, what, ENOENT,
      "no map named '" + name + "' in " + path_ + "; available: " +
          (available.empty() ? std::string("(none)") : available));
}

void BpfObject::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "load()");
  if (loaded_) return;
  const std::string what = std::string("load(") + bpf_object__name(obj_) + ")";
  if (load_failed_) {
    throw MakeUsageError(env, what, EINVAL,
                         "an earlier load() failed and libbpf cannot retry; "
                         "create a new BpfObject");
  }
  LibbpfLogScope log;
  int rc = bpf_object__load(obj_);
  if (rc != 0) {
    load_failed_ = true;
    ErrorContext ctx;
    ctx.phase = Phase::kLoad;
    ctx.path = path_;
    throw MakeLibbpfError(env, what, PositiveErr(rc), ctx);
  }
  loaded_ = true;
}

// The verifier takes a few hundred milliseconds over all programs: on the
// libuv threadpool, the caller's thread meanwhile does the rest of its
// start-up (imports, sockets) instead of waiting.
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, BpfObject* self)
      : Napi::AsyncWorker(env, "agentrace:bpf-load"),
        self_(self),
        deferred_(Napi::Promise::Deferred::New(env)),
        obj_(self->obj_),
        what_(std::string("load(") + bpf_object__name(self->obj_) + ")") {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    LibbpfLogScope log;
    rc_ = bpf_object__load(obj_);
    if (rc_ != 0) log_ = RecentLibbpfLog();
  }

  void OnOK() override {
    Napi::Env env = Env();
    self_->loading_ = false;
    if (rc_ == 0) {
      self_->loaded_ = true;
    } else {
      self_->load_failed_ = true;
    }
    if (self_->close_after_load_) self_->CloseInternal();
    if (rc_ == 0) {
      deferred_.Resolve(env.Undefined());
    } else {
      AdoptLibbpfLog(log_);
      ErrorContext ctx;
      ctx.phase = Phase::kLoad;
      ctx.path = self_->path_;
      deferred_.Reject(MakeLibbpfError(env, what_, PositiveErr(rc_), ctx).Value());
    }
    self_->Unref();
  }

 private:
  BpfObject* self_;
  Napi::Promise::Deferred deferred_;
  struct bpf_object* obj_;
  std::string what_;
  int rc_ = 0;
  std::string log_;
};

Napi::Value BpfObject::LoadAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "loadAsync()");
  if (loaded_) {
    auto done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  if (load_failed_) {
    throw MakeUsageError(env, std::string("loadAsync(") + bpf_object__name(obj_) + ")", EINVAL,
                         "an earlier load() failed and libbpf cannot retry; "
                         "create a new BpfObject");
  }
  auto* worker = new LoadWorker(env, this);
  Napi::Promise promise = worker->Promise();
  loading_ = true;
  Ref();  // this object outlives the work even if JS drops it
  worker->Queue();
  return promise;
}

Napi::Value BpfObject::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "programs()");
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, obj_) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", Napi::String::New(env, bpf_program__name(prog)));
    const char* section = bpf_program__section_name(prog);
    entry.Set("section", Napi::String::New(env, section ? section : ""));
    out.Set(i++, entry);
  }
  return out;
}

void BpfObject::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "attach()", "progName");
  const std::string what = "attach(" + name + ")";
  RequireOpen(env, what);
  struct bpf_program* prog = FindProgram(env, what, name);
  if (links_.count(name) != 0) return;
  RequireLoaded(env, what);
  LibbpfLogScope log;
  errno = 0;
  struct bpf_link* link = nullptr;
  // A cgroup program (cgroup/connect4, ...) attaches to the cgroup given as
  // the second argument, and so to every process in it and below it.
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    const std::string cgroup = StringArg(info, 1, "attach()", "cgroupPath");
    int fd = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      ErrorContext ctx;
      ctx.phase = Phase::kAttach;
      ctx.path = cgroup;
      throw MakeLibbpfError(env, what + " on cgroup " + cgroup, err, ctx);
    }
    link = bpf_program__attach_cgroup(prog, fd);
    int saved = errno;
    close(fd);  // the link holds the cgroup
    errno = saved;
  } else {
    link = bpf_program__attach(prog);
  }
  if (link == nullptr) {
    int err = PositiveErr(-errno);
    ErrorContext ctx;
    ctx.phase = Phase::kAttach;
    const char* section = bpf_program__section_name(prog);
    ctx.section = section ? section : "";
    throw MakeLibbpfError(env, what, err, ctx);
  }
  links_[name] = link;
}

void BpfObject::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "detach()", "progName");
  if (obj_ == nullptr) return;  // close() already destroyed every link
  FindProgram(env, "detach(" + name + ")", name);
  auto it = links_.find(name);
  if (it == links_.end()) return;
  struct bpf_link* link = it->second;
  links_.erase(it);
  // Frees the link even if the kernel-side detach reports an error; the
  // program is no longer attached through us either way.
  bpf_link__destroy(link);
}

Napi::Value BpfObject::IsAttached(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "isAttached()", "progName");
  if (obj_ == nullptr) return Napi::Boolean::New(env, false);
  FindProgram(env, "isAttached(" + name + ")", name);
  return Napi::Boolean::New(env, links_.count(name) != 0);
}

// attachUprobe(progName, binaryPath, funcName, retprobe, offset?): the
// function is found by name in the binary's symbol table, so no offsets are
// hard-coded; or at `offset` when the caller resolved it (resolveFunctions).
void BpfObject::AttachUprobe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "attachUprobe()", "progName");
  const std::string binary = StringArg(info, 1, "attachUprobe()", "binaryPath");
  const std::string func = StringArg(info, 2, "attachUprobe()", "funcName");
  const bool retprobe = info.Length() > 3 && info[3].ToBoolean().Value();
  const bool by_offset = info.Length() > 4 && info[4].IsNumber();
  const size_t offset = by_offset ? static_cast<size_t>(info[4].As<Napi::Number>().Int64Value()) : 0;
  const std::string what = "attachUprobe(" + name + ", " + binary + ":" + func + ")";
  RequireOpen(env, what);
  struct bpf_program* prog = FindProgram(env, what, name);
  const std::string key = name + '\0' + binary + '\0' + func;
  if (uprobe_links_.count(key) != 0) return;
  RequireLoaded(env, what);
  LibbpfLogScope log;
  LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe, .func_name = by_offset ? nullptr : func.c_str());
  errno = 0;
  struct bpf_link* link = bpf_program__attach_uprobe_opts(prog, -1, binary.c_str(), offset, &opts);
  if (link == nullptr) {
    int err = PositiveErr(-errno);
    ErrorContext ctx;
    if (err == EPERM || err == EACCES) {  // the uprobe privilege hint; other errnos keep the generic ones
      ctx.phase = Phase::kAttach;
      ctx.section = "uprobe";
    }
    throw MakeBpfError(env, what, err,
                       err == ENOENT ? "the binary or the function symbol was not found (is the binary stripped?)"
                                     : HintFor(err, ctx));
  }
  uprobe_links_[key] = link;
}

void BpfObject::DetachUprobe(const Napi::CallbackInfo& info) {
  const std::string name = StringArg(info, 0, "detachUprobe()", "progName");
  const std::string binary = StringArg(info, 1, "detachUprobe()", "binaryPath");
  const std::string func = StringArg(info, 2, "detachUprobe()", "funcName");
  auto it = uprobe_links_.find(name + '\0' + binary + '\0' + func);
  if (it == uprobe_links_.end()) return;
  bpf_link__destroy(it->second);
  uprobe_links_.erase(it);
}

void BpfObject::Close(const Napi::CallbackInfo& /*info*/) {
  if (loading_) {
    close_after_load_ = true;  // obj_ is the verifier's until it settles
    return;
  }
  CloseInternal();
}

Napi::Value BpfObject::LinkFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto* links : {&links_, &uprobe_links_}) {
    for (const auto& entry : *links) {
      int fd = bpf_link__fd(entry.second);
      if (fd >= 0) out.Set(i++, Napi::Number::New(env, fd));
    }
  }
  return out;
}

// Each link's teardown waits for an RCU grace period in the kernel (about
// 50 ms each here); from several threads at once the waits overlap, so
// closing ~40 links takes one or two grace periods instead of 40.
void BpfObject::DestroyLinks(const std::vector<struct bpf_link*>& links) {
  std::vector<std::thread> threads;
  threads.reserve(links.size());
  for (struct bpf_link* link : links) {
    try {
      threads.emplace_back([link] { bpf_link__destroy(link); });
    } catch (const std::system_error&) {
      bpf_link__destroy(link);  // no thread to spare: do it here
    }
  }
  for (auto& t : threads) t.join();
}

void BpfObject::CloseInternal() {
  StopRingBufferInternal();
  std::vector<struct bpf_link*> links;
  for (auto& entry : links_) links.push_back(entry.second);
  for (auto& entry : uprobe_links_) links.push_back(entry.second);
  links_.clear();
  uprobe_links_.clear();
  DestroyLinks(links);
  for (auto& entry : mappings_) munmap(entry.second.addr, entry.second.len);
  mappings_.clear();
  if (obj_ != nullptr) {
    bpf_object__close(obj_);
    obj_ = nullptr;
  }
}

}  // namespace agentrace
