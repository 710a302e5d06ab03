// The credentials of a Unix-socket peer, from the kernel (SO_PEERCRED), so the
// sidecar never trusts a pid that a client claims.
#ifndef AGENTRACE_BPF_PEER_CRED_H_
#define AGENTRACE_BPF_PEER_CRED_H_

#include <napi.h>

namespace agentrace {

// Adds peerCredentials(fd) -> { pid, uid, gid } to exports.
void InitPeerCred(Napi::Env env, Napi::Object exports);

}  // namespace agentrace

#endif  // AGENTRACE_BPF_PEER_CRED_H_
