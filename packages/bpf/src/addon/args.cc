#include "args.h"

#include <cmath>

namespace agentrace {

namespace {

[[noreturn]] void ThrowTypeError(Napi::Env env, const char* method,
                                 const char* name, const char* expected) {
  Napi::TypeError error = Napi::TypeError::New(
      env, std::string(method) + ": argument '" + name + "' must be " +
               expected);
  error.Value().Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  throw error;
}

}  // namespace

std::string StringArg(const Napi::CallbackInfo& info, size_t index,
                      const char* method, const char* name) {
  if (info.Length() <= index || !info[index].IsString()) {
    ThrowTypeError(info.Env(), method, name, "a string");
  }
  return info[index].As<Napi::String>().Utf8Value();
}

Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t index,
                                const char* method, const char* name) {
  if (info.Length() <= index || !info[index].IsBuffer()) {
    ThrowTypeError(info.Env(), method, name, "a Buffer");
  }
  return info[index].As<Napi::Buffer<uint8_t>>();
}

Napi::Function FunctionArg(const Napi::CallbackInfo& info, size_t index,
                           const char* method, const char* name) {
  if (info.Length() <= index || !info[index].IsFunction()) {
    ThrowTypeError(info.Env(), method, name, "a function");
  }
  return info[index].As<Napi::Function>();
}

uint64_t IntegerArg(const Napi::CallbackInfo& info, size_t index,
                    const char* method, const char* name, uint64_t max,
                    bool optional, uint64_t fallback) {
  if (optional && (info.Length() <= index || info[index].IsUndefined())) {
    return fallback;
  }
  if (info.Length() <= index || !info[index].IsNumber()) {
    ThrowTypeError(info.Env(), method, name, "a number");
  }
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(value) || value < 0 || std::floor(value) != value ||
      value > static_cast<double>(max)) {
    Napi::RangeError error = Napi::RangeError::New(
        info.Env(), std::string(method) + ": argument '" + name +
                        "' must be an integer from 0 to " +
                        std::to_string(max));
    error.Value().Set("code", Napi::String::New(info.Env(), "ERR_OUT_OF_RANGE"));
    throw error;
  }
  return static_cast<uint64_t>(value);
}

}  // namespace agentrace
