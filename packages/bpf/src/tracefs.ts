// Tracepoints are attached by their ids under tracefs. Fresh machines often
// boot without it mounted; as root we mount it, as the perf tools expect.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const TRACEFS = '/sys/kernel/tracing';
const DEBUGFS_TRACING = '/sys/kernel/debug/tracing';

export function tracefsMounted(): boolean {
  return existsSync(`${TRACEFS}/events`) || existsSync(`${DEBUGFS_TRACING}/events`);
}

/** Mounts tracefs at /sys/kernel/tracing if no tracing directory is available. */
export function ensureTracefs(): void {
  if (tracefsMounted()) return;
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const why = (err as { stderr?: Buffer }).stderr?.toString().trim() || (err as NodeJS.ErrnoException).code;
    throw new Error(
      `tracefs is not mounted and mounting it at ${TRACEFS} failed${why ? `: ${why}` : ''}; ` +
        `run as root, or mount it first: mount -t tracefs nodev ${TRACEFS} ` +
        `(in a container: mount the host's ${TRACEFS} read-only, as deploy/kubernetes/*.yaml do)`,
      { cause: err },
    );
  }
}
