// A process as the kernel names it for good: its pid and its start time
// (field 22 of /proc/PID/stat, in clock ticks since boot). A pid is reused
// once its process is gone; the pair never is. The socket server pins the
// pair when a client connects, so frames read after the agent exited are
// still its own, and a newcomer that got its pid is never taken for it.
import fs from 'node:fs';

export interface ProcessIdentity {
  readonly pid: number;
  /** undefined: the process was already gone (or a zombie) when it was pinned. */
  readonly startTime: string | undefined;
}

/** The start time of a live (not zombie) process, or undefined. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields
  // are counted from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

export function pinProcess(pid: number): ProcessIdentity {
  return { pid, startTime: processStartTime(pid) };
}

/** Whether the pinned process still runs (the same one, not a newcomer with its pid). */
export function stillRunning(id: ProcessIdentity): boolean {
  return id.startTime !== undefined && processStartTime(id.pid) === id.startTime;
}
