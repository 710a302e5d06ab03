// A libbpf ring buffer wired into the libuv loop: a uv_poll_t watches
// ring_buffer__epoll_fd(); each wakeup drains every pending sample and hands
// them to a JS callback in batches: onBatch(data, bounds, count), the samples
// back to back in `data` and (offset, size) pairs in `bounds`. Both are the
// same two objects every time, reused (valid only during the call): one copy
// per sample, no allocation per batch, no object per sample. No threads, no
// busy polling.
#ifndef AGENTRACE_BPF_RING_BUFFER_H_
#define AGENTRACE_BPF_RING_BUFFER_H_

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

struct ring_buffer;

namespace agentrace {

class RingBufferPoller {
 public:
  // Creates the libbpf ring buffer on `map_fd` and starts polling. `owner` is
  // the JS object passed as `this` to onBatch; it is held strongly until
  // Stop(), so a running ring buffer keeps its BpfObject alive (like an open
  // socket). The poll handle keeps the loop alive until Stop().
  // Throws a JS error on failure.
  static RingBufferPoller* Start(Napi::Env env, const std::string& map_name,
                                 int map_fd, Napi::Object owner,
                                 Napi::Function on_batch);

  // Consumes whatever is pending now and calls onBatch (directly, so a throw
  // propagates to the caller). Returns the number of samples delivered.
  int PollNow(Napi::Env env);

  // Stops polling, frees the libbpf ring buffer and uv_close()s the handle so
  // it no longer holds the loop. The object deletes itself from the close
  // callback, so it stays valid for the rest of the current callback; the
  // caller must drop its pointer. Safe from inside onBatch and finalizers.
  void Stop();

 private:
  friend struct std::default_delete<RingBufferPoller>;  // Start() failures

  RingBufferPoller(napi_env env, std::string map_name);
  ~RingBufferPoller();
  RingBufferPoller(const RingBufferPoller&) = delete;
  RingBufferPoller& operator=(const RingBufferPoller&) = delete;

  static int OnSample(void* ctx, void* data, size_t size);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnClose(uv_handle_t* handle);

  // Drains the ring, delivering full batches as it goes and the rest at the
  // end. Returns the consume() result; negative on error (or when a
  // delivery threw: then sink_failed_ is set and the exception is pending).
  int Consume(Napi::Env env, bool from_loop, uint32_t* count);
  // Hands the collected samples to onBatch; false if it threw.
  bool Flush();
  void DeliverFromLoop(Napi::Env env);

  napi_env env_;
  std::string map_name_;
  struct ring_buffer* rb_ = nullptr;
  uv_poll_t poll_;
  bool polling_ = false;
  bool stopped_ = false;
  Napi::FunctionReference on_batch_;
  Napi::ObjectReference owner_;
  std::unique_ptr<Napi::AsyncContext> async_context_;

  // Valid only during Consume().
  bool consuming_ = false;
  bool from_loop_ = false;
  // The reused batch: a JS Buffer and Uint32Array, and their memory.
  Napi::Reference<Napi::Buffer<uint8_t>> data_ref_;
  Napi::Reference<Napi::Uint32Array> bounds_ref_;
  uint8_t* data_ = nullptr;
  size_t data_cap_ = 0;
  size_t data_used_ = 0;
  uint32_t* bounds_ = nullptr;
  uint32_t batch_count_ = 0;
  uint32_t sink_count_ = 0;
  bool sink_failed_ = false;
};

}  // namespace agentrace

#endif  // AGENTRACE_BPF_RING_BUFFER_H_
