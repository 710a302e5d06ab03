// BpfObject: the (single) ring buffer consumer.
#include <bpf/libbpf.h>
#include <errno.h>

#include "args.h"
#include "bpf_object.h"
#include "errors.h"
#include "ring_buffer.h"

namespace agentrace {

void BpfObject::StartRingBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "startRingBuffer()", "mapName");
  const std::string what = "startRingBuffer(" + name + ")";
  Napi::Function on_batch =
      FunctionArg(info, 1, "startRingBuffer()", "onBatch");
  RequireOpen(env, what);
  struct bpf_map* map = FindMap(env, what, name);
  if (ring_buffer_ != nullptr) {
    throw MakeUsageError(env, what, EBUSY,
                         "a ring buffer is already running on this object; "
                         "call stopRingBuffer() first");
  }
  enum bpf_map_type type = bpf_map__type(map);
  if (type != BPF_MAP_TYPE_RINGBUF) {
    const char* type_name = libbpf_bpf_map_type_str(type);
    throw MakeUsageError(
        env, what, EINVAL,
        "map '" + name + "' is of type " +
            (type_name ? type_name : "?") + " (" + std::to_string(type) +
            "), not ringbuf (BPF_MAP_TYPE_RINGBUF)");
  }
  RequireLoaded(env, what);
  LibbpfLogScope log;
  ring_buffer_ =
      RingBufferPoller::Start(env, name, bpf_map__fd(map), Value(), on_batch);
}

Napi::Value BpfObject::PollRingBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (ring_buffer_ == nullptr) return Napi::Number::New(env, 0);
  // onBatch may stop the ring buffer or close the object while PollNow runs;
  // the poller stays allocated until its uv_close callback, so this is safe.
  return Napi::Number::New(env, ring_buffer_->PollNow(env));
}

void BpfObject::StopRingBuffer(const Napi::CallbackInfo& /*info*/) {
  StopRingBufferInternal();
}

void BpfObject::StopRingBufferInternal() {
  if (ring_buffer_ == nullptr) return;
  RingBufferPoller* poller = ring_buffer_;
  ring_buffer_ = nullptr;
  poller->Stop();
}

}  // namespace agentrace
