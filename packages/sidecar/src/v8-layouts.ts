// The frame rung's part in the sidecar: the V8 layout of each agent's node
// binary (read once per binary), given to the kernel for the agent's
// process at its hello, and what to tell a thread that asks whether the
// kernel proved it can read its calls from its async context.
import { FrameCheck, readV8Layout, type V8LayoutResult } from '@agentrace/bpf';
import type { FramesAnswer } from '@agentrace/protocol';
import type { ProcessFile } from './process-files.js';

const CHECKS: Record<number, string> = {
  [FrameCheck.NoIsolate]: 'the thread has no V8 isolate at the thread-local the binary names',
  [FrameCheck.NoFrame]: 'the isolate holds no AsyncContextFrame (AsyncLocalStorage is not built on it here)',
  [FrameCheck.Unreadable]: "the kernel could not read the thread's async context",
  [FrameCheck.NotFound]: "the kernel did not find the SDK's store in the thread's async context (a V8 whose maps it does not know)",
  [FrameCheck.NoKeyTag]: "the SDK's AsyncLocalStorage does not hold its tag where the kernel looked",
};

/** The answer to a thread's check-frames, from what the kernel recorded at its registration. */
export function framesAnswer(check: number | undefined): FramesAnswer {
  if (check === FrameCheck.Ok) return { ok: true };
  if (check === undefined) return { ok: false, reason: 'the kernel saw no slot registration of the thread with the layout' };
  return { ok: false, reason: CHECKS[check] ?? `frame check ${check}` };
}

export class V8Layouts {
  /** By binary (its device:inode key): one read each, whatever the number of agents running it. */
  private readonly byBinary = new Map<string, V8LayoutResult>();

  constructor(private readonly read: (binaryPath: string, shownAs: string) => V8LayoutResult = readV8Layout) {}

  /** The layout of the V8 in process `pid`'s executable `exe` (executableOf), or why there is none. */
  of(pid: number, exe: ProcessFile | undefined): V8LayoutResult {
    if (exe === undefined) return { ok: false, reason: `cannot read /proc/${pid}/exe` };
    let result = this.byBinary.get(exe.key);
    if (result === undefined) {
      result = this.read(exe.path, exe.name);
      // A binary read through a process that exited meanwhile is tried again by the next.
      if (result.ok || !/ENOENT|ESRCH/.test(result.reason)) this.byBinary.set(exe.key, result);
    }
    return result;
  }
}
