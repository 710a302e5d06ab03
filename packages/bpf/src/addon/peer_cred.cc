#include "peer_cred.h"

#include <errno.h>
#include <sys/socket.h>

#include <string>

#include "errors.h"

namespace agentrace {

namespace {

Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "peerCredentials(fd): fd must be a number");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct ucred cred = {};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    int err = errno;
    throw MakeUsageError(env, "getsockopt(" + std::to_string(fd) + ", SO_PEERCRED)", err,
                         "the descriptor must be a connected Unix socket");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

}  // namespace

void InitPeerCred(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
}

}  // namespace agentrace
