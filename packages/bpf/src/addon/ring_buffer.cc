#include "ring_buffer.h"

#include <bpf/libbpf.h>
#include <errno.h>

#include <cstring>

#include "errors.h"

namespace agentrace {

namespace {
constexpr const char* kAsyncResourceName = "agentrace:ringbuf";
// A batch is handed over when it holds this much: large enough that the
// per-call cost vanishes, small enough to stay in cache and keep a huge
// backlog from becoming one huge allocation.
constexpr size_t kBatchBytes = 1 << 20;
constexpr size_t kBatchSamples = 4096;
}  // namespace

RingBufferPoller::RingBufferPoller(napi_env env, std::string map_name)
    : env_(env), map_name_(std::move(map_name)) {}

RingBufferPoller::~RingBufferPoller() {
  if (rb_ != nullptr) ring_buffer__free(rb_);
}

RingBufferPoller* RingBufferPoller::Start(Napi::Env env,
                                          const std::string& map_name,
                                          int map_fd, Napi::Object owner,
                                          Napi::Function on_batch) {
  const std::string what = "startRingBuffer(" + map_name + ")";
  ErrorContext ctx;
  ctx.phase = Phase::kRingBuffer;

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw MakeBpfError(env, what, EINVAL, "no libuv event loop available");
  }

  std::unique_ptr<RingBufferPoller> self(new RingBufferPoller(env, map_name));
  self->on_batch_ = Napi::Persistent(on_batch);
  self->owner_ = Napi::Persistent(owner);  // strong: keeps the object alive
  self->async_context_ =
      std::make_unique<Napi::AsyncContext>(env, kAsyncResourceName, owner);
  auto data = Napi::Buffer<uint8_t>::New(env, kBatchBytes);
  auto bounds = Napi::Uint32Array::New(env, kBatchSamples * 2);
  self->data_ = data.Data();
  self->data_cap_ = data.Length();
  self->bounds_ = bounds.Data();
  self->data_ref_ = Napi::Persistent(data);
  self->bounds_ref_ = Napi::Persistent(bounds);

  self->rb_ = ring_buffer__new(map_fd, OnSample, self.get(), nullptr);
  if (self->rb_ == nullptr) {
    throw MakeLibbpfError(env, what, PositiveErr(-errno), ctx);
  }

  int rc = uv_poll_init(loop, &self->poll_, ring_buffer__epoll_fd(self->rb_));
  if (rc != 0) {
    throw MakeBpfError(env, what + " (uv_poll_init)", -rc, HintFor(-rc, ctx));
  }
  self->poll_.data = self.get();
  // From here on the handle belongs to the loop and must be uv_close()d;
  // Stop() does that and OnClose frees the object.
  rc = uv_poll_start(&self->poll_, UV_READABLE, OnPoll);
  if (rc != 0) {
    self.release()->Stop();
    throw MakeBpfError(env, what + " (uv_poll_start)", -rc, HintFor(-rc, ctx));
  }
  self->polling_ = true;
  return self.release();
}

int RingBufferPoller::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingBufferPoller*>(ctx);
  // Stopped from inside a delivery: leave the rest in the ring.
  if (self->stopped_ || self->sink_failed_) return -ECANCELED;
  if (size > self->data_cap_) return 0;  // cannot happen: events are < 1 KiB
  if (self->data_used_ + size > self->data_cap_ || self->batch_count_ == kBatchSamples) {
    if (!self->Flush()) return -ECANCELED;  // the JS exception stays pending
    if (self->stopped_) return -ECANCELED;
  }
  memcpy(self->data_ + self->data_used_, data, size);
  self->bounds_[2 * self->batch_count_] = static_cast<uint32_t>(self->data_used_);
  self->bounds_[2 * self->batch_count_ + 1] = static_cast<uint32_t>(size);
  self->data_used_ += size;
  self->batch_count_++;
  self->sink_count_++;
  return 0;
}

bool RingBufferPoller::Flush() {
  if (batch_count_ == 0) return true;
  const uint32_t count = batch_count_;
  batch_count_ = 0;
  data_used_ = 0;
  if (stopped_) return true;
  // Raw N-API here: no C++ exception may unwind through libbpf's C frames.
  napi_env env = env_;
  napi_value fn = on_batch_.Value();
  napi_value recv = owner_.Value();
  napi_value n, result;
  if (napi_create_uint32(env, count, &n) != napi_ok) {
    sink_failed_ = true;
    return false;
  }
  napi_value argv[3] = {data_ref_.Value(), bounds_ref_.Value(), n};
  napi_status status;
  if (from_loop_) {
    // MakeCallback with an async context: async_hooks see a proper resource,
    // and nextTicks/microtasks queued by onBatch run right after it.
    status = napi_make_callback(env, *async_context_, recv, fn, 3, argv, &result);
  } else {
    // Called from JS (pollRingBuffer): a plain call lets an exception reach our caller.
    status = napi_call_function(env, recv, fn, 3, argv, &result);
  }
  if (status != napi_ok) {
    sink_failed_ = true;
    return false;
  }
  return true;
}

int RingBufferPoller::Consume(Napi::Env env, bool from_loop, uint32_t* count) {
  consuming_ = true;
  from_loop_ = from_loop;
  sink_count_ = 0;
  sink_failed_ = false;
  int rc = ring_buffer__consume(rb_);
  if (!sink_failed_) Flush();
  consuming_ = false;
  // Stop() from inside a delivery left the ring to be freed here.
  if (stopped_ && rb_ != nullptr) {
    ring_buffer__free(rb_);
    rb_ = nullptr;
  }
  *count = sink_count_;
  return rc == -ECANCELED ? 0 : rc;
}

int RingBufferPoller::PollNow(Napi::Env env) {
  if (stopped_ || rb_ == nullptr) return 0;
  LibbpfLogScope log;
  uint32_t count = 0;
  int rc = Consume(env, false, &count);
  if (sink_failed_) {
    // A pending JS exception (if any) becomes the thrown error.
    throw Napi::Error::New(env);
  }
  if (rc < 0) {
    ErrorContext ctx;
    ctx.phase = Phase::kRingBuffer;
    throw MakeLibbpfError(env, "pollRingBuffer(" + map_name_ + ")", -rc, ctx);
  }
  return static_cast<int>(count);
}

void RingBufferPoller::DeliverFromLoop(Napi::Env env) {
  LibbpfLogScope log;
  uint32_t count = 0;
  int rc = Consume(env, true, &count);
  if (sink_failed_) {
    napi_value exception;
    if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
      bool undefined = false;
      napi_valuetype type;
      if (napi_typeof(env, exception, &type) == napi_ok) {
        undefined = type == napi_undefined;
      }
      // Surfaces as process 'uncaughtException' (or crashes like any other
      // uncaught error) instead of being swallowed.
      if (!undefined) napi_fatal_exception(env, exception);
    }
    return;
  }
  // onBatch may have called stopRingBuffer()/close(): nothing more to do.
  if (rc < 0 && !stopped_) {
    ErrorContext ctx;
    ctx.phase = Phase::kRingBuffer;
    Napi::Error error =
        MakeLibbpfError(env, "ring buffer consume(" + map_name_ + ")", -rc, ctx);
    napi_fatal_exception(env, error.Value());
  }
}

void RingBufferPoller::OnPoll(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<RingBufferPoller*>(handle->data);
  if (self->stopped_ || !self->polling_) return;
  Napi::Env env(self->env_);
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  try {
    if (status < 0) {
      self->polling_ = false;
      uv_poll_stop(&self->poll_);
      Napi::Error error = MakeBpfError(
          env, "ring buffer poll(" + self->map_name_ + ")", -status,
          "event delivery stopped; call stopRingBuffer() and "
          "startRingBuffer() again");
      napi_fatal_exception(env, error.Value());
    } else {
      self->DeliverFromLoop(env);
    }
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  } catch (...) {
    // Nothing sensible to report; never unwind into libuv.
  }
  napi_close_handle_scope(env, scope);
}

void RingBufferPoller::Stop() {
  if (stopped_) return;
  stopped_ = true;
  polling_ = false;
  // Release JS references now, while a JS context is available.
  on_batch_.Reset();
  owner_.Reset();
  async_context_.reset();
  data_ref_.Reset();
  bounds_ref_.Reset();
  data_ = nullptr;
  bounds_ = nullptr;
  // uv_close() stops the watcher and removes the fd from libuv's epoll set
  // synchronously; only then is the fd closed by ring_buffer__free().
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), OnClose);
  // From inside a delivery, libbpf is still walking the ring: Consume()
  // frees it when ring_buffer__consume() returns.
  if (rb_ != nullptr && !consuming_) {
    ring_buffer__free(rb_);
    rb_ = nullptr;
  }
}

void RingBufferPoller::OnClose(uv_handle_t* handle) {
  delete static_cast<RingBufferPoller*>(handle->data);
}

}  // namespace agentrace
