// The BpfObject JS class: one libbpf bpf_object (open -> load -> attach),
// its links, map access and (at most) one ring buffer consumer.
#ifndef AGENTRACE_BPF_BPF_OBJECT_H_
#define AGENTRACE_BPF_BPF_OBJECT_H_

#include <napi.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

struct bpf_object;
struct bpf_program;
struct bpf_map;
struct bpf_link;

namespace agentrace {

class RingBufferPoller;

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);

  explicit BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override;

 private:
  // Lifecycle and programs (bpf_object.cc).
  void Load(const Napi::CallbackInfo& info);
  Napi::Value LoadAsync(const Napi::CallbackInfo& info);
  Napi::Value Programs(const Napi::CallbackInfo& info);
  void Attach(const Napi::CallbackInfo& info);
  void Detach(const Napi::CallbackInfo& info);
  Napi::Value IsAttached(const Napi::CallbackInfo& info);
  void AttachUprobe(const Napi::CallbackInfo& info);
  void DetachUprobe(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  // The fds of every attached link (tracepoints and uprobes), for a process
  // that holds them while this one closes (see Probes.close).
  Napi::Value LinkFds(const Napi::CallbackInfo& info);

  // Maps (bpf_object_maps.cc).
  Napi::Value Maps(const Napi::CallbackInfo& info);
  void SetMaxEntries(const Napi::CallbackInfo& info);
  void SetConstant(const Napi::CallbackInfo& info);
  void MapUpdate(const Napi::CallbackInfo& info);
  Napi::Value MapLookup(const Napi::CallbackInfo& info);
  Napi::Value MapDelete(const Napi::CallbackInfo& info);
  Napi::Value MapKeys(const Napi::CallbackInfo& info);
  Napi::Value MapSetBit(const Napi::CallbackInfo& info);
  Napi::Value MapDrain(const Napi::CallbackInfo& info);

  // Ring buffer (bpf_object_ringbuf.cc).
  void StartRingBuffer(const Napi::CallbackInfo& info);
  Napi::Value PollRingBuffer(const Napi::CallbackInfo& info);
  void StopRingBuffer(const Napi::CallbackInfo& info);

  // Helpers. All throw JS errors (Napi::Error) with code/errno set.
  void RequireOpen(Napi::Env env, const std::string& what) const;
  void RequireLoaded(Napi::Env env, const std::string& what) const;
  struct bpf_program* FindProgram(Napi::Env env, const std::string& what,
                                  const std::string& name) const;
  struct bpf_map* FindMap(Napi::Env env, const std::string& what,
                          const std::string& name) const;
  // Bytes a lookup returns for this map (per-CPU maps: one slot per CPU).
  size_t ValueBufferSize(Napi::Env env, const std::string& what,
                         const struct bpf_map* map) const;
  // The user-space mapping of an mmap()able array map (made on first use).
  uint64_t* MappedWords(Napi::Env env, const std::string& what, struct bpf_map* map, size_t* words);
  void StopRingBufferInternal();
  void CloseInternal();
  static void DestroyLinks(const std::vector<struct bpf_link*>& links);

  std::string path_;
  struct bpf_object* obj_ = nullptr;
  bool loaded_ = false;
  bool load_failed_ = false;
  // A loadAsync() is verifying the programs on another thread: nothing else
  // may touch obj_ until it settles; a close() meanwhile happens then.
  bool loading_ = false;
  bool close_after_load_ = false;
  friend class LoadWorker;
  std::map<std::string, struct bpf_link*> links_;  // by program name
  // uprobes: one program may sit on several functions of several binaries;
  // keyed by "prog\0binary\0function".
  std::map<std::string, struct bpf_link*> uprobe_links_;
  RingBufferPoller* ring_buffer_ = nullptr;
  struct Mapping {
    void* addr;
    size_t len;
  };
  std::map<std::string, Mapping> mappings_;  // by map name
};

}  // namespace agentrace

#endif  // AGENTRACE_BPF_BPF_OBJECT_H_
