// A process as the kernel names it for good: its pid and its start time
// (field 22 of /proc/PID/stat, in clock ticks since boot). A pid is reused
// once its process is gone; the pair never is. The socket server pins the
// pair when a client connects, so frames read after the agent exited are
// still its own, and a newcomer that got its pid is never taken for it.
import fs from 'node:fs';
import { executableName } from './process-files.js';

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

/** Identity keys only the sidecar sets: a client's claim to any of them is dropped. */
export const IDENTITY_KEYS: readonly string[] = [
  'process.pid',
  'process.parent_pid',
  'process.user.id',
  'process.real_user.id',
  'process.saved_user.id',
  'process.owner',
  'process.executable.path',
  'process.executable.name',
  'process.command',
  'process.command_line',
  'process.command_args',
  'container.id',
];

/** A client's resource with every identity claim removed, then the kernel's identity set. */
export function withVerifiedIdentity(claimed: Record<string, unknown>, id: ProcessIdentity, uid: number): Record<string, unknown> {
  const out: Record<string, unknown> = { ...claimed };
  for (const k of IDENTITY_KEYS) delete out[k];
  return { ...out, ...verifiedResource(id, uid) };
}

/**
 * Resource attributes of a process as the kernel knows it (OTel semantic
 * conventions), for the sidecar to set over whatever the client said:
 * `process.pid`, `process.user.id` (from SO_PEERCRED), and while the
 * process runs, `process.executable.path` and `container.id` (from its
 * cgroup path, where a container runtime put one).
 */
export function verifiedResource(id: ProcessIdentity, uid: number): Record<string, string | number> {
  const out: Record<string, string | number> = { 'process.pid': id.pid, 'process.user.id': uid };
  if (!stillRunning(id)) return out;
  // As the process names it, in its own mount namespace.
  const exe = executableName(id.pid);
  if (exe !== undefined) out['process.executable.path'] = exe;
  const container = containerId(id.pid);
  if (container) out['container.id'] = container;
  return out;
}

/** The 64-hex-digit id a container runtime put in the process's cgroup path (docker, podman, containerd, CRI-O), if any. */
function containerId(pid: number): string | undefined {
  try {
    return containerIdIn(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The container id in the text of /proc/PID/cgroup, if a runtime put one there. */
export function containerIdIn(cgroup: string): string | undefined {
  // e.g. .../libpod-<id>.scope, .../docker/<id>, .../cri-containerd-<id>.scope, .../crio-<id>.scope
  return /(?:^|[/-])([0-9a-f]{64})(?:\.scope)?$/m.exec(cgroup)?.[1];
}
