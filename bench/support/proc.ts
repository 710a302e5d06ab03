// What /proc says of a process: its memory and CPU, for the benchmarks that
// watch the real sidecar from outside.
import fs from 'node:fs';

/** A /proc/PID/status field in kB (VmRSS, VmHWM). */
export function statusKb(pid: number, field: string): number {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(m[1]);
}

const CLK_TCK = 100; // getconf CLK_TCK on Linux

/** utime + stime of `pid`, in seconds (to the clock tick, 10 ms). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields 14 and 15 of proc(5) (utime, stime) are 12 and 13 after the name.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** The same in ms. */
export function cpuMs(pid: number): number {
  return cpuSeconds(pid) * 1000;
}
