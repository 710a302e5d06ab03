// @agentrace/protocol: the contracts between the SDK (in the agent), the
// sidecar and the kernel, in one small package that both sides import
// without the sidecar depending on the SDK.
export * from './socket-protocol.js';
export * from './thread-slot.generated.js';
export * from './errors.js';
export * from './tool-hash.js';
