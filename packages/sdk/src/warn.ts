// The SDK's only way to tell the user something: process.emitWarning, type
// 'AgentraceWarning'. It prints once to stderr by default (unless the app
// runs with --no-warnings) and apps can observe it with
// process.on('warning'). Never throws.

export const WARNING_TYPE = 'AgentraceWarning';

export type WarningCode =
  /** The sidecar cannot be reached or the connection to it was lost. */
  | 'AGENTRACE_SIDECAR_UNAVAILABLE'
  /** The sidecar refused a request (an `error` message). */
  | 'AGENTRACE_SIDECAR_ERROR'
  /** The thread slot could not be registered. */
  | 'AGENTRACE_SLOT'
  /** A sidecar answered but could not keep up: frames were dropped (said once; the count at exit). */
  | 'AGENTRACE_FRAMES_DROPPED'
  /** A framework integration could not reach the copy of the framework the agent runs: its tool spans have no kernel attribution. */
  | 'AGENTRACE_FRAMEWORK_UNREACHED'
  /** The kernel cannot read calls from this Node's async context: the SDK keeps its async hook (said once per process). */
  | 'AGENTRACE_CONTEXT_HOOK';

let emitted = 0;

export function warn(code: WarningCode, message: string): void {
  emitted++;
  try {
    process.emitWarning(message, { type: WARNING_TYPE, code });
  } catch {
    // a throwing 'warning' listener must not reach the agent
  }
}

/** Warnings emitted by this thread's SDK instance. */
export function warningCount(): number {
  return emitted;
}
