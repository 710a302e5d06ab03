export { Sidecar, SIDECAR_VERSION } from './sidecar.js';
export type { SidecarOptions, SidecarStats, SidecarHealth } from './sidecar.js';
export { StatusServer } from './status-server.js';
export { renderTree } from './tree.js';
export * from './otlp/index.js';
export * from './tool-metrics.js';
export { parsePolicy, readPolicy, rulesFor, PolicyError, type Policy } from './policy/policy-file.js';
export { compilePolicy, type CompiledPolicy } from './policy/compile.js';
