// The files a process runs (its executable, its libc) as the sidecar can
// open them. An agent in another container names them in its own mount
// namespace: "/usr/lib/x86_64-linux-gnu/libc.so.6" there is another file
// here, or none. /proc/PID/exe and /proc/PID/root/... reach the agent's own
// files from any namespace, and a uprobe attached through them lands on the
// agent's inode. The same file reached by two paths is one file: it is known
// by device and inode, so it is never hooked twice. Which device and inode is
// the kernel's: a uprobe lands on the real file under an overlay, and two
// containers of one image share their base layer's files (the agent's node
// may be the sidecar's own). /proc/PID/maps names that real file; stat, on an
// overlay, names the overlay's.
import fs from 'node:fs';

export interface ProcessFile {
  /** A path that opens the file from the sidecar's mount namespace. */
  readonly path: string;
  /** The path as the process names it (for messages and attributes). */
  readonly name: string;
  /** Device and inode: the file, however it was reached. */
  readonly key: string;
}

/** The files a process maps, by the path it names them with: "major:minor:inode" of the real file. */
function mappedFiles(pid: number | 'self'): Map<string, string> {
  const files = new Map<string, string>();
  let maps: string;
  try {
    maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return files;
  }
  for (const line of maps.split('\n')) {
    // address perms offset dev inode path
    const m = /^\S+ \S+ \S+ ([0-9a-f]+):([0-9a-f]+) (\d+)\s+(\/.*)$/.exec(line);
    if (m && m[3] !== '0') files.set(m[4]!, `${parseInt(m[1]!, 16)}:${parseInt(m[2]!, 16)}:${m[3]}`);
  }
  return files;
}

function statKey(path: string): string | undefined {
  try {
    const { dev, ino } = fs.statSync(path, { bigint: true });
    // The kernel's new_encode_dev, undone.
    const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
    const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
    return `${major}:${minor}:${ino}`;
  } catch {
    return undefined;
  }
}

/** A file named in the sidecar's own namespace. */
export function fileHere(path: string): ProcessFile | undefined {
  let real: string;
  try {
    real = fs.realpathSync(path);
  } catch {
    return undefined;
  }
  const key = mappedFiles('self').get(real) ?? statKey(real);
  return key === undefined ? undefined : { path: real, name: real, key };
}

/** The path of a process's executable in its own mount namespace, or undefined if it is gone. */
export function executableName(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
  } catch {
    return undefined;
  }
}

/** The executable a process runs now, or undefined if it is gone or not ours to read. */
export function executableOf(pid: number): ProcessFile | undefined {
  const name = executableName(pid);
  if (name === undefined) return undefined;
  const path = `/proc/${pid}/exe`;
  const key = mappedFiles(pid).get(name) ?? statKey(path);
  return key === undefined ? undefined : { path, name, key };
}

/** The glibc a process maps, or undefined. */
export function mappedLibc(pid: number): ProcessFile | undefined {
  for (const [name, key] of mappedFiles(pid)) {
    if (/\/libc[.-][^/]*so/.test(name)) return { path: `/proc/${pid}/root${name}`, name, key };
  }
  return undefined;
}
