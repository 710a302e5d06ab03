// An agent names its threads as its own /proc does; in a container (its own
// PID namespace) those are not the sidecar's numbers. This translates the
// thread ids of one connected process into the sidecar's, from the NSpid
// lines of its tasks' /proc status (each thread's id in every PID namespace
// from the sidecar's down to the agent's). Only that process's tasks are
// searched: whatever an agent claims, it can name only its own threads.
import fs from 'node:fs';

/** The thread's ids from the sidecar's PID namespace down to its own ("NSpid:" of its status), or undefined once it is gone. */
export function nsPids(pid: number, tid = pid): number[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1');
  } catch {
    return undefined;
  }
  const line = /^NSpid:\s*(.*)$/m.exec(text);
  if (!line) return [tid]; // kernels before 4.1 have no NSpid: one namespace
  return line[1]!.trim().split(/\s+/).map(Number);
}

export class ThreadIds {
  /** Index into NSpid of the namespace the agent names its ids in (0: the sidecar's). */
  private level = 0;
  /** Agent's tid → the sidecar's, for a process in another namespace. */
  private readonly known = new Map<number, number>();

  /** `pid`: the process as the sidecar names it (SO_PEERCRED). */
  constructor(readonly pid: number) {}

  /**
   * The agent said which pid it has (its /proc's): its ids are in the
   * innermost namespace where it has that pid. Without a claim, or with
   * one that matches none, its own namespace: what a container's /proc
   * shows. Returns its ids, outermost first (undefined once it is gone).
   */
  namespaceOf(agentPid: number | undefined): number[] | undefined {
    const ids = nsPids(this.pid);
    if (!ids) return undefined;
    const claimed = agentPid === undefined ? -1 : ids.lastIndexOf(agentPid);
    this.level = claimed >= 0 ? claimed : ids.length - 1;
    this.known.clear();
    return ids;
  }

  /** True when the agent's ids are the sidecar's (same namespace, or a /proc of the sidecar's). */
  get sameNamespace(): boolean {
    return this.level === 0;
  }

  /**
   * For a `tid` resolve() did not find: true when it is another process's
   * thread that runs now. Knowable only when the agent names the sidecar's
   * ids; in its own namespace, such an id is as likely a thread of its own
   * that has gone.
   */
  isAnothers(tid: number): boolean {
    return this.level === 0 && fs.existsSync(`/proc/${tid}`);
  }

  /** The sidecar's id of the agent's thread `tid`, or undefined when the process has no such thread now. */
  resolve(tid: number): number | undefined {
    if (this.level === 0) return tid === this.pid || fs.existsSync(`/proc/${this.pid}/task/${tid}`) ? tid : undefined;
    const cached = this.known.get(tid);
    if (cached !== undefined && fs.existsSync(`/proc/${this.pid}/task/${cached}`)) return cached;
    this.rescan();
    return this.known.get(tid);
  }

  /** Threads come and go: reads every task's ids again (a few per process, and only on a miss). */
  private rescan(): void {
    this.known.clear();
    let tasks: string[];
    try {
      tasks = fs.readdirSync(`/proc/${this.pid}/task`);
    } catch {
      return; // the process is gone
    }
    for (const t of tasks) {
      const ids = nsPids(this.pid, Number(t));
      const theirs = ids?.[this.level];
      if (theirs !== undefined) this.known.set(theirs, Number(t));
    }
  }
}
