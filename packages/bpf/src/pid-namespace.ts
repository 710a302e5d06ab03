// Which PID namespace the probes name processes in: the loader's own, as
// every syscall it makes does. On the host that is the kernel's own ids; in
// a container (a pod sidecar) the probes translate to the container's.
import fs from 'node:fs';

/** The initial PID namespace's inode (PROC_PID_INIT_INO in the kernel). */
export const INITIAL_PID_NAMESPACE = 0xeffffffc;

/** The inode of this process's PID namespace (as /proc/self/ns/pid names it). */
export function ownPidNamespace(): number {
  return fs.statSync('/proc/self/ns/pid').ino;
}
